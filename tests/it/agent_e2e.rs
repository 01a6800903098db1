//! End to end on the real SmolLM2-135M-Instruct, greedy: the public evaluation set
//! (`evals/tasks.jsonl`: single-tool, two-step and two-tool tasks over `evals/workspace` and
//! `evals/shop.sql`), each task in a fresh sandbox, as `pae-local eval` runs it.
//!
//! Every run must end `answered` or `budget_exhausted` with every model output parsed, tools
//! must really run, each trace must be valid JSONL, and the share of right answers must stay
//! at its measured level. The table is printed (`-- --nocapture`).
//!
//! CI runs the default planner over the whole public set (about 3 minutes on 2 cores); the
//! other planner kinds and the two task sets written apart from it (`evals/heldout`,
//! `evals/blind`) run with `cargo test --release --test it -- --ignored eval_`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pae_local::agent::events::RunStatus;
use pae_local::agent::llm::{Llm, LocalLlm};
use pae_local::agent::planner::PlannerKind;
use pae_local::agent::tools::{BuiltinTools, Registry};
use pae_local::agent::trace::TraceWriter;
use pae_local::agent::{Agent, AgentConfig};
use pae_local::decode::Engine;
use pae_local::eval::{self, Sandbox, TaskResult};

use crate::agent_flow::trace_kinds;
use crate::common::{model, repo, SMOLLM};

/// The tools `pae-local run --workspace W --sqlite D` offers without a terminal.
fn registry(sb: &Sandbox) -> Registry {
    Registry::builtin(&BuiltinTools {
        workspace: Some(sb.workspace()),
        sqlite: Some(sb.database().unwrap().to_path_buf()),
        timeout: Duration::from_secs(30),
        ..BuiltinTools::default()
    })
    .unwrap()
}

/// Runs the public set with `planner`, checks what every run must hold, prints the tables and
/// returns the results.
/// `every`: run every n-th task (1: the whole set).
fn run_public_set(planner: PlannerKind, every: usize) -> Vec<TaskResult> {
    run_set(&repo().join("evals"), "tasks.jsonl", "workspace", "shop.sql", planner, every)
}

/// Runs the tasks of `dir/tasks` over `dir/workspace` and `dir/database` (see
/// [`run_public_set`]).
fn run_set(dir: &std::path::Path, tasks: &str, workspace: &str, database: &str, planner: PlannerKind, every: usize) -> Vec<TaskResult> {
    let evals = dir.to_path_buf();
    let mut tasks = eval::parse_tasks(&std::fs::read_to_string(evals.join(tasks)).unwrap()).unwrap();
    tasks = tasks.into_iter().step_by(every).collect();
    let m = model(SMOLLM);
    let engine = Arc::new(Engine::new(m.clone()));
    let tok = m.tokenizer_arc();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let traces = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for task in &tasks {
        let sb = Sandbox::new(&evals.join(workspace), Some(&evals.join(database))).unwrap();
        let llm: Arc<dyn Llm> = Arc::new(LocalLlm::new(engine.clone()));
        let trace_path: PathBuf = traces.path().join(format!("{}.jsonl", task.id));
        let tok = tok.clone();
        let agent = Agent::builder()
            .model(llm)
            .tools(registry(&sb))
            .config(AgentConfig {
                planner_kind: planner,
                ..AgentConfig::default()
            })
            .observer(Arc::new(TraceWriter::create(&trace_path).unwrap()))
            .token_counter(Arc::new(move |s: &str| tok.encode(s, false, false).map_or(0, |v| v.len())))
            .build()
            .unwrap();
        let r = runtime.block_on(agent.run(&task.objective));
        assert!(
            matches!(r.status, RunStatus::Answered | RunStatus::BudgetExhausted),
            "{}: {:?} {:?}",
            task.id,
            r.status,
            r.error
        );
        assert!(r.steps.iter().any(|s| s.actions().next().is_some()), "{}: no tool ran", task.id);
        let kinds = trace_kinds(&trace_path);
        assert_eq!(kinds.first().map(String::as_str), Some("run_start"));
        assert_eq!(kinds.last().map(String::as_str), Some("run_end"));
        for k in ["plan", "step_start", "llm_call", "action", "observation"] {
            assert!(kinds.iter().any(|x| x == k), "{}: no {k} event", task.id);
        }
        results.push(TaskResult::from_report(task, &r));
    }
    eprintln!("\nplanner {planner:?}\n| id | answer | status | right | s |\n|---|---|---|---|---|");
    for r in &results {
        let answer = r.answer.clone().unwrap_or_default().replace('|', "\\|");
        eprintln!("| {} | {answer} | {:?} | {} | {:.1} |", r.id, r.status, if r.right { "yes" } else { "no" }, r.secs);
    }
    eprintln!("\n| category | right | answered | budget | model calls | gen tok | median s |\n|---|---|---|---|---|---|---|");
    for row in eval::summarize(&results) {
        eprintln!(
            "| {} | {}/{} | {} | {} | {:.1} | {:.0} | {:.1} |",
            row.category, row.right, row.tasks, row.answered, row.budget_exhausted, row.mean_model_calls, row.mean_generated_tokens, row.median_secs
        );
    }
    results
}

