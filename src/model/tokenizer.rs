//! Text ↔ token ids, built from the GGUF vocabulary so that it matches llama.cpp id for id.
//!
//! Encoding goes through a `tokenizers::Tokenizer` assembled from the metadata; decoding uses
//! our own table of each token's raw bytes, which streaming needs (a token may end halfway
//! through a UTF-8 character) and which the grammar engine's token trie is built from.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use super::gguf::{value_u64, GgufHeader};
use super::Error;

/// llama.cpp's token attributes (`tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An ordinary piece of text (also the kind of any unlisted or missing type).
    Normal,
    /// The unknown-token placeholder (`<unk>`).
    Unknown,
    /// Special tokens such as `<|im_start|>`: matched in text only when specials are parsed.
    Control,
    /// Added by the model's authors (Gemma's whitespace runs, HTML tags): always matched.
    UserDefined,
    /// A slot the model never uses.
    Unused,
    /// `<0xAB>` byte-fallback tokens.
    Byte,
}

impl TokenKind {
    fn from_gguf(t: i64) -> Self {
        match t {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }
}

/// Which tokenization algorithm the vocabulary uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerModel {
    /// GPT-2 style byte-level BPE, with llama.cpp's named pre-tokenizer profile.
    Bpe {
        /// The profile's name (`tokenizer.ggml.pre`; `default` when absent).
        pre: String,
    },
    /// SentencePiece-style BPE over scores (`tokenizer.ggml.model = llama`).
    SentencePiece,
    /// A `tokenizer.json` found beside the model.
    HuggingFaceJson,
}

/// The tokenizer of one model.
pub struct Tokenizer {
    /// Locked for writing only to encode control tokens' text as plain text, a switch of the
    /// tokenizer's: a second tokenizer with the switch set would double the vocabulary and
    /// merge tables (about 70 MB for a 262k SentencePiece vocabulary).
    inner: RwLock<tokenizers::Tokenizer>,
    token_bytes: TokenBytes,
    kinds: Vec<TokenKind>,
    model: TokenizerModel,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    /// SentencePiece models that prefix a space also strip it when decoding from the start.
    add_space_prefix: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.model)
            .field("vocab", &self.token_bytes.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .finish()
    }
}

/// llama.cpp's pre-tokenizer regexes (llama-vocab.cpp), applied in order, each splitting the
/// pieces the previous one left. An unknown profile is an error: guessing silently gives
/// plausible but wrong ids.
fn pre_tokenizer_regexes(pre: &str) -> Result<(&'static [&'static str], bool), Error> {
    const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    // (regexes, ignore_merges): llama 3 looks a whole pre-token up in the vocabulary first.
    Ok(match pre {
        "smollm" | "starcoder" | "refact" => (&[r"\p{N}", GPT2], false),
        "gpt-2" | "gpt2" => (&[GPT2], false),
        "llama-bpe" | "llama3" => (&[LLAMA3], true),
        "qwen2" | "deepseek-r1-qwen" => (&[QWEN2], false),
        other => return Err(Error::Tokenizer(format!(
            "pre-tokenizer `{other}` is not supported (known: smollm, starcoder, refact, gpt-2, llama-bpe, qwen2, deepseek-r1-qwen); put the model's tokenizer.json beside it to use that instead"
        ))),
    })
}

/// GPT-2's byte ↔ printable-character table used by byte-level BPE vocabularies: entry `b`
/// is the character a vocabulary writes for byte `b`. Public for programs (and tests) that
/// write such vocabularies.
pub fn byte_level_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            b as char
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\u{FFFD}')
        };
    }
    table
}

fn strings(h: &GgufHeader, key: &str) -> Result<Vec<String>, Error> {
    let arr = h.array_opt(key)?.ok_or_else(|| Error::MissingKey(key.to_string()))?;
    let s = arr
        .strings()
        .ok_or_else(|| Error::Tokenizer(format!("`{key}` holds {} values, not strings", arr.element_type())))?;
    Ok(s.iter().map(str::to_string).collect())
}

