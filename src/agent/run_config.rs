//! What shapes a run besides its models and tools: the settings an [`Agent`](super::Agent)
//! is built with. They are plain data that front ends fill in and every run records in its
//! first event, so they live apart from the loop that reads them.

use serde::Serialize;

use crate::decode::SamplingParams;

use super::budget::BudgetLimits;
use super::executor::ExecutorConfig;
use super::grammars::Limits;
use super::planner::PlannerKind;

/// When the replanner is asked to continue, replan or answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    /// After a failed step, after a supervisor's remark, and at the end of a plan whose last
    /// step gave no one-line result (which is otherwise the answer). A plan's remaining steps
    /// are the rest of the objective: answering before them answers with an intermediate
    /// result, and a 135M replanner asked after every step often does (the default).
    #[default]
    Failures,
    /// After every step (classic plan-and-execute; for models that judge well).
    EveryStep,
}

/// Everything that shapes a run besides the models and tools.
#[derive(Debug, Clone, Serialize)]
pub struct AgentConfig {
    /// How the planner writes its plan.
    pub planner_kind: PlannerKind,
    /// Bounds of plans and free text (`max_steps` is per plan).
    pub limits: Limits,
    /// How steps are carried out: executor kind, iterations, retries, sampling.
    pub executor: ExecutorConfig,
    /// Limits of the whole run (steps, replans, tokens, time).
    pub budgets: BudgetLimits,
    /// Sampling of the planner, replanner and ReWOO solver calls (the judge is greedy); extra
    /// plan samples and new ReWOO programs vary its seed.
    pub planner_sampling: SamplingParams,
    /// Plans sampled per planner model (seeds `seed`, `seed + 1`, …).
    pub plan_samples: usize,
    /// Let a model choose among candidate plans instead of the rule.
    pub plan_judge: bool,
    /// Show each plan to the supervisor before it runs.
    pub approve_plan: bool,
    /// Ask the supervisor for a remark after each step.
    pub feedback: bool,
    /// System text of every prompt.
    pub persona: String,
    /// When the replanner decides.
    pub review: Review,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            planner_kind: PlannerKind::Numbered,
            limits: Limits::default(),
            executor: ExecutorConfig::default(),
            budgets: BudgetLimits::default(),
            planner_sampling: SamplingParams::greedy(),
            plan_samples: 1,
            plan_judge: false,
            approve_plan: false,
            feedback: false,
            persona: String::new(),
            review: Review::default(),
        }
    }
}
