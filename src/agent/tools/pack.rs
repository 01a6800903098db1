//! Tools defined in a file instead of in Rust: a named, parameterised SQL query, an HTTP
//! request from a URL template, or a fixed program with arguments from a template.
//!
//! These are the "API or SQL query as a tool" that users otherwise write against the `Tool`
//! trait and rebuild for. Each kind is deliberately narrow, so that a model filling in the
//! parameters cannot widen what the tool does: the query is fixed and read-only (parameters
//! are bound, never spliced in); the URL's scheme, host and port are fixed and parameters are
//! percent-encoded into its path or query; the program is fixed, runs without a shell, and a
//! parameter is always one whole argument, never one that begins with `-` (an option).
//!
//! The file is TOML (see the README's "Tools from a file"):
//!
//! ```toml
//! [[tools]]
//! name = "orders_of"
//! kind = "sql"
//! description = "Lists the orders of one customer."
//! database = "shop.db"
//! query = "SELECT item, total FROM orders WHERE customer = :name"
//! params.name = { type = "string", description = "the customer's name" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{blocking, Tool, ToolError, ToolFuture, ToolSpec};

/// A tools file: tool definitions, and MCP servers to start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsFile {
    /// The tools it defines.
    #[serde(default)]
    pub tools: Vec<ToolDef>,
    /// MCP servers to start, each as a command line (`python3 server.py --flag`).
    #[serde(default)]
    pub mcp_servers: Vec<String>,
}

/// One tool of a tools file. (Unknown fields are refused by [`ToolKind`], which receives
/// every field this struct does not take: serde cannot deny them on a struct that flattens.)
#[derive(Debug, Clone, Deserialize)]
pub struct ToolDef {
    /// The name the model writes on its Action line.
    pub name: String,
    /// What the tool does, for the model and for tool ranking: name what it works on.
    pub description: String,
    /// The parameters the model fills in, by name.
    #[serde(default)]
    pub params: BTreeMap<String, ParamDef>,
    /// What the tool runs.
    #[serde(flatten)]
    pub kind: ToolKind,
}

/// One parameter of a file-defined tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// JSON type of the value: `string`, `integer`, `number` or `boolean`.
    #[serde(rename = "type")]
    pub ty: String,
    /// What the value means, shown to the model in the schema.
    #[serde(default)]
    pub description: Option<String>,
    /// The only values allowed, if the set is closed.
    #[serde(default, rename = "enum")]
    pub allowed: Option<Vec<Value>>,
}

/// What a file-defined tool runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolKind {
    /// A read-only query on a SQLite file, parameters bound by name (`:name`).
    Sql {
        /// The SQLite file, relative to the tools file.
        database: PathBuf,
        /// The query; must not change the database.
        query: String,
    },
    /// A request to a URL template (`http://host/api/weather?city={city}`).
    Http {
        /// The URL, with `{param}` placeholders after the host.
        url: String,
        /// `GET` (default) or `POST`.
        #[serde(default)]
        method: Option<String>,
        /// A JSON pointer (`/current/temp`) to the part of a JSON answer to return.
        #[serde(default)]
        extract: Option<String>,
    },
    /// A fixed program, run without a shell.
    Command {
        /// The program (a name on `PATH`, or a path).
        program: String,
        /// Its arguments; an argument that is exactly `{param}` is replaced by the value,
        /// other text is passed as written.
        #[serde(default)]
        args: Vec<String>,
        /// Seconds before the call is abandoned [default: the registry's tool timeout].
        #[serde(default)]
        timeout_secs: Option<f64>,
    },
}

/// Why a tools file cannot be used; the message names the file and the tool.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ToolsFileError(String);