impl Tokenizer {
    /// Builds the tokenizer of a GGUF file, or loads `tokenizer.json` from beside it.
    pub fn load(h: &GgufHeader, model_path: &Path) -> Result<Self, Error> {
        let json = model_path.with_file_name("tokenizer.json");
        if json.is_file() {
            return Self::from_json_file(h, &json);
        }
        Self::from_gguf(h)
    }

    /// Builds the tokenizer from GGUF metadata alone.
    pub fn from_gguf(h: &GgufHeader) -> Result<Self, Error> {
        let model_name = h
            .str_opt("tokenizer.ggml.model")?
            .ok_or_else(|| Error::MissingKey("tokenizer.ggml.model".into()))?;
        let tokens = strings(h, "tokenizer.ggml.tokens")?;
        let n = tokens.len();
        if n == 0 {
            return Err(Error::Tokenizer("the vocabulary is empty".into()));
        }
        let kinds = token_kinds(h, n)?;
        let vocab = token_ids(&tokens);
        let built = match model_name {
            "gpt2" => build_bpe(h, &tokens, &kinds, vocab)?,
            "llama" => build_sentencepiece(h, &tokens, &kinds, vocab)?,
            other => {
                return Err(Error::Tokenizer(format!(
                    "tokenizer model `{other}` is not supported (gpt2 and llama are)"
                )))
            }
        };
        let mut this = Self {
            inner: RwLock::new(built.inner),
            token_bytes: built.token_bytes,
            kinds,
            model: built.model,
            bos: None,
            eos: None,
            add_bos: false,
            add_space_prefix: built.add_space_prefix,
        };
        this.register_added_tokens(&tokens)?;
        this.read_special_ids(h)?;
        Ok(this)
    }

    /// Loads a Hugging Face `tokenizer.json`; BOS/EOS still come from the GGUF metadata.
    pub fn from_json_file(h: &GgufHeader, path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let inner = <tokenizers::Tokenizer as std::str::FromStr>::from_str(&text)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let token_bytes = llguidance::token_bytes_from_tokenizer_json(&json)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let token_bytes: TokenBytes = token_bytes.into_iter().collect();
        let n = token_bytes.len();
        let mut kinds = vec![TokenKind::Normal; n];
        for (id, added) in inner.get_added_tokens_decoder() {
            if let Some(k) = kinds.get_mut(id as usize) {
                *k = if added.special { TokenKind::Control } else { TokenKind::UserDefined };
            }
        }
        let mut this = Self {
            inner: RwLock::new(inner),
            token_bytes,
            kinds,
            model: TokenizerModel::HuggingFaceJson,
            bos: None,
            eos: None,
            add_bos: false,
            add_space_prefix: false,
        };
        this.read_special_ids(h)?;
        Ok(this)
    }

    fn register_added_tokens(&mut self, tokens: &[String]) -> Result<(), Error> {
        let mut special = Vec::new();
        let mut user = Vec::new();
        for (t, k) in tokens.iter().zip(&self.kinds) {
            match k {
                TokenKind::Control => special.push(AddedToken::from(t.clone(), true).normalized(false)),
                TokenKind::UserDefined => user.push(AddedToken::from(t.clone(), false).normalized(false)),
                _ => {}
            }
        }
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        inner
            .add_special_tokens(special)
            .map_err(|e| Error::Tokenizer(format!("adding special tokens: {e}")))?;
        inner
            .add_tokens(user)
            .map_err(|e| Error::Tokenizer(format!("adding user-defined tokens: {e}")))?;
        Ok(())
    }

