//! A model that replays recorded outputs instead of running: each call gets the next
//! `llm_call` output of a trace (`--trace FILE`, or lines written by hand in that form).
//!
//! Why: a recorded run can be reproduced exactly without its model (to debug a tool or a
//! template against what the model really said), and the session, tools and supervisors can
//! be tried and tested without loading weights. Outputs are used as recorded: they are not
//! checked against the call's grammar, so the agent's parsers see them as they are.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;

use serde::Deserialize;

use super::llm::{CallStats, CallStop, Llm, LlmRequest, LlmResponse, Purpose};
use super::Error;

/// Recorded model outputs, handed out in order.
#[derive(Debug)]
pub struct Replay {
    name: String,
    outputs: Mutex<VecDeque<(Purpose, String)>>,
}

/// The part of a trace line a replay needs.
#[derive(Deserialize)]
struct Recorded {
    event: String,
    purpose: Option<Purpose>,
    output: Option<String>,
}

impl Replay {
    /// Reads the `llm_call` events of a trace file; other lines are skipped.
    pub fn from_trace(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the replay `{}`: {e}", path.display())))?;
        let name = format!("replay:{}", path.file_name().map(|f| f.to_string_lossy()).unwrap_or_default());
        Self::from_lines(&name, &text).map_err(|e| Error::Config(format!("replay `{}`: {e}", path.display())))
    }

    /// Reads `llm_call` events from JSON lines.
    pub fn from_lines(name: &str, text: &str) -> Result<Self, String> {
        let mut outputs = VecDeque::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let r: Recorded = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            if r.event != "llm_call" {
                continue;
            }
            match (r.purpose, r.output) {
                (Some(p), Some(o)) => outputs.push_back((p, o)),
                _ => return Err(format!("line {}: an llm_call needs `purpose` and `output`", i + 1)),
            }
        }
        if outputs.is_empty() {
            return Err("it holds no llm_call event".into());
        }
        Ok(Self {
            name: name.to_string(),
            outputs: Mutex::new(outputs),
        })
    }

    /// Outputs not yet replayed.
    pub fn left(&self) -> usize {
        self.outputs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Llm for Replay {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete(&self, req: &LlmRequest, on_text: &mut dyn FnMut(&str)) -> Result<LlmResponse, Error> {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        let Some((purpose, text)) = outputs.pop_front() else {
            return Err(Error::Llm(format!("{}: no recorded output left for this {:?} call", self.name, req.purpose)));
        };
        if purpose != req.purpose {
            return Err(Error::Llm(format!(
                "{}: the next recorded output is for a {purpose:?} call, not this {:?} call (the run has gone another way than the recording)",
                self.name, req.purpose
            )));
        }
        on_text(&text);
        Ok(LlmResponse {
            stats: CallStats {
                generated_tokens: text.split_whitespace().count(),
                stop_reason: CallStop::GrammarComplete,
                ..CallStats::default()
            },
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_llm_calls_in_order_and_says_when_the_run_departs() {
        let trace = concat!(
            r#"{"event":"run_start","objective":"x"}"#,
            "\n",
            r#"{"event":"llm_call","purpose":"plan","model":"m","output":"1. a"}"#,
            "\n",
            r#"{"event":"llm_call","purpose":"execute","output":"Thought: t"}"#,
            "\n"
        );
        let r = Replay::from_lines("r", trace).unwrap();
        assert_eq!(r.left(), 2);
        let req = |purpose| LlmRequest {
            purpose,
            messages: vec![],
            assistant_prefix: String::new(),
            grammar: None,
            sampling: Default::default(),
            max_tokens: 10,
        };
        let mut seen = String::new();
        assert_eq!(r.complete(&req(Purpose::Plan), &mut |t| seen.push_str(t)).unwrap().text, "1. a");
        assert_eq!(seen, "1. a");
        let err = r.complete(&req(Purpose::Replan), &mut |_| {}).err().unwrap().to_string();
        assert!(err.contains("Execute call, not this Replan"), "{err}");
        assert!(r.complete(&req(Purpose::Plan), &mut |_| {}).is_err(), "nothing left");
        assert!(Replay::from_lines("r", r#"{"event":"run_start"}"#).is_err());
        assert!(Replay::from_lines("r", "not json").unwrap_err().starts_with("line 1"));
    }
}
