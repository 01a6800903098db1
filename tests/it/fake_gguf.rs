//! Small random-weight GGUF models of every supported architecture, written by the tests
//! with candle's own GGUF writer, and hand-made broken files.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// What to build.
#[derive(Debug, Clone)]
pub struct Spec {
    pub arch: &'static str,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub ctx: usize,
    pub dtype: GgmlDType,
    pub sliding_window: Option<usize>,
    pub rope_dims: Option<usize>,
    pub rope_freqs: bool,
    pub tied: bool,
    pub chat_template: Option<&'static str>,
}

impl Spec {
    pub fn new(arch: &'static str) -> Self {
        Self {
            arch,
            n_layer: 2,
            n_embd: 64,
            n_head: 4,
            n_kv: 2,
            head_dim: 16,
            ffn: 96,
            ctx: 512,
            dtype: GgmlDType::Q8_0,
            sliding_window: None,
            rope_dims: None,
            rope_freqs: false,
            tied: false,
            chat_template: Some(CHATML),
        }
    }
}

pub const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// GPT-2 byte-level characters for bytes 0..=255.
fn byte_chars() -> Vec<String> {
    pae_local::model::tokenizer::byte_level_chars().iter().map(char::to_string).collect()
}

/// A byte-level BPE vocabulary: 256 bytes, a few merges, ChatML specials.
fn vocab() -> (Vec<String>, Vec<i32>, Vec<String>) {
    let mut tokens = byte_chars();
    let merges = vec!["Ġ t".to_string(), "h e".to_string(), "Ġt he".to_string(), "i n".to_string()];
    for m in &merges {
        tokens.push(m.replace(' ', ""));
    }
    let mut types = vec![1; tokens.len()];
    for special in ["<|im_start|>", "<|im_end|>", "<|endoftext|>"] {
        tokens.push(special.to_string());
        types.push(3);
    }
    (tokens, types, merges)
}

fn rand(shape: &[usize], scale: f32) -> Tensor {
    (Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap() * scale as f64).unwrap()
}

fn ones_ish(n: usize) -> Tensor {
    (rand(&[n], 0.1) + 1.0).unwrap()
}

