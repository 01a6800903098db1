//! Tools from MCP servers: `tests/mcp_server.py` (Python, standard library only) serves two
//! honest tools and one for each way a server can misbehave. Runs use a replayed model, so
//! they are fast; each has a deadline, since a hung run is one of the failures looked for.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pae_local::agent::tools::{McpServer, Registry};
use serde_json::{json, Value};

fn server_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_server.py")
}

fn mcp_flag() -> String {
    format!("python3 '{}'", server_script().display())
}

/// `pae-local ARGS`: exit status, stdout, stderr; fails the test after `deadline`.
fn pae_local(args: &[&str], deadline: Duration) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pae-local"))
        .args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).unwrap();
        s
    });
    let read_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > deadline {
            child.kill().unwrap();
            panic!("pae-local {args:?} still running after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (status.code().unwrap_or(-1), text(read_out.join().unwrap()), text(read_err.join().unwrap()))
}

/// `pae-local run` of `objective` with the test server, the model replaying `calls`
/// (`(purpose, output)` in order), `--json` for the report.
fn run(calls: &[(&str, &str)], objective: &str, extra: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let replay = crate::common::replay_file(dir.path(), "replay.jsonl", calls);
    let (replay, workspace, mcp) = (replay.to_string_lossy().into_owned(), dir.path().to_string_lossy().into_owned(), mcp_flag());
    let mut args = vec!["run", "--json", "--replay", &replay, "--workspace", &workspace, "--mcp", &mcp];
    args.extend_from_slice(extra);
    args.push(objective);
    let (code, stdout, stderr) = pae_local(&args, Duration::from_secs(60));
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(|v| v.get("status").is_some()))
        .unwrap_or_else(|| panic!("no report in the output:\n{stdout}\n{stderr}"));
    (code, report, stdout + &stderr)
}

/// A one-step run whose step calls `tool` with `input`, then answers `done`.
fn run_tool(tool: &str, input: &str, extra: &[&str]) -> (i32, Value, String) {
    let plan = format!("1. call {tool} (tool: {tool})\n");
    let action = format!("Thought: I will call it\nAction: {tool}\nAction Input: {input}\n");
    run(
        &[("plan", &plan), ("execute", &action), ("execute", "Thought: The observation has the result.\nFinal Answer: done")],
        &format!("Call {tool}."),
        extra,
    )
}

/// Every observation the report holds, with whether it was an error.
fn observations(report: &Value) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    fn walk(v: &Value, found: &mut Vec<(String, bool)>) {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(text)), Some(Value::Bool(error))) = (m.get("observation"), m.get("error")) {
                    found.push((text.clone(), *error));
                }
                m.values().for_each(|x| walk(x, found));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, found)),
            _ => {}
        }
    }
    walk(report, &mut found);
    found
}

