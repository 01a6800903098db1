//! The binary as a user runs it: outputs, exit codes and one-line errors.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{model_path, reference, repo, temp_dir, write, GEMMA, SMOLLM};
use crate::fake_gguf::{write_model, RawGguf, Spec};

pub fn pae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pae-local"))
        .args(args)
        .current_dir(repo())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects a clean failure: exit code 1, one `error:` line naming `needle`.
fn fails_with(args: &[&str], needle: &str) {
    let o = pae(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{args:?}: `{needle}` not in {err:?}");
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn info_describes_the_default_model() {
    let o = pae(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in ["llama", "Q4_1", "8192", "49152", "<|im_start|>", "from the GGUF"] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
    let o = pae(&["info", "--json", "-m", path_str(&model_path(GEMMA))]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["architecture"], "gemma3");
    assert_eq!(v["vocab_size"], 262144);
    assert!(v["chat_template"].as_str().unwrap().contains("built-in"));
}

#[test]
fn tokenize_prints_llama_cpp_ids() {
    let o = pae(&["tokenize", "Hello world"]);
    assert_eq!(stdout(&o).trim(), "[19556, 905]");
    let o = pae(&["tokenize", "--json", "<|im_start|>user"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ids"], serde_json::json!([1, 4093]));
    // Without special parsing the marker is plain text.
    let o = pae(&["tokenize", "--no-special", "<|im_start|>"]);
    assert_ne!(stdout(&o).trim(), "[1]");
}

/// Greedy ids equal llama.cpp's up to its first near-tie (top-2 margin under 0.3).
fn check_greedy(file: &str, reference_file: &str) {
    let r = reference(reference_file);
    for case in &r.greedy {
        let n = case.greedy_ids.len().to_string();
        let o = pae(&[
            "generate", "-m", path_str(&model_path(file)), "--raw", "--greedy", "-n", &n, "--json", "-p", &case.prompt,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["prompt_tokens"], case.prompt_ids.len());
        let ours: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
        let ties = case
            .steps
            .iter()
            .position(|s| s.top_logits[0] - s.top_logits[1] < 0.3)
            .unwrap_or(case.steps.len());
        assert_eq!(&ours[..ties.min(ours.len())], &case.greedy_ids[..ties.min(ours.len())], "{:?}", case.prompt);
        assert!(ours.len() >= ties, "stopped early on {:?}", case.prompt);
    }
}

#[test]
fn greedy_generation_reproduces_llama_cpp_smollm2() {
    check_greedy(SMOLLM, "smollm2-135m-instruct-q4_1.json");
}

#[test]
fn greedy_generation_reproduces_llama_cpp_gemma3() {
    check_greedy(GEMMA, "gemma-3-270m-q4_k_m.json");
}

#[test]
fn chat_generation_streams_and_stops_at_end_of_turn() {
    let o = pae(&[
        "generate", "--greedy", "--system", "You are a helpful assistant.", "-p", "What is the capital of France?", "-n", "48",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Paris"), "{out}");
    assert!(!out.contains("<|im_end|>"));
    let o = pae(&["generate", "--greedy", "--json", "-p", "Say hi.", "-n", "64", "--stop", "!"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(["end_token", "stop_string"].contains(&v["stop_reason"].as_str().unwrap()), "{v}");
    for key in ["text", "tokens", "prompt_tokens", "timings"] {
        assert!(v.get(key).is_some(), "{key} missing from {v}");
    }
    assert!(v["timings"]["decode_tokens_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_reports_both_tests() {
    let o = pae(&["bench", "-p", "16", "-n", "4", "-r", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["avg_ts"].as_f64().unwrap() > 0.0));
    // Load time and peak memory: at least the weights, less than a copy of them in f32.
    for r in rows {
        assert!(r["load_secs"].as_f64().unwrap() > 0.0, "{r}");
        let rss = r["peak_rss_bytes"].as_u64().unwrap();
        assert!(rss > r["model_size"].as_u64().unwrap() && rss < 1 << 30, "{r}");
    }
}

#[test]
fn bench_measures_grammars_and_an_agent_task() {
    let lark = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(lark.path(), "start: \"yes\" | \"no\" | \"maybe not\"\n").unwrap();
    let file = lark.path().to_str().unwrap();
    let o = pae(&["bench", "-p", "0", "-n", "0", "-r", "1", "--grammar", "plan", "--grammar", "executor", "--grammar", file, "--agent", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["grammar:plan", "grammar:executor", &format!("grammar:{file}"), "agent"]);
    for g in &rows[..3] {
        assert!(g["constrained_avg_ts"].as_f64().unwrap() > 0.0 && g["free_avg_ts"].as_f64().unwrap() > 0.0, "{g}");
        assert!(g["generated_tokens"].as_u64().unwrap() >= g["forced_tokens"].as_u64().unwrap(), "{g}");
        assert!(g["mask_us_p99"].as_f64().unwrap() >= g["mask_us_p50"].as_f64().unwrap(), "{g}");
    }
    // The model writes the free plan's steps itself: many masks, each timed.
    assert!(rows[0]["masks"].as_u64().unwrap() > 10, "{}", rows[0]);
    assert!(rows[0]["mask_us_p50"].as_f64().unwrap() > 0.0, "{}", rows[0]);
    let a = &rows[3];
    let calls = a["calls"].as_array().unwrap();
    assert!(calls.len() >= 2, "a plan and a step at least: {a}");
    assert_eq!(a["model_calls"].as_u64().unwrap() as usize, calls.len());
    assert_eq!(calls[0]["purpose"], "plan");
    let sum = |k: &str| calls.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(a["prompt_tokens"].as_u64(), Some(sum("prompt_tokens")));
    assert_eq!(a["reused_tokens"].as_u64(), Some(sum("reused_tokens")));
    assert_eq!(a["computed_tokens"].as_u64(), Some(sum("prompt_tokens") - sum("reused_tokens")));
    assert!(sum("reused_tokens") > 0, "later calls start from a cached prefix: {a}");
    assert!(calls.iter().all(|c| c["secs"].as_f64().unwrap() > 0.0), "{a}");
    assert!(a["peak_rss_bytes"].as_u64().unwrap() > 50 << 20, "{a}");
    fails_with(&["bench", "-p", "0", "-n", "0", "--grammar", "no/such/grammar.lark"], "reading grammar `no/such/grammar.lark`");
}

#[test]
fn bench_makes_synthetic_models_and_compares_devices() {
    let o = pae(&[
        "bench", "--synthetic", "llama:135m:q4_1", "--synthetic", "gemma3:270m:q4_k:3", "-p", "8", "-n", "2", "-r", "1",
        "--vs-cpu", "8", "--json", "--device", "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["model_filename"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["synthetic:llama:135m:q4_1", "synthetic:llama:135m:q4_1", "synthetic:gemma3:270m:q4_k:3", "synthetic:gemma3:270m:q4_k:3"]
            .into_iter()
            .chain(["synthetic:llama:135m:q4_1", "synthetic:gemma3:270m:q4_k:3"])
            .collect::<Vec<_>>()
    );
    // The shapes of the real models: SmolLM2-135M's parameter count, Gemma-3-270M's.
    assert_eq!(rows[0]["model_n_params"], 134_515_008);
    assert_eq!(rows[2]["model_n_params"], 268_098_176);
    assert!(rows[..4].iter().all(|r| r["avg_ts"].as_f64().unwrap() > 0.0 && r["device"] == "cpu"));
    for check in &rows[4..] {
        assert_eq!(check["test"], "logits_vs_cpu");
        assert_eq!(check["agree"], true, "{check}");
        assert_eq!(check["agreement"]["positions"], 8);
    }
    fails_with(&["bench", "--synthetic", "qwen2:9b:q4_k", "-p", "1", "-n", "0"], "no shape `qwen2:9b` (known: llama:135m");
    fails_with(&["bench", "--synthetic", "qwen2:7b:iq2", "-p", "1", "-n", "0"], "no type `iq2`");
    fails_with(&["info", "-m", "synthetic:llama"], "expected ARCH:SIZE:QUANT[:SEED]");
    // `info` describes a synthetic model without making its weights: Qwen2.5-7B's shapes.
    let o = pae(&["info", "-m", "synthetic:qwen2:7b:q4_k", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["layers"].as_u64(), v["kv_heads"].as_u64(), v["vocab_size"].as_u64()), (Some(28), Some(4), Some(152_064)));
    assert_eq!(v["parameters"], 7_615_616_512u64);
    assert_eq!(v["quantization"][0]["dtype"], "Q4_K");
}

#[test]
fn bad_files_are_one_line_errors() {
    let dir = temp_dir();
    let d = dir.path();
    fails_with(&["info", "-m", path_str(&d.join("missing.gguf"))], "cannot open");
    fails_with(&["info", "-m", path_str(d)], "is a directory");
    fails_with(&["info", "-m", path_str(&write(d, "text.gguf", b"hello, not a model"))], "not a GGUF file");
    let real = std::fs::read(model_path(SMOLLM)).unwrap();
    fails_with(&["generate", "-p", "x", "-m", path_str(&write(d, "cut.gguf", &real[..4096]))], "truncated");
    fails_with(&["generate", "-p", "x", "-m", path_str(&write(d, "cut2.gguf", &real[..real.len() / 2]))], "truncated");
    let mut huge_string = RawGguf::header(3, 0, 1);
    huge_string.str("general.architecture").u32(8).u64(1 << 60);
    fails_with(&["info", "-m", path_str(&write(d, "s.gguf", &huge_string.bytes))], "only");
    let mut huge_array = RawGguf::header(3, 0, 1);
    huge_array.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(u64::MAX / 2);
    fails_with(&["info", "-m", path_str(&write(d, "a.gguf", &huge_array.bytes))], "cannot fit");
    let mut many = RawGguf::header(3, u64::MAX, u64::MAX);
    many.u64(0);
    fails_with(&["info", "-m", path_str(&write(d, "n.gguf", &many.bytes))], "cannot fit");
    let mut arch = RawGguf::header(3, 0, 1);
    arch.kv_str("general.architecture", "mamba");
    fails_with(&["info", "-m", path_str(&write(d, "arch.gguf", &arch.bytes))], "`mamba` is not supported");
    let mut iq = RawGguf::header(3, 1, 1);
    iq.kv_str("general.architecture", "llama").tensor("blk.0.attn_q.weight", &[256, 4], 16, 0).data(256);
    fails_with(&["info", "-m", path_str(&write(d, "iq.gguf", &iq.bytes))], "IQ2_XXS");
    let mut past_end = RawGguf::header(3, 1, 1);
    past_end.kv_str("general.architecture", "llama").tensor("token_embd.weight", &[64, 1000], 0, 0).data(16);
    fails_with(&["info", "-m", path_str(&write(d, "end.gguf", &past_end.bytes))], "needs 256000 bytes");
}

#[test]
fn bad_settings_are_one_line_errors() {
    let dir = temp_dir();
    let failing = Spec { chat_template: Some("{{ raise_exception('roles must alternate') }}"), ..Spec::new("qwen2") };
    let m = write_model(&dir.path().join("t.gguf"), &failing);
    fails_with(&["generate", "-m", path_str(&m), "-p", "hi"], "roles must alternate");
    let bad_syntax = Spec { chat_template: Some("{% for m in messages %}\n{{ m.content }\n{% endfor %}"), ..Spec::new("qwen2") };
    let m = write_model(&dir.path().join("s.gguf"), &bad_syntax);
    fails_with(&["generate", "-m", path_str(&m), "-p", "hi"], "line 2");
    fails_with(&["generate", "--ctx", "100000", "-p", "hi"], "exceeds the model's limit of 8192");
    let long = "word ".repeat(200);
    fails_with(&["generate", "--ctx", "64", "--raw", "-p", &long], "leaves no room in the context of 64");
    fails_with(&["generate", "--temp", "-1", "-p", "hi"], "--temp must be at least 0");
    fails_with(&["generate", "--device", "cuda", "-p", "hi"], "CUDA");
    fails_with(&["info", "-m", "no-such-model"], "known: smollm2-135m-instruct");
    fails_with(&["info", "-m", "hf:nobody/nothing/missing.gguf"], "HF_HUB_OFFLINE");
    let o = pae(&["generate", "--device", "gpu7", "-p", "x"]);
    assert_eq!(o.status.code(), Some(2), "clap usage errors exit 2");
}

#[test]
fn run_answers_with_a_json_report_and_a_trace() {
    let dir = temp_dir();
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(ws.join("notes.txt"), "Buy milk\n").unwrap();
    let trace = dir.path().join("run.jsonl");
    let o = pae(&["run", "-q", "--json", "--trace", path_str(&trace), "--workspace", path_str(&ws), "What is 17 * 23 + 4?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object on stdout");
    assert_eq!(report["status"], "answered", "{report}");
    assert!(report["final_answer"].as_str().unwrap().contains("395"), "{report}");
    assert!(!report["plan"].as_array().unwrap().is_empty());
    // The calculator really ran (perhaps after a failed attempt, which the report keeps too).
    let actions: Vec<&serde_json::Value> = report["steps"][0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["actions"].as_array().unwrap())
        .collect();
    assert!(actions.iter().any(|a| a["tool"] == "calculator" && a["observation"] == "395"), "{report}");
    assert!(report["tokens"].as_object().unwrap().values().all(|u| u["generated_tokens"].as_u64() > Some(0)));
    assert!(report["timings"]["total_secs"].as_f64() > Some(0.0));
    // The console went to stderr, the trace to its file, one JSON event per line.
    assert!(stderr(&o).contains("Observation"), "{}", stderr(&o));
    let events: Vec<serde_json::Value> =
        std::fs::read_to_string(&trace).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(events.first().unwrap()["event"], "run_start");
    assert_eq!(events.last().unwrap()["event"], "run_end");
}

#[test]
fn plan_prints_steps_and_raw_text() {
    for kind in ["numbered", "free", "json"] {
        let o = pae(&["plan", "-q", "--json", "--temp", "0", "--planner", kind, "What is 17 * 23 + 4?"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        let steps = v["steps"].as_array().unwrap();
        assert!(!steps.is_empty() && steps.len() <= 4, "{v}");
        let (raw, first) = (v["raw"].as_str().unwrap(), steps[0].as_str().unwrap());
        if kind == "numbered" {
            // The objective's one clause, its tool after it, read as `Use <tool> to <clause>`.
            let tool = first.strip_prefix("Use ").and_then(|r| r.split_once(" to ")).map(|(t, _)| t).unwrap_or_default();
            assert_eq!(raw, format!("1. what is 17 * 23 + 4? (tool: {tool})\n"), "{v}");
            assert_eq!(first, format!("Use {tool} to what is 17 * 23 + 4?"), "{v}");
        } else {
            assert!(raw.contains(first), "{v}");
        }
    }
}

#[test]
fn bad_run_settings_are_one_line_errors() {
    let dir = temp_dir();
    fails_with(&["run", "--approve-plan", "What is 2 + 2?"], "pass --yes");
    fails_with(&["run", "--workspace", "/no/such/folder", "What is 2 + 2?"], "/no/such/folder");
    fails_with(&["run", "--sqlite", "/no/such.db", "What is 2 + 2?"], "/no/such.db");
    fails_with(&["run", "--plan-steps", "0", "x"], "--plan-steps must be between 1 and 20");
    fails_with(&["run", ""], "the objective is empty");
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("planner.jinja"), "Plan {{ objectiv }}").unwrap();
    fails_with(&["run", "--templates", path_str(&templates), "What is 2 + 2?"], "objectiv");
}

#[test]
fn hostile_settings_and_templates_are_one_line_errors() {
    fails_with(&["run", "--timeout", "1e300", "x"], "--timeout must be a number of seconds");
    fails_with(&["run", "--timeout", "inf", "x"], "--timeout must be a number of seconds");
    fails_with(&["run", "--tool-timeout", "1e300", "x"], "--tool-timeout must be a number of seconds");
    fails_with(&["run", "--tool-timeout", "NaN", "x"], "--tool-timeout must be a number of seconds");
    fails_with(&["--threads", "10000", "info"], "--threads must be between 1 and");
    fails_with(&["--threads", "0", "info"], "--threads must be between 1 and");
    fails_with(&["run", "--allow-http", "ftp://example.com/", "x"], "--allow-http `ftp://example.com/`");
    let dir = temp_dir();
    for (name, template, needle) in [
        ("strftime", "{{ strftime_now('%Q') }}", "strftime_now: bad format"),
        (
            "loops",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "out of fuel",
        ),
        ("output", "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output passed"),
        ("indent", "{{ messages|tojson(indent=100000000) }}", "indent is limited"),
    ] {
        let spec = Spec { chat_template: Some(template), ..Spec::new("qwen2") };
        let m = write_model(&dir.path().join(format!("{name}.gguf")), &spec);
        fails_with(&["generate", "-m", path_str(&m), "-p", "hi"], needle);
    }
}

/// Starts `run` on the default model with a trace, and returns once the trace shows a model
/// call (the Ctrl-C handler is in place by then).
fn start_run(dir: &Path) -> (std::process::Child, std::path::PathBuf) {
    let trace = dir.join("run.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_pae-local"))
        .args(["run", "-q", "--json", "--trace", path_str(&trace), "--workspace", path_str(dir)])
        .arg("Add 17 and 23, then multiply the result by 4, then subtract 11.")
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&trace).unwrap_or_default().contains("\"llm_call\"") {
        assert!(start.elapsed() < std::time::Duration::from_secs(120), "no model call in the trace");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (child, trace)
}

fn sigint(child: &std::process::Child) {
    // SAFETY: a plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
}

#[test]
fn ctrl_c_ends_the_run_with_a_report_a_full_trace_and_status_130() {
    let dir = temp_dir();
    let (child, trace) = start_run(dir.path());
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("the JSON report is printed");
    assert_eq!(report["status"], "interrupted", "{report}");
    let events: Vec<serde_json::Value> =
        std::fs::read_to_string(&trace).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let last = events.last().unwrap();
    assert_eq!((last["event"].as_str(), last["status"].as_str()), (Some("run_end"), Some("interrupted")), "{last}");
    // A second Ctrl-C does not wait for the safe point.
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let (child, _) = start_run(&again);
    let t = std::time::Instant::now();
    sigint(&child);
    std::thread::sleep(std::time::Duration::from_millis(20));
    sigint(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    // Killed outright, the trace is still valid JSON lines up to the last event.
    let killed = dir.path().join("killed");
    std::fs::create_dir(&killed).unwrap();
    let (mut child, trace) = start_run(&killed);
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.ends_with('\n'), "the last event is complete");
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("a JSON line");
    }
}

#[test]
fn the_interactive_session_skips_a_line_of_invalid_utf8() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pae-local"))
        .args(["run", "-q", "--json"])
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\xff\xfe what\nWhat is 2 + 3?\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("not valid UTF-8; it was skipped"), "{}", stderr(&o));
    let reports: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 1, "the next line still ran");
    assert_eq!(reports[0]["objective"], "What is 2 + 3?");
}
