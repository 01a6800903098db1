//! Hostile tool input: escapes from the workspace, data loss, hangs and blow-ups. Every case
//! here is an input a model could write; each must come back as an error observation (or a
//! bounded result), quickly, with nothing outside the workspace touched.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pae_local::agent::tools::{Calculator, HttpRequest, Registry, SearchFiles, Shell, SqlQuery, Workspace, WriteFile};
use serde_json::{json, Value};

use crate::fixture;

/// Calls `tool` on a fresh runtime, then drops the runtime in a thread of its own and
/// asserts that it is gone within `deadline`: dropping a runtime waits for its blocking tasks,
/// so a tool call that never stops makes this fail instead of hanging the suite.
fn call_within(reg: Registry, tool: &str, input: Value, deadline: Duration) -> (String, bool, Duration) {
    let tool = tool.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let o = rt.block_on(reg.call(&tool, &input));
        drop(rt);
        let _ = tx.send((o.text, o.error));
    });
    let (text, error) = rx
        .recv_timeout(deadline)
        .unwrap_or_else(|_| panic!("the call, or the work behind it, was still running after {deadline:?}"));
    (text, error, start.elapsed())
}

fn call(reg: Registry, tool: &str, input: Value) -> (String, bool) {
    let (text, error, _) = call_within(reg, tool, input, Duration::from_secs(30));
    (text, error)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn write_registry(root: &Path) -> Registry {
    let mut r = Registry::new(Duration::from_secs(10));
    r.add(Arc::new(WriteFile::new(Arc::new(Workspace::new(root).unwrap())))).unwrap();
    r
}

#[test]
fn write_file_never_writes_through_links_or_over_other_files() {
    use std::os::unix::fs::symlink;
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = ws.path();
    // Links planted where a fixed temporary name would be: one dangling, one to a real file.
    symlink(outside.path().join("created.txt"), root.join("x.pae-local-tmp")).unwrap();
    std::fs::write(outside.path().join("victim.txt"), "keep me").unwrap();
    symlink(outside.path().join("victim.txt"), root.join("y.pae-local-tmp")).unwrap();
    // A user's own file with such a name.
    std::fs::write(root.join("report.pae-local-tmp"), "my data").unwrap();
    // The target itself a dangling link pointing out.
    symlink(outside.path().join("via-target.txt"), root.join("dangling.txt")).unwrap();
    for (path, content) in [("x", "one"), ("y", "two"), ("report.txt", "three"), ("dangling.txt", "four")] {
        let (out, err) = call(write_registry(root), "write_file", json!({"path": path, "content": content}));
        assert!(!err, "{path}: {out}");
        assert_eq!(std::fs::read_to_string(root.join(path)).unwrap(), content);
    }
    assert_eq!(files_in(outside.path()), vec!["victim.txt"], "nothing was created outside");
    assert_eq!(std::fs::read_to_string(outside.path().join("victim.txt")).unwrap(), "keep me");
    assert_eq!(std::fs::read_to_string(root.join("report.pae-local-tmp")).unwrap(), "my data");
    assert!(!root.join("dangling.txt").is_symlink(), "the link was replaced, not followed");
    // No temporary file is left behind, and files get an ordinary mode.
    assert!(files_in(root).iter().all(|f| !f.starts_with(".pae-local")), "{:?}", files_in(root));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(root.join("x")).unwrap().permissions().mode() & 0o777, 0o644);
    // A link inside pointing out, as the target, is refused outright.
    symlink(outside.path().join("victim.txt"), root.join("out.txt")).unwrap();
    let (out, err) = call(write_registry(root), "write_file", json!({"path": "out.txt", "content": "x"}));
    assert!(err && out.contains("outside the workspace"), "{out}");
    assert_eq!(std::fs::read_to_string(outside.path().join("victim.txt")).unwrap(), "keep me");
}

