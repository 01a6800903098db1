//! A small workspace the agent tests run against: a few text files and a SQLite database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pae_local::agent::tools::{BuiltinTools, Calculator, HttpRequest, ListDir, ReadFile, Registry, SearchFiles, Shell, SqlQuery, Workspace};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Fixture {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

pub fn create() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("notes.txt"), "Buy milk\nCall Alice\nFix the bike\n").unwrap();
    std::fs::write(root.join("config.ini"), "[server]\nhost = 127.0.0.1\nport = 8080\n").unwrap();
    std::fs::write(root.join("fruits.txt"), "apple\nbanana\ncherry\ndate\nelderberry\n").unwrap();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/readme.md"), "# Project Falcon\nThe launch date is 2025-03-14.\n").unwrap();
    std::fs::write(root.join("todo.txt"), "- water the plants\n- pay rent\n").unwrap();
    let db = root.join("shop.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
         INSERT INTO users (name, city, age) VALUES ('Alice', 'Paris', 34), ('Bob', 'Berlin', 28), ('Carol', 'Paris', 45), ('Dave', 'Rome', 23);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, item TEXT, price REAL);
         INSERT INTO orders (user_id, item, price) VALUES (1, 'lamp', 25.0), (1, 'desk', 150.0), (2, 'chair', 80.0), (3, 'lamp', 25.0), (4, 'book', 12.5);",
    )
    .unwrap();
    Fixture { dir, db }
}

/// The tools of a run over the fixture, plus tools with other kinds of schema (enums,
/// arrays, optional fields) for the grammar tests.
/// `read_file` accepts only the files the fixture holds, as in a run without `--allow-write`.
pub fn registry(f: &Fixture) -> Registry {
    Registry::builtin(&BuiltinTools {
        workspace: Some(f.root().to_path_buf()),
        sqlite: Some(f.db.clone()),
        timeout: Duration::from_secs(10),
        ..BuiltinTools::default()
    })
    .unwrap()
}

/// [`registry`] with a `read_file` that takes any path, so that control-flow tests can
/// script reads of missing files, files made later and paths that leave the workspace.
pub fn any_path_registry(f: &Fixture) -> Registry {
    let ws = Arc::new(Workspace::new(f.root()).unwrap());
    let mut r = Registry::new(Duration::from_secs(10));
    r.add(Arc::new(Calculator::default())).unwrap();
    r.add(Arc::new(ListDir::new(ws.clone()))).unwrap();
    r.add(Arc::new(ReadFile::any_path(ws.clone()))).unwrap();
    r.add(Arc::new(SearchFiles::new(ws.clone()))).unwrap();
    r.add(Arc::new(SqlQuery::new(&f.db, false).unwrap())).unwrap();
    r
}

/// [`registry`] plus `http_request` and `shell`, whose schemas use enums and arrays.
pub fn wide_registry(f: &Fixture) -> Registry {
    widen(f, registry(f))
}

/// Adds `http_request` and `shell` to a registry.
pub fn widen(f: &Fixture, mut r: Registry) -> Registry {
    r.add(Arc::new(HttpRequest::new(vec!["http://127.0.0.1:9/".into()], Duration::from_secs(1)).unwrap())).unwrap();
    r.add(Arc::new(Shell::new(vec!["echo".into(), "wc".into()], Arc::new(pae_local::agent::tools::Workspace::new(f.root()).unwrap())))).unwrap();
    r
}
