//! Tool flags shared by `plan`, `run`, `eval` and `tools`, and the registry they build:
//! the built-in tools, then those of `--tools` files, then those of MCP servers.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use pae_local::agent::tools::{BuiltinTools, Human, Registry, ToolsFile};

use super::mcp::McpServers;

#[derive(Debug, Clone, Args)]
pub struct ToolArgs {
    /// Folder the file tools are confined to [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Let the agent write files in the workspace (adds `write_file`).
    #[arg(long)]
    pub allow_write: bool,
    /// SQLite database for `sql_query` (read-only unless --allow-sql-write).
    #[arg(long, value_name = "FILE")]
    pub sqlite: Option<PathBuf>,
    /// Let `sql_query` change the database.
    #[arg(long, requires = "sqlite")]
    pub allow_sql_write: bool,
    /// Base URL `http_request` may reach (repeatable; none by default).
    #[arg(long = "allow-http", value_name = "URL")]
    pub allow_http: Vec<String>,
    /// Command `shell` may run (repeatable; none by default).
    #[arg(long = "allow-shell", value_name = "CMD")]
    pub allow_shell: Vec<String>,
    /// Offer `ask_human`: the agent may put questions to you (on stdin when it is not a
    /// terminal). Off by default: a small planner asks the person what a tool computes.
    #[arg(long)]
    pub human: bool,
    /// Seconds `ask_human` waits for an answer [default: no limit].
    #[arg(long, value_name = "SECS", requires = "human")]
    pub human_timeout: Option<f64>,
    /// Seconds before a tool call is abandoned.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub tool_timeout: f64,
    /// MCP server to take tools from, as a command line: split as a shell would, run without
    /// one, spoken to over stdio (repeatable). Its tools come after the built-in ones; a name
    /// already taken gets the server's name as a prefix.
    #[arg(long = "mcp", value_name = "'CMD ARGS…'")]
    pub mcp: Vec<String>,
    /// Tools file (TOML): SQL, HTTP and command tools defined without Rust, and MCP servers
    /// to start (repeatable; see the README's "Tools from a file").
    #[arg(long = "tools", value_name = "FILE")]
    pub tools: Vec<PathBuf>,
}

impl ToolArgs {
    /// Starts the `--mcp` servers; they live, and their tools can be called, until the value
    /// is dropped.
    pub fn mcp_servers(&self) -> anyhow::Result<McpServers> {
        let mut commands = self.mcp.clone();
        for (_, file) in self.tools_files()? {
            commands.extend(file.mcp_servers);
        }
        McpServers::start(&commands)
    }

    /// The `--tools` files, read and checked, each with its path.
    fn tools_files(&self) -> anyhow::Result<Vec<(PathBuf, ToolsFile)>> {
        self.tools.iter().map(|path| Ok((path.clone(), ToolsFile::load(path)?))).collect()
    }

    /// The registry these flags ask for: the built-in tools, those the `--tools` files define,
    /// then the tools of `mcp` (started from the same flags); `human` answers `ask_human` when `--human` is given
    /// (without one, the flags are only checked).
    pub fn registry(&self, human: Option<Arc<dyn Human>>, mcp: &McpServers) -> anyhow::Result<Registry> {
        let timeout = super::run::seconds("--tool-timeout", self.tool_timeout)?;
        let human_timeout = self.human_timeout.map(|t| super::run::seconds("--human-timeout", t)).transpose()?;
        let mut registry = Registry::builtin(&BuiltinTools {
            workspace: self.workspace.clone(),
            allow_write: self.allow_write,
            sqlite: self.sqlite.clone(),
            allow_sql_write: self.allow_sql_write,
            allow_http: self.allow_http.clone(),
            allow_shell: self.allow_shell.clone(),
            human: if self.human { human } else { None },
            human_timeout,
            timeout,
        })?;
        for (path, file) in self.tools_files()? {
            let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            for tool in file.tools(base, timeout).map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))? {
                let name = tool.spec().name.clone();
                registry.add(tool).map_err(|e| anyhow::anyhow!("`{}`: tool `{name}`: {e}", path.display()))?;
            }
        }
        mcp.add_tools(&mut registry);
        Ok(registry)
    }
}
