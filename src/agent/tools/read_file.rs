//! `read_file`: the text of a workspace file. In small workspaces its input schema lists the
//! files that exist, and narrows to those a request names, so a small model cannot invent a
//! path.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{json, Value};

use super::sandbox::{call_in, path_schema, read_prefix, Workspace};
use super::{str_field, Cancel, Tool, ToolError, ToolFuture, ToolSpec};

/// Largest file `read_file` returns whole.
const MAX_READ_BYTES: usize = 16 * 1024;

/// Workspaces with at most this many files have them listed: in the description, and as the
/// only paths `read_file` accepts, so that a model cannot invent one.
const MAX_LISTED_FILES: usize = 64;

/// `read_file`: the text of a workspace file.
pub struct ReadFile {
    ws: Arc<Workspace>,
    spec: ToolSpec,
    /// The files the input schema lists (none when any path is accepted).
    listed: Vec<String>,
}

impl ReadFile {
    /// Reads the files the workspace holds now: when there are few, the input schema lists
    /// them, so a constrained model can only name a file that exists.
    pub fn new(ws: Arc<Workspace>) -> Self {
        let files = ws.file_names(MAX_LISTED_FILES + 1);
        let listed = !files.is_empty() && files.len() <= MAX_LISTED_FILES;
        let path = if listed {
            json!({"enum": files, "description": "file, relative to the workspace"})
        } else {
            path_schema("file, relative to the workspace")
        };
        let mut tool = Self::with_path_schema(ws, path, &files);
        if listed {
            tool.listed = files;
        }
        tool
    }

    /// Reads any path inside the workspace (for runs that also write files).
    pub fn any_path(ws: Arc<Workspace>) -> Self {
        let files = ws.file_names(MAX_LISTED_FILES + 1);
        Self::with_path_schema(ws, path_schema("file, relative to the workspace"), &files)
    }

    fn with_path_schema(ws: Arc<Workspace>, path: Value, files: &[String]) -> Self {
        let shown: Vec<&str> = files.iter().take(12).map(String::as_str).collect();
        let listing = if shown.is_empty() { String::new() } else { format!(" Files: {}.", shown.join(", ")) };
        let example = files.first().cloned().unwrap_or_else(|| "notes.txt".into());
        Self {
            ws,
            listed: Vec::new(),
            spec: ToolSpec::new(
                "read_file",
                format!("Reads a text file of the workspace and returns its text.{listing}"),
                json!({"type": "object", "properties": {"path": path}, "required": ["path"], "additionalProperties": false}),
                json!({ "path": example }),
            ),
        }
    }
}

impl Tool for ReadFile {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    /// Of the listed files, those whose path shares the most words with the request ("the
    /// garden settings file" → `settings/garden.ini`), when any shares one: a 135M model
    /// picking among every file takes one near the top of the list.
    fn input_schema_for(&self, request: &str) -> Option<Value> {
        let best = files_named(request, &self.listed);
        (!best.is_empty()).then(|| {
            json!({"type": "object", "properties": {"path": {"enum": best, "description": "file, relative to the workspace"}}, "required": ["path"], "additionalProperties": false})
        })
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        call_in(&self.ws, input, read)
    }
}

/// The text of the file named by `path`, cut at [`MAX_READ_BYTES`].
fn read(ws: &Workspace, input: &Value, _cancel: &Cancel) -> Result<String, ToolError> {
    let rel = str_field(input, "path")?;
    let path = ws.resolve(rel, true)?;
    if path.is_dir() {
        return Err(ToolError::Failed(format!("`{rel}` is a folder; use list_dir")));
    }
    let bytes = read_prefix(&path, MAX_READ_BYTES as u64)
        .map_err(|e| ToolError::Failed(format!("cannot read `{rel}`: {e}")))?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    let total = std::fs::metadata(&path).map_or(0, |m| m.len());
    if total > MAX_READ_BYTES as u64 {
        let _ = write!(text, "\n[file cut at {MAX_READ_BYTES} of {total} bytes]");
    }
    if text.is_empty() {
        text = format!("`{rel}` is empty");
    }
    Ok(text)
}

/// The files of `files` whose path words (`notes/season-2024.md`: notes, season, md) the
/// request shares most, stemmed; none when no file shares any.
fn files_named(request: &str, files: &[String]) -> Vec<String> {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 3 && w.chars().all(char::is_alphabetic))
            .map(|w| crate::agent::relevance::stem(&w.to_lowercase()))
            .collect()
    };
    let wanted = words(request);
    let scores: Vec<usize> = files.iter().map(|f| words(f).iter().filter(|w| wanted.contains(w)).count()).collect();
    let top = scores.iter().copied().max().unwrap_or(0);
    files.iter().zip(&scores).filter(|(_, &s)| top > 0 && s == top).map(|(f, _)| f.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::files_named;

    #[test]
    fn a_request_names_files_by_the_words_of_their_paths() {
        let files: Vec<String> = ["README.txt", "notes/season-2024.md", "seeds.txt", "settings/garden.ini"].map(String::from).to_vec();
        assert_eq!(files_named("how many plots does the garden settings file set?", &files), ["settings/garden.ini"]);
        assert_eq!(files_named("what do the season notes say?", &files), ["notes/season-2024.md"]);
        assert_eq!(files_named("how many seeds are listed in seeds.txt?", &files), ["seeds.txt"]);
        assert!(files_named("which file mentions water?", &files).is_empty(), "nothing named: every file stays");
    }
}
