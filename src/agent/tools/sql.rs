//! `sql_query`: SQL on one SQLite file, read-only unless writes were allowed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use super::{blocking, str_field, Tool, ToolError, ToolFuture, ToolSpec};

/// Most rows a result shows.
const MAX_ROWS: usize = 50;
/// Longest cell shown.
const MAX_CELL: usize = 200;

pub struct SqlQuery {
    path: PathBuf,
    allow_write: bool,
    spec: ToolSpec,
}

impl SqlQuery {
    /// A tool over the database at `path`, which must exist. The description lists its tables
    /// and columns so that the model can write queries without looking first.
    pub fn new(path: &Path, allow_write: bool) -> Result<Self, String> {
        let conn = open(path, false).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
        let schema = describe_schema(&conn).map_err(|e| format!("cannot read the schema of `{}`: {e}", path.display()))?;
        let mode = if allow_write { "" } else { " (read-only)" };
        Ok(Self {
            path: path.to_path_buf(),
            allow_write,
            spec: ToolSpec::new(
                "sql_query",
                format!("Runs one SQL query on the SQLite database{mode}. Tables: {schema}."),
                json!({"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 400}}, "required": ["query"], "additionalProperties": false}),
                json!({"query": "SELECT COUNT(*) FROM users"}),
            ),
        })
    }
}

fn open(path: &Path, write: bool) -> rusqlite::Result<Connection> {
    if !path.is_file() {
        return Err(rusqlite::Error::InvalidPath(path.to_path_buf()));
    }
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    if !write {
        // Belt and braces: even a query that could write through an attached file cannot.
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(conn)
}

/// `users(id, name, email), orders(id, user_id, total)`.
fn describe_schema(conn: &Connection) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?;
    let tables: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for t in tables {
        let mut cols = conn.prepare(&format!("PRAGMA table_info(\"{}\")", t.replace('"', "\"\"")))?;
        let names: Vec<String> = cols.query_map([], |r| r.get(1))?.collect::<Result<_, _>>()?;
        out.push(format!("{t}({})", names.join(", ")));
    }
    Ok(if out.is_empty() { "none".into() } else { out.join(", ") })
}

impl Tool for SqlQuery {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        let path = self.path.clone();
        let write = self.allow_write;
        Box::pin(async move {
            let query = str_field(&input, "query")?.to_string();
            blocking(move || run(&path, write, &query)).await
        })
    }
}

fn run(path: &Path, write: bool, query: &str) -> Result<String, ToolError> {
    let conn = open(path, write).map_err(|e| ToolError::Failed(format!("cannot open the database: {e}")))?;
    let mut stmt = conn.prepare(query).map_err(|e| ToolError::Failed(format!("SQL error: {e}")))?;
    if !write && !stmt.readonly() {
        return Err(ToolError::Refused("the database is read-only; this query would change it".into()));
    }
    let cols: Vec<String> = stmt.column_names().into_iter().map(str::to_string).collect();
    if cols.is_empty() {
        let n = stmt.execute([]).map_err(|e| sql_error(e, write))?;
        return Ok(format!("ok, {n} row(s) changed"));
    }
    let mut rows = stmt.query([]).map_err(|e| sql_error(e, write))?;
    let mut out = cols.join(" | ");
    let mut n = 0usize;
    while let Some(row) = rows.next().map_err(|e| sql_error(e, write))? {
        n += 1;
        if n > MAX_ROWS {
            continue;
        }
        let cells: Vec<String> = (0..cols.len()).map(|i| cell(row.get_ref(i).ok())).collect();
        let _ = write!(out, "\n{}", cells.join(" | "));
    }
    if n == 0 {
        out.push_str("\n(no rows)");
    } else if n > MAX_ROWS {
        let _ = write!(out, "\n[{} more rows not shown]", n - MAX_ROWS);
    }
    Ok(out)
}

fn sql_error(e: rusqlite::Error, write: bool) -> ToolError {
    let msg = e.to_string();
    if !write && (msg.contains("readonly") || msg.contains("read-only") || msg.contains("query_only")) {
        ToolError::Refused("the database is read-only".into())
    } else {
        ToolError::Failed(format!("SQL error: {msg}"))
    }
}

fn cell(v: Option<ValueRef<'_>>) -> String {
    let s = match v {
        None | Some(ValueRef::Null) => "NULL".to_string(),
        Some(ValueRef::Integer(i)) => i.to_string(),
        Some(ValueRef::Real(f)) => f.to_string(),
        Some(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
        Some(ValueRef::Blob(b)) => format!("<{} bytes>", b.len()),
    };
    if s.len() > MAX_CELL {
        format!("{}…", &s[..s.floor_char_boundary(MAX_CELL)])
    } else {
        s
    }
}
