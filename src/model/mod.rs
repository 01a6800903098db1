//! Models: GGUF files loaded in-process, their tokenizer and chat template.
//!
//! Data flows `gguf` (header) → `config` (validated hyper-parameters) → `weights` (tensors) →
//! `transformer` (forward pass over a caller-owned `kv_cache`), with `tokenizer` and
//! `chat_template` built from the same header.

mod activation_cpu;
mod attention_cpu;
pub mod agreement;
pub mod chat_template;
pub mod py_json;
pub mod synthetic;
pub mod config;
mod cpu;
pub mod gguf;
pub mod info;
pub mod kv_cache;
mod layers;
mod quant_cpu;
pub mod template_limits;
pub mod threads;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

pub use chat_template::{ChatTemplate, Message, TemplateSource};
pub use config::{Arch, ModelConfig};
pub use gguf::GgufHeader;
pub use info::ModelInfo;
pub use kv_cache::{CacheLayout, KvCache, KvSnapshot};
pub use tokenizer::{TokenKind, Tokenizer};
pub use transformer::{Logits, Transformer};
pub use weights::LoadProgress;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or memory-mapped.
    #[error("cannot open `{path}`: {source}")]
    Open {
        /// The file: the GGUF, or the `tokenizer.json` beside it.
        path: PathBuf,
        /// Why the operating system refused.
        source: std::io::Error,
    },
    /// The model path names a directory.
    #[error("`{0}` is a directory, not a GGUF file")]
    IsDirectory(PathBuf),
    /// The file does not start with `GGUF`; holds its first four bytes.
    #[error("not a GGUF file (starts with {0:02x?}, expected \"GGUF\")")]
    BadMagic([u8; 4]),
    /// A GGUF version other than 2 or 3.
    #[error("GGUF version {0} is not supported (2 and 3 are)")]
    UnsupportedVersion(u32),
    /// The header is inconsistent: an impossible tensor shape or offset, a bad alignment.
    #[error("malformed GGUF: {0}")]
    Format(String),
    /// The file ends before its header or tensor data does.
    #[error("truncated or corrupt GGUF: {0}")]
    Truncated(String),
    /// A required metadata key is absent.
    #[error("cannot find `{0}` in the GGUF metadata")]
    MissingKey(String),
    /// A metadata value has the wrong type.
    #[error("metadata `{key}` is {found}, expected {expected}")]
    KeyType {
        /// The metadata key.
        key: String,
        /// The type wanted, in words (`an unsigned integer`).
        expected: &'static str,
        /// The type the file holds.
        found: &'static str,
    },
    /// The model's `general.architecture` is not one this crate runs.
    #[error("architecture `{0}` is not supported (supported: {list})", list = Arch::SUPPORTED)]
    UnsupportedArch(String),
    /// A tensor is stored in a type this crate cannot compute with.
    #[error("tensor `{tensor}` has type {type_name}, which is not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q6_K are)")]
    UnsupportedTensorType {
        /// The tensor's name (shortened if very long).
        tensor: String,
        /// ggml's name for its type (or `unknown type id N`).
        type_name: String,
    },
    /// A tensor the architecture needs is not in the file.
    #[error("cannot find tensor `{0}` in the GGUF")]
    MissingTensor(String),
    /// A tensor's shape does not fit the model's configuration.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        /// The tensor's name in the GGUF.
        name: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape the file holds.
        found: Vec<usize>,
    },
    /// Hyper-parameters out of range, inconsistent or unsupported, or a context length of 0.
    #[error("invalid model configuration: {0}")]
    BadConfig(String),
    /// The tokenizer could not be built from the file, or could not encode a text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template does not parse or render.
    #[error("chat template: {0}")]
    Template(String),
    /// More tokens than the model's (or the session's) context holds.
    #[error("context of {requested} tokens exceeds the model's limit of {max}")]
    ContextTooLarge {
        /// Tokens asked for.
        requested: usize,
        /// Most tokens the context holds.
        max: usize,
    },
    /// The device asked for cannot be opened (no CUDA in this build, no such GPU).
    #[error("device: {0}")]
    Device(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Which device to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA when compiled in and present, else CPU.
    #[default]
    Auto,
    /// The CPU, always available.
    Cpu,
    /// The CUDA device with this index (`cuda:N`).
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!("`{s}` is not a device (auto, cpu, cuda or cuda:N)")),
            },
        }
    }
}

