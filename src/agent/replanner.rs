//! The replanner: after each step, continue, replace the remaining plan, or answer.

use std::sync::Arc;

use crate::decode::SamplingParams;

use super::calls::{Caller, Halt};
use super::grammars::{self, Limits};
use super::llm::{Llm, LlmRequest, Purpose};
use super::parse::{self, Decision};
use super::prompt::PromptContext;
use super::templates::Templates;

/// Asks for a decision. `can_continue` is false when no steps remain (or the last step
/// failed), and the grammar then offers only a new plan or the answer. `can_answer` is false
/// while steps remain that use earlier results (`#E1` …): the result so far is an
/// intermediate one, and answering with it is the classic multi-step failure.
// The decision needs the run's caller, model, templates, limits, sampling and context, and the
// two choices the grammar offers: a struct for one call site would only rename them.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn decide(
    caller: &Caller,
    llm: &Arc<dyn Llm>,
    templates: &Templates,
    limits: &Limits,
    sampling: &SamplingParams,
    ctx: &PromptContext,
    can_continue: bool,
    can_answer: bool,
) -> Result<Decision, Halt> {
    // Each step's result, then its observations, most recent step first.
    let texts = ctx.past_steps.iter().rev().filter(|s| !s.failed).flat_map(|s| {
        std::iter::once(s.result.as_str()).chain(s.actions.iter().rev().filter(|a| !a.error).map(|a| a.observation.as_str()))
    });
    let choices = if can_answer { grammars::answer_choices(texts, limits) } else { Vec::new() };
    let req = LlmRequest {
        purpose: Purpose::Replan,
        messages: ctx.messages(templates, "replanner.jinja")?,
        assistant_prefix: String::new(),
        grammar: Some(grammars::replan(templates, &ctx.tools, limits, &choices, can_continue, &ctx.objective)?),
        sampling: sampling.clone(),
        max_tokens: limits.max_steps * (limits.max_step_chars / 2 + 8) + limits.max_answer_chars + 32,
    };
    let resp = caller.call(llm, "planner", req).await?;
    Ok(parse::decision(&resp.text, limits.max_steps)?)
}
