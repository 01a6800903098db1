//! `shell`: runs one of the commands the user allowed, with arguments, without a shell.
//!
//! No shell interprets anything: the command name must be allowed exactly, arguments are
//! passed as they are, the working directory is the workspace, and the call is killed at the
//! timeout.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{json, Value};

use super::{cap, str_field, Tool, ToolError, ToolFuture, ToolSpec};

const MAX_OUTPUT: usize = 16 * 1024;

pub struct Shell {
    allowed: Vec<String>,
    dir: PathBuf,
    spec: ToolSpec,
}

impl Shell {
    pub fn new(allowed: Vec<String>, dir: PathBuf) -> Self {
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
            dir,
        }
    }
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
            // `kill_on_drop`: when the registry's timeout drops this future, the child dies.
            let out = tokio::process::Command::new(&command)
                .args(&args)
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| ToolError::Failed(format!("cannot run `{command}`: {e}")))?;
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.stderr.is_empty() {
                text.push_str(&String::from_utf8_lossy(&out.stderr));
            }
            let text = cap(text, MAX_OUTPUT, "output");
            match out.status.code() {
                Some(0) => Ok(if text.trim().is_empty() { "(no output)".into() } else { text.trim_end().to_string() }),
                code => Err(ToolError::Failed(format!(
                    "`{command}` exited with {}: {}",
                    code.map_or("a signal".into(), |c| format!("status {c}")),
                    text.trim_end()
                ))),
            }
        })
    }
}