impl ToolsFile {
    /// Reads and checks the tools file at `path`.
    pub fn load(path: &Path) -> Result<Self, ToolsFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ToolsFileError(format!("cannot read `{}`: {e}", path.display())))?;
        let file: Self = toml::from_str(&text).map_err(|e| ToolsFileError(format!("`{}`: {e}", path.display())))?;
        Ok(file)
    }

    /// The tools it defines, ready to register; relative database paths are taken from
    /// `base` (the tools file's folder). Each definition is checked here, so that a mistake
    /// is an error at start, not an error observation in the middle of a run.
    pub fn tools(&self, base: &Path, timeout: Duration) -> Result<Vec<Arc<dyn Tool>>, ToolsFileError> {
        self.tools.iter().map(|def| build(def, base, timeout).map_err(|e| ToolsFileError(format!("tool `{}`: {e}", def.name)))).collect()
    }
}

/// A checked tool from its definition.
fn build(def: &ToolDef, base: &Path, timeout: Duration) -> Result<Arc<dyn Tool>, String> {
    if def.name.is_empty() || !def.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("a name is letters, digits and `_`".into());
    }
    let schema = input_schema(&def.params)?;
    let example = example_input(&def.params);
    let spec = ToolSpec::new(def.name.clone(), def.description.clone(), schema, example);
    let names: Vec<&str> = def.params.keys().map(String::as_str).collect();
    let run = match &def.kind {
        ToolKind::Sql { database, query } => {
            let database = base.join(database);
            check_query(&database, query, &names)?;
            Run::Sql { database, query: query.clone() }
        }
        ToolKind::Http { url, method, extract } => {
            let method = method.clone().unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
            if !matches!(method.as_str(), "GET" | "POST") {
                return Err(format!("method `{method}`: only GET and POST"));
            }
            check_url_template(url, &names)?;
            if let Some(p) = extract {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(format!("extract `{p}` is not a JSON pointer (it starts with `/`)"));
                }
            }
            Run::Http { url: url.clone(), method, extract: extract.clone(), timeout }
        }
        ToolKind::Command { program, args, timeout_secs } => {
            for a in args {
                for p in placeholders(a) {
                    if !names.contains(&p.as_str()) {
                        return Err(format!("argument `{a}` uses `{{{p}}}`, which is no parameter"));
                    }
                    if a != &format!("{{{p}}}") {
                        return Err(format!("argument `{a}`: a parameter is a whole argument (`{{{p}}}`), so that a value is never split or joined"));
                    }
                }
            }
            let limit = match timeout_secs {
                Some(t) if t.is_finite() && *t > 0.0 => Some(Duration::from_secs_f64(*t)),
                Some(t) => return Err(format!("timeout_secs {t} is not a positive number")),
                None => None,
            };
            Run::Command { program: program.clone(), args: args.clone(), cwd: base.to_path_buf(), limit }
        }
    };
    Ok(Arc::new(FileTool { spec, run }))
}

/// The JSON schema of the parameters: every one required, nothing else allowed.
fn input_schema(params: &BTreeMap<String, ParamDef>) -> Result<Value, String> {
    let mut properties = Map::new();
    for (name, p) in params {
        if !matches!(p.ty.as_str(), "string" | "integer" | "number" | "boolean") {
            return Err(format!("parameter `{name}`: type `{}` is not string, integer, number or boolean", p.ty));
        }
        let mut prop = Map::new();
        prop.insert("type".into(), Value::String(p.ty.clone()));
        if p.ty == "string" {
            prop.insert("maxLength".into(), json!(200));
        }
        if let Some(d) = &p.description {
            prop.insert("description".into(), Value::String(d.clone()));
        }
        if let Some(values) = &p.allowed {
            prop.insert("enum".into(), Value::Array(values.clone()));
        }
        properties.insert(name.clone(), Value::Object(prop));
    }
    Ok(json!({
        "type": "object",
        "properties": properties,
        "required": params.keys().collect::<Vec<_>>(),
        "additionalProperties": false
    }))
}

/// An input the model is shown as an example: a plausible value per parameter.
fn example_input(params: &BTreeMap<String, ParamDef>) -> Value {
    let mut out = Map::new();
    for (name, p) in params {
        let v = match (&p.allowed, p.ty.as_str()) {
            (Some(values), _) if !values.is_empty() => values[0].clone(),
            (_, "integer" | "number") => json!(1),
            (_, "boolean") => json!(true),
            _ => json!("…"),
        };
        out.insert(name.clone(), v);
    }
    Value::Object(out)
}