/// A one-thread HTTP server on 127.0.0.1 that answers every request with its path, and
/// records the paths it was asked for.
fn serve() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                    break;
                }
            }
            let path = first.split(' ').nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(path.clone());
            let body = format!("path {path}");
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    (port, seen)
}

#[test]
fn http_allowlist_compares_normalised_urls() {
    let (port, seen) = serve();
    let base = format!("http://127.0.0.1:{port}/api/");
    let http = || {
        let mut r = Registry::new(Duration::from_secs(5));
        r.add(Arc::new(HttpRequest::new(vec![base.clone()], Duration::from_secs(5)).unwrap())).unwrap();
        r
    };
    let (out, err) = call(http(), "http_request", json!({"method": "GET", "url": format!("{base}items?id=1")}));
    assert!(!err && out.contains("path /api/items?id=1"), "{out}");
    let host = format!("127.0.0.1:{port}");
    for url in [
        format!("http://{host}/api/%2e%2e/secret"),
        format!("http://{host}/api/.%2E/secret"),
        format!("http://{host}/api/%2E%2e/secret"),
        format!("http://{host}/api/.\t./secret"),
        format!("http://{host}/api/.\n./secret"),
        format!("http://{host}/api\\..\\secret"),
        format!("http://{host}/api/..%2fsecret"),
        format!("http://{host}/api/..%5Csecret"),
        format!("http://{host}/api/%2e%2e%2fsecret"),
        format!("http://{host}/api/x/../../secret"),
        format!("http://{host}/apix/secret"),
        format!("http://{host}/secret"),
        format!("http://user:pw@{host}/api/x"),
        format!("https://{host}/api/x"),
        format!("http://127.0.0.1:{}/api/x", port.wrapping_add(1)),
        format!("http://localhost:{port}/api/x"),
        format!("http://127.0.0.1:{port}.evil.com/api/x"),
        "file:///etc/passwd".to_string(),
        "not a url".to_string(),
    ] {
        let (out, err) = call(http(), "http_request", json!({"method": "GET", "url": url}));
        assert!(err && out.contains("not under an allowed base URL"), "{url:?}: {out}");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec!["/api/items?id=1"], "only the allowed request reached the server");
    // A base that is not an http URL is an error when the tool is made.
    assert!(HttpRequest::new(vec!["ftp://x/".into()], Duration::from_secs(1)).is_err());
}

fn shell(allowed: &[&str], root: &Path, timeout: Duration) -> Registry {
    let mut r = Registry::new(timeout);
    let ws = Arc::new(Workspace::new(root).unwrap());
    r.add(Arc::new(Shell::new(allowed.iter().map(|s| s.to_string()).collect(), ws))).unwrap();
    r
}

#[test]
fn shell_output_is_capped_while_read_and_paths_stay_inside() {
    let f = fixture::create();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), f.root().join("link.txt")).unwrap();
    // Endless output: cut and stopped long before the 20 s timeout.
    let (out, err, took) =
        call_within(shell(&["yes"], f.root(), Duration::from_secs(20)), "shell", json!({"command": "yes", "args": []}), Duration::from_secs(15));
    assert!(!err && out.contains("[output cut at") && out.len() < 20_000, "{} bytes: {}", out.len(), &out[out.len() - 80..]);
    assert!(took < Duration::from_secs(10), "{took:?}");
    for args in [
        vec!["/etc/passwd"],
        vec!["../outside.txt"],
        vec!["docs/../../x"],
        vec!["~/.bashrc"],
        vec!["link.txt"],
        vec!["-n", "1", "--", "/etc/passwd"],
        vec!["--file=/etc/passwd"],
        vec!["-f/etc/passwd"],
    ] {
        let (out, err) = call(shell(&["cat", "head"], f.root(), Duration::from_secs(5)), "shell", json!({"command": "head", "args": args}));
        assert!(err && out.contains("refused"), "{args:?}: {out}");
        assert!(!out.contains("secret") || out.contains("argument"), "{args:?}: {out}");
    }
    let (out, err) = call(shell(&["cat"], f.root(), Duration::from_secs(5)), "shell", json!({"command": "cat", "args": ["docs/readme.md"]}));
    assert!(!err && out.contains("Project Falcon"), "{out}");
}

