//! A decoding session: one KV cache plus the tokens it holds, reused across calls.

use candle_core::Tensor;

use crate::model::{KvCache, KvSnapshot, Logits, Model};

use super::Error;

/// How many prompt tokens one forward call takes at most: bounds the attention scratch
/// (`heads × chunk × context` floats) while keeping matmuls wide enough to be efficient.
pub const DEFAULT_PREFILL_CHUNK: usize = 256;

/// The state of one conversation with a model.
///
/// A new prompt that starts with tokens the session already holds reuses them: the agent's
/// prompts share long prefixes (system text, tool list, earlier steps), so only the new tail
/// is computed.
#[derive(Debug)]
pub struct Session {
    cache: KvCache,
    tokens: Vec<u32>,
    prefill_chunk: usize,
}

/// A saved session state, to return to later.
#[derive(Debug, Clone)]
pub struct SessionSnapshot {
    cache: KvSnapshot,
    tokens: Vec<u32>,
}

impl Session {
    /// An empty session with a fresh KV cache for `model`.
    pub fn new(model: &Model) -> Self {
        Self {
            cache: model.new_cache(),
            tokens: Vec::new(),
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
        }
    }

    /// Sets the largest number of tokens one forward call takes (at least 1).
    pub fn with_prefill_chunk(mut self, chunk: usize) -> Self {
        self.prefill_chunk = chunk.max(1);
        self
    }

    /// The tokens whose keys and values are cached.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The context length of this session.
    pub fn context_length(&self) -> usize {
        self.cache.max_len()
    }

    /// Forgets every cached token.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.tokens.clear();
    }

    /// Keeps only the first `len` tokens.
    pub fn truncate(&mut self, len: usize) {
        self.cache.truncate(len);
        self.tokens.truncate(len);
    }

    /// Saves the cache and its tokens, to [`restore`](Self::restore) later.
    pub fn snapshot(&self) -> Result<SessionSnapshot, Error> {
        Ok(SessionSnapshot {
            cache: self.cache.snapshot().map_err(crate::model::Error::from)?,
            tokens: self.tokens.clone(),
        })
    }

    /// Returns to a state saved by [`snapshot`](Self::snapshot) on a session of the same model.
    pub fn restore(&mut self, snap: &SessionSnapshot) -> Result<(), Error> {
        self.cache.restore(&snap.cache).map_err(crate::model::Error::from)?;
        self.tokens.clone_from(&snap.tokens);
        Ok(())
    }

    /// How many leading tokens of `prompt` this session holds already.
    pub fn common_prefix(&self, prompt: &[u32]) -> usize {
        self.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count()
    }

    /// Replaces this session's state with the first `len` tokens of `other` (a session of the
    /// same model): a copy of their keys and values, far cheaper than computing them.
    pub fn adopt_prefix(&mut self, other: &Session, len: usize) -> Result<(), Error> {
        let len = len.min(other.tokens.len());
        let snap = other.cache.snapshot_prefix(len).map_err(crate::model::Error::from)?;
        self.cache.restore(&snap).map_err(crate::model::Error::from)?;
        self.tokens.clear();
        self.tokens.extend_from_slice(&other.tokens[..len]);
        Ok(())
    }

    /// Brings the session to exactly `prompt` and returns the logits that follow it, with the
    /// number of prompt tokens that were already cached.
    pub fn prefill(&mut self, model: &Model, prompt: &[u32]) -> Result<(Vec<f32>, usize), Error> {
        if prompt.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if prompt.len() >= self.cache.max_len() {
            return Err(Error::PromptTooLong {
                tokens: prompt.len(),
                context: self.cache.max_len(),
            });
        }
        let common = self.common_prefix(prompt);
        // The last prompt token is always recomputed: its logits are what we need.
        let reuse = common.min(prompt.len() - 1);
        self.truncate(reuse);
        let logits = self.feed(model, &prompt[reuse..])?;
        Ok((logits, reuse))
    }

    /// Appends `ids` (in chunks) and returns the logits after the last one.
    pub fn feed(&mut self, model: &Model, ids: &[u32]) -> Result<Vec<f32>, Error> {
        let last = self.feed_with(model, ids, Logits::Last)?;
        Ok(last.squeeze(0)?.to_vec1::<f32>()?)
    }

    /// Appends `ids` and returns the logits of every one of them, `[ids.len(), width]`.
    pub fn feed_all(&mut self, model: &Model, ids: &[u32]) -> Result<Tensor, Error> {
        self.feed_with(model, ids, Logits::All)
    }

    fn feed_with(&mut self, model: &Model, ids: &[u32], which: Logits) -> Result<Tensor, Error> {
        if ids.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        let mut outs = Vec::new();
        for chunk in ids.chunks(self.prefill_chunk) {
            let logits = model.forward(chunk, &mut self.cache, which)?;
            self.tokens.extend_from_slice(chunk);
            outs.push(logits);
        }
        Ok(match which {
            Logits::Last => outs.pop().expect("at least one chunk"),
            Logits::All => Tensor::cat(&outs, 0)?,
        })
    }
}