/// The `{name}` placeholders of a template.
fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else { break };
        out.push(rest[i + 1..i + j].to_string());
        rest = &rest[i + j + 1..];
    }
    out
}

/// The query must prepare, must not write, and must use exactly the parameters declared.
fn check_query(database: &Path, query: &str, names: &[&str]) -> Result<(), String> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(database, flags).map_err(|e| format!("cannot open `{}`: {e}", database.display()))?;
    let stmt = conn.prepare(query).map_err(|e| format!("the query does not prepare: {e}"))?;
    if !stmt.readonly() {
        return Err("the query would change the database; file-defined SQL tools are read-only".into());
    }
    let mut used = Vec::new();
    for i in 1..=stmt.parameter_count() {
        match stmt.parameter_name(i) {
            Some(n) if n.starts_with(':') => used.push(n[1..].to_string()),
            Some(n) => return Err(format!("parameter `{n}`: name parameters `:name`")),
            None => return Err("the query has a `?` parameter: name parameters `:name`".into()),
        }
    }
    for n in &used {
        if !names.contains(&n.as_str()) {
            return Err(format!("the query uses `:{n}`, which is no declared parameter"));
        }
    }
    for n in names {
        if !used.iter().any(|u| u == n) {
            return Err(format!("parameter `{n}` is declared but the query does not use `:{n}`"));
        }
    }
    Ok(())
}

/// The URL must be http(s) with a fixed host: placeholders only after the host, and every
/// one declared.
fn check_url_template(url: &str, names: &[&str]) -> Result<(), String> {
    let fixed = &url[..url.find('{').unwrap_or(url.len())];
    let after_scheme = &fixed[fixed.find("://").map_or(0, |i| i + 3)..];
    if url.contains('{') && !after_scheme.contains('/') {
        return Err(format!("url `{url}`: placeholders may only follow the host (`http://host/path/{{x}}`)"));
    }
    let parsed = url::Url::parse(fixed).map_err(|e| format!("url `{url}`: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("url `{url}` must be http:// or https:// with a host"));
    }
    for p in placeholders(url) {
        if !names.contains(&p.as_str()) {
            return Err(format!("url `{url}` uses `{{{p}}}`, which is no parameter"));
        }
    }
    Ok(())
}

/// What a file-defined tool runs, checked.
enum Run {
    Sql { database: PathBuf, query: String },
    Http { url: String, method: String, extract: Option<String>, timeout: Duration },
    Command { program: String, args: Vec<String>, cwd: PathBuf, limit: Option<Duration> },
}

/// A tool from a tools file.
struct FileTool {
    spec: ToolSpec,
    run: Run,
}

/// A parameter's value as text (for URLs and arguments): strings as they are, others as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Tool for FileTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        Box::pin(async move {
            let empty = Map::new();
            let values = input.as_object().unwrap_or(&empty);
            match &self.run {
                Run::Sql { database, query } => {
                    let params: Vec<(String, rusqlite::types::Value)> = values
                        .iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
                                Value::Number(n) if n.is_i64() => rusqlite::types::Value::Integer(n.as_i64().unwrap_or_default()),
                                Value::Number(n) => rusqlite::types::Value::Real(n.as_f64().unwrap_or_default()),
                                Value::String(s) => rusqlite::types::Value::Text(s.clone()),
                                other => rusqlite::types::Value::Text(other.to_string()),
                            };
                            (format!(":{k}"), v)
                        })
                        .collect();
                    let (database, query) = (database.clone(), query.clone());
                    blocking(move |cancel| super::sql::run(&database, false, &query, &params, cancel)).await
                }
                Run::Http { url, method, extract, timeout } => {
                    let filled = fill_url(url, values)?;
                    let (method, extract, timeout) = (method.clone(), extract.clone(), *timeout);
                    blocking(move |_| {
                        let (status, body, cut) = super::http::fetch(&filled, &method, None, timeout)?;
                        let text = String::from_utf8_lossy(&body).into_owned();
                        if !(200..300).contains(&status) {
                            return Err(ToolError::Failed(format!("HTTP {status}: {}", super::prefix(&text, 500))));
                        }
                        match extract {
                            Some(pointer) if !cut => {
                                let json: Value = serde_json::from_str(&text)
                                    .map_err(|e| ToolError::Failed(format!("the answer is not JSON ({e}), so `{pointer}` cannot be taken from it")))?;
                                json.pointer(&pointer)
                                    .map(text_of)
                                    .ok_or_else(|| ToolError::Failed(format!("the answer has nothing at `{pointer}`")))
                            }
                            Some(pointer) => Err(ToolError::Failed(format!(
                                "the answer is longer than {} bytes, so `{pointer}` cannot be taken from it",
                                super::http::MAX_BODY
                            ))),
                            None if cut => Ok(format!("{text}\n[body cut at {} bytes]", super::http::MAX_BODY)),
                            None => Ok(text),
                        }
                    })
                    .await
                }
                Run::Command { program, args, cwd, .. } => {
                    let mut filled = Vec::with_capacity(args.len());
                    for a in args {
                        let Some(p) = placeholders(a).into_iter().next() else {
                            filled.push(a.clone());
                            continue;
                        };
                        let value = values.get(&p).cloned().unwrap_or(Value::Null);
                        // A text that begins with `-` would reach the program as an option
                        // (`--files0-from=/etc/passwd`), not as the data it stands for.
                        if value.as_str().is_some_and(|v| v.starts_with('-')) {
                            return Err(ToolError::Refused(format!("`{p}` may not begin with `-`: the program would read it as an option")));
                        }
                        filled.push(text_of(&value));
                    }
                    super::shell::run_program(program, &filled, cwd).await
                }
            }
        })
    }

    fn time_limit(&self, tools_limit: Duration) -> Option<Duration> {
        match &self.run {
            Run::Command { limit: Some(l), .. } => Some(*l),
            _ => Some(tools_limit),
        }
    }
}

