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

/// `sql_query`: SQL on one SQLite file, read-only unless writes were allowed.
pub struct SqlQuery {
    path: PathBuf,
    allow_write: bool,
    spec: ToolSpec,
    /// What a request's query pattern is built from (see [`query_pattern`]).
    names: Names,
}

/// The tool's input schema, its query held to `pattern` when there is one.
fn query_schema(pattern: Option<String>) -> Value {
    let mut query = json!({"type": "string", "minLength": 1, "maxLength": 400});
    if let Some(p) = pattern {
        query["pattern"] = Value::String(p);
    }
    json!({"type": "object", "properties": {"query": query}, "required": ["query"], "additionalProperties": false})
}

impl SqlQuery {
    /// A tool over the database at `path`, which must exist. The description lists its tables
    /// and columns so that the model can write queries without looking first.
    pub fn new(path: &Path, allow_write: bool) -> Result<Self, String> {
        let conn = open(path, false).map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
        let schema = describe_schema(&conn).map_err(|e| format!("cannot read the schema of `{}`: {e}", path.display()))?;
        let example = example_query(&conn).unwrap_or_else(|| "SELECT COUNT(*) FROM sqlite_master".into());
        let mode = if allow_write { "" } else { " (read-only)" };
        let names = Names::read(&conn).map_err(|e| format!("cannot read the schema of `{}`: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            allow_write,
            names,
            spec: ToolSpec::new(
                "sql_query",
                format!("Looks up data: runs one SQL query on the SQLite database{mode} and returns the rows. Tables: {schema}."),
                query_schema(None),
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

/// Most distinct text values the query pattern lists; a database with more lets string
/// literals be any text.
const MAX_PATTERN_VALUES: usize = 120;

/// What the query pattern is built from: the tables, columns and (when few) text values of
/// the database, read once when the tool is made. Names that would need quoting are left out.
#[derive(Debug, Clone, Default)]
struct Names {
    tables: Vec<String>,
    /// Every column name, each once.
    columns: Vec<String>,
    /// The columns of each table (in `tables` order).
    table_columns: Vec<Vec<String>>,
    /// (table, column, value) for every distinct text value, unless `too_many`.
    values: Vec<(String, String, String)>,
    too_many: bool,
}

impl Names {
    fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?;
        let tables: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let plain = |name: &str| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut out = Names {
            tables: tables.into_iter().filter(|t| plain(t)).collect(),
            ..Names::default()
        };
        for t in &out.tables.clone() {
            let mut cols = conn.prepare(&format!("PRAGMA table_info(\"{t}\")"))?;
            let names: Vec<String> = cols.query_map([], |r| r.get(1))?.collect::<Result<_, _>>()?;
            let names: Vec<String> = names.into_iter().filter(|c| plain(c)).collect();
            out.table_columns.push(names.clone());
            for c in names {
                let mut distinct = conn.prepare(&format!(
                    "SELECT DISTINCT \"{c}\" FROM \"{t}\" WHERE typeof(\"{c}\") = 'text' LIMIT {}",
                    MAX_PATTERN_VALUES + 1
                ))?;
                for v in distinct.query_map([], |r| r.get::<_, String>(0))?.filter_map(Result::ok) {
                    let ok = !v.is_empty() && v.len() <= 60 && !v.contains(['\'', '\n', '\r']);
                    out.too_many |= !ok;
                    let pair = (t.clone(), c.clone(), v);
                    if ok && !out.values.contains(&pair) {
                        out.values.push(pair);
                    }
                }
                if !out.columns.contains(&c) {
                    out.columns.push(c);
                }
            }
        }
        out.too_many |= out.values.len() > MAX_PATTERN_VALUES;
        if out.too_many {
            out.values.clear();
        }
        Ok(out)
    }
}

/// Aggregates and the words that ask for them. A request without any of them gets none: "What
/// city does Bob live in?" wants a column, and a 135M model offered `MAX` for "total" or
/// "oldest" picks it wrongly as often as not.
const AGGREGATES: &[(&str, &[&str])] = &[
    ("COUNT", crate::agent::facts::COUNT_CUES),
    ("SUM", &["total", "sum", "altogether", "combined", "add up", "added up", "spend", "spent", "in all"]),
    ("AVG", &["average", "mean"]),
    ("MAX", &["oldest", "largest", "biggest", "highest", "most", "maximum", "max", "latest", "longest", "priciest", "greatest"]),
    ("MIN", &["youngest", "smallest", "lowest", "least", "minimum", "min", "earliest", "shortest", "cheapest", "fewest"]),
];

/// Units of measure: after `how many` they ask for a summed amount (`how many kilograms`),
/// not a count of rows (`how many harvests`).
const UNITS: &[&str] = &[
    "kilograms", "kilos", "kg", "grams", "pounds", "lbs", "tonnes", "tons", "ounces", "liters", "litres", "milliliters", "gallons",
    "meters", "metres", "kilometers", "kilometres", "km", "miles", "feet", "hours", "minutes", "seconds", "euros", "dollars",
    "pounds sterling", "calories", "watts", "kilowatts",
];

/// A regular expression for the read-only queries that serve `request` (the plan step a
/// query is for) on this database: per table, one `SELECT` of its own columns, `*`, or the
/// aggregates the request's words ask for (see [`AGGREGATES`]), with `WHERE` conditions on
/// the text values the database holds and the request names, in their own column or (for
/// another table's value) through a subquery on the linking column (`user_id = (SELECT id
/// FROM users WHERE name = 'Bob')`), on the request's numbers, and on its results (`#E1`);
/// then `GROUP BY`, `ORDER BY`, `LIMIT`. Only the tables the request names or with a column
/// it names, when there are any. A named value or result is a filter: the
/// `WHERE` is then not optional.
///
/// A 135M model writing SQL freely invents columns (`WHERE (1) > 30`), filters by the wrong
/// one (`WHERE id = 1` for "who live in Paris") or none, and takes `MAX` for "total"; offered
/// the names, values and aggregates the request speaks of, it copies them. Derived from the
/// schema and the request's words, so it fits any database. It guides a first try only (see
/// [`Tool::input_schema_for`]): the tool itself runs any read-only query.
fn query_pattern(names: &Names, request: &str) -> Option<String> {
    if names.tables.is_empty() {
        return None;
    }
    let words = request_words(request);
    let lower = format!(" {} ", request.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "));
    let alt = |items: &[String]| items.iter().map(|i| regex::escape(i)).collect::<Vec<_>>().join("|");
    let mut aggregates: Vec<&str> = AGGREGATES
        .iter()
        .filter(|(_, cues)| cues.iter().any(|c| lower.contains(&format!(" {c} "))))
        .map(|(a, _)| *a)
        .collect();
    // "How many kilograms" asks for an amount, not for a number of rows.
    if UNITS.iter().any(|u| lower.contains(&format!(" how many {u} ")) || lower.contains(&format!(" how much {u} "))) {
        aggregates.retain(|a| *a != "COUNT");
        if !aggregates.contains(&"SUM") {
            aggregates.insert(0, "SUM");
        }
    }
    // The tables the request names or with a column it names ("city"); else all. A name of
    // several words (`joined_year`) is named by any of them but `id`.
    let named = |name: &str| request_words(name).iter().any(|w| w.len() >= 3 && w != "id" && words.contains(w));
    let mut tables: Vec<usize> =
        (0..names.tables.len()).filter(|&i| named(&names.tables[i]) || names.table_columns[i].iter().any(|c| named(c))).collect();
    if tables.is_empty() {
        tables = (0..names.tables.len()).collect();
    }
    let mentioned: Vec<&(String, String, String)> = names
        .values
        .iter()
        .filter(|(_, _, v)| {
            let vw = request_words(v);
            !vw.is_empty() && vw.iter().all(|w| words.contains(w))
        })
        .collect();
    let without_refs = regex::Regex::new("#E[0-9]+").map(|re| re.replace_all(request, " ").into_owned()).unwrap_or_default();
    let mut literals: Vec<String> = without_refs
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|n| n.trim_matches('.'))
        .filter(|n| !n.is_empty() && n.len() <= 12 && n.parse::<f64>().is_ok())
        .map(regex::escape)
        .collect();
    let refs: Vec<String> = super::super::references::indices_in(request).iter().map(|i| format!("#E{i}")).collect();
    literals.extend(refs.iter().cloned());
    let op = "(=|!=|<|>|<=|>=)";
    let branches: Vec<String> = tables
        .iter()
        .map(|&ti| {
            let t = &names.tables[ti];
            let cols = &names.table_columns[ti];
            let column = format!("({})", alt(cols));
            let mut asked: Vec<String> = Vec::new();
            for a in &aggregates {
                asked.push(format!("{a}\\({column}\\)"));
                if *a == "COUNT" {
                    asked.push("COUNT\\(\\*\\)".into());
                }
            }
            let item = format!("({})", asked.iter().chain([&column]).cloned().collect::<Vec<_>>().join("|"));
            // Words that ask for an aggregate get one first; else the columns the request
            // names ("what city …"); else any column or `*`.
            let named_cols: Vec<String> = cols.iter().filter(|c| named(c)).cloned().collect();
            let first = if !asked.is_empty() {
                format!("({})", asked.join("|"))
            } else if !named_cols.is_empty() {
                format!("({})", alt(&named_cols))
            } else {
                format!("(\\*|{column})")
            };
            let mut conditions: Vec<String> = Vec::new();
            // A value or a result the request names is a filter it wants (numbers may be a
            // limit or a factor instead): with one, the WHERE is not optional.
            let mut must_filter = false;
            for (vt, c, v) in &mentioned {
                let value = format!("'{}'", regex::escape(v));
                must_filter = true;
                if cols.contains(c) {
                    conditions.push(format!("{} = {value}", regex::escape(c)));
                } else if let Some(oi) = names.tables.iter().position(|x| x == vt) {
                    // Another table's value: through the column that links the two tables.
                    let (link, key) = link(t, cols, vt, &names.table_columns[oi]);
                    conditions.push(format!("{link} = \\(SELECT {key} FROM {} WHERE {} = {value}\\)", regex::escape(vt), regex::escape(c)));
                }
            }
            if !literals.is_empty() {
                conditions.push(format!("{column} {op} ({})", literals.join("|")));
            }
            if names.too_many {
                // Too many values to list: any text, in any column.
                conditions.push(format!("{column} = '[^'\\n]{{1,60}}'"));
            }
            if !refs.is_empty() {
                must_filter = true;
                conditions.push(format!("{column} = '({})'", refs.join("|")));
            }
            let where_clause = if conditions.is_empty() {
                String::new()
            } else {
                let c = conditions.join("|");
                format!("( WHERE ({c})( AND ({c}))?){}", if must_filter { "" } else { "?" })
            };
            format!(
                "SELECT (DISTINCT )?{first}(, {item}){{0,2}} FROM {}{where_clause}( GROUP BY {column})?( ORDER BY {column}( ASC| DESC)?)?( LIMIT [0-9]{{1,3}})?",
                regex::escape(t)
            )
        })
        .collect();
    Some(format!("^({});?$", branches.join("|")))
}

/// The column of table `t` (with `cols`) that links to table `other`, and the column of
/// `other` it holds: `orders.user_id` → `users.id`, or the other way, `users.id` ←
/// `orders.user_id` (by the `<table, singular>_id` naming convention); otherwise any column of
/// each.
fn link(t: &str, cols: &[String], other: &str, other_cols: &[String]) -> (String, String) {
    let key_of = |table: &str, columns: &[String]| -> Option<String> {
        let singular = table.strip_suffix('s').unwrap_or(table);
        columns
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&format!("{singular}_id")) || c.eq_ignore_ascii_case(&format!("{table}_id")))
            .cloned()
    };
    let id = |columns: &[String]| columns.iter().find(|c| c.eq_ignore_ascii_case("id")).cloned();
    let any = |cs: &[String]| format!("({})", cs.iter().map(|c| regex::escape(c)).collect::<Vec<_>>().join("|"));
    if let (Some(fk), Some(key)) = (key_of(other, cols), id(other_cols)) {
        return (regex::escape(&fk), regex::escape(&key));
    }
    if let (Some(key), Some(fk)) = (id(cols), key_of(t, other_cols)) {
        return (regex::escape(&key), regex::escape(&fk));
    }
    (any(cols), any(other_cols))
}

/// The words of `text`, lower case and stemmed: `lamps` names the value `lamp`, `tomato` the
/// value `Tomatoes`.
fn request_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| crate::agent::relevance::stem(&w.to_lowercase()))
        .collect()
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

