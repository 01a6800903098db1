//! Tool calls as a model writes them: an arbitrary JSON input to each read-only tool, over a
//! small workspace with links inside and out. Inputs are checked against each tool's schema
//! and run; every outcome must be an observation, and nothing outside may be read.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pae_local::agent::tools::{Calculator, ListDir, ReadFile, Registry, SearchFiles, SqlQuery, Workspace};

struct World {
    _ws: tempfile::TempDir,
    _outside: tempfile::TempDir,
    registry: Registry,
    rt: tokio::runtime::Runtime,
}

const SECRET: &str = "OUTSIDE-SECRET-7f3a";

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), SECRET).unwrap();
        let root = ws.path();
        std::fs::write(root.join("notes.txt"), "Buy milk\nCall Alice\n").unwrap();
        std::fs::create_dir(root.join("docs")).unwrap();
        std::fs::write(root.join("docs/readme.md"), "# Falcon\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(".", root.join("loop")).unwrap();
        let db = root.join("shop.db");
        make_db(&db);
        let w = Arc::new(Workspace::new(root).unwrap());
        let mut r = Registry::new(Duration::from_secs(2));
        r.add(Arc::new(Calculator::default())).unwrap();
        r.add(Arc::new(ListDir::new(w.clone()))).unwrap();
        r.add(Arc::new(ReadFile::any_path(w.clone()))).unwrap();
        r.add(Arc::new(SearchFiles::new(w.clone()))).unwrap();
        r.add(Arc::new(SqlQuery::new(&db, false).unwrap())).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        World { _ws: ws, _outside: outside, registry: r, rt }
    })
}

/// The database, made with the tool's own dependency through a write-enabled `sql_query`.
fn make_db(db: &std::path::Path) {
    std::fs::File::create(db).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut r = Registry::new(Duration::from_secs(5));
    r.add(Arc::new(SqlQuery::new(db, true).unwrap())).unwrap();
    for q in ["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT)", "INSERT INTO users (name, city) VALUES ('Alice', 'Paris'), ('Bob', 'Rome')"] {
        let o = rt.block_on(r.call("sql_query", &serde_json::json!({ "query": q })));
        assert!(!o.error, "{}", o.text);
    }
}

const TOOLS: [&str; 5] = ["calculator", "list_dir", "read_file", "search_files", "sql_query"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
    let w = world();
    let tool = TOOLS[pick as usize % TOOLS.len()];
    let o = w.rt.block_on(w.registry.call(tool, &input));
    assert!(!o.text.contains(SECRET), "{tool} {input} read outside the workspace: {}", o.text);
});
