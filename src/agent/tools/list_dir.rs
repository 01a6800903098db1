//! `list_dir`: the files (with sizes) and folders of a workspace folder, so that a model can
//! see what there is before it reads or searches.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{json, Value};

use super::sandbox::{call_in, path_schema, Workspace};
use super::{str_field, Cancel, Tool, ToolError, ToolFuture, ToolSpec};

/// Most entries `list_dir` shows.
const MAX_ENTRIES: usize = 200;

/// `list_dir`: the files (with sizes) and folders of a workspace folder.
pub struct ListDir {
    ws: Arc<Workspace>,
    spec: ToolSpec,
}

impl ListDir {
    /// A `list_dir` tool for `ws`.
    pub fn new(ws: Arc<Workspace>) -> Self {
        Self {
            ws,
            spec: ToolSpec::new(
                "list_dir",
                "Lists the files and folders in a folder of the workspace (\".\" is the workspace itself).",
                json!({"type": "object", "properties": {"path": path_schema("folder, relative to the workspace")}, "required": ["path"], "additionalProperties": false}),
                json!({"path": "."}),
            ),
        }
    }
}

impl Tool for ListDir {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        call_in(&self.ws, input, list)
    }
}

/// The entries of the folder named by `path`, folders marked with a trailing `/`.
fn list(ws: &Workspace, input: &Value, _cancel: &Cancel) -> Result<String, ToolError> {
    let rel = str_field(input, "path")?;
    let dir = ws.resolve(rel, true)?;
    if !dir.is_dir() {
        return Err(ToolError::Failed(format!("`{rel}` is not a folder")));
    }
    let mut entries: Vec<(String, bool, u64)> = std::fs::read_dir(&dir)
        .map_err(|e| ToolError::Failed(format!("cannot list `{rel}`: {e}")))?
        .filter_map(Result::ok)
        .map(|e| {
            let meta = e.metadata().ok();
            let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
            (e.file_name().to_string_lossy().into_owned(), is_dir, meta.map_or(0, |m| m.len()))
        })
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Ok(format!("`{}` is empty", ws.display(&dir)));
    }
    let mut out = String::new();
    for (name, is_dir, size) in entries.iter().take(MAX_ENTRIES) {
        if *is_dir {
            let _ = writeln!(out, "{name}/");
        } else {
            let _ = writeln!(out, "{name} ({size} bytes)");
        }
    }
    if entries.len() > MAX_ENTRIES {
        let _ = writeln!(out, "[{} more entries not shown]", entries.len() - MAX_ENTRIES);
    }
    Ok(out.trim_end().to_string())
}
