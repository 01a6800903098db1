//! Evaluation: run an agent over a set of tasks, each in a fresh copy of its workspace and
//! database, check the answers, and sum up by category.
//!
//! The pieces here are model-free: [`task`] parses task files and checks answers, [`Sandbox`]
//! makes the per-task copies, [`TaskResult::from_report`] and [`summarize`] turn run reports
//! into rows. `pae-local eval` (in the binary) drives them with real models.

pub mod task;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::agent::events::RunStatus;
use crate::agent::RunReport;

pub use task::{parse_tasks, Check, Task, TaskFileError};

/// Most files and folders a workspace copy may hold: an evaluation workspace is a small
/// fixture, and a mistyped `--workspace /` must not copy a disk.
const MAX_COPY_ENTRIES: usize = 10_000;
/// Most bytes a workspace copy may hold.
const MAX_COPY_BYTES: u64 = 256 * 1024 * 1024;

/// How one task went.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub id: String,
    pub category: String,
    pub objective: String,
    pub status: RunStatus,
    pub answer: Option<String>,
    pub right: bool,
    /// Steps executed (ReWOO: tool calls of the program).
    pub steps: usize,
    pub model_calls: usize,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TaskResult {
    /// The result of `task` from the report of its run.
    pub fn from_report(task: &Task, report: &RunReport) -> Self {
        let usage = report.tokens.values();
        Self {
            id: task.id.clone(),
            category: task.category.clone(),
            objective: task.objective.clone(),
            status: report.status,
            answer: report.final_answer.clone(),
            right: report.status == RunStatus::Answered && task.check.passes(report.final_answer.as_deref()),
            steps: report.steps.len(),
            model_calls: usage.clone().map(|u| u.calls).sum(),
            prompt_tokens: usage.clone().map(|u| u.prompt_tokens).sum(),
            generated_tokens: usage.map(|u| u.generated_tokens).sum(),
            secs: report.timings.total_secs,
            error: report.error.clone(),
        }
    }
}

/// One row of the summary: a category, or the total (`category == "total"`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SummaryRow {
    pub category: String,
    pub tasks: usize,
    pub right: usize,
    pub answered: usize,
    pub budget_exhausted: usize,
    /// Runs that ended `error` or `rejected`.
    pub other: usize,
    pub mean_steps: f64,
    pub mean_model_calls: f64,
    pub mean_prompt_tokens: f64,
    pub mean_generated_tokens: f64,
    pub median_secs: f64,
}

/// One row per category (in order of first appearance), then the total.
pub fn summarize(results: &[TaskResult]) -> Vec<SummaryRow> {
    let mut categories: Vec<&str> = Vec::new();
    for r in results {
        if !categories.contains(&r.category.as_str()) {
            categories.push(&r.category);
        }
    }
    let mut rows: Vec<SummaryRow> = categories
        .iter()
        .map(|c| row(c, &results.iter().filter(|r| r.category == *c).collect::<Vec<_>>()))
        .collect();
    rows.push(row("total", &results.iter().collect::<Vec<_>>()));
    rows
}

fn row(category: &str, rs: &[&TaskResult]) -> SummaryRow {
    let n = rs.len();
    let mean = |f: &dyn Fn(&TaskResult) -> usize| if n == 0 { 0.0 } else { rs.iter().map(|r| f(r)).sum::<usize>() as f64 / n as f64 };
    let mut secs: Vec<f64> = rs.iter().map(|r| r.secs).collect();
    secs.sort_by(f64::total_cmp);
    let median_secs = match n {
        0 => 0.0,
        _ if n % 2 == 1 => secs[n / 2],
        _ => (secs[n / 2 - 1] + secs[n / 2]) / 2.0,
    };
    let count = |s: RunStatus| rs.iter().filter(|r| r.status == s).count();
    SummaryRow {
        category: category.to_string(),
        tasks: n,
        right: rs.iter().filter(|r| r.right).count(),
        answered: count(RunStatus::Answered),
        budget_exhausted: count(RunStatus::BudgetExhausted),
        other: count(RunStatus::Error) + count(RunStatus::Rejected) + count(RunStatus::Interrupted),
        mean_steps: mean(&|r| r.steps),
        mean_model_calls: mean(&|r| r.model_calls),
        mean_prompt_tokens: mean(&|r| r.prompt_tokens),
        mean_generated_tokens: mean(&|r| r.generated_tokens),
        median_secs,
    }
}

/// Why a task's sandbox could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the workspace `{0}` holds more than {MAX_COPY_ENTRIES} entries or {MAX_COPY_BYTES} bytes; evaluation copies it for every task")]
    TooBig(PathBuf),
    #[error("`{path}` could not be loaded into a database: {message}")]
    Sql { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io { path: path.to_path_buf(), source }
}

/// A fresh copy of a task's workspace and database, removed when dropped, so that no task sees
/// what an earlier one wrote.
pub struct Sandbox {
    dir: tempfile::TempDir,
    database: Option<PathBuf>,
}

