//! Decoding: prompt ids → generated tokens and text, optionally under a grammar.
//!
//! [`Engine::generate`] owns the loop: prefill (reusing the session's cached prefix), then per
//! step forced tokens or mask → sample → commit → stop checks. It knows nothing of agents.

pub mod constraint;
pub mod sampling;
pub mod session;
pub mod stream;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::Model;

pub use constraint::{Constraint, Grammar, GrammarFactory};
pub use sampling::{Sampler, SamplingParams};
pub use session::{Session, SessionSnapshot};
use stream::{StopStrings, Utf8Stream};

/// Errors of the decoding layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No tokens to feed: the prompt is empty.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The prompt alone fills the context.
    #[error("the prompt has {tokens} tokens, which leaves no room in the context of {context}")]
    PromptTooLong {
        /// Tokens in the prompt.
        tokens: usize,
        /// The session's context length, in tokens.
        context: usize,
    },
    /// A grammar failed to compile, or generation broke it (no token allowed, a token past its
    /// end).
    #[error("grammar: {0}")]
    Grammar(String),
    /// The model failed (loading, a forward pass, the tokenizer).
    #[error(transparent)]
    Model(#[from] crate::model::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Self::Model(e.into())
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum StopReason {
    /// The model produced an end token (EOS or end of turn).
    EndToken(u32),
    /// A stop string appeared; it is not part of the text.
    StopString(String),
    /// The token budget ran out.
    MaxTokens,
    /// The context is full.
    ContextFull,
    /// The grammar is complete and admits nothing more.
    GrammarComplete,
}

impl StopReason {
    /// Whether the output ended by itself rather than by a limit.
    pub fn is_natural(&self) -> bool {
        matches!(self, Self::EndToken(_) | Self::StopString(_) | Self::GrammarComplete)
    }

    /// A short name for reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EndToken(_) => "end_token",
            Self::StopString(_) => "stop_string",
            Self::MaxTokens => "max_tokens",
            Self::ContextFull => "context_full",
            Self::GrammarComplete => "grammar_complete",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Most tokens to generate, forced ones included.
    pub max_tokens: usize,
    /// How tokens are chosen.
    pub sampling: SamplingParams,
    /// Strings that end the output (not included in it).
    pub stop_strings: Vec<String>,
    /// A grammar the output must match.
    pub grammar: Option<Grammar>,
}

impl Default for GenerateRequest {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            stop_strings: Vec::new(),
            grammar: None,
        }
    }
}

/// Timings and counts of one generation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GenerationStats {
    /// Tokens in the prompt, including the reused ones.
    pub prompt_tokens: usize,
    /// Prompt tokens found in the session's cache and not recomputed.
    pub reused_tokens: usize,
    /// Seconds spent computing the prompt's new tokens.
    pub prefill_secs: f64,
    /// Tokens generated (forced ones included; the end token is not).
    pub generated_tokens: usize,
    /// Generated tokens the grammar forced (fed in multi-token forwards, never sampled).
    pub forced_tokens: usize,
    /// Seconds spent generating, after the prompt (mask time included).
    pub decode_secs: f64,
    /// Time spent computing grammar masks.
    pub mask_secs: f64,
}

impl GenerationStats {
    /// Prompt tokens computed per second.
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        per_sec(self.prompt_tokens - self.reused_tokens, self.prefill_secs)
    }

    /// Generated tokens per second.
    pub fn decode_tokens_per_sec(&self) -> f64 {
        per_sec(self.generated_tokens, self.decode_secs)
    }
}

fn per_sec(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// The result of a generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The generated text, stop string excluded.
    pub text: String,
    /// The generated token ids (forced ones included, the end token excluded).
    pub tokens: Vec<u32>,
    /// Why generation ended.
    pub stop_reason: StopReason,
    /// Token counts and timings.
    pub stats: GenerationStats,
}

/// A model with what decoding needs beside it (the grammar factory, built on first use).
pub struct Engine {
    model: Arc<Model>,
    grammars: OnceLock<Result<GrammarFactory, String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("model", &self.model).finish()
    }
}

impl Engine {
    /// An engine for `model`; the grammar factory is built on first use.
    pub fn new(model: Arc<Model>) -> Self {
        Self {
            model,
            grammars: OnceLock::new(),
        }
    }

    /// The model this engine runs.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// A fresh session on this engine's model.
    pub fn session(&self) -> Session {
        Session::new(&self.model)
    }

