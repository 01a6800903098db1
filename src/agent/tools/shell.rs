//! `shell`: runs one of the commands the user allowed, with arguments, without a shell.
//!
//! No shell interprets anything: the command name must be allowed exactly, arguments are
//! passed as they are, the working directory is the workspace, and the call is killed at the
//! timeout. Arguments that name a path (a whole argument, the value of `--opt=VALUE`, or what
//! follows a short option such as `-f/path`) must stay inside the workspace, as for the file
//! tools. What an allowed command does with its arguments is trusted beyond that: a command
//! that runs code of its own (`sh -c`, `python`, `find -exec`) can do anything the user can.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{str_field, Tool, ToolError, ToolFuture, ToolSpec, Workspace};

/// Most bytes of stdout, and of stderr, kept. Output is read only this far; a command that
/// writes more is stopped, so endless output costs no more memory than this.
const MAX_OUTPUT: usize = 16 * 1024;

/// `shell`: runs an allowed command with arguments in the workspace, without a shell.
pub struct Shell {
    allowed: Vec<String>,
    ws: Arc<Workspace>,
    spec: ToolSpec,
}

impl Shell {
    /// Runs only the commands named in `allowed` (exact names), in the workspace `ws`.
    pub fn new(allowed: Vec<String>, ws: Arc<Workspace>) -> Self {
        let example = allowed.first().cloned().unwrap_or_else(|| "ls".into());
        Self {
            spec: ToolSpec::new(
                "shell",
                format!("Runs a command ({}) with arguments in the workspace and returns its output.", allowed.join(", ")),
                json!({
                    "type": "object",
                    "properties": {
                        "command": {"enum": allowed},
                        "args": {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 16}
                    },
                    "required": ["command", "args"],
                    "additionalProperties": false
                }),
                json!({"command": example, "args": []}),
            ),
            allowed,
            ws,
        }
    }

    /// Refuses an argument whose path part would leave the workspace.
    fn check_arg(&self, arg: &str) -> Result<(), ToolError> {
        let value = if let Some(long) = arg.strip_prefix("--") {
            long.split_once('=').map_or("", |(_, v)| v)
        } else if let Some(short) = arg.strip_prefix('-') {
            // `-f/etc/passwd`: the option letter, then its value.
            short.char_indices().nth(1).map_or("", |(i, _)| &short[i..])
        } else {
            arg
        };
        for candidate in [arg, value] {
            if candidate.is_empty() || (candidate.starts_with('-') && candidate == arg) {
                continue;
            }
            // A name that exists in the workspace is a path too (`link.txt` may point out).
            let looks_like_path = candidate.contains('/')
                || candidate.starts_with('~')
                || candidate == ".."
                || self.ws.root().join(candidate).symlink_metadata().is_ok();
            if looks_like_path {
                self.ws.check_inside(candidate).map_err(|e| match e {
                    ToolError::Refused(why) => ToolError::Refused(format!("argument `{arg}`: {why}")),
                    e => e,
                })?;
            }
        }
        Ok(())
    }
}

/// Reads at most `max + 1` bytes: one more than kept, to know whether output was cut.
async fn read_capped(r: Option<impl AsyncRead + Unpin>, max: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.take(max as u64 + 1).read_to_end(&mut buf).await;
    }
    buf
}

impl Tool for Shell {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        Box::pin(async move {
            let command = str_field(&input, "command")?.to_string();
            if !self.allowed.contains(&command) {
                return Err(ToolError::Refused(format!(
                    "`{command}` is not an allowed command ({})",
                    if self.allowed.is_empty() { "none: pass --allow-shell CMD".into() } else { self.allowed.join(", ") }
                )));
            }
            let args: Vec<String> = input
                .get("args")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            for a in &args {
                self.check_arg(a)?;
            }
            run_program(&command, &args, self.ws.root()).await
        })
    }
}

/// Runs `program` with `args` in `cwd`, no shell, and returns what it printed (stdout, then
/// stderr), at most [`MAX_OUTPUT`] bytes of each; a non-zero exit is an error carrying the
/// output. The child dies when this future is dropped (the registry's timeout). Also the
/// engine of the command tools defined in a tools file.
pub(super) async fn run_program(program: &str, args: &[String], cwd: &std::path::Path) -> Result<String, ToolError> {
    // `kill_on_drop`: when the registry's timeout drops this future, the child dies.
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ToolError::Failed(format!("cannot run `{program}`: {e}")))?;
    let (stdout, stderr) =
        tokio::join!(read_capped(child.stdout.take(), MAX_OUTPUT), read_capped(child.stderr.take(), MAX_OUTPUT));
    let cut = stdout.len() > MAX_OUTPUT || stderr.len() > MAX_OUTPUT;
    if cut {
        // It has said more than will be shown; it is not waited for any longer.
        let _ = child.start_kill();
    }
    let status = child
        .wait()
        .await
        .map_err(|e| ToolError::Failed(format!("waiting for `{program}`: {e}")))?;
    let keep = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(MAX_OUTPUT)]).into_owned();
    let mut text = keep(&stdout);
    if !stderr.is_empty() {
        text.push_str(&keep(&stderr));
    }
    if cut {
        text.push_str(&format!("\n[output cut at {MAX_OUTPUT} bytes; the command was stopped]"));
        return Ok(text);
    }
    match status.code() {
        Some(0) => Ok(if text.trim().is_empty() { "(no output)".into() } else { text.trim_end().to_string() }),
        code => Err(ToolError::Failed(format!(
            "`{program}` exited with {}: {}",
            code.map_or("a signal".into(), |c| format!("status {c}")),
            text.trim_end()
        ))),
    }
}