    fn read_special_ids(&mut self, h: &GgufHeader) -> Result<(), Error> {
        let n = self.token_bytes.len() as u64;
        let id = |key: &str| -> Result<Option<u32>, Error> {
            match h.get(key) {
                None => Ok(None),
                Some(v) => match value_u64(v) {
                    Some(i) if i < n => Ok(Some(i as u32)),
                    // llama.cpp writes -1 (as u32::MAX) for "none".
                    Some(_) | None => Ok(None),
                },
            }
        };
        self.bos = id("tokenizer.ggml.bos_token_id")?;
        self.eos = id("tokenizer.ggml.eos_token_id")?;
        // llama.cpp's default: SentencePiece models add BOS, BPE models do not.
        let default_add_bos = matches!(self.model, TokenizerModel::SentencePiece);
        self.add_bos = h.bool_opt("tokenizer.ggml.add_bos_token")?.unwrap_or(default_add_bos) && self.bos.is_some();
        Ok(())
    }

    /// Encodes `text`. `add_bos` prepends BOS when the model asks for it
    /// (`tokenizer.ggml.add_bos_token`); `parse_special` recognises control tokens such as
    /// `<|im_start|>` in the text (user-defined tokens are always recognised, as in llama.cpp).
    pub fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>, Error> {
        let mut text = std::borrow::Cow::Borrowed(text);
        if self.add_space_prefix && !text.is_empty() {
            text = std::borrow::Cow::Owned(format!(" {text}"));
        }
        let enc = if parse_special {
            self.inner.read().unwrap_or_else(|e| e.into_inner()).encode_fast(text.as_ref(), false)
        } else {
            let mut tok = self.inner.write().unwrap_or_else(|e| e.into_inner());
            tok.set_encode_special_tokens(true);
            let enc = tok.encode_fast(text.as_ref(), false);
            tok.set_encode_special_tokens(false);
            enc
        }
        .map_err(|e| Error::Tokenizer(format!("encoding: {e}")))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if add_bos && self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// The raw bytes of token `id` (control tokens give their text).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize)
    }

    /// Decodes ids to text; invalid UTF-8 becomes U+FFFD. Control tokens are skipped unless
    /// `with_special`.
    pub fn decode(&self, ids: &[u32], with_special: bool) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if !with_special && self.kind(id) == TokenKind::Control {
                continue;
            }
            bytes.extend_from_slice(self.token_bytes(id));
        }
        if self.add_space_prefix && bytes.first() == Some(&b' ') {
            bytes.remove(0);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The attribute of token `id`; `Unknown` for an id outside the vocabulary.
    pub fn kind(&self, id: u32) -> TokenKind {
        self.kinds.get(id as usize).copied().unwrap_or(TokenKind::Unknown)
    }

    /// The id of the token whose text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).token_to_id(text)
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token, if the model has one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether [`Self::encode`] with `add_bos` prepends BOS for this model.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Which tokenization algorithm the vocabulary uses.
    pub fn model(&self) -> &TokenizerModel {
        &self.model
    }

    /// Ids of control tokens, for `info`.
    pub fn control_tokens(&self) -> impl Iterator<Item = u32> + '_ {
        self.kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == TokenKind::Control)
            .map(|(i, _)| i as u32)
    }
}

/// What a model-specific builder produces for [`Tokenizer::from_gguf`]: the encoder, each
/// token's raw bytes for decoding, which algorithm it is, and whether decoding from the start
/// strips a leading space.
struct Built {
    inner: tokenizers::Tokenizer,
    token_bytes: TokenBytes,
    model: TokenizerModel,
    add_space_prefix: bool,
}

/// Every token's bytes in one buffer, indexed by id: a vector per token would cost a heap
/// block each (12 MB more for a 262k vocabulary).
#[derive(Debug, Default)]
struct TokenBytes {
    bytes: Vec<u8>,
    /// Where each token's bytes end in `bytes`.
    ends: Vec<u32>,
}

impl TokenBytes {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Token `id`'s bytes; empty outside the vocabulary.
    fn get(&self, id: usize) -> &[u8] {
        let Some(&end) = self.ends.get(id) else { return &[] };
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.bytes[start as usize..end as usize]
    }
}