#[test]
fn search_files_ends_on_link_loops() {
    let f = fixture::create();
    std::os::unix::fs::symlink(".", f.root().join("l1")).unwrap();
    std::fs::create_dir(f.root().join("sub")).unwrap();
    std::os::unix::fs::symlink("..", f.root().join("sub/up")).unwrap();
    std::os::unix::fs::symlink("../docs", f.root().join("sub/docs2")).unwrap();
    let mut r = Registry::new(Duration::from_secs(20));
    r.add(Arc::new(SearchFiles::new(Arc::new(Workspace::new(f.root()).unwrap())))).unwrap();
    let (out, err, took) = call_within(r, "search_files", json!({"pattern": "falcon"}), Duration::from_secs(15));
    assert!(!err, "{out}");
    assert_eq!(out, "docs/readme.md:1: # Project Falcon", "each file once, by its real path");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

fn sql(db: &Path, write: bool, timeout: Duration) -> Registry {
    let mut r = Registry::new(timeout);
    r.add(Arc::new(SqlQuery::new(db, write).unwrap())).unwrap();
    r
}

#[test]
fn endless_sql_is_stopped_and_the_runtime_exits() {
    let f = fixture::create();
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let (out, err, took) =
        call_within(sql(&f.db, false, Duration::from_secs(1)), "sql_query", json!({"query": endless}), Duration::from_secs(10));
    assert!(err && out.contains("timed out"), "{out}");
    assert!(took < Duration::from_secs(5), "the query went on after its timeout: {took:?}");
    // Endless rows: shown up to the cap, counted up to a bound, then the call returns.
    let rows = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";
    let (out, err, _) = call_within(sql(&f.db, false, Duration::from_secs(20)), "sql_query", json!({"query": rows}), Duration::from_secs(15));
    assert!(!err && out.starts_with("x: 1\nx: 2") && out.ends_with("[more than 9950 more rows not shown]"), "{out}");
}

#[test]
fn sql_stays_in_its_database() {
    let f = fixture::create();
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("copy.db");
    for (write, query) in [
        (true, format!("VACUUM INTO '{}'", copy.display())),
        (true, format!("ATTACH DATABASE '{}' AS o", copy.display())),
        (false, format!("ATTACH DATABASE '{}' AS o", copy.display())),
        (false, "PRAGMA query_only = 0".to_string()),
        (true, "PRAGMA journal_mode = OFF".to_string()),
    ] {
        let (out, err) = call(sql(&f.db, write, Duration::from_secs(5)), "sql_query", json!({"query": query}));
        assert!(err && out.contains("refused"), "{query}: {out}");
    }
    assert!(!copy.exists(), "nothing was written outside");
    let (out, err) = call(sql(&f.db, false, Duration::from_secs(5)), "sql_query", json!({"query": "PRAGMA table_info(users)"}));
    assert!(!err && out.contains("name: city"), "{out}");
}

#[test]
fn calculator_refuses_huge_work_before_doing_it() {
    let calc = || {
        let mut r = Registry::new(Duration::from_secs(1));
        r.add(Arc::new(Calculator::default())).unwrap();
        r
    };
    for expr in ["(15^4096)^4096", "(9^4096)^(9^4096)", "2^4096^2", "(2^4096)*(2^4096)*(2^4096)*(2^4096)*(2^4096)"] {
        let (out, err, took) = call_within(calc(), "calculator", json!({"expression": expr}), Duration::from_secs(10));
        assert!(err && (out.contains("too large") || out.contains("limited")), "{expr}: {out}");
        assert!(took < Duration::from_millis(500), "{expr}: {took:?}");
    }
    use pae_local::agent::tools::evaluate;
    // Deep nesting and long numbers, which the schema's 200 characters would stop, are
    // bounded in the evaluator too.
    for expr in ["(".repeat(100_000) + "1" + &")".repeat(100_000), "-".repeat(100_000) + "1", "2^".repeat(50_000) + "2", "9".repeat(100_000)] {
        let err = evaluate(&expr).unwrap_err();
        assert!(err.contains("nested") || err.contains("limited"), "{err}");
    }
    assert_eq!(pae_local::agent::tools::format_number(&evaluate("15^4096 / 15^4095").unwrap()), "15");
}

mod agent {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use pae_local::agent::events::{Event, Observer, RunStatus};
    use pae_local::agent::llm::Purpose;
    use pae_local::agent::tools::Registry;
    use pae_local::agent::{Agent, AgentConfig, Interrupt, Review, RunReport};

    use crate::agent_flow::{Recorder, Scripted, Slow, CALL_CALC, CALL_SLOW, FINAL_5, PLAN_CALC};
    use crate::fixture;

    fn run(a: &Agent) -> RunReport {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(a.run("What is 2 + 3?"))
    }

    /// Records events, and triggers `interrupt` when an event of kind `on` passes.
    struct TriggerOn {
        on: &'static str,
        interrupt: Interrupt,
        rec: Recorder,
    }

    impl Observer for TriggerOn {
        fn on_event(&self, e: &Event) {
            self.rec.on_event(e);
            if e.kind() == self.on {
                self.interrupt.trigger();
            }
        }
    }

    #[test]
    fn an_interrupt_ends_the_run_at_the_next_safe_point_with_its_best_answer() {
        let f = fixture::create();
        let interrupt = Interrupt::new();
        let obs = Arc::new(TriggerOn { on: "observation", interrupt: interrupt.clone(), rec: Recorder::default() });
        // The script has more replies than the run may use: it stops after the observation.
        let m = Scripted::new("m", &[(Purpose::Plan, PLAN_CALC), (Purpose::Execute, CALL_CALC), (Purpose::Execute, FINAL_5)]);
        let a = Agent::builder().model(m).tools(fixture::registry(&f)).observer(obs.clone()).interrupt(interrupt).build().unwrap();
        let r = run(&a);
        assert_eq!(r.status, RunStatus::Interrupted, "{r:?}");
        assert_eq!(r.final_answer.as_deref(), Some("5"), "the best answer so far");
        let events = obs.rec.0.lock().unwrap();
        assert!(matches!(events.last(), Some(Event::RunEnd { status: RunStatus::Interrupted, .. })), "{:?}", events.last());
        assert_eq!(events.iter().filter(|e| e.kind() == "llm_call").count(), 2, "no model call after the interrupt");
    }

    #[test]
    fn an_interrupt_during_a_long_tool_call_ends_the_run_at_once() {
        let mut reg = Registry::new(Duration::from_secs(60));
        reg.add(Slow::new(30.0)).unwrap();
        let interrupt = Interrupt::new();
        let m = Scripted::new("m", &[(Purpose::Plan, "1. Use slow.\n"), (Purpose::Execute, CALL_SLOW)]);
        let a = Agent::builder().model(m).tools(reg).interrupt(interrupt.clone()).build().unwrap();
        let t = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            interrupt.trigger();
        });
        let r = run(&a);
        assert_eq!(r.status, RunStatus::Interrupted);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn a_decision_the_grammar_forbids_is_an_error_not_a_panic() {
        let f = fixture::create();
        // A model that ignores the grammar: `continue` with no steps left.
        let m = Scripted::new(
            "m",
            &[
                (Purpose::Plan, PLAN_CALC),
                (Purpose::Execute, CALL_CALC),
                (Purpose::Execute, FINAL_5),
                // After the last step `continue` moves on to the end of the plan, where the
                // decision is asked again; there, it is an error.
                (Purpose::Replan, "Decision: continue\n"),
                (Purpose::Replan, "Decision: continue\n"),
            ],
        );
        let config = AgentConfig {
            review: Review::EveryStep,
            ..AgentConfig::default()
        };
        let a = Agent::builder().model(m).tools(fixture::registry(&f)).config(config).build().unwrap();
        let r = run(&a);
        assert_eq!(r.status, RunStatus::Error, "{r:?}");
        assert!(r.error.as_deref().unwrap_or("").contains("continue"), "{r:?}");
    }
}

