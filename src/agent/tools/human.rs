//! `ask_human`: puts a question to the person at the terminal.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{blocking, str_field, Cancel, Tool, ToolError, ToolFuture, ToolSpec};

/// Someone who can answer questions (the terminal, or a script in tests).
pub trait Human: Send + Sync {
    /// Asks `question`; `None` when no answer can be had (closed input, or the person
    /// declined). Blocks until answered, or until `cancel` fires: the run stopped or the
    /// question's own time ran out. A cancelled question must leave the input ready for
    /// whoever asks next.
    fn ask(&self, question: &str, cancel: &Cancel) -> Option<String>;
}

/// `ask_human`: puts the model's question to a [`Human`] and returns the answer.
pub struct AskHuman {
    human: Arc<dyn Human>,
    spec: ToolSpec,
    timeout: Option<Duration>,
}

impl AskHuman {
    /// Asks `human`, waiting as long as the person takes.
    pub fn new(human: Arc<dyn Human>) -> Self {
        Self {
            human,
            spec: ToolSpec::new(
                "ask_human",
                "Asks the person at the terminal a question and returns the answer: for what only the person knows.",
                json!({"type": "object", "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 300}}, "required": ["question"], "additionalProperties": false}),
                json!({"question": "Which file should I read?"}),
            )
            .as_last_resort(),
            timeout: None,
        }
    }

    /// Gives up on an answer after `limit` (`--human-timeout`); none by default.
    pub fn with_timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }
}

impl Tool for AskHuman {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn time_limit(&self, _tools_limit: Duration) -> Option<Duration> {
        self.timeout
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        let human = self.human.clone();
        Box::pin(async move {
            let question = str_field(&input, "question")?.to_string();
            // Reading a terminal blocks: keep it off the async threads. Dropping this future
            // (a time limit, a stop) cancels the question.
            blocking(move |cancel| {
                let answer = human.ask(&question, cancel);
                cancel.check()?;
                answer.ok_or_else(|| ToolError::Failed("no answer (input closed)".into()))
            })
            .await
        })
    }
}
