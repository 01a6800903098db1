//! `pae-local eval TASKS.jsonl`: runs every task in a fresh copy of the workspace and
//! database, checks the answers and prints a table by category.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pae_local::agent::events::Observer;
use pae_local::agent::executor::ExecutorKind;
use pae_local::agent::planner::PlannerKind;
use pae_local::agent::trace::TraceWriter;
use pae_local::eval::{self, Sandbox, SummaryRow, Task, TaskResult};

use super::args::ModelArgs;
use super::printer;
use super::run::{AgentArgs, AgentFactory};

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Task file: one JSON object per line, {"id", "category", "objective", "check"}.
    pub tasks: PathBuf,
    /// Run the tasks of this category (repeatable; with --id, the tasks either selects).
    #[arg(long = "category", value_name = "NAME")]
    pub categories: Vec<String>,
    /// Run the task with this id (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// Print the results as one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write one JSONL trace per task, named `<id>.jsonl`, into DIR.
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
    /// Fail (exit 1) unless at least this share of the tasks is right (0 to 1).
    #[arg(long, value_name = "SHARE")]
    pub min_right: Option<f64>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

pub fn run(margs: &ModelArgs, args: EvalArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.tasks).with_context(|| format!("reading `{}`", args.tasks.display()))?;
    let mut tasks = eval::parse_tasks(&text).with_context(|| format!("`{}`", args.tasks.display()))?;
    for id in &args.ids {
        anyhow::ensure!(tasks.iter().any(|t| &t.id == id), "no task has the id `{id}`");
    }
    for c in &args.categories {
        anyhow::ensure!(tasks.iter().any(|t| &t.category == c), "no task has the category `{c}`");
    }
    // `--id` and `--category` add up: a task named by either runs.
    if !args.ids.is_empty() || !args.categories.is_empty() {
        tasks.retain(|t| args.ids.contains(&t.id) || args.categories.contains(&t.category));
    }
    anyhow::ensure!(!tasks.is_empty(), "`{}` has no task to run", args.tasks.display());
    if let Some(m) = args.min_right {
        anyhow::ensure!((0.0..=1.0).contains(&m), "--min-right must be between 0 and 1, got {m}");
    }
    if let Some(dir) = &args.trace_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    }
    let workspace = match &args.agent.tools.workspace {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    anyhow::ensure!(workspace.is_dir(), "the workspace `{}` is not a folder", workspace.display());
    let database = args.agent.tools.sqlite.clone();
    let sandbox = |task: &Task| {
        Sandbox::new(&workspace, database.as_deref()).with_context(|| format!("preparing the workspace of task `{}`", task.id))
    };
    // The agent's settings are checked on a first sandbox, before any model loads.
    let first = sandbox(&tasks[0])?;
    let factory = AgentFactory::new(margs, &in_sandbox(&args.agent, &first))?;
    drop(first);

    let mut results: Vec<TaskResult> = Vec::with_capacity(tasks.len());
    for (i, task) in tasks.iter().enumerate() {
        let sb = sandbox(task)?;
        let agent_args = in_sandbox(&args.agent, &sb);
        let mut observers: Vec<Box<dyn Observer>> = Vec::new();
        if let Some(dir) = &args.trace_dir {
            let path = dir.join(format!("{}.jsonl", file_safe(&task.id)));
            observers.push(Box::new(TraceWriter::create(&path).with_context(|| format!("creating `{}`", path.display()))?));
        }
        let report = factory.run(&task.objective, factory.registry(&agent_args.tools)?, observers)?;
        let result = TaskResult::from_report(task, &report);
        eprintln!(
            "[{}/{}] {} {}: {} ({:?}, {:.1} s)",
            i + 1,
            tasks.len(),
            task.id,
            if result.right { "right" } else { "wrong" },
            result.answer.as_deref().unwrap_or("—"),
            result.status,
            result.secs
        );
        results.push(result);
    }
    let summary = eval::summarize(&results);
    if args.json {
        printer::json(&serde_json::json!({
            "tasks": results,
            "summary": summary,
            "planner": PlannerKind::from(args.agent.planner),
            "executor": ExecutorKind::from(args.agent.executor),
        }))?;
    } else {
        printer::line(&table(&summary))?;
        printer::line("")?;
        printer::line(&task_table(&results))?;
    }
    if let (Some(min), Some(total)) = (args.min_right, summary.last()) {
        let share = total.right as f64 / total.tasks.max(1) as f64;
        anyhow::ensure!(share >= min, "{} of {} tasks right ({:.0} %), below --min-right {min}", total.right, total.tasks, share * 100.0);
    }
    Ok(())
}

/// `args` with the workspace and database of `sandbox`.
fn in_sandbox(args: &AgentArgs, sandbox: &Sandbox) -> AgentArgs {
    let mut a = args.clone();
    a.tools.workspace = Some(sandbox.workspace());
    a.tools.sqlite = sandbox.database().map(|p| p.to_path_buf());
    a
}

/// A task id as a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
fn file_safe(id: &str) -> String {
    let s: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if s.starts_with('.') { format!("_{s}") } else { s }
}

/// The summary as a Markdown table.
pub fn table(rows: &[SummaryRow]) -> String {
    let mut out = String::from(
        "| category | right | answered | budget | other | steps | model calls | prompt tok | cached | gen tok | median s |\n|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for r in rows {
        let name = if r.category == "total" { "**total**".to_string() } else { r.category.clone() };
        out.push_str(&format!(
            "\n| {name} | {}/{} | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0}% | {:.0} | {:.1} |",
            r.right, r.tasks, r.answered, r.budget_exhausted, r.other, r.mean_steps, r.mean_model_calls, r.mean_prompt_tokens,
            100.0 * r.prefix_reuse, r.mean_generated_tokens, r.median_secs
        ));
    }
    out
}

/// One row per task.
fn task_table(results: &[TaskResult]) -> String {
    let mut out = String::from("| id | objective | answer | status | right | s |\n|---|---|---|---|---|---|");
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for r in results {
        out.push_str(&format!(
            "\n| {} | {} | {} | {:?} | {} | {:.1} |",
            cell(&r.id),
            cell(&r.objective),
            cell(r.answer.as_deref().unwrap_or("—")),
            r.status,
            if r.right { "yes" } else { "no" },
            r.secs
        ));
    }
    out
}