mod gguf {
    use std::process::{Command, Stdio};

    use pae_local::model::gguf::{Array, Value};
    use pae_local::model::GgufHeader;

    use crate::common::{repo, temp_dir, write};
    use crate::fake_gguf::RawGguf;

    /// A file whose metadata is one array of `n` u8 elements.
    fn u8_array(n: usize) -> Vec<u8> {
        let mut g = RawGguf::header(3, 0, 1);
        g.str("junk.bytes").u32(9).u32(0).u64(n as u64);
        g.bytes.extend(std::iter::repeat_n(7u8, n));
        g.bytes
    }

    /// Runs `pae-local info -m file` and returns its stderr and its own peak RSS in bytes
    /// (from `wait4`, which reports the usage of that one child).
    fn info_peak_rss(file: &std::path::Path) -> (String, u64) {
        let err_path = file.with_extension("stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_pae-local"))
            .args(["info", "-m", file.to_str().unwrap()])
            .current_dir(repo())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
            .spawn()
            .unwrap();
        let mut status = 0;
        // SAFETY: wait4 on our own child, with a zeroed out-parameter; std never reaps it
        // (a `Child` dropped without `wait` is left alone).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
        assert!(pid > 0, "wait4 failed");
        drop(child);
        (std::fs::read_to_string(&err_path).unwrap(), usage.ru_maxrss as u64 * 1024)
    }

    #[test]
    fn metadata_arrays_are_held_compactly() {
        let bytes = u8_array(1 << 20);
        let h = GgufHeader::read(std::io::Cursor::new(&bytes), bytes.len() as u64).unwrap();
        match h.get("junk.bytes") {
            Some(Value::Array(Array::U8(v))) => assert_eq!((v.len(), v[0]), (1 << 20, 7)),
            other => panic!("{:?}", other.map(|_| "another type")),
        }
    }

    #[test]
    fn hostile_metadata_costs_at_most_twice_its_size() {
        let dir = temp_dir();
        let small = write(dir.path(), "small.gguf", &u8_array(16));
        let big_len = 30 << 20;
        let big = write(dir.path(), "big.gguf", &u8_array(big_len));
        let (err, base) = info_peak_rss(&small);
        assert!(err.contains("general.architecture"), "{err}");
        let (err, peak) = info_peak_rss(&big);
        assert!(err.contains("general.architecture"), "{err}");
        let extra = peak.saturating_sub(base);
        assert!(extra <= 2 * big_len as u64, "{} MB of metadata took {} MB more", big_len >> 20, extra >> 20);
    }

    #[test]
    fn names_from_the_file_are_quoted_short_and_escaped() {
        let dir = temp_dir();
        // A key of 90 MB is refused from its length, before it is read.
        let mut g = RawGguf::header(3, 0, 1);
        g.u64(90 << 20);
        g.bytes.extend(std::iter::repeat_n(0x1bu8, 1 << 16));
        let o = crate::cli::pae(&["info", "-m", write(dir.path(), "key.gguf", &g.bytes).to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("names are limited to 4096 bytes") && err.len() < 300, "{err}");
        // A long key full of control bytes, with a bad value type: quoted as a short excerpt.
        let key = "\u{1b}[2J".repeat(1000);
        let mut g = RawGguf::header(3, 0, 1);
        g.str(&key).u32(99);
        let o = crate::cli::pae(&["info", "-m", write(dir.path(), "ctl.gguf", &g.bytes).to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1));
        assert!(err.contains("unknown value type 99") && err.len() < 400 && !err.contains('\u{1b}'), "{err}");
        assert!(err.contains("\\u{1b}[2J"), "{err}");
    }
}
