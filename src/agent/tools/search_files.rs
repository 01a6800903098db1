//! `search_files`: the lines of workspace files that match a pattern, so that a model can
//! find which file holds something without reading each one. The walk follows links only
//! while they stay inside, enters each folder once, and is capped in folders, files and
//! bytes, so any tree ends.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{json, Value};

use super::sandbox::{call_in, read_prefix, Workspace};
use super::{str_field, Cancel, Tool, ToolError, ToolFuture, ToolSpec};

/// Most matching lines `search_files` returns, and most bytes it reads per file.
const MAX_MATCHES: usize = 50;
const MAX_SEARCH_FILE_BYTES: u64 = 1024 * 1024;
const MAX_SEARCH_FILES: usize = 5000;
/// Most folders `search_files` enters: with the visited set, bounds a walk of any tree.
const MAX_SEARCH_DIRS: usize = 2000;

/// `search_files`: lines of workspace files that match a pattern (case-insensitive).
pub struct SearchFiles {
    ws: Arc<Workspace>,
    spec: ToolSpec,
}

impl SearchFiles {
    /// A `search_files` tool for `ws`.
    pub fn new(ws: Arc<Workspace>) -> Self {
        Self {
            ws,
            spec: ToolSpec::new(
                "search_files",
                "Finds which files mention a word: returns each line that contains it, as file:line: text.",
                json!({"type": "object", "properties": {"pattern": {"type": "string", "minLength": 1, "maxLength": 100}}, "required": ["pattern"], "additionalProperties": false}),
                json!({"pattern": "TODO"}),
            ),
        }
    }
}

impl Tool for SearchFiles {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        call_in(&self.ws, input, search_input)
    }
}

/// [`search`] for the input's `pattern`.
fn search_input(ws: &Workspace, input: &Value, cancel: &Cancel) -> Result<String, ToolError> {
    search(ws, str_field(input, "pattern")?, cancel)
}

/// Each line of a workspace file that matches `pattern` (a case-insensitive regular
/// expression, or literal text when it is not one), as `file:line: text`.
fn search(ws: &Workspace, pattern: &str, cancel: &Cancel) -> Result<String, ToolError> {
    // A pattern that is not a valid regular expression is searched for literally.
    let re = regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .or_else(|_| regex::RegexBuilder::new(&regex::escape(pattern)).case_insensitive(true).build())
        .map_err(|e| ToolError::InvalidInput(format!("bad pattern: {e}")))?;
    let mut files = Vec::new();
    // Folders are entered once each, by their real path: a link back up the tree (`l1 -> .`)
    // is seen again and skipped, and the count of folders is capped whatever the tree holds.
    let mut visited = std::collections::HashSet::new();
    visited.insert(ws.root().to_path_buf());
    let mut stack = vec![ws.root().to_path_buf()];
    let mut dirs = 0usize;
    let mut incomplete = false;
    while let Some(dir) = stack.pop() {
        cancel.check()?;
        dirs += 1;
        if dirs > MAX_SEARCH_DIRS {
            incomplete = true;
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).take(MAX_SEARCH_FILES).collect();
        entries.sort();
        for p in entries.into_iter().rev() {
            // Symlinks are followed only while they stay inside the workspace.
            let Ok(real) = p.canonicalize() else { continue };
            if !real.starts_with(ws.root()) || p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if real.is_dir() {
                if visited.insert(real) {
                    stack.push(p);
                }
            } else if files.len() < MAX_SEARCH_FILES {
                // By its real path: a link to a file is searched as that file, once.
                files.push(real);
            } else {
                incomplete = true;
            }
        }
    }
    files.sort();
    files.dedup();
    let mut out = String::new();
    let mut found = 0usize;
    for f in &files {
        cancel.check()?;
        let Ok(bytes) = read_prefix(f, MAX_SEARCH_FILE_BYTES) else { continue };
        if bytes.contains(&0) {
            continue; // binary
        }
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if re.is_match(line) {
                found += 1;
                if found <= MAX_MATCHES {
                    let line = if line.len() > 200 { format!("{}…", super::prefix(line, 200)) } else { line.to_string() };
                    let _ = writeln!(out, "{}:{}: {}", ws.display(f), i + 1, line.trim_end());
                }
            }
        }
    }
    let partial = if incomplete {
        format!("[search stopped after {MAX_SEARCH_DIRS} folders or {MAX_SEARCH_FILES} files]")
    } else {
        String::new()
    };
    if found == 0 {
        return Ok(format!("no line matches `{pattern}` {partial}").trim_end().to_string());
    }
    if found > MAX_MATCHES {
        let _ = writeln!(out, "[{} more matching lines not shown]", found - MAX_MATCHES);
    }
    if incomplete {
        let _ = writeln!(out, "{partial}");
    }
    Ok(out.trim_end().to_string())
}
