//! Decoding: prompt ids → generated tokens and text, optionally under a grammar.
//!
//! [`Engine::generate`] owns the loop: prefill (reusing the session's cached prefix), then per
//! step forced tokens or mask → sample → commit → stop checks. It knows nothing of agents.

pub mod constraint;
pub mod mask_timing;
pub mod sampling;
pub mod session;
pub mod stream;

use std::sync::{Arc, Mutex, OnceLock, Weak};
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
    /// Of the reused tokens, those copied from another session of the same model (another
    /// role's) that held more of this prompt than this session did.
    pub adopted_tokens: usize,
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

/// A model with what decoding needs beside it: the grammar factory (built on first use) and
/// the sessions it lent, whose cached prompts form one prefix cache for every role.
pub struct Engine {
    model: Arc<Model>,
    grammars: OnceLock<Result<GrammarFactory, String>>,
    shared: Mutex<Vec<Weak<Mutex<Session>>>>,
}

/// A session whose cached tokens other sessions of its engine may copy from; see
/// [`Engine::shared_session`].
pub type SharedSession = Arc<Mutex<Session>>;

/// Fewest extra prompt tokens another session must hold before its prefix is copied: below
/// this, computing them costs less than the copy and the bookkeeping.
const MIN_ADOPTED_TOKENS: usize = 16;

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
            shared: Mutex::new(Vec::new()),
        }
    }

    /// A fresh session that takes part in this engine's prefix sharing: a call through
    /// [`Self::generate_shared`] starts from whichever session holds the longest prefix of
    /// its prompt. One per role: the planner's, the executor's and the replanner's prompts
    /// begin alike (system text, tools, objective), so each role's first call starts from the
    /// prefix another role computed.
    pub fn shared_session(&self) -> SharedSession {
        let session = Arc::new(Mutex::new(self.session()));
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.retain(|w| w.strong_count() > 0);
        shared.push(Arc::downgrade(&session));
        session
    }

    /// [`Self::generate`] in a shared session, after copying in the longest prefix of
    /// `prompt` that another shared session of this engine holds, when it is longer than this
    /// session's own. Sessions busy in another call are skipped, never waited for.
    pub fn generate_shared(
        &self,
        session: &SharedSession,
        prompt: &[u32],
        req: &GenerateRequest,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, Error> {
        let mut own = session.lock().unwrap_or_else(|e| e.into_inner());
        let adopted = self.adopt_longest_prefix(session, &mut own, prompt)?;
        let mut generation = self.generate(&mut own, prompt, req, on_text)?;
        generation.stats.adopted_tokens = adopted.min(generation.stats.reused_tokens);
        Ok(generation)
    }

    /// Copies into `own` the longest prefix of `prompt` held by another shared session, if
    /// that is at least [`MIN_ADOPTED_TOKENS`] longer than what `own` holds; returns how
    /// many tokens were copied (0 when none).
    fn adopt_longest_prefix(&self, me: &SharedSession, own: &mut Session, prompt: &[u32]) -> Result<usize, Error> {
        let others: Vec<SharedSession> = {
            let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.iter().filter_map(Weak::upgrade).filter(|s| !Arc::ptr_eq(s, me)).collect()
        };
        // The last prompt token is always recomputed (its logits are needed), so no more
        // than `len - 1` tokens are worth copying.
        let useful = prompt.len().saturating_sub(1);
        let own_len = own.common_prefix(prompt).min(useful);
        let mut source: Option<(&SharedSession, usize)> = None;
        for other in &others {
            let Ok(guard) = other.try_lock() else { continue };
            let common = guard.common_prefix(prompt).min(useful);
            if common >= own_len + MIN_ADOPTED_TOKENS && source.is_none_or(|(_, n)| common > n) {
                source = Some((other, common));
            }
        }
        let Some((other, _)) = source else { return Ok(0) };
        // Measured again under the lock: another call may have changed it since.
        let Ok(guard) = other.try_lock() else { return Ok(0) };
        let len = guard.common_prefix(prompt).min(useful);
        if len < own_len + MIN_ADOPTED_TOKENS {
            return Ok(0);
        }
        own.adopt_prefix(&guard, len)?;
        Ok(len)
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
        let constraint = self.compile_grammar(req)?;
        let (logits, stats) = prefill(model, session, prompt)?;
        let mut run = DecodeLoop::new(model, session, req, constraint, stats, on_text);
        let stop_reason = run.run(logits)?;
        Ok(run.finish(stop_reason))
    }

    /// The request's grammar compiled for this model, before any work is done, so that a bad
    /// grammar fails without spending a prefill.
    fn compile_grammar(&self, req: &GenerateRequest) -> Result<Option<Constraint>, Error> {
        match &req.grammar {
            Some(g) => Ok(Some(self.grammars()?.compile(g)?)),
            None => Ok(None),
        }
    }
}

