//! The interactive session through a pseudo-terminal, as a person types it: plan review, a
//! remark, `ask_human` (past the tool timeout, two questions in a row), Ctrl-C, history
//! across sessions and multi-line input. The model is a replay of scripted outputs
//! (`--replay`), so each test is fast and deterministic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rexpect::session::{spawn_command, PtySession};

/// A replay file of `(purpose, output)` model calls, in order.
fn replay(dir: &Path, name: &str, calls: &[(&str, &str)]) -> PathBuf {
    crate::common::replay_file(dir, name, calls)
}

/// `pae-local run --replay FILE ARGS` on a pseudo-terminal, its history under `dir`.
fn session(dir: &Path, replay: &Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pae-local"));
    cmd.arg("run")
        .arg("--replay")
        .arg(replay)
        .arg("--workspace")
        .arg(dir)
        .args(args)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("VISUAL")
        .env_remove("EDITOR")
        .env_remove("RUST_LOG");
    spawn_command(cmd, Some(30_000)).expect("the session starts on a pseudo-terminal")
}

/// Waits for `prompt`, then types `line` and Enter.
fn answer(s: &mut PtySession, prompt: &str, line: &str) {
    s.exp_string(prompt).unwrap_or_else(|e| panic!("waiting for {prompt:?}: {e}"));
    s.send_line(line).unwrap();
}

fn ends(s: &mut PtySession) {
    answer(s, "objective> ", "/exit");
    s.exp_eof().expect("the session ends");
}

const PLAN_12: &str = "1. What is 12 * 12? (tool: calculator)\n";

#[test]
fn a_plan_is_accepted_edited_or_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(dir.path(), "r.jsonl", &[("plan", PLAN_12), ("plan", PLAN_12), ("plan", PLAN_12)]);
    let mut s = session(dir.path(), &r, &["--approve-plan"]);
    // Accepted: the calculator reads the step's own words.
    answer(&mut s, "objective> ", "What is 12 * 12?");
    s.exp_string("1. Use calculator to What is 12 * 12?").unwrap();
    answer(&mut s, "[a]ccept, [e]dit or [r]eject? ", "a");
    s.exp_string("Answer: 144").unwrap();
    // Edited: the step is offered for editing; it is replaced, and a step added.
    answer(&mut s, "objective> ", "What is 12 * 12?");
    answer(&mut s, "[a]ccept, [e]dit or [r]eject? ", "e");
    s.exp_string("1. ").unwrap();
    s.send("\x15").unwrap(); // Ctrl-U: clear the step offered
    s.send_line("Use calculator to compute 12 * 10").unwrap();
    answer(&mut s, "2. ", "Use calculator to add 4 to #E1");
    answer(&mut s, "3. ", "");
    s.exp_string("Answer: 124").unwrap();
    // Rejected.
    answer(&mut s, "objective> ", "What is 12 * 12?");
    answer(&mut s, "[a]ccept, [e]dit or [r]eject? ", "r");
    s.exp_string("Plan rejected").unwrap();
    ends(&mut s);
}

#[test]
fn a_remark_reaches_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let plan = "1. compute 6 * 7 (tool: calculator)\n2. add 1 to it (tool: calculator)\n";
    // A remark goes to the replanner, which lets the plan go on.
    let r = replay(dir.path(), "r.jsonl", &[("plan", plan), ("replan", "Decision: continue\n")]);
    let trace = dir.path().join("t.jsonl");
    let mut s = session(dir.path(), &r, &["--feedback", "--trace", trace.to_str().unwrap()]);
    answer(&mut s, "objective> ", "compute 6 * 7, then add 1 to it");
    s.exp_string("Step 1 gave: 42").unwrap();
    answer(&mut s, "Remark for the next step (empty for none): ", "keep going");
    s.exp_string("Step 2 gave: 43").unwrap();
    answer(&mut s, "Remark for the next step (empty for none): ", "");
    s.exp_string("Answer: 43").unwrap();
    ends(&mut s);
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(trace.contains("keep going"), "the remark is in the trace");
}

const ASK_NAME: &str = "Thought: I will ask the person for their name\nAction: ask_human\nAction Input: {\"question\": \"What is your name?\"}\n";
const ASK_CITY: &str = "Thought: I will ask the person for their city\nAction: ask_human\nAction Input: {\"question\": \"Which city do you live in?\"}\n";

#[test]
fn ask_human_waits_past_the_tool_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(
        dir.path(),
        "r.jsonl",
        &[
            ("plan", "1. ask the person for their name (tool: ask_human)\n"),
            ("execute", ASK_NAME),
            ("execute", "Thought: The observation has the result.\nFinal Answer: Alice\n"),
        ],
    );
    let mut s = session(dir.path(), &r, &["--human", "--tool-timeout", "1"]);
    answer(&mut s, "objective> ", "ask the person for their name");
    s.exp_string("? What is your name?").unwrap();
    s.exp_string("> ").unwrap();
    // Twice the tool timeout: a person is not a tool.
    std::thread::sleep(Duration::from_secs(2));
    s.send_line("Alice").unwrap();
    s.exp_string("Observation: Alice").unwrap();
    s.exp_string("Answer: Alice").unwrap();
    ends(&mut s);
}

