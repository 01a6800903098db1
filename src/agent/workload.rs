//! Fixed agent workloads for benchmarks: the planner's and the executor's grammars with the
//! prompts they are decoded from, and one built-in task with its workspace. `pae-local bench`
//! and `cargo bench --bench constrained` measure the same things through them.

use std::path::Path;

use super::grammars::{self, Limits};
use super::prompt::PromptContext;
use super::templates::Templates;
use super::tools::ToolSpec;
use super::Error;
use crate::decode::Grammar;
use crate::model::Model;

/// A grammar, the prompt it is decoded from and a token limit: one constrained generation.
#[derive(Debug, Clone)]
pub struct GrammarCase {
    /// What the case is called in results (`plan`, `executor`, …).
    pub name: String,
    /// The grammar the output is constrained to.
    pub grammar: Grammar,
    /// The prompt, as token ids (chat template applied).
    pub prompt: Vec<u32>,
    /// Most tokens generated.
    pub max_tokens: usize,
}

/// The objective of the grammar cases: one a planner turns into several tool steps.
pub const OBJECTIVE: &str = "Read prices.txt, then compute the cost of 4 apples and 2 pears.";

/// The step the executor cases carry out.
pub const STEP: &str = "Use read_file to read prices.txt.";

/// The task `bench --agent` runs: a file to read, then arithmetic on what it says — two tools
/// and at least two model roles, as a typical run has.
pub const AGENT_TASK: &str = OBJECTIVE;

/// Writes the agent task's workspace into `dir`.
pub fn write_workspace(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("prices.txt"), "Fruit prices, per piece:\napple: 3 euros\npear: 5 euros\nplum: 2 euros\n")
}

fn context(tools: &[ToolSpec], limits: &Limits) -> PromptContext {
    PromptContext {
        objective: OBJECTIVE.into(),
        tools: tools.to_vec(),
        plan: vec![STEP.into(), "Use calculator to compute 4 * 3 + 2 * 5.".into()],
        step: STEP.into(),
        step_number: 1,
        max_steps: limits.max_steps,
        max_iterations: 4,
        ..Default::default()
    }
}

fn encode(model: &Model, templates: &Templates, ctx: &PromptContext, template: &str) -> Result<Vec<u32>, Error> {
    let text = model.render_chat(&ctx.messages(templates, template)?, true)?;
    Ok(model.encode_prompt(&text)?)
}

/// The planner writing a plan for [`OBJECTIVE`] with `tools`. With `copy_clauses` (the
/// numbered planner's grammar) most of the plan is the objective's clauses, forced; without
/// (the free planner's) the model writes every step under the grammar, mask by mask.
pub fn plan(model: &Model, templates: &Templates, tools: &[ToolSpec], copy_clauses: bool) -> Result<GrammarCase, Error> {
    let limits = Limits::default();
    Ok(GrammarCase {
        name: if copy_clauses { "plan (clauses)" } else { "plan" }.into(),
        grammar: grammars::plan(templates, tools, &limits, OBJECTIVE, copy_clauses)?,
        prompt: encode(model, templates, &context(tools, &limits), "planner.jinja")?,
        max_tokens: 300,
    })
}

/// The executor on [`STEP`]: choosing an action, or, with `answer_choices` (values an
/// observation offered), after an observation.
pub fn executor(model: &Model, templates: &Templates, tools: &[ToolSpec], answer_choices: &[String]) -> Result<GrammarCase, Error> {
    let limits = Limits::default();
    let after = !answer_choices.is_empty();
    Ok(GrammarCase {
        name: if after { "executor (after obs.)" } else { "executor" }.into(),
        grammar: grammars::executor(templates, tools, &limits, answer_choices, STEP, after, true)?,
        prompt: encode(model, templates, &context(tools, &limits), "executor.jinja")?,
        max_tokens: 300,
    })
}
