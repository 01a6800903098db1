//! `write_file`: writes (or replaces) a workspace file, atomically and without following or
//! replacing any link already in the folder.

use std::sync::Arc;

use serde_json::{json, Value};

use super::sandbox::{call_in, path_schema, Workspace};
use super::{str_field, Cancel, Tool, ToolError, ToolFuture, ToolSpec};

/// `write_file`: writes (or replaces) a workspace file.
pub struct WriteFile {
    ws: Arc<Workspace>,
    spec: ToolSpec,
}

impl WriteFile {
    /// A `write_file` tool for `ws`.
    pub fn new(ws: Arc<Workspace>) -> Self {
        Self {
            ws,
            spec: ToolSpec::new(
                "write_file",
                "Writes text to a file of the workspace, replacing it if it exists.",
                json!({"type": "object", "properties": {"path": path_schema("file, relative to the workspace"), "content": {"type": "string", "maxLength": 4000}}, "required": ["path", "content"], "additionalProperties": false}),
                json!({"path": "summary.txt", "content": "Done."}),
            ),
        }
    }
}

impl Tool for WriteFile {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        call_in(&self.ws, input, write)
    }
}

/// Writes `content` to the file named by `path`.
fn write(ws: &Workspace, input: &Value, _cancel: &Cancel) -> Result<String, ToolError> {
    let rel = str_field(input, "path")?;
    let content = str_field(input, "content")?;
    let path = ws.resolve(rel, false)?;
    if path.is_dir() {
        return Err(ToolError::Failed(format!("`{rel}` is a folder")));
    }
    // Write to a new file beside the target, then rename it over the target: a
    // failed write never leaves half a file. The temporary file gets a fresh random
    // name, created with O_EXCL, so no file or link already in the folder (a link
    // planted to point outside, a user's own file) is ever opened or replaced.
    let dir = path.parent().ok_or_else(|| ToolError::Failed(format!("`{rel}` has no folder")))?;
    let fail = |e: std::io::Error| ToolError::Failed(format!("cannot write `{rel}`: {e}"));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".pae-local-").suffix(".tmp");
    // An ordinary file's mode (a replaced file keeps its own), not the private 0600
    // temporary files get.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.is_file())
            .map_or(0o644, |m| m.permissions().mode() & 0o777);
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, content.as_bytes()).map_err(fail)?;
    // `persist` renames: a link at `path` itself is replaced, never followed.
    tmp.persist(&path).map_err(|e| fail(e.error))?;
    Ok(format!("wrote {} bytes to {}", content.len(), ws.display(&path)))
}
