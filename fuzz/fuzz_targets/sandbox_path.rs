//! The workspace path resolver on arbitrary paths: whatever it accepts lies inside the
//! workspace, through every link.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pae_local::agent::tools::Workspace;

struct World {
    _ws: tempfile::TempDir,
    _outside: tempfile::TempDir,
    ws: Workspace,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = ws.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f.txt"), "x").unwrap();
        std::fs::write(outside.path().join("s.txt"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("s.txt"), root.join("a/s")).unwrap();
        std::os::unix::fs::symlink("..", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", root.join("a/in")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("none"), root.join("dangling")).unwrap();
        let w = Workspace::new(root).unwrap();
        World { _ws: ws, _outside: outside, ws: w }
    })
}

fuzz_target!(|data: &[u8]| {
    let rel = String::from_utf8_lossy(data);
    if rel.contains('\0') {
        return;
    }
    let w = world();
    let root = w.ws.root();
    for must_exist in [true, false] {
        if let Ok(p) = w.ws.resolve(&rel, must_exist) {
            assert!(p.starts_with(root), "{rel:?} resolved to {p:?}");
            if let Ok(real) = p.canonicalize() {
                assert!(real.starts_with(root), "{rel:?} resolved to {p:?}, really {real:?}");
            }
        }
    }
    if w.ws.check_inside(&rel).is_ok() {
        let joined = root.join(rel.as_ref() as &str);
        if let Some(real) = joined.ancestors().find_map(|a| a.canonicalize().ok()) {
            assert!(real.starts_with(root), "{rel:?} accepted, but reaches {real:?}");
        }
    }
});
