//! Grammar-constrained decoding through llguidance.
//!
//! [`GrammarFactory`] is built once per tokenizer (it holds the token trie, costly for a 262k
//! vocabulary); [`GrammarFactory::compile`] makes a [`Constraint`] per generation. Each step:
//! forced tokens are fed in one forward ([`Constraint::forced_tokens`]), otherwise the mask is
//! applied to the logits before any sampling ([`Constraint::apply_mask`]) and the sampled token
//! is committed ([`Constraint::commit`]).

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};

use crate::model::{TokenKind, Tokenizer};

use super::Error;

/// A grammar in one of the forms the user can give.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// llguidance's Lark syntax.
    Lark(String),
    /// A regular expression the whole output must match.
    Regex(String),
    /// A JSON schema the output must validate against.
    JsonSchema(serde_json::Value),
}

impl Grammar {
    fn to_llguidance(&self) -> TopLevelGrammar {
        match self {
            Self::Lark(s) => TopLevelGrammar::from_lark(s.clone()),
            Self::Regex(r) => TopLevelGrammar::from_regex(r),
            Self::JsonSchema(v) => TopLevelGrammar::from_json_schema(compact_json(v.clone())),
        }
    }

    /// A JSON schema grammar whose output is laid out as `json.dumps` would.
    pub fn json_schema(schema: serde_json::Value) -> Self {
        Self::JsonSchema(schema)
    }

    /// Checks that llguidance can compile the grammar, without a tokenizer: for grammars that
    /// come from outside (a tool server's input schema) and must be refused before any model
    /// is asked to follow them, rather than fail the run at the first generation.
    pub fn check(&self) -> Result<(), Error> {
        let init = llguidance::api::GrammarInit::Serialized(self.to_llguidance());
        match init.validate(None, llguidance::api::ParserLimits::default()).into_error() {
            None => Ok(()),
            Some(e) => Err(Error::Grammar(e)),
        }
    }
}

/// Asks llguidance for JSON laid out as Python's `json.dumps` writes it (`", "`, `": "`, no
/// other whitespace), unless the schema says otherwise in its own `x-guidance`. Flexible
/// whitespace lets a small model wander through newlines and spaces for dozens of tokens.
pub fn compact_json(mut schema: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.entry("x-guidance").or_insert_with(|| {
            serde_json::json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "})
        });
    }
    schema
}

/// Our tokenizer as llguidance sees it.
///
/// `toktrie_hf_tokenizers` would do this for a `tokenizers::Tokenizer`, but it pins another
/// major version of `tokenizers` than candle uses, and our byte table already exists.
struct TokenizerBridge {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for TokenizerBridge {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        let text = String::from_utf8_lossy(s);
        // Grammar text is plain text: control tokens inside it are not parsed as specials.
        self.tokenizer.encode(&text, false, false).unwrap_or_default()
    }
}

/// Compiles grammars for one tokenizer. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct GrammarFactory {
    factory: Arc<ParserFactory>,
    end_tokens: Arc<Vec<u32>>,
}

impl std::fmt::Debug for GrammarFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammarFactory").field("end_tokens", &self.end_tokens).finish()
    }
}

