//! What happens during a run, as events: the console prints them as they come, the trace
//! writes them one JSON object per line.

use serde::Serialize;
use serde_json::Value;

use super::llm::{CallStats, Purpose};

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run began.
    RunStart {
        /// The objective as given.
        objective: String,
        /// Names of the planner models, in the order they propose plans.
        planner_models: Vec<String>,
        /// Name of the model that carries out the steps.
        executor_model: String,
        /// Names of the tools offered, most relevant to the objective first.
        tools: Vec<String>,
        /// The run's [`AgentConfig`](super::AgentConfig), as JSON.
        config: Value,
    },
    /// Streamed model output (console only; the trace records whole calls instead).
    #[serde(skip)]
    Text {
        /// The call the text belongs to.
        purpose: Purpose,
        /// The next piece of the reply, as it is generated.
        text: String,
    },
    /// A plan was adopted (the first, after a review, or after a replan).
    Plan {
        /// The plan's steps, in order.
        steps: Vec<String>,
        /// Who wrote the plan.
        source: PlanSource,
        /// With several planners: every candidate and the index chosen.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        candidates: Vec<PlanCandidate>,
        /// Index into `candidates` of the plan adopted.
        #[serde(skip_serializing_if = "Option::is_none")]
        chosen: Option<usize>,
    },
    /// An attempt at a step began (once per attempt, so again on each retry).
    StepStart {
        /// Step number in the run, from 1.
        index: usize,
        /// The step's text, as the executor is given it.
        step: String,
        /// Attempt number, from 1.
        attempt: usize,
    },
    /// A model call finished.
    LlmCall {
        /// What the call was for.
        purpose: Purpose,
        /// Name of the model called.
        model: String,
        /// Token counts, timings and stop reason of the call.
        #[serde(flatten)]
        stats: CallStats,
        /// The model's reply text (after any assistant prefix).
        output: String,
    },
    /// A tool call is about to run.
    Action {
        /// Number of the step the call belongs to.
        step: usize,
        /// The executor's Thought line; empty for the direct executor and ReWOO calls.
        thought: String,
        /// Name of the tool to call.
        tool: String,
        /// Tool input as the model wrote it, before `#E` references are replaced.
        input: Value,
    },
    /// A tool call returned.
    Observation {
        /// Number of the step the call belongs to.
        step: usize,
        /// Name of the tool called.
        tool: String,
        /// What the tool returned, cut to the executor's observation token cap.
        text: String,
        /// Whether the tool reported a failure.
        error: bool,
        /// Whether `text` was cut to fit the observation token cap.
        truncated: bool,
        /// Wall-clock seconds the tool call took.
        elapsed_secs: f64,
    },
    /// A step ended, after its last attempt.
    StepEnd {
        /// Step number in the run, from 1.
        index: usize,
        /// Whether the step succeeded.
        status: StepStatus,
        /// The step's result, or why its last attempt failed.
        result: String,
    },
    /// A failed attempt is about to be retried.
    Retry {
        /// Step number in the run, from 1.
        index: usize,
        /// Number of the attempt about to start, from 2.
        attempt: usize,
        /// Why the previous attempt failed.
        reason: String,
    },
    /// The plan was replaced.
    Replan {
        /// Why it was replaced (a failed step, the replanner's choice, the plan running out).
        reason: String,
        /// The replacement plan's steps, before any review by the supervisor.
        steps: Vec<String>,
    },
    /// The supervisor acted.
    Human {
        /// What the supervisor did: `approve`, `edit` or `reject` a plan, or `feedback` after a
        /// step.
        kind: String,
        /// The edited plan (one step a line) or the remark; empty for `approve` and `reject`.
        text: String,
    },
    /// The run has its answer (sent just before `RunEnd`).
    Final {
        /// The final answer.
        answer: String,
    },
    /// The run ended.
    RunEnd {
        /// How it ended.
        status: RunStatus,
        /// Which budget ran out, with status `budget_exhausted`.
        #[serde(skip_serializing_if = "Option::is_none")]
        budget: Option<Budget>,
        /// The answer, or the best result so far when the run ended early; `None` if there was
        /// none.
        final_answer: Option<String>,
        /// Wall-clock seconds the run took.
        secs: f64,
        /// How much of the prompts came from the KV cache, from the second model call on.
        prefix_reuse: super::calls::PrefixReuse,
    },
}

/// Where a plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanSource {
    /// The planner, at the start of the run.
    Planner,
    /// The supervisor, who edited the plan before it ran.
    Human,
    /// The replanner (or a new ReWOO program after a failed call), replacing the plan.
    Replanner,
}

/// One proposal of a multi-planner run.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCandidate {
    /// Name of the planner model that wrote it.
    pub model: String,
    /// Sampling seed it was written with.
    pub seed: u64,
    /// The parsed steps; empty when rejected.
    pub steps: Vec<String>,
    /// The planner's reply as written.
    pub raw: String,
    /// Why it could not be used, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step has its result.
    Done,
    /// Every attempt failed.
    Failed,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The run reached an answer.
    Answered,
    /// A budget ran out before an answer (see [`Budget`]).
    BudgetExhausted,
    /// The supervisor rejected a plan.
    Rejected,
    /// Stopped from outside (Ctrl-C, a host program) before it ended.
    Interrupted,
    /// An error ended the run (a model, template or parse failure).
    Error,
}

/// Which budget ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Steps run ([`max_steps`](super::budget::BudgetLimits::max_steps)).
    Steps,
    /// Plans replaced ([`max_replans`](super::budget::BudgetLimits::max_replans)).
    Replans,
    /// Tokens generated ([`max_tokens`](super::budget::BudgetLimits::max_tokens)).
    Tokens,
    /// Wall-clock time ([`timeout`](super::budget::BudgetLimits::timeout)).
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
    /// Called for each event, in order, on the thread that produced it.
    fn on_event(&self, event: &Event);
}

/// Discards events.
pub struct Silent;

impl Observer for Silent {
    fn on_event(&self, _: &Event) {}
}
