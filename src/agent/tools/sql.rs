//! `sql_query`: SQL on one SQLite file, read-only unless writes were allowed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use super::{blocking, str_field, Cancel, Tool, ToolError, ToolFuture, ToolSpec};

/// Most rows a result shows.
const MAX_ROWS: usize = 50;
/// Longest cell shown.
const MAX_CELL: usize = 200;
/// Rows counted beyond those shown before the count stops (an endless recursive query must
/// still return).
const MAX_COUNTED_ROWS: usize = 10_000;
/// SQLite virtual-machine steps between two checks for cancellation.
const PROGRESS_STEPS: i32 = 10_000;
/// Pragmas that only read the schema; every other pragma (which could turn `query_only` off
/// or change how the file is written) is refused.
const READ_PRAGMAS: &[&str] = &["table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"];
/// Rows of each table shown in the tool's description.
const SAMPLE_ROWS: usize = 3;

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
        let example = example_query(&conn).unwrap_or_else(|| "SELECT COUNT(*) FROM sqlite_master".into());
        let mode = if allow_write { "" } else { " (read-only)" };
        Ok(Self {
            path: path.to_path_buf(),
            allow_write,
            spec: ToolSpec::new(
                "sql_query",
                format!("Looks up data: runs one SQL query on the SQLite database{mode} and returns the rows. Tables: {schema}."),
                json!({"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 400}}, "required": ["query"], "additionalProperties": false}),
                json!({ "query": example }),
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
/// An example query built from the database itself: `SELECT COUNT(*) FROM t` for the table
/// with the most text columns (the one questions are most likely about). A fixed example would
/// name a table the database may not have.
fn example_query(conn: &Connection) -> Option<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .ok()?;
    let tables: Vec<String> = stmt.query_map([], |r| r.get(0)).ok()?.filter_map(Result::ok).collect();
    let text_columns = |t: &str| -> usize {
        conn.prepare(&format!("PRAGMA table_info(\"{}\")", t.replace('"', "\"\"")))
            .and_then(|mut c| {
                let types: Vec<String> = c.query_map([], |r| r.get(2))?.filter_map(Result::ok).collect();
                Ok(types.iter().filter(|ty| ty.to_uppercase().contains("TEXT") || ty.to_uppercase().contains("CHAR")).count())
            })
            .unwrap_or(0)
    };
    let best = tables.iter().max_by_key(|t| (text_columns(t), std::cmp::Reverse((*t).clone())))?;
    Some(format!("SELECT COUNT(*) FROM {best}"))
}

fn describe_schema(conn: &Connection) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?;
    let tables: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for t in tables {
        let mut cols = conn.prepare(&format!("PRAGMA table_info(\"{}\")", t.replace('"', "\"\"")))?;
        let names: Vec<String> = cols.query_map([], |r| r.get(1))?.collect::<Result<_, _>>()?;
        let mut rows = conn.prepare(&format!("SELECT * FROM \"{}\" LIMIT {SAMPLE_ROWS}", t.replace('"', "\"\"")))?;
        let n = names.len();
        let samples: Vec<String> = rows
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| match r.get_ref(i).ok() {
                        Some(ValueRef::Text(s)) => format!("'{}'", String::from_utf8_lossy(s).chars().take(24).collect::<String>()),
                        v => cell(v),
                    })
                    .collect::<Vec<_>>()
                    .join(", "))
            })?
            .filter_map(Result::ok)
            .map(|r| format!("({r})"))
            .collect();
        let rows = if samples.is_empty() { String::new() } else { format!(" rows like {}", samples.join(", ")) };
        out.push(format!("{t}({}){rows}", names.join(", ")));
    }
    Ok(if out.is_empty() { "none".into() } else { out.join("; ") })
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
            blocking(move |cancel| run(&path, write, &query, cancel)).await
        })
    }
}

/// Confines a connection to its own file and to the call's lifetime: `ATTACH` (which opens or
/// creates any other file, and which `VACUUM INTO` uses to write a copy anywhere) and pragmas
/// that change settings are refused, and a cancelled call interrupts the query within a few
/// thousand steps, whatever it computes.
fn confine(conn: &Connection, cancel: &Cancel) {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    conn.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma { pragma_name, .. } if !READ_PRAGMAS.contains(&pragma_name.to_ascii_lowercase().as_str()) => {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }));
    let cancel = cancel.clone();
    conn.progress_handler(PROGRESS_STEPS, Some(move || cancel.is_cancelled()));
}

fn run(path: &Path, write: bool, query: &str, cancel: &Cancel) -> Result<String, ToolError> {
    let conn = open(path, write).map_err(|e| ToolError::Failed(format!("cannot open the database: {e}")))?;
    confine(&conn, cancel);
    let mut stmt = conn.prepare(query).map_err(|e| sql_error(e, write))?;
    if !write && !stmt.readonly() {
        return Err(ToolError::Refused("the database is read-only; this query would change it".into()));
    }
    let cols: Vec<String> = stmt.column_names().into_iter().map(str::to_string).collect();
    if cols.is_empty() {
        let n = stmt.execute([]).map_err(|e| sql_error(e, write))?;
        return Ok(format!("ok, {n} row(s) changed"));
    }
    let mut rows = stmt.query([]).map_err(|e| sql_error(e, write))?;
    // One line per row, each value with its column name (`city: Berlin`), so that any line
    // quoted as an answer says what it is.
    let mut out = String::new();
    let mut n = 0usize;
    while let Some(row) = rows.next().map_err(|e| sql_error(e, write))? {
        n += 1;
        if n > MAX_COUNTED_ROWS {
            break;
        }
        if n > MAX_ROWS {
            continue;
        }
        let cells: Vec<String> = (0..cols.len()).map(|i| format!("{}: {}", cols[i], cell(row.get_ref(i).ok()))).collect();
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&cells.join(", "));
    }
    if n == 0 {
        out = format!("no rows (columns: {})", cols.join(", "));
    } else if n > MAX_COUNTED_ROWS {
        let _ = write!(out, "\n[more than {} more rows not shown]", MAX_COUNTED_ROWS - MAX_ROWS);
    } else if n > MAX_ROWS {
        let _ = write!(out, "\n[{} more rows not shown]", n - MAX_ROWS);
    }
    Ok(out)
}

fn sql_error(e: rusqlite::Error, write: bool) -> ToolError {
    let msg = e.to_string();
    if msg.contains("interrupted") {
        return ToolError::Failed("the query was stopped: it ran past the tool's time limit".into());
    }
    if msg.contains("not authorized") || msg.contains("authorization denied") {
        return ToolError::Refused("the query uses ATTACH, DETACH or a pragma that changes settings; only this database can be queried".into());
    }
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
        format!("{}…", super::prefix(&s, MAX_CELL))
    } else {
        s
    }
}
