//! The values of `--planner`, `--executor` and `--review`.
//!
//! The library's enums know nothing of clap; these mirrors carry the `ValueEnum` derive
//! instead. Their variants and doc comments are the library's, word for word, because clap
//! turns them into the accepted values and the `--help` text. The conversions both ways
//! match every variant, so a variant added on either side fails to compile until the other
//! has it too.

use pae_local::agent::executor::ExecutorKind;
use pae_local::agent::planner::PlannerKind;
use pae_local::agent::Review;

/// How the planner writes its plan ([`PlannerKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlannerArg {
    /// `1. Use <tool> to …\n2. …`, each step copying the next clauses of the objective: the
    /// model chooses where steps begin and their tools (the default; what a small model does
    /// best).
    Numbered,
    /// `1. Use <tool> to …\n2. …` with each step in the planner's own words.
    Free,
    /// `{"steps": ["…", …]}` by JSON schema.
    Json,
    /// ReWOO: the whole tool program (`#E1 = tool[{…}]` lines) in one call, run without a
    /// model call per step, then one solver call for the answer.
    Rewoo,
}

impl From<PlannerArg> for PlannerKind {
    fn from(a: PlannerArg) -> Self {
        match a {
            PlannerArg::Numbered => Self::Numbered,
            PlannerArg::Free => Self::Free,
            PlannerArg::Json => Self::Json,
            PlannerArg::Rewoo => Self::Rewoo,
        }
    }
}

impl From<PlannerKind> for PlannerArg {
    fn from(k: PlannerKind) -> Self {
        match k {
            PlannerKind::Numbered => Self::Numbered,
            PlannerKind::Free => Self::Free,
            PlannerKind::Json => Self::Json,
            PlannerKind::Rewoo => Self::Rewoo,
        }
    }
}

/// How steps are carried out ([`ExecutorKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorArg {
    /// Thought / Action / Observation rounds until a final answer.
    React,
    /// One tool call with JSON arguments, no thought (faster, for simple steps).
    Direct,
}

impl From<ExecutorArg> for ExecutorKind {
    fn from(a: ExecutorArg) -> Self {
        match a {
            ExecutorArg::React => Self::React,
            ExecutorArg::Direct => Self::Direct,
        }
    }
}

impl From<ExecutorKind> for ExecutorArg {
    fn from(k: ExecutorKind) -> Self {
        match k {
            ExecutorKind::React => Self::React,
            ExecutorKind::Direct => Self::Direct,
        }
    }
}

/// When the replanner is asked to continue, replan or answer ([`Review`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReviewArg {
    /// After a failed step, after a supervisor's remark, and at the end of a plan whose last
    /// step gave no one-line result (which is otherwise the answer). A plan's remaining steps
    /// are the rest of the objective: answering before them answers with an intermediate
    /// result, and a 135M replanner asked after every step often does (the default).
    Failures,
    /// After every step (classic plan-and-execute; for models that judge well).
    EveryStep,
}

impl From<ReviewArg> for Review {
    fn from(a: ReviewArg) -> Self {
        match a {
            ReviewArg::Failures => Self::Failures,
            ReviewArg::EveryStep => Self::EveryStep,
        }
    }
}

impl From<Review> for ReviewArg {
    fn from(r: Review) -> Self {
        match r {
            Review::Failures => Self::Failures,
            Review::EveryStep => Self::EveryStep,
        }
    }
}
