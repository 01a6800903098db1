//! `--mcp 'CMD ARGS…'`: MCP servers started for one command, their tools added to every
//! registry it builds, and the servers ended when the command is done.
//!
//! A server is named after what it runs: the file stem of its program, or, when the program
//! is an interpreter or package runner (`python3`, `node`, `npx`, `uvx`…), the file stem of
//! the first argument that is not an option (`python3 tests/mcp_server.py` is `mcp_server`,
//! `npx -y @modelcontextprotocol/server-everything` is `server-everything`). A second server
//! of the same name gets `-2`, and so on. The name prefixes a tool's name where it clashes with
//! another tool's (`mcp_server_echo`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use pae_local::agent::tools::{McpServer, Registry};

/// How long a server has to start and list its tools: a package runner may first download
/// the server, but a server that never answers must not hang the command.
const STARTUP: Duration = Duration::from_secs(60);

/// Programs that run a script or package named by their first non-option argument.
const LAUNCHERS: &[&str] = &["node", "npx", "uvx", "pipx", "ruby", "perl", "bun", "bunx"];

/// The MCP servers of one command, with the runtime their connections live on.
///
/// The connections need a runtime that runs while the agent's own blocks on a run (and that
/// `plan` and `tools`, which have none, can use); dropping this ends the servers.
pub struct McpServers {
    runtime: Option<tokio::runtime::Runtime>,
    servers: Vec<McpServer>,
}

impl std::fmt::Debug for McpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.servers).finish()
    }
}

impl McpServers {
    /// Starts a server for each command line (split as a shell would, run without one).
    pub fn start(commands: &[String]) -> anyhow::Result<Self> {
        if commands.is_empty() {
            return Ok(Self {
                runtime: None,
                servers: Vec::new(),
            });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let mut servers: Vec<McpServer> = Vec::new();
        for command in commands {
            let words = shell_words::split(command).with_context(|| format!("--mcp `{command}`"))?;
            let Some((program, args)) = words.split_first() else {
                anyhow::bail!("--mcp `{command}` names no program");
            };
            let mut name = server_name(&words);
            let base = name.clone();
            let mut n = 1;
            while servers.iter().any(|s| s.name() == name) {
                n += 1;
                name = format!("{base}-{n}");
            }
            servers.push(runtime.block_on(McpServer::start(&name, program, args, STARTUP))?);
        }
        Ok(Self {
            runtime: Some(runtime),
            servers,
        })
    }

    /// Adds every server's tools to `registry`, after the tools already there.
    pub fn add_tools(&self, registry: &mut Registry) {
        for server in &self.servers {
            let added = server.add_tools(registry);
            tracing::debug!(server = server.name(), tools = ?added, "MCP tools added");
        }
    }
}

impl Drop for McpServers {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let servers = std::mem::take(&mut self.servers);
        runtime.block_on(async {
            let ends: Vec<_> = servers.into_iter().map(|s| tokio::spawn(s.shutdown())).collect();
            for end in ends {
                let _ = end.await;
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// The name of the server `words` runs (see the module's documentation for the rule).
pub fn server_name(words: &[String]) -> String {
    let stem = |s: &str| {
        Path::new(s)
            .file_stem()
            .map_or_else(|| s.to_string(), |x| x.to_string_lossy().into_owned())
    };
    let Some(program) = words.first() else {
        return "mcp".into();
    };
    let program_stem = stem(program);
    let launcher = program_stem.starts_with("python") || LAUNCHERS.contains(&program_stem.as_str());
    if launcher {
        if let Some(target) = words[1..].iter().find(|w| !w.starts_with('-')) {
            return stem(target);
        }
    }
    program_stem
}

#[cfg(test)]
mod tests {
    use super::server_name;

    fn name(line: &str) -> String {
        server_name(&shell_words::split(line).unwrap())
    }

    #[test]
    fn servers_are_named_after_their_script_or_program() {
        assert_eq!(name("python3 tests/mcp_server.py"), "mcp_server");
        assert_eq!(name("python3 -m mcp_server_time --local-timezone UTC"), "mcp_server_time");
        assert_eq!(name("npx -y @modelcontextprotocol/server-everything"), "server-everything");
        assert_eq!(name("/usr/local/bin/mcp-server-git --repository ."), "mcp-server-git");
        assert_eq!(name("node"), "node");
    }
}
