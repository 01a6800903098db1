//! The person in the loop: plan approval (`--approve-plan`) and remarks after each step
//! (`--feedback`).

/// What the person made of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanReview {
    /// Run the plan as it is.
    Accept,
    /// The plan as the person rewrote it.
    Edit(Vec<String>),
    /// Do not run it: the run ends with status `rejected`.
    Reject,
}

/// Someone who reviews plans and comments on steps.
pub trait Supervisor: Send + Sync {
    /// Reviews a plan before it runs (and after each replan).
    fn review_plan(&self, plan: &[String]) -> PlanReview;

    /// A remark after step `index` (1-based), passed to the next prompt; `None` for none.
    fn feedback(&self, index: usize, step: &str, result: &str) -> Option<String>;
}

/// Accepts every plan and has nothing to say (`--yes`).
pub struct AutoApprove;

impl Supervisor for AutoApprove {
    fn review_plan(&self, _: &[String]) -> PlanReview {
        PlanReview::Accept
    }

    fn feedback(&self, _: usize, _: &str, _: &str) -> Option<String> {
        None
    }
}