#[test]
fn two_questions_in_a_row_after_one_was_called_off() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(
        dir.path(),
        "r.jsonl",
        &[
            ("plan", "1. ask the person for their name (tool: ask_human)\n2. ask the person for their city (tool: ask_human)\n"),
            ("execute", ASK_NAME),
            // Nobody answered within --human-timeout: the executor asks again.
            ("execute", "Thought: I need another action.\nAction: ask_human\nAction Input: {\"question\": \"Your name, please?\"}\n"),
            ("execute", "Thought: The observation has the result.\nFinal Answer: Alice\n"),
            ("execute", ASK_CITY),
            ("execute", "Thought: The observation has the result.\nFinal Answer: Paris\n"),
        ],
    );
    // Long enough that a loaded machine answers the second question in time.
    let mut s = session(dir.path(), &r, &["--human", "--human-timeout", "5"]);
    answer(&mut s, "objective> ", "ask the person for their name and city");
    s.exp_string("? What is your name?").unwrap();
    s.exp_string("timed out").unwrap();
    // The answer typed now goes to the question asked now, not to the one called off.
    s.exp_string("? Your name, please?").unwrap();
    s.exp_string("called off").unwrap();
    s.send_line("Alice").unwrap();
    s.exp_string("Observation: Alice").unwrap();
    answer(&mut s, "? Which city do you live in?", "Paris");
    s.exp_string("Observation: Paris").unwrap();
    s.exp_string("Answer: Paris").unwrap();
    ends(&mut s);
}

#[test]
fn ctrl_c_stops_the_run_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(
        dir.path(),
        "r.jsonl",
        &[("plan", "1. ask the person for their name (tool: ask_human)\n"), ("execute", ASK_NAME), ("plan", PLAN_12)],
    );
    let mut s = session(dir.path(), &r, &["--human"]);
    answer(&mut s, "objective> ", "ask the person for their name");
    s.exp_string("? What is your name?").unwrap();
    s.exp_string("> ").unwrap();
    s.send_control('c').unwrap();
    s.exp_string("Interrupted").unwrap();
    // Ctrl-C at the prompt clears the line; the session is still there.
    s.exp_string("objective> ").unwrap();
    s.send("half-typed objective").unwrap();
    s.send_control('c').unwrap();
    answer(&mut s, "objective> ", "What is 12 * 12?");
    s.exp_string("Answer: 144").unwrap();
    // Ctrl-D ends it.
    s.exp_string("objective> ").unwrap();
    s.send_control('d').unwrap();
    s.exp_eof().unwrap();
}

#[test]
fn history_survives_the_session_and_lines_continue_after_a_backslash() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(dir.path(), "r1.jsonl", &[("plan", PLAN_12)]);
    let mut s = session(dir.path(), &r, &[]);
    answer(&mut s, "objective> ", "What is 12 * 12?");
    s.exp_string("Answer: 144").unwrap();
    ends(&mut s);
    let saved = std::fs::read_to_string(dir.path().join("data/pae-local/history.txt")).expect("history is saved in the data folder");
    assert!(saved.contains("What is 12 * 12?") && !saved.contains("/exit"), "{saved}");

    let plan2 = "1. What is 12 * 12? (tool: calculator)\n2. add 1 to #E1 (tool: calculator)\n";
    let r = replay(dir.path(), "r2.jsonl", &[("plan", PLAN_12), ("plan", plan2)]);
    let mut s = session(dir.path(), &r, &[]);
    s.exp_string("objective> ").unwrap();
    // Up arrow: the last objective of the session before.
    s.send("\x1b[A").unwrap();
    s.flush().unwrap();
    s.exp_string("What is 12 * 12?").unwrap();
    s.send_line("").unwrap();
    s.exp_string("Answer: 144").unwrap();
    // A trailing backslash continues the objective on the next line.
    answer(&mut s, "objective> ", "What is 12 * 12? \\");
    s.send_line("then add 1 to it").unwrap();
    s.exp_string("Answer: 145").unwrap();
    ends(&mut s);
}

#[test]
fn commands_show_tools_and_plans_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(dir.path(), "r.jsonl", &[("plan", PLAN_12)]);
    let mut s = session(dir.path(), &r, &[]);
    answer(&mut s, "objective> ", "/help");
    s.exp_string("/plan OBJECTIVE").unwrap();
    answer(&mut s, "objective> ", "/tools");
    s.exp_string("calculator: ").unwrap();
    s.exp_string("\"expression\"").unwrap();
    answer(&mut s, "objective> ", "/plan What is 12 * 12?");
    s.exp_string("Steps as they would run:").unwrap();
    s.exp_string("1. Use calculator to What is 12 * 12?").unwrap();
    answer(&mut s, "objective> ", "/nonsense");
    s.exp_string("no command /nonsense").unwrap();
    let trace = dir.path().join("session.jsonl");
    answer(&mut s, "objective> ", &format!("/trace {}", trace.display()));
    s.exp_string("traced to").unwrap();
    ends(&mut s);
    assert!(trace.is_file(), "/trace creates its file");
}
