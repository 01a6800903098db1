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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// What resolving should give.
    #[derive(Debug)]
    enum Want {
        /// This path, relative to the workspace (`.` for the workspace itself).
        Ok(&'static str),
        /// `Refused` with this fragment.
        Refused(&'static str),
        /// `Failed` with this fragment.
        Failed(&'static str),
    }

    /// A workspace holding `a.txt`, `sub/b.txt` and links in and out, beside a folder outside.
    fn setup() -> (tempfile::TempDir, Workspace) {
        let top = tempfile::tempdir().unwrap();
        let ws = top.path().join("ws");
        let out = top.path().join("outside");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::create_dir(&out).unwrap();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        std::fs::write(ws.join("sub/b.txt"), "b").unwrap();
        std::fs::write(out.join("secret.txt"), "s").unwrap();
        symlink("a.txt", ws.join("link_in")).unwrap();
        symlink("sub", ws.join("dir_in")).unwrap();
        symlink(out.join("secret.txt"), ws.join("link_out")).unwrap();
        symlink("../outside/secret.txt", ws.join("rel_link_out")).unwrap();
        symlink(&out, ws.join("dir_out")).unwrap();
        symlink(out.join("missing.txt"), ws.join("dangling_out")).unwrap();
        let ws = Workspace::new(&ws).unwrap();
        (top, ws)
    }

    fn check(ws: &Workspace, rel: &str, must_exist: bool, want: &Want) -> Result<(), String> {
        let got = ws.resolve(rel, must_exist);
        let ok = match (&got, want) {
            (Ok(p), Want::Ok(w)) => *p == if *w == "." { ws.root().to_path_buf() } else { ws.root().join(w) },
            (Err(ToolError::Refused(m)), Want::Refused(f))
            | (Err(ToolError::Failed(m)), Want::Failed(f)) => m.contains(f),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("resolve({rel:?}, {must_exist}): expected {want:?}, got {got:?}"))
        }
    }

    #[test]
    fn resolve_table() {
        let (_top, ws) = setup();
        let long = "x".repeat(300);
        let deep = "d/".repeat(3000) + "f";
        let long: &'static str = Box::leak(long.into_boxed_str());
        let deep: &'static str = Box::leak(deep.into_boxed_str());
        let cases: Vec<(&str, bool, Want)> = vec![
            ("a.txt", true, Want::Ok("a.txt")),
            ("  a.txt \n", true, Want::Ok("a.txt")),
            ("./a.txt", true, Want::Ok("a.txt")),
            ("sub/b.txt", true, Want::Ok("sub/b.txt")),
            ("sub//b.txt", true, Want::Ok("sub/b.txt")),
            ("sub/./b.txt", true, Want::Ok("sub/b.txt")),
            ("", true, Want::Ok(".")),
            (".", true, Want::Ok(".")),
            ("sub", true, Want::Ok("sub")),
            ("sub/", false, Want::Ok("sub")),
            // Links inside resolve to their targets.
            ("link_in", true, Want::Ok("a.txt")),
            ("dir_in/b.txt", true, Want::Ok("sub/b.txt")),
            ("dir_in/new.txt", false, Want::Ok("sub/new.txt")),
            // Missing files.
            ("new.txt", false, Want::Ok("new.txt")),
            ("sub/new.txt", false, Want::Ok("sub/new.txt")),
            ("new.txt", true, Want::Failed("`new.txt` does not exist")),
            ("nodir/new.txt", false, Want::Failed("the directory of `nodir/new.txt` does not exist")),
            // Its "directory" is a file: inside, and writing there fails later.
            ("a.txt/x", false, Want::Ok("a.txt/x")),
            // Climbing out.
            ("..", true, Want::Refused("uses `..`")),
            ("../outside/secret.txt", true, Want::Refused("uses `..`")),
            ("sub/../a.txt", true, Want::Refused("uses `..`")),
            ("sub/../../outside", false, Want::Refused("uses `..`")),
            ("a/../../x", false, Want::Refused("uses `..`")),
            // Absolute and home paths.
            ("/etc/passwd", true, Want::Refused("is an absolute path")),
            ("/", true, Want::Refused("is an absolute path")),
            ("//etc/passwd", false, Want::Refused("is an absolute path")),
            ("~/x", false, Want::Refused("is an absolute path")),
            ("~root", false, Want::Refused("is an absolute path")),
            // Links pointing out, through every route.
            ("link_out", true, Want::Refused("is a link that points outside the workspace")),
            ("link_out", false, Want::Refused("is a link that points outside the workspace")),
            ("rel_link_out", true, Want::Refused("points outside")),
            ("dir_out", true, Want::Refused("points outside")),
            ("dir_out/secret.txt", true, Want::Refused("points outside")),
            ("dir_out/secret.txt", false, Want::Refused("points outside")),
            ("dir_out/new.txt", false, Want::Refused("points outside")),
            ("dangling_out", true, Want::Failed("`dangling_out` does not exist")),
            // A dangling link names a place inside: writers replace the link (they rename
            // over it), so the path of the link itself is returned, not its target.
            ("dangling_out", false, Want::Ok("dangling_out")),
            // Odd names.
            ("a\0b", true, Want::Failed("does not exist")),
            // Not an escape: the operating system refuses the name when it is written.
            ("a\0b", false, Want::Ok("a\0b")),
            (long, true, Want::Failed("does not exist")),
            (long, false, Want::Ok(long)),
            (deep, true, Want::Failed("does not exist")),
            (deep, false, Want::Failed("the directory of")),
        ];
        let failures: Vec<String> = cases.iter().filter_map(|(rel, must, want)| check(&ws, rel, *must, want).err()).collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn check_inside_table() {
        let (_top, ws) = setup();
        let cases: [(&str, Option<&str>); 12] = [
            ("a.txt", None),
            ("new/deeper/file", None),
            ("sub/new", None),
            ("dir_in/x", None),
            (".", None),
            ("../x", Some("uses `..`")),
            ("/tmp", Some("is an absolute path")),
            ("~", Some("is an absolute path")),
            ("link_out", Some("points outside")),
            ("dir_out/x/y", Some("points outside")),
            ("dangling_out", Some("points outside")),
            ("dangling_out/x", Some("points outside")),
        ];
        let mut failures = Vec::new();
        for (rel, want) in cases {
            match (ws.check_inside(rel), want) {
                (Ok(()), None) => {}
                (Err(ToolError::Refused(m)), Some(f)) if m.contains(f) => {}
                (got, _) => failures.push(format!("check_inside({rel:?}): expected {want:?}, got {got:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn workspace_root_must_be_a_directory() {
        let (top, ws) = setup();
        assert!(ws.root().is_absolute());
        assert_eq!(Workspace::new(&top.path().join("ws/a.txt")).unwrap_err().kind(), std::io::ErrorKind::NotADirectory);
        assert_eq!(Workspace::new(&top.path().join("nope")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        // A workspace reached through a link is the link's target.
        symlink(top.path().join("ws"), top.path().join("ws_link")).unwrap();
        assert_eq!(Workspace::new(&top.path().join("ws_link")).unwrap().root(), ws.root());
    }

    #[test]
    fn file_names_skip_links_out_and_hidden_files() {
        let (_top, ws) = setup();
        std::fs::write(ws.root().join(".hidden"), "h").unwrap();
        assert_eq!(ws.file_names(10), vec!["a.txt", "link_in", "dir_in/b.txt", "sub/b.txt"]);
        assert_eq!(ws.file_names(1), vec!["a.txt"]);
    }
}
