//! What a person sees: the console output of runs, pinned as snapshots (insta) so
//! that a change to the printed layout shows up in review. The model is a replay of scripted
//! outputs (`--replay`), so the runs are fast and deterministic; times are masked.
//!
//! After an intended change: `INSTA_UPDATE=always cargo test --test it console`, then review
//! the diff of `tests/it/snapshots/`.

use std::process::Command;

/// `pae-local ARGS` with `--replay` of `calls` (`(purpose, output)` in order) in a workspace
/// holding `files`; stdout and stderr as one text, with the exit status.
fn console(calls: &[(&str, &str)], files: &[(&str, &str)], args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    for (name, text) in files {
        std::fs::write(workspace.join(name), text).unwrap();
    }
    let replay = crate::common::replay_file(dir.path(), "replay.jsonl", calls);
    let out = Command::new(env!("CARGO_BIN_EXE_pae-local"))
        .args(&args[..1])
        .arg("--replay")
        .arg(&replay)
        .arg("--workspace")
        .arg(&workspace)
        .args(&args[1..])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace(&*workspace.to_string_lossy(), "[workspace]");
    format!("status: {}\n--- stdout\n{}--- stderr\n{}", out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Snapshots `text` with times masked (`(0.0 s)`, `12.3 s`, `0.01s`).
fn snapshot(name: &str, text: &str) {
    insta::with_settings!({filters => vec![(r"\b\d+(\.\d+)? ?s\b", "[secs]")], prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn a_two_step_run_as_printed() {
    let out = console(
        &[("plan", "1. multiply 17 by 23 (tool: calculator)\n2. divide the result by 5. (tool: calculator)\n")],
        &[],
        &["run", "Multiply 17 by 23, then divide the result by 5."],
    );
    snapshot("two_step_run", &out);
}

#[test]
fn a_failed_call_its_retry_and_a_result_carried_forward_as_printed() {
    let out = console(
        &[
            ("plan", "1. read notes.txt (tool: read_file)\n2. multiply that by 25 (tool: calculator)\n"),
            ("execute", "Thought: I will read it\nAction: read_file\nAction Input: {\"path\": \"missing.txt\"}\n"),
            ("execute", "Thought: I will read it\nAction: read_file\nAction Input: {\"path\": \"notes.txt\"}\n"),
            ("execute", "Thought: The observation has the result.\nFinal Answer: workers = 4"),
        ],
        &[("notes.txt", "workers = 4\n")],
        &["run", "Read notes.txt and multiply the workers by 25."],
    );
    snapshot("retry_run", &out);
}

#[test]
fn a_run_out_of_steps_as_printed() {
    let out = console(
        &[("plan", "1. multiply 17 by 23 (tool: calculator)\n2. divide the result by 5. (tool: calculator)\n")],
        &[],
        &["run", "--max-steps", "1", "Multiply 17 by 23, then divide the result by 5."],
    );
    snapshot("budget_run", &out);
}