impl Sandbox {
    /// Copies `workspace` (files and folders; symbolic links are not followed and not copied)
    /// and the database: an SQLite file is copied, a `.sql` text file is run into a new
    /// database, so that a task set can keep its data as reviewable text.
    pub fn new(workspace: &Path, database: Option<&Path>) -> Result<Self, SandboxError> {
        let dir = tempfile::tempdir().map_err(io(Path::new("a temporary folder")))?;
        let ws = dir.path().join("workspace");
        let mut budget = (MAX_COPY_ENTRIES, MAX_COPY_BYTES);
        copy_tree(workspace, &ws, &mut budget).map_err(|e| match e {
            CopyError::Io(e) => e,
            CopyError::TooBig => SandboxError::TooBig(workspace.to_path_buf()),
        })?;
        let database = match database {
            None => None,
            Some(src) => {
                let dst = dir.path().join("database.sqlite");
                if src.extension().is_some_and(|e| e.eq_ignore_ascii_case("sql")) {
                    let script = std::fs::read_to_string(src).map_err(io(src))?;
                    let conn = rusqlite::Connection::open(&dst).map_err(|e| SandboxError::Sql { path: src.to_path_buf(), message: e.to_string() })?;
                    conn.execute_batch(&script)
                        .map_err(|e| SandboxError::Sql { path: src.to_path_buf(), message: e.to_string() })?;
                } else {
                    std::fs::copy(src, &dst).map_err(io(src))?;
                }
                Some(dst)
            }
        };
        Ok(Self { dir, database })
    }

    /// The copy of the workspace.
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    /// The copy of the database, if there is one.
    pub fn database(&self) -> Option<&Path> {
        self.database.as_deref()
    }
}

enum CopyError {
    Io(SandboxError),
    TooBig,
}

fn copy_tree(src: &Path, dst: &Path, budget: &mut (usize, u64)) -> Result<(), CopyError> {
    std::fs::create_dir(dst).map_err(|e| CopyError::Io(io(dst)(e)))?;
    let entries = std::fs::read_dir(src).map_err(|e| CopyError::Io(io(src)(e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| CopyError::Io(io(src)(e)))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| CopyError::Io(io(&path)(e)))?;
        budget.0 = budget.0.checked_sub(1).ok_or(CopyError::TooBig)?;
        let to = dst.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&path, &to, budget)?;
        } else if kind.is_file() {
            let len = entry.metadata().map_err(|e| CopyError::Io(io(&path)(e)))?.len();
            budget.1 = budget.1.checked_sub(len).ok_or(CopyError::TooBig)?;
            std::fs::copy(&path, &to).map_err(|e| CopyError::Io(io(&path)(e)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(category: &str, right: bool, status: RunStatus, secs: f64) -> TaskResult {
        TaskResult {
            id: String::new(),
            category: category.into(),
            objective: String::new(),
            status,
            answer: None,
            right,
            steps: 2,
            model_calls: 3,
            prompt_tokens: 100,
            generated_tokens: 10,
            secs,
            error: None,
        }
    }

    #[test]
    fn summary_has_a_row_per_category_and_a_total() {
        let rs = vec![
            result("a", true, RunStatus::Answered, 1.0),
            result("b", false, RunStatus::BudgetExhausted, 5.0),
            result("a", false, RunStatus::Answered, 3.0),
        ];
        let rows = summarize(&rs);
        assert_eq!(rows.iter().map(|r| r.category.as_str()).collect::<Vec<_>>(), ["a", "b", "total"]);
        assert_eq!((rows[0].tasks, rows[0].right, rows[0].answered), (2, 1, 2));
        assert_eq!(rows[0].median_secs, 2.0);
        assert_eq!((rows[2].tasks, rows[2].right, rows[2].budget_exhausted), (3, 1, 1));
        assert_eq!(rows[2].median_secs, 3.0);
        assert_eq!(rows[2].mean_model_calls, 3.0);
    }

    #[test]
    fn sandboxes_are_fresh_copies() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("docs")).unwrap();
        std::fs::write(src.path().join("docs/a.txt"), "hello").unwrap();
        let sql = src.path().join("db.sql");
        std::fs::write(&sql, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);").unwrap();
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("f.txt"), "one").unwrap();
        std::fs::create_dir(ws.path().join("d")).unwrap();
        std::fs::write(ws.path().join("d/g.txt"), "two").unwrap();
        let s = Sandbox::new(ws.path(), Some(&sql)).unwrap();
        assert_eq!(std::fs::read_to_string(s.workspace().join("d/g.txt")).unwrap(), "two");
        std::fs::write(s.workspace().join("f.txt"), "changed").unwrap();
        let conn = rusqlite::Connection::open(s.database().unwrap()).unwrap();
        let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 7);
        let again = Sandbox::new(ws.path(), None).unwrap();
        assert_eq!(std::fs::read_to_string(again.workspace().join("f.txt")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(ws.path().join("f.txt")).unwrap(), "one");
        let bad = src.path().join("bad.sql");
        std::fs::write(&bad, "CREATE TABLE (").unwrap();
        assert!(matches!(Sandbox::new(ws.path(), Some(&bad)), Err(SandboxError::Sql { .. })));
        assert!(matches!(Sandbox::new(&src.path().join("missing"), None), Err(SandboxError::Io { .. })));
    }
}