impl DeviceChoice {
    /// Opens the device; `Cuda` fails when the build has no CUDA support or the GPU is absent.
    pub fn open(self) -> Result<Device, Error> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => {
                if candle_core::utils::cuda_is_available() {
                    Device::new_cuda(0).map_err(|e| Error::Device(e.to_string()))
                } else {
                    Ok(Device::Cpu)
                }
            }
            Self::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(Error::Device(
                        "this build has no CUDA support (rebuild with `--features cuda`)".into(),
                    ));
                }
                Device::new_cuda(n).map_err(|e| Error::Device(format!("cuda:{n}: {e}")))
            }
        }
    }
}

/// How to load a model.
pub struct LoadOptions<'a> {
    /// Where the weights are loaded and the forward pass runs.
    pub device: Device,
    /// Context length for sessions; `None` uses the model's trained length.
    pub context: Option<usize>,
    /// Called as tensor data is read.
    pub progress: Option<&'a mut dyn FnMut(LoadProgress)>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            context: None,
            progress: None,
        }
    }
}

/// Where tensor data comes from.
enum Source {
    /// The mapped file at the model's path (with `tokenizer.json` beside it, if any).
    File,
    /// A map made in memory.
    Memory(memmap2::Mmap),
}

/// A loaded model: weights, tokenizer and chat template. Immutable, so one instance can serve
/// any number of sessions (each with its own [`KvCache`]).
pub struct Model {
    path: PathBuf,
    info: ModelInfo,
    transformer: Transformer,
    tokenizer: std::sync::Arc<Tokenizer>,
    template: ChatTemplate,
    end_tokens: Vec<u32>,
    context: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("path", &self.path).field("arch", &self.config().arch).finish()
    }
}

impl Model {
    /// Loads the GGUF file at `path`.
    pub fn load(path: &Path, opts: LoadOptions<'_>) -> Result<Self, Error> {
        let header = GgufHeader::read_path(path)?;
        Self::assemble(path, header, Source::File, opts)
    }

    /// Makes the random-weight model `spec` describes, in memory (see [`synthetic`]); its
    /// [`Self::path`] is `synthetic:SPEC`.
    pub fn synthetic(spec: &synthetic::SyntheticSpec, opts: LoadOptions<'_>) -> Result<Self, Error> {
        let (header, map) = synthetic::build(spec)?;
        let path = PathBuf::from(format!("synthetic:{spec}"));
        Self::assemble(&path, header, Source::Memory(map), opts)
    }