fn right_in(results: &[TaskResult], category: Option<&str>) -> (usize, usize) {
    let rs: Vec<_> = results.iter().filter(|r| category.is_none_or(|c| r.category == c)).collect();
    (rs.iter().filter(|r| r.right).count(), rs.len())
}

/// The default planner on the whole public set. It scored 35 of 40 (14/15 single-tool, 12/12
/// two-step, 9/13 two-tool); the floors sit a few tasks under, for the small numeric
/// differences between CPUs.
#[test]
fn smollm2_answers_the_public_set() {
    let results = run_public_set(PlannerKind::default(), 1);
    for (category, floor) in [(None, 0.75), (Some("single"), 0.7), (Some("two_step"), 0.6), (Some("two_tool"), 0.45)] {
        let (right, n) = right_in(&results, category);
        assert!(
            right as f64 >= floor * n as f64,
            "{}: only {right} of {n} right (floor {floor})",
            category.unwrap_or("total")
        );
    }
}

/// The other planner kinds, for the side-by-side table (slow: `-- --ignored`).
#[test]
#[ignore]
fn eval_free_planner() {
    run_public_set(PlannerKind::Free, 1);
}

#[test]
#[ignore]
fn eval_rewoo_planner() {
    run_public_set(PlannerKind::Rewoo, 1);
}

/// The task sets written apart from the public one, on the default planner: how the agent
/// does on tasks it was not tuned on (`evals/blind` was run once, after the last change).
#[test]
#[ignore]
fn eval_heldout_set() {
    run_set(&repo().join("evals/heldout"), "tasks.jsonl", "workspace", "db.sql", PlannerKind::default(), 1);
}

#[test]
#[ignore]
fn eval_blind_set() {
    run_set(&repo().join("evals/blind"), "tasks.jsonl", "workspace", "db.sql", PlannerKind::default(), 1);
}

#[test]
fn the_public_set_is_well_formed() {
    let evals = repo().join("evals");
    let tasks = eval::parse_tasks(&std::fs::read_to_string(evals.join("tasks.jsonl")).unwrap()).unwrap();
    for category in ["single", "two_step", "two_tool"] {
        let n = tasks.iter().filter(|t| t.category == category).count();
        assert!(n >= 12, "{category}: {n} tasks");
    }
    let sb = Sandbox::new(&evals.join("workspace"), Some(&evals.join("shop.sql"))).unwrap();
    assert!(sb.workspace().join("config.ini").is_file());
    registry(&sb);
    for other in ["heldout", "blind"] {
        let dir = evals.join(other);
        let tasks = eval::parse_tasks(&std::fs::read_to_string(dir.join("tasks.jsonl")).unwrap()).unwrap();
        assert_eq!(tasks.len(), 24, "{other}");
        registry(&Sandbox::new(&dir.join("workspace"), Some(&dir.join("db.sql"))).unwrap());
    }
}
