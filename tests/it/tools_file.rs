//! Tools defined in a TOML file (`--tools FILE`), end to end through the command line: listed
//! by `pae-local tools`, called by a run whose model is a replay of scripted outputs, and bad
//! files refused at start with a message naming the file and the tool.

use std::path::Path;
use std::process::{Command, Output};

/// A workspace with a SQLite file and a tools file defining a SQL and a command tool.
fn setup(dir: &Path) -> std::path::PathBuf {
    let conn = rusqlite::Connection::open(dir.join("shop.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE orders(customer TEXT, item TEXT, total REAL);
         INSERT INTO orders VALUES ('Ann', 'lamp', 12.5), ('Bob', 'desk', 80), ('Ann', 'chair', 40);",
    )
    .unwrap();
    let tools = dir.join("tools.toml");
    std::fs::write(
        &tools,
        r#"
[[tools]]
name = "orders_of"
kind = "sql"
description = "Lists the orders of one customer: item and total."
database = "shop.db"
query = "SELECT item, total FROM orders WHERE customer = :name ORDER BY item"
params.name = { type = "string", description = "the customer's name" }

[[tools]]
name = "say"
kind = "command"
description = "Says a phrase back."
program = "echo"
args = ["said:", "{phrase}"]
params.phrase = { type = "string" }
"#,
    )
    .unwrap();
    tools
}

fn pae(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pae-local")).args(args).current_dir(dir).env("NO_COLOR", "1").env_remove("RUST_LOG").output().unwrap()
}

#[test]
fn file_tools_are_listed_with_their_schemas() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let out = pae(&["tools", "--json", "--tools", "tools.toml", "--workspace", "."], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let orders = list.as_array().unwrap().iter().find(|t| t["name"] == "orders_of").expect("orders_of is listed");
    assert_eq!(orders["description"], "Lists the orders of one customer: item and total.");
    assert_eq!(orders["input_schema"]["required"], serde_json::json!(["name"]));
    assert_eq!(orders["input_schema"]["properties"]["name"]["type"], "string");
    assert!(list.as_array().unwrap().iter().any(|t| t["name"] == "calculator"), "built-in tools stay");
}

#[test]
fn a_run_calls_a_file_defined_sql_tool() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let calls = [
        ("plan", "1. list the orders of Ann (tool: orders_of)\n"),
        ("execute", "Thought: I will look them up\nAction: orders_of\nAction Input: {\"name\": \"Ann\"}\n"),
        ("execute", "Thought: The observation has the result.\nFinal Answer: item: lamp, total: 12.5"),
    ];
    crate::common::replay_file(dir.path(), "replay.jsonl", &calls);
    let out = pae(
        &["run", "--replay", "replay.jsonl", "--tools", "tools.toml", "--workspace", ".", "--json", "List the orders of Ann."],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "answered");
    let action = &report["steps"][0]["attempts"][0]["actions"][0];
    assert_eq!(action["tool"], "orders_of");
    assert_eq!(action["observation"], "item: chair, total: 40\nitem: lamp, total: 12.5");
}

#[test]
fn a_run_calls_a_file_defined_command_tool() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let calls = [
        ("plan", "1. say hello; rm -rf / (tool: say)\n"),
        ("execute", "Thought: I will say it\nAction: say\nAction Input: {\"phrase\": \"hello; rm -rf / $(id)\"}\n"),
        ("execute", "Thought: The observation has the result.\nFinal Answer: said: hello; rm -rf / $(id)"),
    ];
    crate::common::replay_file(dir.path(), "replay.jsonl", &calls);
    let out = pae(&["run", "--replay", "replay.jsonl", "--tools", "tools.toml", "--workspace", ".", "--json", "Say hello; rm -rf /"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let action = &report["steps"][0]["attempts"][0]["actions"][0];
    assert_eq!(action["tool"], "say");
    assert_eq!(action["observation"], "said: hello; rm -rf / $(id)", "one argument, no shell");
}

#[test]
fn a_tools_file_starts_its_mcp_servers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_server.py");
    let text = format!("mcp_servers = [{:?}]\n", format!("python3 '{}'", server.display()));
    std::fs::write(dir.path().join("servers.toml"), text).unwrap();
    let out = pae(&["tools", "--json", "--tools", "servers.toml", "--workspace", "."], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let add = list.as_array().unwrap().iter().find(|t| t["name"] == "add").expect("the server's add tool is listed");
    assert_eq!(add["input_schema"]["type"], "object");
}

#[test]
fn bad_tools_files_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let cases: &[(&str, &str)] = &[
        ("[[tools]]\nname = \"w\"\nkind = \"sql\"\ndescription = \"d\"\ndatabase = \"shop.db\"\nquery = \"DELETE FROM orders\"\n", "tool `w`: the query would change the database"),
        ("[[tools]]\nname = \"calculator\"\nkind = \"command\"\ndescription = \"d\"\nprogram = \"true\"\n", "two tools are named `calculator`"),
        ("[[tool]]\nname = \"x\"\n", "unknown field `tool`"),
        ("not toml at all [", "bad.toml"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        let out = pae(&["tools", "--tools", "bad.toml"], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(want), "{text}\n→ {err}\n(wanted `{want}`)");
        assert!(err.contains("bad.toml"), "the message names the file: {err}");
    }
    let out = pae(&["tools", "--tools", "missing.toml"], dir.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `missing.toml`"));
}
