//! `ask_human`: puts a question to the person at the terminal.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{str_field, Tool, ToolError, ToolFuture, ToolSpec};

/// Someone who can answer questions (the terminal, or a script in tests).
pub trait Human: Send + Sync {
    /// Asks `question`; `None` when no answer can be had (closed input).
    fn ask(&self, question: &str) -> Option<String>;
}

pub struct AskHuman {
    human: Arc<dyn Human>,
    spec: ToolSpec,
}

impl AskHuman {
    pub fn new(human: Arc<dyn Human>) -> Self {
        Self {
            human,
            spec: ToolSpec::new(
                "ask_human",
                "Asks the person at the terminal a question and returns the answer.",
                json!({"type": "object", "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 300}}, "required": ["question"], "additionalProperties": false}),
                json!({"question": "Which file should I read?"}),
            ),
        }
    }
}

impl Tool for AskHuman {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        let human = self.human.clone();
        Box::pin(async move {
            let question = str_field(&input, "question")?.to_string();
            // Reading a terminal blocks: keep it off the async threads.
            let answer = tokio::task::spawn_blocking(move || human.ask(&question))
                .await
                .map_err(|e| ToolError::Failed(format!("asking failed: {e}")))?;
            answer.ok_or_else(|| ToolError::Failed("no answer (input closed)".into()))
        })
    }
}