    fn input_schema_for(&self, request: &str) -> Option<Value> {
        // Writes are not guided: the pattern knows only SELECT.
        if self.allow_write {
            return None;
        }
        query_pattern(&self.names, request).map(|p| query_schema(Some(p)))
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        let path = self.path.clone();
        let write = self.allow_write;
        Box::pin(async move {
            let query = str_field(&input, "query")?.to_string();
            blocking(move |cancel| run(&path, write, &query, &[], cancel)).await
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

/// Runs `query` on the database at `path`, with `params` bound by name (`:name`), and
/// prints its rows one per line. Also the engine of the SQL tools defined in a tools file.
pub(super) fn run(
    path: &Path,
    write: bool,
    query: &str,
    params: &[(String, rusqlite::types::Value)],
    cancel: &Cancel,
) -> Result<String, ToolError> {
    let conn = open(path, write).map_err(|e| ToolError::Failed(format!("cannot open the database: {e}")))?;
    confine(&conn, cancel);
    let mut stmt = conn.prepare(query).map_err(|e| sql_error(e, write))?;
    if !write && !stmt.readonly() {
        return Err(ToolError::Refused("the database is read-only; this query would change it".into()));
    }
    let named: Vec<(&str, &dyn rusqlite::ToSql)> = params.iter().map(|(k, v)| (k.as_str(), v as &dyn rusqlite::ToSql)).collect();
    let cols: Vec<String> = stmt.column_names().into_iter().map(str::to_string).collect();
    if cols.is_empty() {
        let n = stmt.execute(named.as_slice()).map_err(|e| sql_error(e, write))?;
        return Ok(format!("ok, {n} row(s) changed"));
    }
    let mut rows = stmt.query(named.as_slice()).map_err(|e| sql_error(e, write))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
             INSERT INTO users (name, city, age) VALUES ('Alice', 'Paris', 34), ('Bob', 'Berlin', 28);
             CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, item TEXT, price REAL);
             INSERT INTO orders (user_id, item, price) VALUES (1, 'lamp', 25.0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn the_query_pattern_names_only_what_the_database_has() {
        let re = regex::Regex::new(&query_pattern(&Names::read(&shop()).unwrap(), "the age of users in Paris older than 30").unwrap()).unwrap();
        for ok in [
            "SELECT age FROM users WHERE city = 'Paris' AND age > 30",
            "SELECT age, name FROM users WHERE city = 'Paris' ORDER BY age DESC LIMIT 1",
            "SELECT age, city FROM users WHERE age > 30 GROUP BY city;",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "SELECT age FROM users WHERE (1) > 30",
            "SELECT age FROM customers",
            "SELECT salary FROM users",
            "SELECT age FROM users WHERE city = 'Pariss'",
            "DELETE FROM users",
            "SELECT age FROM users; DROP TABLE users",
            "SELECT age FROM users",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn many_values_leave_text_literals_free_and_odd_names_out() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT); CREATE TABLE \"odd name\" (x TEXT);").unwrap();
        for i in 0..=MAX_PATTERN_VALUES {
            conn.execute("INSERT INTO t VALUES (?1)", [format!("value {i}")]).unwrap();
        }
        let re = regex::Regex::new(&query_pattern(&Names::read(&conn).unwrap(), "which v is value 7").unwrap()).unwrap();
        assert!(re.is_match("SELECT v FROM t WHERE v = 'value 7'"));
        assert!(!re.is_match("SELECT x FROM odd name"));
        let empty = Connection::open_in_memory().unwrap();
        assert_eq!(query_pattern(&Names::read(&empty).unwrap(), "anything"), None);
    }

    #[test]
    fn a_request_narrows_the_conditions_to_what_it_names() {
        let names = Names::read(&shop()).unwrap();
        let re = |request: &str| regex::Regex::new(&query_pattern(&names, request).unwrap()).unwrap();
        let paris = re("how many users live in Paris?");
        assert!(paris.is_match("SELECT COUNT(*) FROM users WHERE city = 'Paris'"));
        assert!(!paris.is_match("SELECT COUNT(*) FROM users WHERE id = 1"), "no number in the request");
        assert!(!paris.is_match("SELECT COUNT(*) FROM users WHERE name = 'Paris'"), "a value goes with its own column");
        let older = re("how many users are older than 30?");
        assert!(older.is_match("SELECT COUNT(*) FROM users WHERE age > 30"));
        assert!(!older.is_match("SELECT COUNT(*) FROM users WHERE city = 'Paris'"));
        let lamps = re("the total price of the lamps");
        assert!(lamps.is_match("SELECT SUM(price) FROM orders WHERE item = 'lamp'"), "lamps names lamp");
        let orders_of = re("what did the user in Berlin buy? give the item");
        assert!(orders_of.is_match("SELECT item FROM orders WHERE user_id = (SELECT id FROM users WHERE city = 'Berlin')"));
        let buyer = re("who bought the lamp? give the user's name");
        assert!(buyer.is_match("SELECT name FROM users WHERE id = (SELECT user_id FROM orders WHERE item = 'lamp')"), "the link the other way");
        let bob = re("how much did Bob spend?");
        assert!(bob.is_match("SELECT SUM(price) FROM orders WHERE user_id = (SELECT id FROM users WHERE name = 'Bob')"));
        let result = re("in which city does #E1 live?");
        assert!(result.is_match("SELECT city FROM users WHERE name = '#E1'"));
        assert!(!result.is_match("SELECT city FROM users WHERE id = 1"), "the 1 of #E1 is no number");
        let alice = re("how many orders did Alice place?");
        assert!(alice.is_match("SELECT COUNT(*) FROM orders WHERE user_id = (SELECT id FROM users WHERE name = 'Alice')"));
        assert!(!alice.is_match("SELECT COUNT(*) FROM orders"), "a named value is a filter");
        assert!(!alice.is_match("SELECT * FROM orders WHERE user_id = (SELECT id FROM users WHERE name = 'Alice')"), "how many: a count");
        let bob_city = re("what city does Bob live in?");
        assert!(bob_city.is_match("SELECT city FROM users WHERE name = 'Bob'"));
        assert!(!bob_city.is_match("SELECT MAX(city) FROM users WHERE name = 'Bob'"), "no word asks for an aggregate");
        let city = re("in which city does Alice live?");
        assert!(city.is_match("SELECT city FROM users WHERE name = 'Alice'"));
        assert!(!city.is_match("SELECT * FROM users WHERE name = 'Alice'"), "the column named comes first");
        assert!(!city.is_match("SELECT id FROM orders WHERE id = 1"), "only the table with a column named");
        let kilos = re("how many kilograms has Bob ordered in total?");
        assert!(kilos.is_match("SELECT SUM(price) FROM orders WHERE user_id = (SELECT id FROM users WHERE name = 'Bob')"));
        assert!(!kilos.is_match("SELECT COUNT(*) FROM orders WHERE user_id = (SELECT id FROM users WHERE name = 'Bob')"), "an amount, not a count");
        let all = re("how many users are there?");
        assert!(all.is_match("SELECT COUNT(*) FROM users"));
        assert!(!all.is_match("SELECT COUNT(*) FROM users WHERE age > 1"), "nothing named: no WHERE");
    }
}
