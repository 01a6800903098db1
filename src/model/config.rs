//! Architecture hyper-parameters read and validated from GGUF metadata. No weights.

use std::fmt;

use super::gguf::GgufHeader;
use super::Error;

/// The architectures this runtime can run.
///
/// They differ in a handful of switches (biases, per-head norms, fused projections, extra norms,
/// rope layout, sliding windows) that [`ModelConfig`] spells out, so one forward pass
/// (`transformer.rs`) serves them all and a fix lands once for every architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, Mistral, SmolLM.
    Llama,
    /// Qwen2, Qwen2.5, DeepSeek-R1-Distill-Qwen.
    Qwen2,
    /// Qwen3 (per-head query and key norms).
    Qwen3,
    /// Gemma 3 (sliding-window layers, extra norms, scaled embeddings).
    Gemma3,
    /// Phi-3 (fused QKV and gate/up projections).
    Phi3,
}

impl Arch {
    /// The architecture names `parse` accepts, for error messages.
    pub const SUPPORTED: &'static str = "llama, qwen2, qwen3, gemma3, phi3";

    /// The architecture of a GGUF `general.architecture` value.
    pub fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "llama" => Self::Llama,
            "qwen2" => Self::Qwen2,
            "qwen3" => Self::Qwen3,
            "gemma3" => Self::Gemma3,
            "phi3" => Self::Phi3,
            other => return Err(Error::UnsupportedArch(other.to_string())),
        })
    }

    /// The name GGUF metadata uses (`llama`, `qwen2`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Gemma3 => "gemma3",
            Self::Phi3 => "phi3",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How rotary embeddings pair up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// Adjacent pairs (x0,x1), (x2,x3)…: llama.cpp's `LLAMA_ROPE_TYPE_NORM`, used by llama
    /// because its GGUF converter permutes the Q/K weights into this order.
    Interleaved,
    /// First half with second half: llama.cpp's `LLAMA_ROPE_TYPE_NEOX`.
    Halves,
}

/// The feed-forward activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU, as a gate (SwiGLU).
    Silu,
    /// GELU, tanh approximation (Gemma's `gelu_pytorch_tanh`).
    GeluTanh,
}

/// Everything the forward pass needs to know about a model, validated.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Which architecture the file holds.
    pub arch: Arch,
    /// The model's name from `general.name`, if the file has one.
    pub name: Option<String>,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Width of the hidden state (embedding length).
    pub n_embd: usize,
    /// Number of query heads.
    pub n_head: usize,
    /// Number of key/value heads (fewer than `n_head` with grouped-query attention).
    pub n_head_kv: usize,
    /// Per-head dimension of queries and keys (`attention.key_length`).
    pub head_dim: usize,
    /// Per-head dimension of values (`attention.value_length`).
    pub value_dim: usize,
    /// Width of the feed-forward layer's hidden state.
    pub ffn_dim: usize,
    /// The model's trained context length.
    pub context_length: usize,
    /// Epsilon of the RMS norms.
    pub rms_eps: f64,
    /// Rope frequency base (theta); see `rope_base_local` for sliding-window layers.
    pub rope_base: f64,
    /// Rope base of sliding-window layers where it differs (Gemma 3: 10 000).
    pub rope_base_local: Option<f64>,
    /// Dimensions rotated per head (the rest pass through).
    pub rope_dims: usize,
    /// Linear position scaling (1.0 = none) for global layers.
    pub rope_scale: f64,
    /// How rotary embeddings pair up a head's dimensions.
    pub rope_layout: RopeLayout,
    /// Sliding attention window in tokens (keys with `query_pos - key_pos >= window` are masked).
    pub sliding_window: Option<usize>,
    /// With a sliding window: every `n`-th layer (1-based) attends globally and the others
    /// use the window (Gemma 3: 6); `None` puts every layer on the window.
    pub global_every: Option<usize>,
    /// Multiplier applied to query·key scores.
    pub attn_scale: f64,
    /// Multiplier applied to token embeddings (Gemma: sqrt(n_embd)).
    pub embed_scale: Option<f64>,
    /// The feed-forward activation.
    pub activation: Activation,
}

