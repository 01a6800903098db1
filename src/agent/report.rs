//! What a run hands back: the answer, the plan and steps it took, and what it cost. Kept
//! apart from the loop so that callers reading, storing or comparing reports need only these
//! plain, serializable types.

use serde::Serialize;

use super::calls::{PrefixReuse, Usage};
use super::events::{Budget, RunStatus};
use super::executor::StepRecord;

/// How a run went.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The objective as given.
    pub objective: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Which budget ended the run, with `budget_exhausted`.
    pub budget: Option<Budget>,
    /// The answer, or with `budget_exhausted` the best result so far.
    pub final_answer: Option<String>,
    /// The last plan.
    pub plan: Vec<String>,
    /// Every step run, in order, with its attempts and tool calls.
    pub steps: Vec<StepRecord>,
    /// Plans replaced after the first.
    pub replans: usize,
    /// Tokens spent, per model and role.
    pub tokens: Usage,
    /// How much of the prompts came from the KV cache, from the second model call on.
    pub prefix_reuse: PrefixReuse,
    /// Where the time went.
    pub timings: Timings,
    /// What went wrong, with status `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where the time went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Wall-clock seconds of the whole run.
    pub total_secs: f64,
    /// Seconds spent in model calls, all models together.
    pub model_secs: f64,
    /// Seconds spent in tool calls.
    pub tool_secs: f64,
}
