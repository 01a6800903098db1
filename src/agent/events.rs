//! What happens during a run, as events: the console prints them as they come, the trace
//! writes them one JSON object per line.

use serde::Serialize;
use serde_json::Value;

use super::llm::{CallStats, Purpose};

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStart {
        objective: String,
        planner_models: Vec<String>,
        executor_model: String,
        tools: Vec<String>,
        config: Value,
    },
    /// Streamed model output (console only; the trace records whole calls instead).
    #[serde(skip)]
    Text { purpose: Purpose, text: String },
    /// A plan was adopted (the first, after a review, or after a replan).
    Plan {
        steps: Vec<String>,
        source: PlanSource,
        /// With several planners: every candidate and the index chosen.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        candidates: Vec<PlanCandidate>,
        #[serde(skip_serializing_if = "Option::is_none")]
        chosen: Option<usize>,
    },
    StepStart {
        index: usize,
        step: String,
        attempt: usize,
    },
    LlmCall {
        purpose: Purpose,
        model: String,
        #[serde(flatten)]
        stats: CallStats,
        output: String,
    },
    Action {
        step: usize,
        thought: String,
        tool: String,
        input: Value,
    },
    Observation {
        step: usize,
        tool: String,
        text: String,
        error: bool,
        truncated: bool,
        elapsed_secs: f64,
    },
    StepEnd {
        index: usize,
        status: StepStatus,
        result: String,
    },
    Retry {
        index: usize,
        attempt: usize,
        reason: String,
    },
    Replan {
        reason: String,
        steps: Vec<String>,
    },
    Human {
        kind: String,
        text: String,
    },
    Final {
        answer: String,
    },
    RunEnd {
        status: RunStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        budget: Option<Budget>,
        final_answer: Option<String>,
        secs: f64,
    },
}

/// Where a plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    Planner,
    Human,
    Replanner,
}

/// One proposal of a multi-planner run.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCandidate {
    pub model: String,
    pub seed: u64,
    pub steps: Vec<String>,
    pub raw: String,
    /// Why it could not be used, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Done,
    Failed,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Answered,
    BudgetExhausted,
    Rejected,
    /// Stopped from outside (Ctrl-C, a host program) before it ended.
    Interrupted,
    Error,
}

/// Which budget ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    Steps,
    Replans,
    Tokens,
    Time,
}

impl Event {
    /// The name the trace gives this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RunStart { .. } => "run_start",
            Self::Text { .. } => "text",
            Self::Plan { .. } => "plan",
            Self::StepStart { .. } => "step_start",
            Self::LlmCall { .. } => "llm_call",
            Self::Action { .. } => "action",
            Self::Observation { .. } => "observation",
            Self::StepEnd { .. } => "step_end",
            Self::Retry { .. } => "retry",
            Self::Replan { .. } => "replan",
            Self::Human { .. } => "human",
            Self::Final { .. } => "final",
            Self::RunEnd { .. } => "run_end",
        }
    }
}

/// Receives events as they happen.
pub trait Observer: Send + Sync {
    fn on_event(&self, event: &Event);
}

/// Discards events.
pub struct Silent;

impl Observer for Silent {
    fn on_event(&self, _: &Event) {}
}