impl ModelConfig {
    /// Reads and checks the configuration from a GGUF header's metadata.
    pub fn from_gguf(h: &GgufHeader) -> Result<Self, Error> {
        let arch_name = h
            .str_opt("general.architecture")?
            .ok_or_else(|| Error::MissingKey("general.architecture".into()))?;
        let arch = Arch::parse(arch_name)?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let req = |k: &str| -> Result<usize, Error> { Ok(h.u64(&key(k))? as usize) };
        let opt = |k: &str| -> Result<Option<usize>, Error> { Ok(h.u64_opt(&key(k))?.map(|v| v as usize)) };

        let n_layer = req("block_count")?;
        let n_embd = req("embedding_length")?;
        let n_head = req("attention.head_count")?;
        let n_head_kv = opt("attention.head_count_kv")?.unwrap_or(n_head);
        let ffn_dim = req("feed_forward_length")?;
        let context_length = req("context_length")?;
        for (what, v) in [
            ("block_count", n_layer),
            ("embedding_length", n_embd),
            ("attention.head_count", n_head),
            ("attention.head_count_kv", n_head_kv),
            ("feed_forward_length", ffn_dim),
            ("context_length", context_length),
        ] {
            if v == 0 || v > 1 << 24 {
                return Err(Error::BadConfig(format!("`{arch_name}.{what}` = {v} is out of range")));
            }
        }
        if n_head % n_head_kv != 0 {
            return Err(Error::BadConfig(format!(
                "{n_head} attention heads cannot be grouped over {n_head_kv} key/value heads"
            )));
        }
        let head_dim = opt("attention.key_length")?.unwrap_or(n_embd / n_head);
        let value_dim = opt("attention.value_length")?.unwrap_or(head_dim);
        if head_dim == 0 || head_dim % 2 != 0 || value_dim == 0 {
            return Err(Error::BadConfig(format!("head dimension {head_dim} must be even and non-zero")));
        }
        let rope_dims = opt("rope.dimension_count")?.unwrap_or(head_dim);
        if rope_dims == 0 || rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(Error::BadConfig(format!(
                "rope dimension count {rope_dims} must be even and at most the head dimension {head_dim}"
            )));
        }
        let rms_eps = h
            .f64_opt(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5);
        let rope_base = h.f64_opt(&key("rope.freq_base"))?.unwrap_or(10_000.0);
        let rope_scale = match h.str_opt(&key("rope.scaling.type"))? {
            None | Some("none") => 1.0,
            Some("linear") => h.f64_opt(&key("rope.scaling.factor"))?.unwrap_or(1.0),
            Some(other) => {
                return Err(Error::BadConfig(format!(
                    "rope scaling `{other}` is not supported (none and linear are)"
                )))
            }
        };
        // NaN fails too.
        if rope_scale.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(Error::BadConfig(format!("rope scaling factor {rope_scale} must be positive")));
        }
        let sliding_window = opt("attention.sliding_window")?.filter(|&w| w > 0);

        let mut cfg = Self {
            arch,
            name: h.str_opt("general.name")?.map(str::to_string),
            n_layer,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            value_dim,
            ffn_dim,
            context_length,
            rms_eps,
            rope_base,
            rope_base_local: None,
            rope_dims,
            rope_scale,
            rope_layout: RopeLayout::Halves,
            sliding_window: None,
            global_every: None,
            attn_scale: 1.0 / (head_dim as f64).sqrt(),
            embed_scale: None,
            activation: Activation::Silu,
        };
        match arch {
            Arch::Llama => cfg.rope_layout = RopeLayout::Interleaved,
            Arch::Qwen2 | Arch::Qwen3 => {}
            Arch::Phi3 => {
                // llama.cpp applies phi3's window (when the file has one) to every layer.
                cfg.sliding_window = sliding_window;
            }
            Arch::Gemma3 => {
                cfg.activation = Activation::GeluTanh;
                cfg.embed_scale = Some((n_embd as f64).sqrt());
                cfg.sliding_window = sliding_window;
                cfg.global_every = Some(6);
                // Values llama.cpp hard-codes for gemma3: local layers use base 10 000 without
                // scaling; the 27B model (62 layers) scales by n_embd / n_head.
                cfg.rope_base_local = Some(10_000.0);
                if n_layer == 62 {
                    cfg.attn_scale = 1.0 / ((n_embd / n_head) as f64).sqrt();
                }
            }
        }
        Ok(cfg)
    }

    /// Whether layer `il` (0-based) attends through the sliding window.
    pub fn is_sliding(&self, il: usize) -> bool {
        self.sliding_window.is_some() && self.global_every.is_none_or(|n| !(il + 1).is_multiple_of(n))
    }

    /// Query heads per key/value head (grouped-query attention).
    pub fn n_rep(&self) -> usize {
        self.n_head / self.n_head_kv
    }
}