impl<B: AsRef<[u8]>> FromIterator<B> for TokenBytes {
    fn from_iter<I: IntoIterator<Item = B>>(iter: I) -> Self {
        let mut t = Self::default();
        for b in iter {
            t.bytes.extend_from_slice(b.as_ref());
            t.ends.push(t.bytes.len() as u32);
        }
        t.bytes.shrink_to_fit();
        t.ends.shrink_to_fit();
        t
    }
}

/// Reads each token's kind, which decides how its bytes are spelled and whether it is added
/// as a special or user-defined token; files without types get all-normal tokens.
fn token_kinds(h: &GgufHeader, n: usize) -> Result<Vec<TokenKind>, Error> {
    Ok(match h.array_opt("tokenizer.ggml.token_type")? {
        Some(a) if a.len() == n => match a.integers() {
            Some(v) => v.into_iter().map(TokenKind::from_gguf).collect(),
            None => return Err(Error::Tokenizer(format!("token types are {} values, not integers", a.element_type()))),
        },
        Some(a) => {
            return Err(Error::Tokenizer(format!(
                "{} token types for {n} tokens",
                a.len()
            )))
        }
        None => vec![TokenKind::Normal; n],
    })
}

/// Maps each token's text to its id: the BPE model's vocabulary, which also answers
/// [`Tokenizer::token_id`] (a second map would cost 20 MB for a 262k vocabulary).
fn token_ids(tokens: &[String]) -> Vocab {
    let mut text_to_id = Vocab::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        text_to_id.insert(t.clone(), i as u32);
    }
    text_to_id
}

/// Builds a GPT-2 style byte-level BPE tokenizer (`tokenizer.ggml.model = gpt2`) with the
/// file's named pre-tokenizer profile.
fn build_bpe(
    h: &GgufHeader,
    tokens: &[String],
    kinds: &[TokenKind],
    vocab: Vocab,
) -> Result<Built, Error> {
    let pre = h.str_opt("tokenizer.ggml.pre")?.unwrap_or("default").to_string();
    let (regexes, ignore_merges) = pre_tokenizer_regexes(&pre)?;
    let merges = bpe_merges(h)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| Error::Tokenizer(format!("building BPE: {e}")))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(byte_level_pre_tokenizer(regexes)?));
    Ok(Built {
        inner: tok,
        token_bytes: byte_level_token_bytes(tokens, kinds),
        model: TokenizerModel::Bpe { pre },
        add_space_prefix: false,
    })
}

/// Reads the BPE merge list, stored as `"left right"` strings, as pairs.
fn bpe_merges(h: &GgufHeader) -> Result<Vec<(String, String)>, Error> {
    strings(h, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| Error::Tokenizer(format!("merge `{m}` has no space")))
        })
        .collect::<Result<Vec<_>, _>>()
}

/// Chains the profile's regex splits and then the byte-level mapping, as llama.cpp
/// pre-tokenizes before running BPE on each piece.
fn byte_level_pre_tokenizer(regexes: &[&str]) -> Result<Sequence, Error> {
    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    for re in regexes {
        let split = Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| Error::Tokenizer(format!("pre-tokenizer regex: {e}")))?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, false, false).into());
    Ok(Sequence::new(steps))
}

/// Turns byte-level vocabulary entries back into raw bytes through GPT-2's character table;
/// special and user-defined tokens are stored as plain text and kept as their UTF-8.
fn byte_level_token_bytes(tokens: &[String], kinds: &[TokenKind]) -> TokenBytes {
    let table = byte_level_chars();
    let mut rev = HashMap::with_capacity(256);
    for (b, c) in table.iter().enumerate() {
        rev.insert(*c, b as u8);
    }
    tokens
        .iter()
        .zip(kinds)
        .map(|(t, k)| match k {
            TokenKind::Normal | TokenKind::Byte | TokenKind::Unknown => {
                // Characters outside the table (rare, in malformed vocabularies) are
                // kept as their UTF-8.
                let mut out = Vec::with_capacity(t.len());
                for c in t.chars() {
                    match rev.get(&c) {
                        Some(&b) => out.push(b),
                        None => out.extend_from_slice(c.to_string().as_bytes()),
                    }
                }
                out
            }
            _ => t.as_bytes().to_vec(),
        })
        .collect()
}