/// Feeds the prompt (reusing the session's cached prefix) and returns the last position's
/// logits with the prompt's half of the stats, timed apart from decoding so that the two
/// rates in [`GenerationStats`] measure different work.
fn prefill(model: &Model, session: &mut Session, prompt: &[u32]) -> Result<(Vec<f32>, GenerationStats), Error> {
    let mut stats = GenerationStats {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    let t0 = Instant::now();
    let (logits, reused) = session.prefill(model, prompt)?;
    stats.reused_tokens = reused;
    stats.prefill_secs = t0.elapsed().as_secs_f64();
    Ok((logits, stats))
}

/// What one step of the decode loop leads to: the logits for the next step, or the end.
enum Step {
    /// Go on with these logits (of the last fed token).
    Next(Vec<f32>),
    /// Generation is over.
    Stop(StopReason),
}

/// Turns generated ids into shown text: whole UTF-8 characters only, with stop strings held
/// back and cut off, so that `on_text` and the returned text always agree.
struct TextOutput<'a> {
    utf8: Utf8Stream,
    stops: StopStrings,
    text: String,
    on_text: &'a mut dyn FnMut(&str),
}

impl TextOutput<'_> {
    /// Shows `ids`' text; returns the stop string if one completed, since the caller must then
    /// end generation.
    fn emit(&mut self, model: &Model, ids: &[u32]) -> Option<String> {
        let mut piece = String::new();
        for &id in ids {
            piece.push_str(&self.utf8.push(model.tokenizer().token_bytes(id)));
        }
        let check = self.stops.push(&piece);
        if !check.emit.is_empty() {
            (self.on_text)(&check.emit);
            self.text.push_str(&check.emit);
        }
        check.stopped
    }

    /// Shows what was held back (a partial character, a possible stop string's prefix), since
    /// no later token can complete it.
    fn flush(&mut self) {
        let mut rest = self.utf8.finish();
        rest.push_str(&self.stops.finish());
        if !rest.is_empty() {
            (self.on_text)(&rest);
            self.text.push_str(&rest);
        }
    }
}

/// The state of one generation after the prompt, so that each kind of step (forced tokens,
/// a sampled token, the checks that end it) can be its own method.
struct DecodeLoop<'a> {
    model: &'a Model,
    session: &'a mut Session,
    req: &'a GenerateRequest,
    constraint: Option<Constraint>,
    sampler: Sampler,
    output: TextOutput<'a>,
    /// Generated ids, forced ones included.
    tokens: Vec<u32>,
    stats: GenerationStats,
    mask_time: Duration,
    context: usize,
    /// When decoding began, for `decode_secs`.
    started: Instant,
}

impl<'a> DecodeLoop<'a> {
    /// Starts the decode clock first, so that `decode_secs` covers all the setup after the
    /// prompt.
    fn new(
        model: &'a Model,
        session: &'a mut Session,
        req: &'a GenerateRequest,
        constraint: Option<Constraint>,
        stats: GenerationStats,
        on_text: &'a mut dyn FnMut(&str),
    ) -> Self {
        let started = Instant::now();
        let context = session.context_length();
        Self {
            model,
            session,
            req,
            constraint,
            sampler: Sampler::new(req.sampling.clone()),
            output: TextOutput {
                utf8: Utf8Stream::default(),
                stops: StopStrings::new(req.stop_strings.clone()),
                text: String::new(),
                on_text,
            },
            tokens: Vec::new(),
            stats,
            mask_time: Duration::ZERO,
            context,
            started,
        }
    }

    /// Steps from the prompt's logits until something ends generation.
    fn run(&mut self, mut logits: Vec<f32>) -> Result<StopReason, Error> {
        loop {
            match self.step(logits)? {
                Step::Next(next) => logits = next,
                Step::Stop(reason) => return Ok(reason),
            }
        }
    }

