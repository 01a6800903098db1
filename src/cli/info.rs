//! `pae-local info`: what a model file holds, from its header alone.

use std::path::Path;

use clap::Args;
use pae_local::model::info::QuantShare;
use pae_local::model::synthetic::{self, SyntheticSpec};
use pae_local::model::{GgufHeader, ModelInfo, TemplateSource, Tokenizer};
use pae_local::source;
use serde::Serialize;

use super::args::ModelArgs;
use super::load::SYNTHETIC;
use super::printer;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Special tokens listed in the JSON form.
const JSON_SPECIALS: usize = 64;
/// Special tokens shown in the text form.
const TEXT_SPECIALS: usize = 12;

/// Everything `info` reports about a model file: the JSON form is this struct serialized, and
/// the text form is printed from it, so the two cannot disagree.
#[derive(Debug, Serialize)]
struct ModelDescription {
    path: String,
    name: Option<String>,
    architecture: &'static str,
    file_size: u64,
    parameters: u64,
    tensors: usize,
    quantization: Vec<QuantShare>,
    context_length: usize,
    layers: usize,
    embedding: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    feed_forward: usize,
    rope_base: f64,
    /// The local (sliding-window) layers' base; shown in the text form only.
    #[serde(skip)]
    rope_base_local: Option<f64>,
    sliding_window: Option<usize>,
    vocab_size: usize,
    tokenizer: String,
    pre_tokenizer: Option<String>,
    bos: Bos,
    eos: Eos,
    special_tokens: usize,
    /// The first [`JSON_SPECIALS`] special tokens.
    special_token_list: Vec<SpecialToken>,
    chat_template: &'static str,
}

#[derive(Debug, Serialize)]
struct Bos {
    id: Option<u32>,
    text: Option<String>,
    /// Whether prompts start with it.
    added: bool,
}

#[derive(Debug, Serialize)]
struct Eos {
    id: Option<u32>,
    text: Option<String>,
}

#[derive(Debug, Serialize)]
struct SpecialToken {
    id: u32,
    text: String,
}

impl ModelDescription {
    /// Reads the description from the file's header and tokenizer (no tensor data).
    fn read(path: &Path) -> anyhow::Result<Self> {
        let header = GgufHeader::read_path(path)?;
        Self::describe(path.display().to_string(), header, |h| Tokenizer::load(h, path))
    }

    /// A synthetic model's description: its header is made, not read, and its weights never are.
    fn synthetic(spec: &str) -> anyhow::Result<Self> {
        let spec: SyntheticSpec = spec.parse()?;
        let header = synthetic::header(&spec);
        Self::describe(format!("{SYNTHETIC}{spec}"), header, Tokenizer::from_gguf)
    }

    /// The configuration is checked before the tokenizer is built, so a file with an
    /// unsupported architecture says so rather than what its tokenizer lacks.
    fn describe(
        path: String,
        header: GgufHeader,
        tokenizer: impl FnOnce(&GgufHeader) -> Result<Tokenizer, pae_local::model::Error>,
    ) -> anyhow::Result<Self> {
        let info = ModelInfo::from_header(&header)?;
        let tok = tokenizer(&header)?;
        let template = match header.str_opt("tokenizer.chat_template")? {
            Some(_) => TemplateSource::Gguf,
            None => TemplateSource::BuiltinPlain,
        };
        let text = |id: u32| String::from_utf8_lossy(tok.token_bytes(id)).into_owned();
        let c = info.config;
        Ok(Self {
            path,
            name: c.name,
            architecture: c.arch.as_str(),
            file_size: info.file_size,
            parameters: info.n_params,
            tensors: info.n_tensors,
            quantization: info.quant_mix,
            context_length: c.context_length,
            layers: c.n_layer,
            embedding: c.n_embd,
            heads: c.n_head,
            kv_heads: c.n_head_kv,
            head_dim: c.head_dim,
            feed_forward: c.ffn_dim,
            rope_base: c.rope_base,
            rope_base_local: c.rope_base_local,
            sliding_window: c.sliding_window,
            vocab_size: tok.vocab_size(),
            tokenizer: info.tokenizer_model,
            pre_tokenizer: info.tokenizer_pre,
            bos: Bos {
                id: tok.bos(),
                text: tok.bos().map(text),
                added: tok.adds_bos(),
            },
            eos: Eos {
                id: tok.eos(),
                text: tok.eos().map(text),
            },
            special_tokens: tok.control_tokens().count(),
            special_token_list: tok
                .control_tokens()
                .take(JSON_SPECIALS)
                .map(|id| SpecialToken { id, text: text(id) })
                .collect(),
            chat_template: match template {
                TemplateSource::Gguf => "from the GGUF (tokenizer.chat_template)",
                TemplateSource::BuiltinPlain => "none in the GGUF: the built-in plain User:/Assistant: template is used",
            },
        })
    }

    /// The text form: one labelled line per aspect.
    fn text_lines(&self) -> Vec<String> {
        let mb = |b: u64| b as f64 / 1e6;
        let mix: Vec<String> = self
            .quantization
            .iter()
            .map(|q| format!("{} {} tensors {:.1} MB", q.dtype, q.tensors, mb(q.bytes)))
            .collect();
        let shown: Vec<String> = self
            .special_token_list
            .iter()
            .take(TEXT_SPECIALS)
            .map(|t| format!("{}={}", t.id, t.text))
            .collect();
        vec![
            format!("file          {} ({:.1} MB)", self.path, mb(self.file_size)),
            format!("name          {}", self.name.as_deref().unwrap_or("-")),
            format!("architecture  {}", self.architecture),
            format!(
                "size          {:.1}M parameters, {} layers, embedding {}, {} heads ({} key/value, dim {}), feed-forward {}",
                self.parameters as f64 / 1e6,
                self.layers,
                self.embedding,
                self.heads,
                self.kv_heads,
                self.head_dim,
                self.feed_forward
            ),
            format!(
                "context       {} tokens{}",
                self.context_length,
                self.sliding_window.map(|w| format!(", sliding window {w}")).unwrap_or_default()
            ),
            format!(
                "rope          base {}{}",
                self.rope_base,
                self.rope_base_local.map(|b| format!(" (local layers {b})")).unwrap_or_default()
            ),
            format!("quantization  {}", mix.join(", ")),
            format!(
                "tokenizer     {} ({}), {} tokens, {} special",
                self.tokenizer,
                self.pre_tokenizer.as_deref().unwrap_or("-"),
                self.vocab_size,
                self.special_tokens
            ),
            format!(
                "special       {}{}",
                shown.join(" "),
                if self.special_tokens > shown.len() {
                    format!(" … ({} in all)", self.special_tokens)
                } else {
                    String::new()
                }
            ),
            format!(
                "bos / eos     {} / {}{}",
                self.bos.text.as_deref().unwrap_or("-"),
                self.eos.text.as_deref().unwrap_or("-"),
                if self.bos.added { " (BOS added to prompts)" } else { "" }
            ),
            format!("chat template {}", self.chat_template),
        ]
    }
}

pub fn run(margs: &ModelArgs, args: InfoArgs) -> anyhow::Result<()> {
    let description = match margs.model.as_deref().and_then(|m| m.strip_prefix(SYNTHETIC)) {
        Some(spec) => ModelDescription::synthetic(spec)?,
        None => ModelDescription::read(&source::resolve(margs.model.as_deref())?)?,
    };
    if args.json {
        printer::json(&serde_json::to_value(&description)?)?;
        return Ok(());
    }
    for l in description.text_lines() {
        printer::line(&l)?;
    }
    Ok(())
}
