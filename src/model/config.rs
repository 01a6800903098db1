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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gguf::Value;

    /// Metadata for `arch` with the required keys (4 layers, 256 wide, 8 heads over 2).
    fn base(arch: &str) -> Vec<(String, Value)> {
        vec![
            ("general.architecture".into(), Value::String(arch.into())),
            (format!("{arch}.block_count"), Value::U32(4)),
            (format!("{arch}.embedding_length"), Value::U32(256)),
            (format!("{arch}.attention.head_count"), Value::U32(8)),
            (format!("{arch}.attention.head_count_kv"), Value::U32(2)),
            (format!("{arch}.feed_forward_length"), Value::U64(512)),
            (format!("{arch}.context_length"), Value::U32(4096)),
        ]
    }

    fn with(mut meta: Vec<(String, Value)>, key: &str, v: Value) -> Vec<(String, Value)> {
        meta.retain(|(k, _)| k != key);
        meta.push((key.into(), v));
        meta
    }

    fn without(mut meta: Vec<(String, Value)>, key: &str) -> Vec<(String, Value)> {
        meta.retain(|(k, _)| k != key);
        meta
    }

    fn config(meta: Vec<(String, Value)>) -> Result<ModelConfig, Error> {
        ModelConfig::from_gguf(&GgufHeader::from_metadata(meta))
    }

    #[test]
    fn llama_defaults() {
        let c = config(base("llama")).unwrap();
        assert_eq!(c.arch, Arch::Llama);
        assert_eq!((c.n_layer, c.n_embd, c.n_head, c.n_head_kv), (4, 256, 8, 2));
        assert_eq!((c.head_dim, c.value_dim, c.rope_dims), (32, 32, 32));
        assert_eq!((c.ffn_dim, c.context_length), (512, 4096));
        assert_eq!(c.rms_eps, 1e-5);
        assert_eq!(c.rope_base, 10_000.0);
        assert_eq!(c.rope_scale, 1.0);
        assert_eq!(c.rope_layout, RopeLayout::Interleaved);
        assert_eq!(c.activation, Activation::Silu);
        assert_eq!(c.sliding_window, None);
        assert_eq!(c.embed_scale, None);
        assert_eq!(c.name, None);
        assert_eq!(c.n_rep(), 4);
        assert!((c.attn_scale - 1.0 / 32f64.sqrt()).abs() < 1e-12);
        assert!(!c.is_sliding(0));
    }

    #[test]
    fn llama_ignores_sliding_window_and_reads_optional_keys() {
        let mut m = base("llama");
        m = with(m, "general.name", Value::String("tiny".into()));
        m = with(m, "llama.attention.sliding_window", Value::U32(128));
        m = with(m, "llama.attention.layer_norm_rms_epsilon", Value::F32(1e-6));
        m = with(m, "llama.rope.freq_base", Value::F64(500_000.0));
        m = with(m, "llama.rope.scaling.type", Value::String("linear".into()));
        m = with(m, "llama.rope.scaling.factor", Value::F32(4.0));
        m = with(m, "llama.rope.dimension_count", Value::U32(16));
        let c = config(m).unwrap();
        assert_eq!(c.name.as_deref(), Some("tiny"));
        assert_eq!(c.sliding_window, None);
        assert!((c.rms_eps - 1e-6).abs() < 1e-12);
        assert_eq!(c.rope_base, 500_000.0);
        assert_eq!(c.rope_scale, 4.0);
        assert_eq!(c.rope_dims, 16);
    }

    #[test]
    fn qwen2_uses_halves_and_no_window() {
        let c = config(with(base("qwen2"), "qwen2.attention.sliding_window", Value::U32(64))).unwrap();
        assert_eq!(c.arch, Arch::Qwen2);
        assert_eq!(c.rope_layout, RopeLayout::Halves);
        assert_eq!(c.sliding_window, None);
        assert_eq!(c.activation, Activation::Silu);
    }

    #[test]
    fn gemma3_switches() {
        let mut m = base("gemma3");
        m = with(m, "gemma3.attention.key_length", Value::U32(64));
        m = with(m, "gemma3.attention.value_length", Value::U32(48));
        m = with(m, "gemma3.attention.sliding_window", Value::U32(512));
        let c = config(m).unwrap();
        assert_eq!(c.arch, Arch::Gemma3);
        assert_eq!((c.head_dim, c.value_dim, c.rope_dims), (64, 48, 64));
        assert_eq!(c.activation, Activation::GeluTanh);
        assert_eq!(c.embed_scale, Some(16.0));
        assert_eq!(c.sliding_window, Some(512));
        assert_eq!(c.global_every, Some(6));
        assert_eq!(c.rope_base_local, Some(10_000.0));
        assert!((c.attn_scale - 1.0 / 8.0).abs() < 1e-12);
        let sliding: Vec<bool> = (0..12).map(|il| c.is_sliding(il)).collect();
        let mut expected = vec![true; 12];
        expected[5] = false;
        expected[11] = false;
        assert_eq!(sliding, expected);
    }

    #[test]
    fn gemma3_27b_scales_attention_by_embedding_per_head() {
        let mut m = with(base("gemma3"), "gemma3.block_count", Value::U32(62));
        m = with(m, "gemma3.attention.key_length", Value::U32(128));
        let c = config(m).unwrap();
        assert!((c.attn_scale - 1.0 / 32f64.sqrt()).abs() < 1e-12, "{}", c.attn_scale);
    }

    #[test]
    fn zero_sliding_window_means_none() {
        let c = config(with(base("gemma3"), "gemma3.attention.sliding_window", Value::U32(0))).unwrap();
        assert_eq!(c.sliding_window, None);
        assert!(!c.is_sliding(0));
    }

    #[test]
    fn head_count_kv_defaults_to_head_count() {
        let c = config(without(base("qwen3"), "qwen3.attention.head_count_kv")).unwrap();
        assert_eq!((c.n_head, c.n_head_kv, c.n_rep()), (8, 8, 1));
    }

    #[test]
    fn bad_metadata_is_rejected() {
        let l = || base("llama");
        let missing = |key: &'static str| move |e: &Error| matches!(e, Error::MissingKey(k) if k == key);
        let key_type = |key: &'static str, exp: &'static str, f: &'static str| {
            move |e: &Error| matches!(e, Error::KeyType { key: k, expected, found } if k == key && *expected == exp && *found == f)
        };
        let bad_config = |e: &Error| matches!(e, Error::BadConfig(_));
        type Check = Box<dyn Fn(&Error) -> bool>;
        /// Name, metadata, expected error, message fragment.
        type Case = (&'static str, Vec<(String, Value)>, Check, &'static str);
        let cases: Vec<Case> = vec![
            ("no architecture", without(l(), "general.architecture"), Box::new(missing("general.architecture")), "`general.architecture`"),
            ("architecture not a string", with(l(), "general.architecture", Value::U32(1)),
                Box::new(key_type("general.architecture", "a string", "u32")), "is u32, expected a string"),
            ("unsupported architecture", with(l(), "general.architecture", Value::String("mamba".into())),
                Box::new(|e: &Error| matches!(e, Error::UnsupportedArch(a) if a == "mamba")), "`mamba` is not supported"),
            ("no block_count", without(l(), "llama.block_count"), Box::new(missing("llama.block_count")), "`llama.block_count`"),
            ("no embedding_length", without(l(), "llama.embedding_length"), Box::new(missing("llama.embedding_length")), "llama.embedding_length"),
            ("no head_count", without(l(), "llama.attention.head_count"), Box::new(missing("llama.attention.head_count")), "head_count"),
            ("no feed_forward_length", without(l(), "llama.feed_forward_length"), Box::new(missing("llama.feed_forward_length")), "feed_forward_length"),
            ("no context_length", without(l(), "llama.context_length"), Box::new(missing("llama.context_length")), "context_length"),
            ("gemma key under llama prefix", {
                let mut m = base("gemma3");
                m = without(m, "gemma3.block_count");
                with(m, "llama.block_count", Value::U32(4))
            }, Box::new(missing("gemma3.block_count")), "gemma3.block_count"),
            ("block_count a string", with(l(), "llama.block_count", Value::String("4".into())),
                Box::new(key_type("llama.block_count", "an unsigned integer", "string")), "expected an unsigned integer"),
            ("block_count negative", with(l(), "llama.block_count", Value::I32(-1)),
                Box::new(key_type("llama.block_count", "an unsigned integer", "i32")), "is i32"),
            ("block_count a float", with(l(), "llama.block_count", Value::F32(4.0)),
                Box::new(key_type("llama.block_count", "an unsigned integer", "f32")), "is f32"),
            ("epsilon an integer", with(l(), "llama.attention.layer_norm_rms_epsilon", Value::U32(1)),
                Box::new(key_type("llama.attention.layer_norm_rms_epsilon", "a float", "u32")), "expected a float"),
            ("name not a string", with(l(), "general.name", Value::Bool(true)),
                Box::new(key_type("general.name", "a string", "bool")), "is bool"),
            ("zero layers", with(l(), "llama.block_count", Value::U32(0)), Box::new(bad_config), "`llama.block_count` = 0 is out of range"),
            ("huge context", with(l(), "llama.context_length", Value::U64(1 << 30)), Box::new(bad_config), "`llama.context_length` = 1073741824 is out of range"),
            ("zero kv heads", with(l(), "llama.attention.head_count_kv", Value::U32(0)), Box::new(bad_config), "head_count_kv` = 0"),
            ("heads not grouped", with(l(), "llama.attention.head_count_kv", Value::U32(3)), Box::new(bad_config), "8 attention heads cannot be grouped over 3"),
            ("odd head dim", with(l(), "llama.attention.key_length", Value::U32(33)), Box::new(bad_config), "head dimension 33 must be even"),
            ("zero value dim", with(l(), "llama.attention.value_length", Value::U32(0)), Box::new(bad_config), "must be even and non-zero"),
            ("head dim from width rounds to 0", with(l(), "llama.embedding_length", Value::U32(4)), Box::new(bad_config), "head dimension 0"),
            ("rope dims above head dim", with(l(), "llama.rope.dimension_count", Value::U32(64)), Box::new(bad_config), "rope dimension count 64"),
            ("odd rope dims", with(l(), "llama.rope.dimension_count", Value::U32(7)), Box::new(bad_config), "rope dimension count 7 must be even"),
            ("unknown rope scaling", with(l(), "llama.rope.scaling.type", Value::String("yarn".into())), Box::new(bad_config), "rope scaling `yarn` is not supported"),
            ("zero rope factor", {
                let m = with(l(), "llama.rope.scaling.type", Value::String("linear".into()));
                with(m, "llama.rope.scaling.factor", Value::F32(0.0))
            }, Box::new(bad_config), "rope scaling factor 0 must be positive"),
            ("NaN rope factor", {
                let m = with(l(), "llama.rope.scaling.type", Value::String("linear".into()));
                with(m, "llama.rope.scaling.factor", Value::F64(f64::NAN))
            }, Box::new(bad_config), "rope scaling factor NaN"),
        ];
        let mut failures = Vec::new();
        for (what, meta, check, fragment) in cases {
            match config(meta) {
                Ok(c) => failures.push(format!("{what}: accepted {c:?}")),
                Err(e) if !check(&e) => failures.push(format!("{what}: wrong error {e:?}")),
                Err(e) if !e.to_string().contains(fragment) => failures.push(format!("{what}: `{e}` lacks `{fragment}`")),
                Err(_) => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
