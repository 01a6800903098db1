//! The variables every prompt template sees (see `templates/README.md`).

use serde::Serialize;

use crate::model::Message;

use super::templates::Templates;
use super::tools::ToolSpec;
use super::Error;

/// One tool call and what came of it, as prompts show it.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    pub tool: String,
    pub input: serde_json::Value,
    pub observation: String,
    pub error: bool,
}

/// A finished step, as prompts show it.
#[derive(Debug, Clone, Serialize)]
pub struct PastStep {
    /// The name later steps use for its result (`#E1`).
    pub name: String,
    pub step: String,
    /// The answer of the step, or why it failed.
    pub result: String,
    pub failed: bool,
    pub actions: Vec<ActionView>,
}

/// Everything a prompt template may use. Every field is always present (templates render
/// strictly), empty when it does not apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PromptContext {
    pub objective: String,
    pub tools: Vec<ToolSpec>,
    pub plan: Vec<String>,
    pub step: String,
    pub step_number: usize,
    pub past_steps: Vec<PastStep>,
    pub persona: String,
    pub feedback: String,
    pub failure: String,
    pub max_steps: usize,
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
    pub tool: String,
    /// The input as the planner wrote it (references not substituted).
    pub input: serde_json::Value,
    pub observation: String,
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