/// Builds a SentencePiece-style tokenizer (`tokenizer.ggml.model = llama`), which needs a
/// score for every token.
fn build_sentencepiece(
    h: &GgufHeader,
    tokens: &[String],
    kinds: &[TokenKind],
    vocab: Vocab,
) -> Result<Built, Error> {
    let n = tokens.len();
    let scores: Vec<f32> = match h.array_opt("tokenizer.ggml.scores")? {
        Some(a) if a.len() == n => a
            .floats()
            .ok_or_else(|| Error::Tokenizer(format!("token scores are {} values, not floats", a.element_type())))?,
        _ => return Err(Error::Tokenizer("SentencePiece vocabulary without scores".into())),
    };
    let add_space_prefix = h.bool_opt("tokenizer.ggml.add_space_prefix")?.unwrap_or(true);
    let tok = sentencepiece_tokenizer(tokens, kinds, &scores, vocab, h)?;
    Ok(Built {
        inner: tok,
        token_bytes: sentencepiece_token_bytes(tokens, kinds),
        model: TokenizerModel::SentencePiece,
        add_space_prefix,
    })
}

/// Spells SentencePiece tokens as raw bytes: `<0xAB>` tokens are that byte and `▁` is a
/// space; special and user-defined tokens are kept as their UTF-8.
fn sentencepiece_token_bytes(tokens: &[String], kinds: &[TokenKind]) -> TokenBytes {
    tokens
        .iter()
        .zip(kinds)
        .map(|(t, k)| match k {
            TokenKind::Byte => parse_byte_token(t).map(|b| vec![b]).unwrap_or_else(|| t.as_bytes().to_vec()),
            TokenKind::Normal | TokenKind::Unknown => t.replace('\u{2581}', " ").into_bytes(),
            _ => t.as_bytes().to_vec(),
        })
        .collect()
}

fn parse_byte_token(t: &str) -> Option<u8> {
    let hex = t.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

/// SentencePiece as llama.cpp runs it: start from characters, repeatedly merge the adjacent
/// pair whose concatenation is the highest-scoring vocabulary entry (leftmost on ties), and
/// spell leftovers as `<0xAB>` bytes. That is BPE whose merge ranks are the merged tokens'
/// scores, which `tokenizers`' BPE runs (with byte fallback) once we list every such merge.
fn sentencepiece_tokenizer(
    tokens: &[String],
    kinds: &[TokenKind],
    scores: &[f32],
    vocab: Vocab,
    h: &GgufHeader,
) -> Result<tokenizers::Tokenizer, Error> {
    // Every split of every token into two vocabulary entries is a candidate merge:
    // (score of the merged token, its id, byte offset of the split).
    let mut merges: Vec<(f32, u32, usize)> = Vec::new();
    for (id, t) in tokens.iter().enumerate() {
        if matches!(kinds[id], TokenKind::Byte) {
            continue;
        }
        for (split, _) in t.char_indices().skip(1) {
            let (a, b) = t.split_at(split);
            if vocab.contains_key(a) && vocab.contains_key(b) {
                merges.push((scores[id], id as u32, split));
            }
        }
    }
    // Highest score first; among equal scores, lower ids first (stable).
    merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let merges: Vec<(String, String)> = merges
        .into_iter()
        .map(|(_, id, split)| {
            let t = &tokens[id as usize];
            (t[..split].to_string(), t[split..].to_string())
        })
        .collect();
    let unk = h
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(value_u64)
        .and_then(|i| tokens.get(i as usize))
        .cloned();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let bpe = builder
        .build()
        .map_err(|e| Error::Tokenizer(format!("building SentencePiece BPE: {e}")))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_normalizer(Some(
        Replace::new(" ", "\u{2581}").map_err(|e| Error::Tokenizer(format!("normalizer: {e}")))?,
    ))
    .map_err(|e| Error::Tokenizer(format!("normalizer: {e}")))?;
    Ok(tok)
}