    /// One step: the budget check, then either the grammar's forced tokens or one sampled
    /// token, each followed by its stop checks.
    fn step(&mut self, mut logits: Vec<f32>) -> Result<Step, Error> {
        if self.tokens.len() >= self.req.max_tokens {
            return Ok(Step::Stop(StopReason::MaxTokens));
        }
        if let Some(step) = self.constrain(&mut logits)? {
            return Ok(step);
        }
        self.sample(logits)
    }

    /// Applies the grammar, if any: feeds the tokens it forces (a step of their own), ends when
    /// it is complete, or else masks `logits` to the tokens it allows. `None` means: sample.
    fn constrain(&mut self, logits: &mut [f32]) -> Result<Option<Step>, Error> {
        let Some(c) = self.constraint.as_mut() else {
            return Ok(None);
        };
        let tm = Instant::now();
        let forced = c.forced_tokens()?;
        self.mask_time += tm.elapsed();
        if !forced.is_empty() {
            return self.feed_forced(forced).map(Some);
        }
        if c.is_stopped() {
            return Ok(Some(Step::Stop(StopReason::GrammarComplete)));
        }
        let tm = Instant::now();
        c.apply_mask(logits)?;
        self.mask_time += tm.elapsed();
        Ok(None)
    }

    /// Feeds the grammar's forced tokens in one forward pass, cut to the budget and the
    /// context so that neither is ever exceeded.
    fn feed_forced(&mut self, mut forced: Vec<u32>) -> Result<Step, Error> {
        let room = (self.req.max_tokens - self.tokens.len())
            .min(self.context.saturating_sub(self.session.tokens().len() + 1));
        forced.truncate(room);
        if forced.is_empty() {
            return Ok(Step::Stop(StopReason::ContextFull));
        }
        self.tokens.extend_from_slice(&forced);
        self.stats.forced_tokens += forced.len();
        if let Some(s) = self.output.emit(self.model, &forced) {
            return Ok(Step::Stop(StopReason::StopString(s)));
        }
        if self.constraint.as_ref().is_some_and(|c| c.is_stopped()) {
            return Ok(Step::Stop(StopReason::GrammarComplete));
        }
        Ok(Step::Next(self.session.feed(self.model, &forced)?))
    }

    /// Samples one token, commits it (unless it is an end token, which is never part of the
    /// output), and feeds it unless a stop check ends generation first.
    fn sample(&mut self, mut logits: Vec<f32>) -> Result<Step, Error> {
        let Some(tok) = self.sampler.sample(&mut logits, self.session.tokens()) else {
            return Err(Error::Grammar("no token is allowed here".into()));
        };
        if self.model.end_tokens().contains(&tok) {
            return Ok(Step::Stop(StopReason::EndToken(tok)));
        }
        if let Some(c) = self.constraint.as_mut() {
            c.commit(tok)?;
        }
        self.tokens.push(tok);
        if let Some(reason) = self.stop_after(tok) {
            return Ok(Step::Stop(reason));
        }
        Ok(Step::Next(self.session.feed(self.model, &[tok])?))
    }

    /// The checks after a sampled token is committed, in order: its text completed a stop
    /// string, the grammar is complete, the budget is spent, or the context has no room left.
    fn stop_after(&mut self, tok: u32) -> Option<StopReason> {
        if let Some(s) = self.output.emit(self.model, &[tok]) {
            return Some(StopReason::StopString(s));
        }
        if self.constraint.as_ref().is_some_and(|c| c.is_stopped()) {
            return Some(StopReason::GrammarComplete);
        }
        if self.tokens.len() >= self.req.max_tokens {
            return Some(StopReason::MaxTokens);
        }
        if self.session.tokens().len() + 1 >= self.context {
            return Some(StopReason::ContextFull);
        }
        None
    }

    /// Flushes held-back text (unless a stop string cut it) and completes the stats, which
    /// only now know the decode time.
    fn finish(mut self, stop_reason: StopReason) -> Generation {
        if !matches!(stop_reason, StopReason::StopString(_)) {
            self.output.flush();
        }
        self.stats.generated_tokens = self.tokens.len();
        self.stats.decode_secs = self.started.elapsed().as_secs_f64();
        self.stats.mask_secs = self.mask_time.as_secs_f64();
        Generation {
            text: self.output.text,
            tokens: self.tokens,
            stop_reason,
            stats: self.stats,
        }
    }
}
