//! End to end on the real SmolLM2-135M-Instruct, greedy: a fixture of calculator, file and
//! SQLite tasks. Every run must end `answered` or `budget_exhausted` with every model output
//! parsed, tools must really run, the trace must be valid JSONL, and at least a third of the
//! answers must be right. The per-category score is printed (`-- --nocapture`).

use std::sync::Arc;

use pae_local::agent::events::RunStatus;
use pae_local::agent::llm::{Llm, LocalLlm};
use pae_local::agent::trace::TraceWriter;
use pae_local::agent::{Agent, AgentConfig};
use pae_local::decode::Engine;

use crate::agent_flow::trace_kinds;
use crate::common::{model, SMOLLM};
use crate::fixture;

/// (category, objective, any of these in the answer counts as right)
pub const TASKS: &[(&str, &str, &[&str])] = &[
    ("calculator", "What is 17 * 23 + 4?", &["395"]),
    ("calculator", "Compute (125 - 47) * 3.", &["234"]),
    ("calculator", "How much is 1250 divided by 5?", &["250"]),
    ("calculator", "What is 2 to the power of 10?", &["1024"]),
    ("calculator", "Add 345 and 655.", &["1000"]),
    ("file", "What port does config.ini set?", &["8080"]),
    ("file", "What is the launch date in docs/readme.md?", &["2025-03-14"]),
    ("file", "Which file mentions water?", &["todo.txt"]),
    ("file", "What is the first line of notes.txt?", &["Buy milk"]),
    ("file", "Which file lists cherry?", &["fruits.txt"]),
    ("sqlite", "How many users are in the database?", &["4"]),
    ("sqlite", "How many users live in Paris?", &["2"]),
    ("sqlite", "What city does Bob live in?", &["Berlin"]),
    ("sqlite", "What is the total price of all orders?", &["292.5"]),
    ("sqlite", "How old is Carol?", &["45"]),
];

/// Right: the expected value appears in a short answer (a long list that happens to contain
/// it is not an answer).
fn is_right(answer: Option<&str>, expected: &[&str]) -> bool {
    let a = answer.unwrap_or_default().to_lowercase();
    if a.chars().count() > 80 {
        return false;
    }
    expected.iter().any(|e| {
        let e = e.to_lowercase();
        // A number must appear as a whole number ("4" is not in "45").
        a.match_indices(&e).any(|(i, _)| {
            let before = a[..i].chars().next_back();
            let after = a[i + e.len()..].chars().next();
            let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
            !(e.chars().all(|c| c.is_ascii_digit() || c == '.') && (digit(before) || digit(after)))
        })
    })
}

#[test]
fn smollm2_answers_fixture_tasks() {
    let f = fixture::create();
    let m = model(SMOLLM);
    let engine = Arc::new(Engine::new(m.clone()));
    let tok = m.tokenizer_arc();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let traces = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for (i, (category, objective, expected)) in TASKS.iter().enumerate() {
        let planner: Arc<dyn Llm> = Arc::new(LocalLlm::new(engine.clone()));
        let executor: Arc<dyn Llm> = Arc::new(LocalLlm::new(engine.clone()));
        let trace_path = traces.path().join(format!("task{i}.jsonl"));
        let tok = tok.clone();
        let agent = Agent::builder()
            .planner(planner)
            .executor(executor)
            .tools(fixture::registry(&f))
            .config(AgentConfig::default())
            .observer(Arc::new(TraceWriter::create(&trace_path).unwrap()))
            .token_counter(Arc::new(move |s: &str| tok.encode(s, false, false).map_or(0, |v| v.len())))
            .build()
            .unwrap();
        let r = runtime.block_on(agent.run(objective));
        assert!(
            matches!(r.status, RunStatus::Answered | RunStatus::BudgetExhausted),
            "{objective}: {:?} {:?}",
            r.status,
            r.error
        );
        assert!(r.steps.iter().any(|s| s.actions().next().is_some()), "{objective}: no tool ran");
        let kinds = trace_kinds(&trace_path);
        assert_eq!(kinds.first().map(String::as_str), Some("run_start"));
        assert_eq!(kinds.last().map(String::as_str), Some("run_end"));
        for k in ["plan", "step_start", "llm_call", "action", "observation"] {
            assert!(kinds.iter().any(|x| x == k), "{objective}: no {k} event");
        }
        let right = is_right(r.final_answer.as_deref(), expected);
        rows.push((*category, *objective, r.final_answer.clone().unwrap_or_default(), r.status, right, r.timings.total_secs));
    }
    eprintln!("\n| category | objective | answer | status | right | secs |\n|---|---|---|---|---|---|");
    for (c, o, a, s, ok, secs) in &rows {
        eprintln!("| {c} | {o} | {} | {s:?} | {} | {secs:.1} |", a.replace('|', "\\|"), if *ok { "yes" } else { "no" });
    }
    for cat in ["calculator", "file", "sqlite"] {
        let n = rows.iter().filter(|r| r.0 == cat).count();
        let ok = rows.iter().filter(|r| r.0 == cat && r.4).count();
        eprintln!("{cat}: {ok}/{n}");
    }
    let right = rows.iter().filter(|r| r.4).count();
    eprintln!("total: {right}/{}", rows.len());
    assert!(right * 3 >= rows.len(), "only {right} of {} answers are right", rows.len());
}

#[test]
fn answers_are_checked_as_whole_numbers() {
    assert!(is_right(Some("395"), &["395"]));
    assert!(is_right(Some("COUNT(*): 4"), &["4"]));
    assert!(!is_right(Some("45"), &["4"]));
    assert!(is_right(Some("todo.txt:1: - water the plants"), &["todo.txt"]));
    assert!(!is_right(None, &["x"]));
    assert!(!is_right(Some(&format!("{} Berlin", "London, ".repeat(20))), &["Berlin"]));
}