/// Writes a random model for `spec` to `path` and returns the path.
pub fn write_model(path: &Path, spec: &Spec) -> PathBuf {
    let (tokens, types, merges) = vocab();
    let n_vocab = tokens.len();
    let a = spec.arch;
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(a.into())),
        ("general.name".into(), Value::String(format!("random {a}"))),
        (format!("{a}.block_count"), Value::U32(spec.n_layer as u32)),
        (format!("{a}.context_length"), Value::U32(spec.ctx as u32)),
        (format!("{a}.embedding_length"), Value::U32(spec.n_embd as u32)),
        (format!("{a}.feed_forward_length"), Value::U32(spec.ffn as u32)),
        (format!("{a}.attention.head_count"), Value::U32(spec.n_head as u32)),
        (format!("{a}.attention.head_count_kv"), Value::U32(spec.n_kv as u32)),
        (format!("{a}.attention.key_length"), Value::U32(spec.head_dim as u32)),
        (format!("{a}.attention.value_length"), Value::U32(spec.head_dim as u32)),
        (format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (format!("{a}.rope.freq_base"), Value::F32(10000.0)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("qwen2".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect())),
        ("tokenizer.ggml.token_type".into(), Value::Array(types.iter().map(|&t| Value::I32(t)).collect())),
        ("tokenizer.ggml.merges".into(), Value::Array(merges.iter().map(|m| Value::String(m.clone())).collect())),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(n_vocab as u32 - 2)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(n_vocab as u32 - 1)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ];
    if let Some(w) = spec.sliding_window {
        meta.push((format!("{a}.attention.sliding_window"), Value::U32(w as u32)));
    }
    if let Some(d) = spec.rope_dims {
        meta.push((format!("{a}.rope.dimension_count"), Value::U32(d as u32)));
    }
    if let Some(t) = spec.chat_template {
        meta.push(("tokenizer.chat_template".into(), Value::String(t.into())));
    }

    let (e, hd, f) = (spec.n_embd, spec.head_dim, spec.ffn);
    let (qd, kd) = (spec.n_head * hd, spec.n_kv * hd);
    let q = |shape: &[usize]| QTensor::quantize(&rand(shape, 0.5), spec.dtype).unwrap();
    let f32t = |t: Tensor| QTensor::quantize(&t, GgmlDType::F32).unwrap();
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), q(&[n_vocab, e])),
        ("output_norm.weight".into(), f32t(ones_ish(e))),
    ];
    if !spec.tied {
        tensors.push(("output.weight".into(), q(&[n_vocab, e])));
    }
    if spec.rope_freqs {
        let dims = spec.rope_dims.unwrap_or(hd);
        tensors.push(("rope_freqs.weight".into(), f32t((rand(&[dims / 2], 0.3).abs().unwrap() + 1.0).unwrap())));
    }
    for il in 0..spec.n_layer {
        let p = format!("blk.{il}");
        tensors.push((format!("{p}.attn_norm.weight"), f32t(ones_ish(e))));
        tensors.push((format!("{p}.ffn_norm.weight"), f32t(ones_ish(e))));
        if a == "phi3" {
            tensors.push((format!("{p}.attn_qkv.weight"), q(&[qd + 2 * kd, e])));
            tensors.push((format!("{p}.ffn_up.weight"), q(&[2 * f, e])));
        } else {
            tensors.push((format!("{p}.attn_q.weight"), q(&[qd, e])));
            tensors.push((format!("{p}.attn_k.weight"), q(&[kd, e])));
            tensors.push((format!("{p}.attn_v.weight"), q(&[kd, e])));
            tensors.push((format!("{p}.ffn_gate.weight"), q(&[f, e])));
            tensors.push((format!("{p}.ffn_up.weight"), q(&[f, e])));
        }
        tensors.push((format!("{p}.attn_output.weight"), q(&[e, qd])));
        tensors.push((format!("{p}.ffn_down.weight"), q(&[e, f])));
        if a == "qwen2" {
            tensors.push((format!("{p}.attn_q.bias"), f32t(rand(&[qd], 0.1))));
            tensors.push((format!("{p}.attn_k.bias"), f32t(rand(&[kd], 0.1))));
            tensors.push((format!("{p}.attn_v.bias"), f32t(rand(&[kd], 0.1))));
        }
        if a == "qwen3" || a == "gemma3" {
            tensors.push((format!("{p}.attn_q_norm.weight"), f32t(ones_ish(hd))));
            tensors.push((format!("{p}.attn_k_norm.weight"), f32t(ones_ish(hd))));
        }
        if a == "gemma3" {
            tensors.push((format!("{p}.post_attention_norm.weight"), f32t(ones_ish(e))));
            tensors.push((format!("{p}.post_ffw_norm.weight"), f32t(ones_ish(e))));
        }
    }
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &meta_refs, &tensor_refs).unwrap();
    path.to_path_buf()
}

/// Hand-assembled GGUF bytes, for files that no writer would produce.
#[derive(Default)]
pub struct RawGguf {
    pub bytes: Vec<u8>,
}

impl RawGguf {
    pub fn header(version: u32, tensors: u64, kvs: u64) -> Self {
        let mut r = Self::default();
        r.bytes.extend_from_slice(b"GGUF");
        r.u32(version).u64(tensors).u64(kvs);
        r
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.bytes.extend_from_slice(s.as_bytes());
        self
    }
    /// A string-valued metadata entry.
    pub fn kv_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.str(k).u32(8).str(v)
    }
    /// A tensor directory entry.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    /// Pads to 32 bytes and appends `n` bytes of tensor data.
    pub fn data(&mut self, n: usize) -> &mut Self {
        while !self.bytes.len().is_multiple_of(32) {
            self.bytes.push(0);
        }
        self.bytes.extend(std::iter::repeat_n(0u8, n));
        self
    }
}