    /// The grammar factory of this model's tokenizer.
    pub fn grammars(&self) -> Result<&GrammarFactory, Error> {
        self.grammars
            .get_or_init(|| {
                GrammarFactory::new(
                    self.model.tokenizer_arc(),
                    self.model.end_tokens(),
                    self.model.logits_width(),
                )
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Grammar(e.clone()))
    }

    /// Generates from `prompt` in `session`, calling `on_text` with each piece of text as it
    /// becomes printable (whole characters; stop strings never shown).
    pub fn generate(
        &self,
        session: &mut Session,
        prompt: &[u32],
        req: &GenerateRequest,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, Error> {
        let model = &*self.model;
        let mut constraint = match &req.grammar {
            Some(g) => Some(self.grammars()?.compile(g)?),
            None => None,
        };
        let mut stats = GenerationStats {
            prompt_tokens: prompt.len(),
            ..Default::default()
        };
        let t0 = Instant::now();
        let (mut logits, reused) = session.prefill(model, prompt)?;
        stats.reused_tokens = reused;
        stats.prefill_secs = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mut mask_time = Duration::ZERO;
        let mut sampler = Sampler::new(req.sampling.clone());
        let mut utf8 = Utf8Stream::default();
        let mut stops = StopStrings::new(req.stop_strings.clone());
        let mut text = String::new();
        let mut tokens: Vec<u32> = Vec::new();
        let end_tokens = model.end_tokens();
        let context = session.context_length();

        // Shows `ids`' text; returns the stop string if one completed.
        let mut emit = |ids: &[u32], text: &mut String| -> Option<String> {
            let mut piece = String::new();
            for &id in ids {
                piece.push_str(&utf8.push(model.tokenizer().token_bytes(id)));
            }
            let check = stops.push(&piece);
            if !check.emit.is_empty() {
                on_text(&check.emit);
                text.push_str(&check.emit);
            }
            check.stopped
        };

        let stop_reason = loop {
            if tokens.len() >= req.max_tokens {
                break StopReason::MaxTokens;
            }
            if let Some(c) = constraint.as_mut() {
                let tm = Instant::now();
                let mut forced = c.forced_tokens()?;
                mask_time += tm.elapsed();
                if !forced.is_empty() {
                    // Never past the budget or the context.
                    let room = (req.max_tokens - tokens.len()).min(context.saturating_sub(session.tokens().len() + 1));
                    forced.truncate(room);
                    if forced.is_empty() {
                        break StopReason::ContextFull;
                    }
                    tokens.extend_from_slice(&forced);
                    stats.forced_tokens += forced.len();
                    if let Some(s) = emit(&forced, &mut text) {
                        break StopReason::StopString(s);
                    }
                    if c.is_stopped() {
                        break StopReason::GrammarComplete;
                    }
                    logits = session.feed(model, &forced)?;
                    continue;
                }
                if c.is_stopped() {
                    break StopReason::GrammarComplete;
                }
                let tm = Instant::now();
                c.apply_mask(&mut logits)?;
                mask_time += tm.elapsed();
            }
            let history = session.tokens();
            let Some(tok) = sampler.sample(&mut logits, history) else {
                return Err(Error::Grammar("no token is allowed here".into()));
            };
            if end_tokens.contains(&tok) {
                break StopReason::EndToken(tok);
            }
            if let Some(c) = constraint.as_mut() {
                c.commit(tok)?;
            }
            tokens.push(tok);
            if let Some(s) = emit(&[tok], &mut text) {
                break StopReason::StopString(s);
            }
            if constraint.as_ref().is_some_and(|c| c.is_stopped()) {
                break StopReason::GrammarComplete;
            }
            if tokens.len() >= req.max_tokens {
                break StopReason::MaxTokens;
            }
            if session.tokens().len() + 1 >= context {
                break StopReason::ContextFull;
            }
            logits = session.feed(model, &[tok])?;
        };
        if !matches!(stop_reason, StopReason::StopString(_)) {
            let mut rest = utf8.finish();
            rest.push_str(&stops.finish());
            if !rest.is_empty() {
                on_text(&rest);
                text.push_str(&rest);
            }
        }
        stats.generated_tokens = tokens.len();
        stats.decode_secs = t1.elapsed().as_secs_f64();
        stats.mask_secs = mask_time.as_secs_f64();
        Ok(Generation {
            text,
            tokens,
            stop_reason,
            stats,
        })
    }
}
