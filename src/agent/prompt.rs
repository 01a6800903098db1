//! The variables every prompt template sees (see `templates/README.md`).

use serde::Serialize;

use crate::model::Message;

use super::templates::Templates;
use super::tools::ToolSpec;
use super::Error;

/// One tool call and what came of it, as prompts show it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    /// Name of the tool called.
    pub tool: String,
    /// The input it was called with.
    pub input: serde_json::Value,
    /// What the tool returned, cut to the observation token cap.
    pub observation: String,
    /// Whether the tool reported a failure.
    pub error: bool,
}

/// A finished step, as prompts show it.
#[derive(Debug, Clone, Serialize)]
pub struct PastStep {
    /// The name later steps use for its result (`#E1`).
    pub name: String,
    /// The step's text.
    pub step: String,
    /// The answer of the step, or why it failed.
    pub result: String,
    /// Whether every attempt at the step failed.
    pub failed: bool,
    /// The tool calls of all its attempts, in order.
    pub actions: Vec<ActionView>,
}

/// Everything a prompt template may use. Every field is always present (templates render
/// strictly), empty when it does not apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PromptContext {
    /// What the user asked.
    pub objective: String,
    /// The tools, most relevant to the objective first, last-resort tools last.
    pub tools: Vec<ToolSpec>,
    /// The current plan's steps.
    pub plan: Vec<String>,
    /// The step being executed (executor prompts).
    pub step: String,
    /// Number of the step being executed, counted from 1 over the whole run.
    pub step_number: usize,
    /// Steps finished so far, in order.
    pub past_steps: Vec<PastStep>,
    /// System text of every prompt (the agent's persona).
    pub persona: String,
    /// The supervisor's remark after the last step, else empty.
    pub feedback: String,
    /// Why the last try failed (the step's previous attempt, or the last step), else empty.
    pub failure: String,
    /// Most steps a plan may have.
    pub max_steps: usize,
    /// Most Thought/Action rounds per attempt at a step.
    pub max_iterations: usize,
    /// Candidate plans, for the judge.
    pub candidates: Vec<Vec<String>>,
    /// Steps of the current plan not yet carried out, for the replanner.
    pub remaining: Vec<String>,
    /// The ReWOO program's results so far, for the solver (and, after a failure, the planner).
    pub evidence: Vec<Evidence>,
}

/// One call of a ReWOO program and what it returned.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// `#E1`, …
    pub name: String,
    /// Name of the tool called.
    pub tool: String,
    /// The input as the planner wrote it (references not substituted).
    pub input: serde_json::Value,
    /// What the tool returned (or why the call failed).
    pub observation: String,
    /// Whether the call failed.
    pub error: bool,
}

impl PromptContext {
    /// The system message and the user message rendered from `template`.
    pub fn messages(&self, templates: &Templates, template: &str) -> Result<Vec<Message>, Error> {
        let system = templates.render("system.jinja", self)?;
        let user = templates.render(template, self)?;
        let mut messages = Vec::with_capacity(2);
        if !system.trim().is_empty() {
            messages.push(Message::system(system.trim().to_string()));
        }
        messages.push(Message::user(user.trim().to_string()));
        Ok(messages)
    }
}