#[test]
fn tools_lists_the_servers_tools_with_their_schemas() {
    let mcp = mcp_flag();
    let (code, stdout, stderr) = pae_local(&["tools", "--json", "--mcp", &mcp], Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    let tools: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    // Built-in tools first; the server's two pages of tools after them, in its order.
    assert_eq!(&names[..4], ["calculator", "list_dir", "read_file", "search_files"]);
    assert_eq!(&names[4..], ["add", "echo", "fail", "crash", "hang", "huge", "bytes"]);
    let add = &tools[4];
    assert_eq!(add["description"], "Adds two numbers a and b and returns the sum.");
    assert_eq!(add["input_schema"]["properties"]["a"], json!({"type": "number"}));
    assert_eq!(add["input_schema"]["required"], json!(["a", "b"]));
    // `odd`'s look-behind pattern cannot be a grammar: left out, with a warning.
    assert!(stderr.contains("skipping the MCP tool") && stderr.contains("odd"), "{stderr}");

    let (code, text, _) = pae_local(&["tools", "--mcp", &mcp], Duration::from_secs(30));
    assert_eq!(code, 0);
    assert!(text.contains("add\n  Adds two numbers a and b and returns the sum.\n  input: {"), "{text}");
}

#[test]
fn a_run_calls_the_servers_add_tool_and_answers_with_its_result() {
    let (code, report, out) = run(
        &[
            ("plan", "1. add 2 and 40 (tool: add)\n"),
            ("execute", "Thought: I will add them\nAction: add\nAction Input: {\"a\": 2, \"b\": 40}\n"),
            ("execute", "Thought: The observation has the result.\nFinal Answer: 42"),
        ],
        "Add 2 and 40.",
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["status"], "answered", "{out}");
    assert_eq!(report["final_answer"], "42", "{out}");
    assert!(observations(&report).contains(&("42".to_string(), false)), "{report:#}");
}

#[test]
fn an_error_result_is_an_error_observation() {
    let (code, report, out) = run_tool("fail", "{}", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(report["status"].is_string());
    assert!(observations(&report).contains(&("Error: the fail tool always fails".to_string(), true)), "{report:#}");
}

#[test]
fn a_server_that_dies_mid_call_gives_error_observations() {
    let (code, report, out) = run_tool("crash", "{}", &[]);
    assert_eq!(code, 0, "{out}");
    let obs = observations(&report);
    assert!(!obs.is_empty() && obs.iter().all(|(text, error)| *error && text.contains("MCP server `mcp_server` is not running")), "{report:#}");
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn a_call_that_never_answers_times_out_and_the_run_ends() {
    let start = Instant::now();
    let (code, report, out) = run_tool("hang", "{}", &["--tool-timeout", "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(observations(&report).iter().any(|(text, error)| *error && text.contains("timed out after 2.0s")), "{report:#}");
    // One timed-out call, a retry that answers, and a shutdown grace of two seconds at most.
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[test]
fn a_huge_result_is_cut_to_the_observation_cap() {
    let (code, report, out) = run_tool("huge", "{}", &[]);
    assert_eq!(code, 0, "{out}");
    let obs = observations(&report);
    let (text, error) = obs.first().unwrap_or_else(|| panic!("{report:#}"));
    assert!(!error);
    assert!(text.len() < 10_000 && text.contains("[observation truncated"), "{} bytes", text.len());
}

#[test]
fn a_line_that_is_not_utf8_costs_the_call_not_the_run() {
    let (code, report, out) = run_tool("bytes", "{}", &["--tool-timeout", "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(observations(&report).iter().all(|(_, error)| *error), "{report:#}");
    assert!(!out.contains("panicked"), "{out}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn start_server(name: &str) -> McpServer {
    McpServer::start(name, "python3", &[server_script().to_string_lossy().into_owned()], Duration::from_secs(30))
        .await
        .unwrap()
}

#[test]
fn server_tools_are_called_through_a_registry_and_clashing_names_are_prefixed() {
    runtime().block_on(async {
        let first = start_server("one").await;
        let second = start_server("two").await;
        let mut registry = Registry::new(Duration::from_secs(5));
        assert_eq!(first.add_tools(&mut registry), ["add", "echo", "fail", "crash", "hang", "huge", "bytes"]);
        assert_eq!(second.add_tools(&mut registry)[..2], ["two_add", "two_echo"]);

        let obs = registry.call("add", &json!({"a": 1.5, "b": 2})).await;
        assert_eq!((obs.text.as_str(), obs.error), ("3.5", false));
        let obs = registry.call("two_echo", &json!({"text": "héllo\nworld"})).await;
        assert_eq!((obs.text.as_str(), obs.error), ("héllo\nworld", false));
        // The schema is checked before the server sees the call.
        let obs = registry.call("add", &json!({"a": "one"})).await;
        assert!(obs.error && obs.text.starts_with("Error: invalid input"), "{}", obs.text);

        // The first server dies; its tools say so, the second's still work.
        let obs = registry.call("crash", &json!({})).await;
        assert!(obs.error, "{}", obs.text);
        let obs = registry.call("add", &json!({"a": 1, "b": 2})).await;
        assert_eq!(obs.text, "Error: MCP server `one` is not running: its connection is closed");
        assert!(!first.is_running());
        assert!(second.is_running());
        let obs = registry.call("two_add", &json!({"a": 1, "b": 2})).await;
        assert_eq!(obs.text, "3");

        let start = Instant::now();
        first.shutdown().await;
        second.shutdown().await;
        assert!(start.elapsed() < Duration::from_secs(5), "shutdown took {:?}", start.elapsed());
    });
}

#[test]
fn shutdown_ends_a_server_stuck_in_a_call() {
    runtime().block_on(async {
        let server = start_server("stuck").await;
        let mut registry = Registry::new(Duration::from_millis(300));
        server.add_tools(&mut registry);
        let obs = registry.call("hang", &json!({})).await;
        assert!(obs.error && obs.text.contains("timed out"), "{}", obs.text);
        let start = Instant::now();
        server.shutdown().await;
        // Two seconds of grace, then the process group is killed.
        assert!(start.elapsed() < Duration::from_secs(4), "shutdown took {:?}", start.elapsed());
        let obs = registry.call("add", &json!({"a": 1, "b": 2})).await;
        assert!(obs.error && obs.text.contains("is not running"), "{}", obs.text);
    });
}

#[test]
fn a_server_that_cannot_start_is_an_error_naming_it() {
    runtime().block_on(async {
        let e = McpServer::start("nothing", "/nonexistent/mcp-server", &[], Duration::from_secs(5)).await.unwrap_err();
        assert!(e.to_string().starts_with("MCP server `nothing`: cannot start"), "{e}");
        // A program that is not an MCP server: the handshake fails or times out, never hangs.
        let e = McpServer::start("cat", "sleep", &["30".into()], Duration::from_secs(1)).await.unwrap_err();
        assert!(e.to_string().contains("MCP server `cat`"), "{e}");
    });
}
