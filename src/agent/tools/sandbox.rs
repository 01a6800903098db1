//! File tools confined to a workspace directory: `list_dir`, `read_file`, `search_files`,
//! `write_file`.
//!
//! Every path is relative to the workspace. Absolute paths and `..` are refused outright;
//! what remains is resolved through symlinks and refused unless it stays inside the
//! workspace, so a symlink pointing out cannot be followed.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::{blocking, str_field, Cancel, Tool, ToolError, ToolFuture, ToolSpec};

/// Largest file `read_file` returns whole.
const MAX_READ_BYTES: usize = 16 * 1024;
/// Most entries `list_dir` shows.
const MAX_ENTRIES: usize = 200;
/// Most matching lines `search_files` returns, and most bytes it reads per file.
const MAX_MATCHES: usize = 50;
const MAX_SEARCH_FILE_BYTES: u64 = 1024 * 1024;
const MAX_SEARCH_FILES: usize = 5000;
/// Most folders `search_files` enters: with the visited set, bounds a walk of any tree.
const MAX_SEARCH_DIRS: usize = 2000;

/// The directory file tools are confined to.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// The directory `root`, which must exist; symlinks in its path are resolved once here.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, "the workspace must be a directory"));
        }
        Ok(Self { root })
    }

    /// The workspace directory, as an absolute path with no symlinks.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `rel` inside the workspace. With `must_exist == false` the file itself may be
    /// missing (a file about to be written) but its directory must exist inside.
    pub fn resolve(&self, rel: &str, must_exist: bool) -> Result<PathBuf, ToolError> {
        let rel = rel.trim();
        let rel = if rel.is_empty() || rel == "." { "." } else { rel };
        let joined = self.root.join(relative(rel)?);
        let resolved = match joined.canonicalize() {
            Ok(r) => r,
            Err(_) if !must_exist => {
                let parent = joined
                    .parent()
                    .ok_or_else(|| ToolError::Refused(format!("`{rel}` has no parent directory")))?;
                let name = joined
                    .file_name()
                    .ok_or_else(|| ToolError::InvalidInput(format!("`{rel}` is not a file name")))?;
                let parent = parent
                    .canonicalize()
                    .map_err(|_| ToolError::Failed(format!("the directory of `{rel}` does not exist")))?;
                parent.join(name)
            }
            Err(_) => return Err(ToolError::Failed(format!("`{rel}` does not exist"))),
        };
        if !resolved.starts_with(&self.root) {
            return Err(ToolError::Refused(format!("`{rel}` is a link that points outside the workspace")));
        }
        Ok(resolved)
    }

    /// Checks that `rel` names a place inside the workspace without requiring it or its
    /// folders to exist (an argument of a shell command): not absolute, no `..`, and the
    /// deepest part of it that exists resolves, through links, inside.
    pub fn check_inside(&self, rel: &str) -> Result<(), ToolError> {
        let joined = self.root.join(relative(rel)?);
        let existing = joined.ancestors().find(|a| a.symlink_metadata().is_ok()).unwrap_or(&self.root);
        match existing.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(()),
            // A dangling link, or one pointing out.
            _ => Err(ToolError::Refused(format!("`{rel}` is a link that points outside the workspace"))),
        }
    }

    /// Up to `n` file names (relative, sorted), for descriptions that tell the model which
    /// files exist: the workspace's own files, then those one folder down.
    pub fn file_names(&self, n: usize) -> Vec<String> {
        let list = |dir: &Path| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            v.sort();
            v.retain(|p| !p.file_name().is_some_and(|f| f.to_string_lossy().starts_with('.')));
            v
        };
        let top = list(&self.root);
        let mut names: Vec<String> = top.iter().filter(|p| p.is_file()).map(|p| self.display(p)).collect();
        // Only names that stay inside (a symlink pointing out is not offered).
        names.retain(|n| self.resolve(n, true).is_ok());
        for d in top.iter().filter(|p| p.is_dir() && p.canonicalize().is_ok_and(|c| c.starts_with(&self.root))) {
            names.extend(
                list(d)
                    .iter()
                    .filter(|p| p.is_file() && p.canonicalize().is_ok_and(|c| c.starts_with(&self.root)))
                    .map(|p| self.display(p)),
            );
        }
        names.truncate(n);
        names
    }

    fn display(&self, p: &Path) -> String {
        let rel = p.strip_prefix(&self.root).unwrap_or(p);
        if rel.as_os_str().is_empty() {
            ".".into()
        } else {
            rel.display().to_string()
        }
    }
}

/// `rel` as a path, refused outright when it is absolute, starts at a home folder or climbs
/// with `..`: the checks that need no file system.
fn relative(rel: &str) -> Result<&Path, ToolError> {
    let p = Path::new(rel);
    if p.is_absolute() || rel.starts_with('~') {
        return Err(ToolError::Refused(format!("`{rel}` is an absolute path; paths are relative to the workspace")));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(ToolError::Refused(format!("`{rel}` uses `..`, which would leave the workspace")));
    }
    Ok(p)
}

fn path_schema(description: &str) -> Value {
    json!({"type": "string", "maxLength": 200, "description": description})
}

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
        let ws = self.ws.clone();
        Box::pin(async move {
            let rel = str_field(&input, "path")?.to_string();
            blocking(move |_| {
                let dir = ws.resolve(&rel, true)?;
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
            })
            .await
        })
    }
}

/// `read_file`: the text of a workspace file.
pub struct ReadFile {
    ws: Arc<Workspace>,
    spec: ToolSpec,
    /// The files the input schema lists (none when any path is accepted).
    listed: Vec<String>,
}

/// Workspaces with at most this many files have them listed: in the description, and as the
/// only paths `read_file` accepts, so that a model cannot invent one.
const MAX_LISTED_FILES: usize = 64;

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
        let ws = self.ws.clone();
        Box::pin(async move {
            let rel = str_field(&input, "path")?.to_string();
            blocking(move |_| {
                let path = ws.resolve(&rel, true)?;
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
            })
            .await
        })
    }
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

/// Reads at most `max` bytes. `path` is already resolved (no link in it); on Unix the last
/// component is opened with `O_NOFOLLOW`, so a link swapped in after the check is refused, and
/// with `O_NONBLOCK`, so a FIFO planted in the workspace cannot block the call forever.
fn read_prefix(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = opts.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

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
        let ws = self.ws.clone();
        Box::pin(async move {
            let pattern = str_field(&input, "pattern")?.to_string();
            blocking(move |cancel| search(&ws, &pattern, cancel)).await
        })
    }
}

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
        let ws = self.ws.clone();
        Box::pin(async move {
            let rel = str_field(&input, "path")?.to_string();
            let content = str_field(&input, "content")?.to_string();
            blocking(move |_| {
                let path = ws.resolve(&rel, false)?;
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
            })
            .await
        })
    }
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