/// The URL template with each placeholder replaced by its value, percent-encoded (a value
/// cannot add a path segment, a query parameter or a fragment), parsed.
fn fill_url(template: &str, values: &Map<String, Value>) -> Result<url::Url, ToolError> {
    let mut out = template.to_string();
    for p in placeholders(template) {
        let v = values.get(&p).map(text_of).unwrap_or_default();
        let encoded: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>().replace('+', "%20");
        out = out.replacen(&format!("{{{p}}}"), &encoded, 1);
    }
    url::Url::parse(&out).map_err(|e| ToolError::InvalidInput(format!("the URL `{out}` does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Vec<Arc<dyn Tool>>, String> {
        let f: ToolsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        f.tools(Path::new("/nonexistent"), Duration::from_secs(5)).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_definitions_are_errors_at_start() {
        let cases: &[(&str, &str)] = &[
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"ftp\"\n", "unknown variant"),
            ("[[tools]]\nname = \"bad name\"\ndescription = \"d\"\nkind = \"command\"\nprogram = \"echo\"\n", "letters, digits"),
            (
                "[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"command\"\nprogram = \"echo\"\nargs = [\"--to={who}\"]\nparams.who = { type = \"string\" }\n",
                "whole argument",
            ),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"command\"\nprogram = \"echo\"\nargs = [\"{who}\"]\n", "no parameter"),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"http\"\nurl = \"http://{host}/x\"\nparams.host = { type = \"string\" }\n", "only follow the host"),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"http\"\nurl = \"file:///etc/passwd\"\n", "http:// or https://"),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"http\"\nurl = \"http://h/\"\nmethod = \"DELETE\"\n", "only GET and POST"),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"command\"\nprogram = \"echo\"\nparams.n = { type = \"object\" }\n", "type `object`"),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"command\"\nprogram = \"echo\"\ntimeout_secs = -1\n", "positive"),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"sql\"\ndatabase = \"none.db\"\nquery = \"SELECT 1\"\n", "cannot open"),
            ("[[tools]]\nname = \"x\"\ndescription = \"d\"\nkind = \"command\"\nprogram = \"echo\"\nsurprise = 1\n", "unknown field"),
        ];
        for (text, want) in cases {
            let err = file(text).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.contains(want), "{text}\n→ {err}\n(wanted `{want}`)");
        }
    }

    #[test]
    fn sql_queries_are_checked_against_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shop.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE orders(customer TEXT, total REAL); INSERT INTO orders VALUES ('Ann', 12.5), ('Bob', 3);").unwrap();
        drop(conn);
        let tools = |query: &str, params: &str| {
            let text = format!("[[tools]]\nname = \"q\"\ndescription = \"d\"\nkind = \"sql\"\ndatabase = \"shop.db\"\nquery = \"{query}\"\n{params}");
            let f: ToolsFile = toml::from_str(&text).unwrap();
            f.tools(dir.path(), Duration::from_secs(5)).map_err(|e| e.to_string())
        };
        let err = |query: &str, params: &str| tools(query, params).err().unwrap_or_default();
        assert!(err("DELETE FROM orders", "").contains("read-only"));
        assert!(err("SELECT * FROM orders WHERE customer = ?", "").contains("`?` parameter"));
        assert!(err("SELECT * FROM orders WHERE customer = :name", "").contains("no declared parameter"));
        assert!(err("SELECT * FROM orders", "params.name = { type = \"string\" }").contains("does not use"));
        assert!(err("SELECT * FROM nowhere", "").contains("does not prepare"));

        let ok = tools("SELECT total FROM orders WHERE customer = :name", "params.name = { type = \"string\" }").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(rt.block_on(ok[0].call(json!({"name": "Ann"}))).unwrap(), "total: 12.5");
        assert_eq!(rt.block_on(ok[0].call(json!({"name": "Ann' OR '1'='1"}))).unwrap(), "no rows (columns: total)", "bound, not spliced");
        let schema = &ok[0].spec().input_schema;
        assert_eq!(schema["required"], json!(["name"]));
        assert_eq!(schema["additionalProperties"], json!(false));
    }

    #[test]
    fn commands_take_parameters_as_whole_arguments() {
        let f: ToolsFile = toml::from_str(
            "[[tools]]\nname = \"say\"\ndescription = \"d\"\nkind = \"command\"\nprogram = \"echo\"\nargs = [\"-n\", \"{what}\"]\nparams.what = { type = \"string\" }\n",
        )
        .unwrap();
        let tools = f.tools(Path::new("."), Duration::from_secs(5)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(rt.block_on(tools[0].call(json!({"what": "a b; rm -rf / $(x)"}))).unwrap(), "a b; rm -rf / $(x)", "no shell");
        let refused = rt.block_on(tools[0].call(json!({"what": "--help"}))).unwrap_err();
        assert!(matches!(refused, ToolError::Refused(ref why) if why.contains("option")), "{refused:?}");
    }

    #[test]
    fn urls_keep_their_host_whatever_the_values() {
        let values = |v: &str| json!({"city": v}).as_object().unwrap().clone();
        let u = fill_url("http://127.0.0.1:9/w?city={city}", &values("Paris")).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/w?city=Paris");
        let u = fill_url("http://127.0.0.1:9/w/{city}", &values("../../admin?x=1#f")).unwrap();
        assert_eq!(u.host_str(), Some("127.0.0.1"));
        assert_eq!(u.path(), "/w/..%2F..%2Fadmin%3Fx%3D1%23f");
        assert_eq!(u.query(), None);
        let u = fill_url("http://127.0.0.1:9/w/{city}", &values("@evil.example")).unwrap();
        assert_eq!(u.host_str(), Some("127.0.0.1"));
    }
}