impl GrammarFactory {
    /// Builds the token trie for `tokenizer`, padded to `logits_width` (some models have more
    /// logits than vocabulary entries). `end_tokens` end a generation once the grammar accepts.
    pub fn new(tokenizer: Arc<Tokenizer>, end_tokens: &[u32], logits_width: usize) -> Result<Self, Error> {
        let n = tokenizer.vocab_size().max(logits_width);
        let mut words: Vec<Vec<u8>> = Vec::with_capacity(n);
        for id in 0..n as u32 {
            let bytes = if (id as usize) < tokenizer.vocab_size() {
                let b = tokenizer.token_bytes(id);
                match tokenizer.kind(id) {
                    // llguidance spells special tokens as 0xFF + their text.
                    TokenKind::Control | TokenKind::Unknown | TokenKind::Unused => {
                        let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                        w.extend_from_slice(b);
                        w
                    }
                    _ => b.to_vec(),
                }
            } else {
                Vec::new()
            };
            words.push(bytes);
        }
        let eos = end_tokens
            .first()
            .copied()
            .or(tokenizer.eos())
            .ok_or_else(|| Error::Grammar("the model has no end-of-sequence token".into()))?;
        let mut info = TokRxInfo::new(n as u32, eos);
        info.tok_bos = tokenizer.bos();
        let trie = TokTrie::from(&info, &words).with_eos_tokens(end_tokens);
        let env: TokEnv = Arc::new(TokenizerBridge { trie, tokenizer });
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| Error::Grammar(e.to_string()))?;
        factory.quiet();
        Ok(Self {
            factory: Arc::new(factory),
            end_tokens: Arc::new(end_tokens.to_vec()),
        })
    }

    /// Compiles `grammar`; a syntax error comes back with its line and column.
    pub fn compile(&self, grammar: &Grammar) -> Result<Constraint, Error> {
        let parser = self
            .factory
            .create_parser(grammar.to_llguidance())
            .map_err(|e| Error::Grammar(e.to_string()))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(Error::Grammar(e));
        }
        Ok(Constraint {
            matcher,
            end_tokens: self.end_tokens.clone(),
        })
    }
}

/// The grammar state of one generation.
pub struct Constraint {
    matcher: Matcher,
    end_tokens: Arc<Vec<u32>>,
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint").field("stopped", &self.matcher.is_stopped()).finish()
    }
}

impl Constraint {
    /// Tokens the grammar forces from here (possibly none). They are committed already; the
    /// caller feeds them to the model in one forward pass.
    pub fn forced_tokens(&mut self) -> Result<Vec<u32>, Error> {
        let toks = self.matcher.consume_ff_tokens();
        self.check()?;
        Ok(toks)
    }

    /// Sets every token the grammar forbids to `-inf`. End-of-turn tokens are allowed exactly
    /// when the grammar could end here.
    pub fn apply_mask(&mut self, logits: &mut [f32]) -> Result<(), Error> {
        let mask = self
            .matcher
            .compute_mask()
            .map_err(|e| Error::Grammar(e.to_string()))?;
        let accepting = self.is_accepting()?;
        let width = logits.len();
        let end_logits: Vec<(usize, f32)> = self
            .end_tokens
            .iter()
            .filter_map(|&e| logits.get(e as usize).map(|&l| (e as usize, l)))
            .collect();
        mask.iter_unset_entries(|i| {
            if i < width {
                logits[i] = f32::NEG_INFINITY;
            }
        });
        for l in logits.iter_mut().skip(mask.len()) {
            *l = f32::NEG_INFINITY;
        }
        // Every end-of-turn token, not only the one llguidance knows as EOS.
        for (e, l) in end_logits {
            logits[e] = if accepting { l } else { f32::NEG_INFINITY };
        }
        if logits.iter().all(|l| !l.is_finite()) {
            return Err(Error::Grammar("the grammar allows no token here".into()));
        }
        Ok(())
    }

    /// Advances the grammar by a sampled token (never an end token).
    pub fn commit(&mut self, token: u32) -> Result<(), Error> {
        if self.matcher.is_stopped() {
            return Err(Error::Grammar("token after the grammar ended".into()));
        }
        self.matcher
            .consume_token(token)
            .map_err(|e| Error::Grammar(e.to_string()))
    }

    /// Whether the output so far is a complete match.
    pub fn is_accepting(&mut self) -> Result<bool, Error> {
        if self.matcher.is_stopped() {
            return Ok(true);
        }
        self.matcher.is_accepting().map_err(|e| Error::Grammar(e.to_string()))
    }

    /// Whether the grammar admits no further token (the match is complete and final).
    pub fn is_stopped(&self) -> bool {
        self.matcher.is_stopped()
    }

    fn check(&self) -> Result<(), Error> {
        match self.matcher.get_error() {
            Some(e) if self.matcher.is_error() => Err(Error::Grammar(e)),
            _ => Ok(()),
        }
    }
}
