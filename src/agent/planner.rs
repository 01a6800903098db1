//! The planner: objective and tools in, a numbered plan out, by grammar.

use serde::{Deserialize, Serialize};

use crate::decode::SamplingParams;

use super::grammars::{self, Limits};
use super::llm::{CallStats, Llm, LlmRequest, Purpose};
use super::parse;
use super::prompt::PromptContext;
use super::templates::Templates;
use super::Error;

/// How the planner writes its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannerKind {
    /// `1. Use <tool> to …\n2. …`, each step copying the next clauses of the objective: the
    /// model chooses where steps begin and their tools (the default; what a small model does
    /// best).
    #[default]
    Numbered,
    /// `1. Use <tool> to …\n2. …` with each step in the planner's own words.
    Free,
    /// `{"steps": ["…", …]}` by JSON schema.
    Json,
    /// ReWOO: the whole tool program (`#E1 = tool[{…}]` lines) in one call, run without a
    /// model call per step, then one solver call for the answer.
    Rewoo,
}

/// A plan and how it was made.
#[derive(Debug, Clone, Serialize)]
pub struct PlanOutput {
    /// The steps, in order, as the parser read them from the text.
    pub steps: Vec<String>,
    /// The text as generated.
    pub raw: String,
    /// Tokens and time of the model call that wrote it.
    pub stats: CallStats,
}

/// Writes plans.
#[derive(Debug, Clone)]
pub struct Planner {
    /// Which plan format is asked for and parsed.
    pub kind: PlannerKind,
    /// Most steps and characters per step (the plan grammar enforces them).
    pub limits: Limits,
    /// Most tokens a plan may take (the grammar bounds it too).
    pub max_tokens: usize,
}

impl Planner {
    /// A planner of `kind`, its token budget sized to the longest plan `limits` allow.
    pub fn new(kind: PlannerKind, limits: Limits) -> Self {
        // Room for every step at its longest, at ~2 characters a token, plus numbering.
        let max_tokens = limits.max_steps * (limits.max_step_chars / 2 + 8) + 32;
        Self { kind, limits, max_tokens }
    }

    /// The request for a plan for `ctx.objective`.
    pub fn request(&self, templates: &Templates, ctx: &PromptContext, sampling: &SamplingParams) -> Result<LlmRequest, Error> {
        let grammar = match self.kind {
            PlannerKind::Numbered => grammars::plan(templates, &ctx.tools, &self.limits, &ctx.objective, true)?,
            PlannerKind::Free => grammars::plan(templates, &ctx.tools, &self.limits, &ctx.objective, false)?,
            PlannerKind::Json => grammars::plan_json(templates, &self.limits)?,
            PlannerKind::Rewoo => return super::rewoo::plan_request(templates, ctx, &self.limits, sampling),
        };
        Ok(LlmRequest {
            purpose: Purpose::Plan,
            messages: ctx.messages(templates, "planner.jinja")?,
            assistant_prefix: String::new(),
            grammar: Some(grammar),
            sampling: sampling.clone(),
            max_tokens: self.max_tokens,
        })
    }

    /// The steps of a plan as the model wrote it.
    pub fn parse(&self, text: &str) -> Result<Vec<String>, Error> {
        match self.kind {
            PlannerKind::Numbered | PlannerKind::Free => parse::plan(text, self.limits.max_steps),
            PlannerKind::Json => parse::plan_json(text, self.limits.max_steps),
            PlannerKind::Rewoo => super::rewoo::parse_program(text, self.limits.max_steps),
        }
    }

    /// Asks `llm` for a plan for `ctx.objective`.
    pub fn plan(
        &self,
        llm: &dyn Llm,
        templates: &Templates,
        ctx: &PromptContext,
        sampling: &SamplingParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<PlanOutput, Error> {
        let resp = llm.complete(&self.request(templates, ctx, sampling)?, on_text)?;
        Ok(PlanOutput {
            steps: self.parse(&resp.text)?,
            raw: resp.text,
            stats: resp.stats,
        })
    }
}
