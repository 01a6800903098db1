//! Model calls as the runner makes them: budget checks, a thread of their own, streamed text
//! and a trace event per call, token accounting per model.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::budget::Budgets;
use super::events::{Budget, Event, Observer};
use super::llm::{Llm, LlmRequest, LlmResponse};
use super::Error;

/// Why a run ends without an answer: what `?` carries up the loop to the run's end, where
/// each becomes a [`RunStatus`](super::events::RunStatus).
#[derive(Debug)]
pub(crate) enum Halt {
    /// A budget ran out.
    Budget(Budget),
    /// The supervisor rejected a plan.
    Rejected,
    /// Someone asked the run to stop ([`super::Interrupt`]).
    Interrupted,
    /// A model, template or parse failure.
    Error(Error),
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Self::Error(e)
    }
}

/// Tokens one model spent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelUsage {
    /// Model calls made.
    pub calls: usize,
    /// Prompt tokens, including the reused ones.
    pub prompt_tokens: usize,
    /// Prompt tokens served from the KV cache instead of recomputed.
    pub reused_tokens: usize,
    /// Of the reused tokens, those copied from another role's session.
    pub adopted_tokens: usize,
    /// Tokens generated, including forced ones.
    pub generated_tokens: usize,
    /// Generated tokens the grammar forced (fed without sampling).
    pub forced_tokens: usize,
    /// Seconds spent in calls, from request to reply.
    pub secs: f64,
}

/// Per-model usage, keyed by model name and role (`planner`, `executor`).
pub type Usage = BTreeMap<String, ModelUsage>;

/// How much of a run's prompts came from the KV cache, counted from its second model call
/// on: the first call of a run may find nothing cached, every later one should find the
/// system text, the tools and the objective at least.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct PrefixReuse {
    /// Model calls after the first.
    pub calls: usize,
    /// Their prompt tokens.
    pub prompt_tokens: usize,
    /// Of those, tokens served from a cache instead of computed.
    pub reused_tokens: usize,
    /// Of the reused, tokens copied from another role's session.
    pub adopted_tokens: usize,
    /// `reused_tokens / prompt_tokens` (0 without such calls).
    pub ratio: f64,
}

impl PrefixReuse {
    /// Counts one call; the run's first call (`first`) is left out.
    fn add(&mut self, first: bool, stats: &super::llm::CallStats) {
        if first {
            return;
        }
        self.calls += 1;
        self.prompt_tokens += stats.prompt_tokens;
        self.reused_tokens += stats.reused_tokens;
        self.adopted_tokens += stats.adopted_tokens;
        self.ratio = if self.prompt_tokens == 0 { 0.0 } else { self.reused_tokens as f64 / self.prompt_tokens as f64 };
    }
}

/// Makes model calls for one run.
#[derive(Clone)]
pub(crate) struct Caller {
    pub observer: Arc<dyn Observer>,
    pub budgets: Arc<Mutex<Budgets>>,
    pub usage: Arc<Mutex<Usage>>,
    /// Cache reuse from the run's second call on.
    pub reuse: Arc<Mutex<PrefixReuse>>,
    /// The last observation that was not an error, even from a step still running: what a
    /// run cut short by a budget can still offer.
    pub last_observation: Arc<Mutex<Option<String>>>,
    pub interrupt: super::Interrupt,
}

impl Caller {
    /// Calls `llm` (as `role`) off the async threads, unless a budget is spent.
    pub async fn call(&self, llm: &Arc<dyn Llm>, role: &str, mut req: LlmRequest) -> Result<LlmResponse, Halt> {
        self.check_interrupt()?;
        {
            let b = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(spent) = b.exhausted() {
                return Err(Halt::Budget(spent));
            }
            req.max_tokens = b.tokens_for_call(req.max_tokens);
            if req.max_tokens == 0 {
                return Err(Halt::Budget(Budget::Tokens));
            }
        }
        let llm2 = llm.clone();
        let observer = self.observer.clone();
        let purpose = req.purpose;
        let req2 = req.clone();
        let resp = tokio::task::spawn_blocking(move || {
            llm2.complete(&req2, &mut |text| {
                observer.on_event(&Event::Text {
                    purpose,
                    text: text.to_string(),
                });
            })
        })
        .await
        .map_err(|e| Halt::Error(Error::Llm(format!("the model thread failed: {e}"))))??;
        {
            let mut b = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
            b.tokens += resp.stats.generated_tokens;
            let mut u = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            let first = u.values().all(|m| m.calls == 0);
            self.reuse.lock().unwrap_or_else(|e| e.into_inner()).add(first, &resp.stats);
            let entry = u.entry(format!("{role}:{}", llm.name())).or_default();
            entry.calls += 1;
            entry.prompt_tokens += resp.stats.prompt_tokens;
            entry.reused_tokens += resp.stats.reused_tokens;
            entry.adopted_tokens += resp.stats.adopted_tokens;
            entry.generated_tokens += resp.stats.generated_tokens;
            entry.forced_tokens += resp.stats.forced_tokens;
            entry.secs += resp.stats.total_secs;
        }
        self.observer.on_event(&Event::LlmCall {
            purpose,
            model: llm.name().to_string(),
            stats: resp.stats.clone(),
            output: resp.text.clone(),
        });
        // A call that finished after a stop was asked for is not acted upon.
        self.check_interrupt()?;
        // A reply cut by the token budget cannot be parsed: that is the budget's doing.
        if resp.stats.stop_reason == super::llm::CallStop::MaxTokens {
            let b = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
            if b.limits.max_tokens.is_some_and(|m| b.tokens >= m) {
                return Err(Halt::Budget(Budget::Tokens));
            }
        }
        Ok(resp)
    }

    /// `Err(Halt::Interrupted)` once a stop was asked for: the check at each safe point.
    pub fn check_interrupt(&self) -> Result<(), Halt> {
        if self.interrupt.is_triggered() {
            Err(Halt::Interrupted)
        } else {
            Ok(())
        }
    }

    pub fn emit(&self, e: Event) {
        self.observer.on_event(&e);
    }

    pub fn budgets(&self) -> std::sync::MutexGuard<'_, Budgets> {
        self.budgets.lock().unwrap_or_else(|e| e.into_inner())
    }
}
