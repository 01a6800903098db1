//! The agent's view of a model: messages (and an assistant prefix to continue) in, text out.
//!
//! [`Llm`] is what the planner, executor and replanner call; [`LocalLlm`] runs a GGUF model
//! in-process, and tests script a fake one. Calls are blocking: the runner makes them on
//! threads of their own, never on the async tool runtime.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::decode::{Engine, GenerateRequest, Grammar, SamplingParams, SharedSession};
use crate::model::Message;

use super::Error;

/// Which part of the agent a call serves (for traces and scripted models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Writing the plan.
    Plan,
    /// Carrying out a step (choosing and calling tools).
    Execute,
    /// Deciding after a step: continue, replan or answer.
    Replan,
    /// Choosing among candidate plans.
    Judge,
    /// The ReWOO solver: the answer from the evidence.
    Solve,
}

/// One request to a model.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    /// What the call is for.
    pub purpose: Purpose,
    /// The prompt as chat messages (a local model renders them with its chat template).
    pub messages: Vec<Message>,
    /// Text the reply starts with, already written (the ReAct scratchpad so far); the model
    /// continues it and the response holds only the continuation.
    pub assistant_prefix: String,
    /// A grammar the reply must match; `None` lets the model write freely.
    pub grammar: Option<Grammar>,
    /// How tokens are chosen.
    pub sampling: SamplingParams,
    /// Most tokens the reply may have (the token budget can lower it).
    pub max_tokens: usize,
}

/// Token counts and timings of one call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallStats {
    /// Tokens in the prompt, including the reused ones.
    pub prompt_tokens: usize,
    /// Prompt tokens found in the session's cache and not recomputed.
    pub reused_tokens: usize,
    /// Of the reused tokens, those copied from another role's session of the same model.
    pub adopted_tokens: usize,
    /// Tokens in the reply, including forced ones.
    pub generated_tokens: usize,
    /// Generated tokens forced by the grammar (fed without sampling).
    pub forced_tokens: usize,
    /// Seconds spent computing the prompt.
    pub prefill_secs: f64,
    /// Seconds spent generating the reply.
    pub decode_secs: f64,
    /// Seconds the whole call took, from the request to the reply.
    pub total_secs: f64,
    /// Why the reply ended.
    pub stop_reason: CallStop,
}

/// Why a model call stopped: what the agent branches on (a reply cut by the token limit
/// cannot parse). Serialized as before, `"max_tokens"` and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStop {
    /// The model wrote an end token.
    EndToken,
    /// A stop string appeared.
    StopString,
    /// The reply reached its token limit (so it is probably cut short).
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The grammar admits nothing more (what scripted models report).
    #[default]
    GrammarComplete,
}

impl From<&crate::decode::StopReason> for CallStop {
    fn from(r: &crate::decode::StopReason) -> Self {
        use crate::decode::StopReason as R;
        match r {
            R::EndToken(_) => Self::EndToken,
            R::StopString(_) => Self::StopString,
            R::MaxTokens => Self::MaxTokens,
            R::ContextFull => Self::ContextFull,
            R::GrammarComplete => Self::GrammarComplete,
        }
    }
}

/// A model's reply.
#[derive(Debug, Clone)]
pub struct LlmResponse {
    /// The reply's text (the continuation of any assistant prefix).
    pub text: String,
    /// Token counts and timings of the call.
    pub stats: CallStats,
}

/// A language model the agent can call.
pub trait Llm: Send + Sync {
    /// A short name for traces (the model file).
    fn name(&self) -> &str;

    /// Completes `req`, calling `on_text` as text is produced.
    fn complete(&self, req: &LlmRequest, on_text: &mut dyn FnMut(&str)) -> Result<LlmResponse, Error>;
}

/// A GGUF model run in-process, with a session of its own.
///
/// Several `LocalLlm`s can share one [`Engine`] (one loaded model): each keeps its own KV
/// cache, so the planner's and the executor's prompt prefixes are both kept, and a call
/// starts from whichever of them holds more of its prompt ([`Engine::generate_shared`]).
pub struct LocalLlm {
    engine: Arc<Engine>,
    session: SharedSession,
    name: String,
}

impl LocalLlm {
    /// A model on `engine`, named after its file, with a fresh session.
    pub fn new(engine: Arc<Engine>) -> Self {
        let session = engine.shared_session();
        let name = engine
            .model()
            .path()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Self { engine, session, name }
    }

    /// The engine this model runs on.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

impl Llm for LocalLlm {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete(&self, req: &LlmRequest, on_text: &mut dyn FnMut(&str)) -> Result<LlmResponse, Error> {
        let t0 = Instant::now();
        let model = self.engine.model();
        let mut text = model.render_chat(&req.messages, true)?;
        text.push_str(&req.assistant_prefix);
        let prompt = model.encode_prompt(&text)?;
        let gen_req = GenerateRequest {
            max_tokens: req.max_tokens,
            sampling: req.sampling.clone(),
            stop_strings: model.template().stop_strings(),
            grammar: req.grammar.clone(),
        };
        let gen = self.engine.generate_shared(&self.session, &prompt, &gen_req, on_text)?;
        let s = &gen.stats;
        Ok(LlmResponse {
            stats: CallStats {
                prompt_tokens: s.prompt_tokens,
                reused_tokens: s.reused_tokens,
                adopted_tokens: s.adopted_tokens,
                generated_tokens: s.generated_tokens,
                forced_tokens: s.forced_tokens,
                prefill_secs: s.prefill_secs,
                decode_secs: s.decode_secs,
                total_secs: t0.elapsed().as_secs_f64(),
                stop_reason: CallStop::from(&gen.stop_reason),
            },
            text: gen.text,
        })
    }
}