    /// Everything after the header: configuration, tokenizer, template, weights.
    fn assemble(path: &Path, header: GgufHeader, source: Source, opts: LoadOptions<'_>) -> Result<Self, Error> {
        let info = ModelInfo::from_header(&header)?;
        let config = &info.config;
        let context = match opts.context {
            None => config.context_length,
            Some(0) => return Err(Error::BadConfig("context length must be positive".into())),
            Some(n) if n > config.context_length => {
                return Err(Error::ContextTooLarge {
                    requested: n,
                    max: config.context_length,
                })
            }
            Some(n) => n,
        };
        let tokenizer = match source {
            Source::File => Tokenizer::load(&header, path)?,
            Source::Memory(_) => Tokenizer::from_gguf(&header)?,
        };
        let template = load_template(&header, &tokenizer)?;
        let end_tokens = end_tokens(&header, &tokenizer, &template);
        let mut no_progress = |_: LoadProgress| {};
        let progress: &mut dyn FnMut(LoadProgress) = match opts.progress {
            Some(p) => p,
            None => &mut no_progress,
        };
        let mut weights = match source {
            Source::File => weights::Weights::open(path, &header, &opts.device, progress)?,
            Source::Memory(map) => weights::Weights::from_map(&header, map, &opts.device, progress),
        };
        let transformer = Transformer::load(config, &mut weights)?;
        if tokenizer.vocab_size() > transformer.logits_width() {
            return Err(Error::BadConfig(format!(
                "the vocabulary has {} tokens but the output layer only {} rows",
                tokenizer.vocab_size(),
                transformer.logits_width()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            info,
            transformer,
            tokenizer: std::sync::Arc::new(tokenizer),
            template,
            end_tokens,
            context,
        })
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hyper-parameters read from the GGUF header.
    pub fn config(&self) -> &ModelConfig {
        &self.info.config
    }

    /// What the GGUF header says of the model: configuration, sizes, quantization, tokenizer.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's tokenizer, from `tokenizer.json` beside the file or else the GGUF metadata.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The tokenizer, shareable (the grammar engine keeps a handle).
    pub fn tokenizer_arc(&self) -> std::sync::Arc<Tokenizer> {
        self.tokenizer.clone()
    }

    /// The chat template, from the GGUF or a plain fallback when it has none.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.transformer.device()
    }

    /// Tokens that end generation: EOS and the chat template's turn terminator(s).
    pub fn end_tokens(&self) -> &[u32] {
        &self.end_tokens
    }

    /// The context length sessions of this model get.
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// Width of the logits vector (at least the vocabulary size).
    pub fn logits_width(&self) -> usize {
        self.transformer.logits_width()
    }

    /// A fresh, empty cache for one session.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config(), self.context, self.device())
    }

    /// Like [`Self::new_cache`], choosing the layout.
    pub fn new_cache_with(&self, layout: CacheLayout) -> KvCache {
        KvCache::with_layout(self.config(), self.context, self.device(), layout)
    }

    /// Runs `ids` through the model at the cache's position; see [`Transformer::forward`].
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Tensor, Error> {
        if cache.len() + ids.len() > cache.max_len() {
            return Err(Error::ContextTooLarge {
                requested: cache.len() + ids.len(),
                max: cache.max_len(),
            });
        }
        Ok(self.transformer.forward(ids, cache, which)?)
    }

    /// Tokenizes a prompt as llama.cpp does: special tokens parsed, BOS added when the model
    /// asks for it, unless the text (a rendered template, say) already starts with it.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, Error> {
        let tok = &self.tokenizer;
        let has_bos = tok
            .bos()
            .is_some_and(|b| text.as_bytes().starts_with(tok.token_bytes(b)));
        tok.encode(text, !has_bos, true)
    }

    /// Renders a conversation through the chat template.
    pub fn render_chat(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, Error> {
        self.template.render(messages, add_generation_prompt)
    }
}

fn load_template(h: &GgufHeader, tok: &Tokenizer) -> Result<ChatTemplate, Error> {
    let text = |id: Option<u32>| id.map(|i| String::from_utf8_lossy(tok.token_bytes(i)).into_owned()).unwrap_or_default();
    let (bos, eos) = (text(tok.bos()), text(tok.eos()));
    match h.str_opt("tokenizer.chat_template")? {
        Some(src) => ChatTemplate::new(src, TemplateSource::Gguf, &bos, &eos),
        None => Ok(ChatTemplate::plain(&bos, &eos)),
    }
}

/// Turn terminators we recognise when the chat template uses them.
const TURN_TERMINATORS: &[&str] = &[
    "<|im_end|>",
    "<end_of_turn>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
    "</s>",
];

fn end_tokens(h: &GgufHeader, tok: &Tokenizer, template: &ChatTemplate) -> Vec<u32> {
    let mut ends: Vec<u32> = tok.eos().into_iter().collect();
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        if let Some(id) = h.get(key).and_then(gguf::value_u64) {
            if (id as usize) < tok.vocab_size() {
                ends.push(id as u32);
            }
        }
    }
    for marker in TURN_TERMINATORS {
        if template.text().contains(marker) {
            if let Some(id) = tok.token_id(marker) {
                ends.push(id);
            }
        }
    }
    ends.sort_unstable();
    ends.dedup();
    ends
}
