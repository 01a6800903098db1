//! The workspace that file tools are confined to, and the one way those tools run.
//!
//! Every path is relative to the workspace. Absolute paths and `..` are refused outright;
//! what remains is resolved through symlinks and refused unless it stays inside the
//! workspace, so a symlink pointing out cannot be followed. The file tools and the shell's
//! argument checks all go through [`Workspace`], so these checks are written once.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::{blocking, Cancel, ToolError, ToolFuture};

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

    /// `p` (inside the workspace) as the model sees it: relative, `.` for the workspace itself.
    pub(super) fn display(&self, p: &Path) -> String {
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

/// The input schema of a path argument (relative to the workspace).
pub(super) fn path_schema(description: &str) -> Value {
    json!({"type": "string", "maxLength": 200, "description": description})
}

/// What a file tool does with a validated input: blocking file-system work inside the
/// workspace, which should check the [`Cancel`] token in long loops.
pub(super) type FileWork = fn(&Workspace, &Value, &Cancel) -> Result<String, ToolError>;

/// Runs a file tool's `work` on `input` off the async threads, with its own handle on the
/// workspace: every file tool's `call` is this, so each tool is only its spec and its work.
pub(super) fn call_in(ws: &Arc<Workspace>, input: Value, work: FileWork) -> ToolFuture<'static> {
    let ws = ws.clone();
    Box::pin(blocking(move |cancel| work(&ws, &input, cancel)))
}

/// Reads at most `max` bytes. `path` is already resolved (no link in it); on Unix the last
/// component is opened with `O_NOFOLLOW`, so a link swapped in after the check is refused, and
/// with `O_NONBLOCK`, so a FIFO planted in the workspace cannot block the call forever.
pub(super) fn read_prefix(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
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
