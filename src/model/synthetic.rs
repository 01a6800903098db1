//! Random-weight models with the shapes of real ones, made in memory from a seed.
//!
//! Throughput depends on shapes and storage types, not on weight values, so a 7B model can be
//! benchmarked where its 4 GB file cannot travel (a GPU machine reached through a small
//! upload), the way vLLM's `dummy` load format works. The same seed gives the same bytes on
//! every machine, so logits can be compared across devices too.
//!
//! The model is an in-memory GGUF image (header parsed into [`GgufHeader`], tensor data in an
//! anonymous map), loaded by exactly the code that loads files: nothing is special-cased
//! downstream. Weights are valid quantized blocks drawn from a small pool quantized by candle
//! from seeded normal values (σ = 1/√fan-in, so activations stay in range through every
//! layer), copied block by block: quantizing gigabytes would take minutes, copying takes
//! seconds. The tokenizer is byte-level BPE with the real vocabulary's size (filler tokens
//! beyond the 256 bytes) and a ChatML template, enough to run the agent end to end.

use std::fmt;
use std::str::FromStr;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::gguf::{Array, GgufHeader, Strings, TensorInfo, Value};
use super::Error;

/// The real model whose shapes a synthetic one copies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// GGUF architecture name.
    pub arch: &'static str,
    /// Size name as people say it (`7b`, `0.6b`, `135m`).
    pub size: &'static str,
    /// Which released model has these shapes.
    pub like: &'static str,
    /// Layers.
    pub n_layer: usize,
    /// Hidden width.
    pub n_embd: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_kv: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Feed-forward width.
    pub ffn: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Whether the output projection is the embedding.
    pub tied: bool,
    /// Sliding window of local layers (Gemma 3).
    pub window: Option<usize>,
    /// Rope frequency base.
    pub rope_base: f32,
}

const fn shape(
    arch: &'static str,
    size: &'static str,
    like: &'static str,
    [n_layer, n_embd, n_head, n_kv, head_dim, ffn, vocab]: [usize; 7],
    tied: bool,
    rope_base: f32,
) -> Shape {
    Shape {
        arch,
        size,
        like,
        n_layer,
        n_embd,
        n_head,
        n_kv,
        head_dim,
        ffn,
        vocab,
        tied,
        window: None,
        rope_base,
    }
}

/// The shapes on offer: `[layers, width, heads, kv heads, head dim, ffn, vocab]`, from each
/// model's published configuration.
pub const SHAPES: &[Shape] = &[
    shape("llama", "135m", "SmolLM2-135M", [30, 576, 9, 3, 64, 1536, 49152], true, 100_000.0),
    shape("llama", "360m", "SmolLM2-360M", [32, 960, 15, 5, 64, 2560, 49152], true, 100_000.0),
    shape("llama", "1b", "Llama-3.2-1B", [16, 2048, 32, 8, 64, 8192, 128_256], true, 500_000.0),
    shape("llama", "3b", "Llama-3.2-3B", [28, 3072, 24, 8, 128, 8192, 128_256], true, 500_000.0),
    shape("llama", "8b", "Llama-3.1-8B", [32, 4096, 32, 8, 128, 14336, 128_256], false, 500_000.0),
    shape("qwen2", "0.5b", "Qwen2.5-0.5B", [24, 896, 14, 2, 64, 4864, 151_936], true, 1_000_000.0),
    shape("qwen2", "1.5b", "Qwen2.5-1.5B", [28, 1536, 12, 2, 128, 8960, 151_936], true, 1_000_000.0),
    shape("qwen2", "7b", "Qwen2.5-7B", [28, 3584, 28, 4, 128, 18944, 152_064], false, 1_000_000.0),
    shape("qwen3", "0.6b", "Qwen3-0.6B", [28, 1024, 16, 8, 128, 3072, 151_936], true, 1_000_000.0),
    shape("qwen3", "1.7b", "Qwen3-1.7B", [28, 2048, 16, 8, 128, 6144, 151_936], true, 1_000_000.0),
    shape("qwen3", "4b", "Qwen3-4B", [36, 2560, 32, 8, 128, 9728, 151_936], true, 1_000_000.0),
    shape("qwen3", "8b", "Qwen3-8B", [36, 4096, 32, 8, 128, 12288, 151_936], false, 1_000_000.0),
    Shape {
        window: Some(512),
        ..shape("gemma3", "270m", "Gemma-3-270M", [18, 640, 4, 1, 256, 2048, 262_144], true, 1_000_000.0)
    },
    Shape {
        window: Some(512),
        ..shape("gemma3", "1b", "Gemma-3-1B", [26, 1152, 4, 1, 256, 6912, 262_144], true, 1_000_000.0)
    },
];

/// Context length of every synthetic model: enough for benchmarks and an agent run, without
/// a 32k-token cache for a 7B shape.
pub const CONTEXT: usize = 4096;

/// Storage types a synthetic model can use, as ggml spells them in lower case.
const QUANTS: &[(&str, GgmlDType)] = &[
    ("f32", GgmlDType::F32),
    ("f16", GgmlDType::F16),
    ("q4_0", GgmlDType::Q4_0),
    ("q4_1", GgmlDType::Q4_1),
    ("q5_0", GgmlDType::Q5_0),
    ("q5_1", GgmlDType::Q5_1),
    ("q8_0", GgmlDType::Q8_0),
    ("q2_k", GgmlDType::Q2K),
    ("q3_k", GgmlDType::Q3K),
    ("q4_k", GgmlDType::Q4K),
    ("q5_k", GgmlDType::Q5K),
    ("q6_k", GgmlDType::Q6K),
];

/// `ARCH:SIZE:QUANT[:SEED]`, for example `qwen2:7b:q4_k` or `llama:135m:q4_1:7`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticSpec {
    /// The shapes.
    pub shape: Shape,
    /// The storage type of every matrix whose rows are whole blocks of it.
    pub quant: GgmlDType,
    /// Seeds every weight.
    pub seed: u64,
}

impl fmt::Display for SyntheticSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quant = QUANTS.iter().find(|(_, d)| *d == self.quant).map_or("?", |(n, _)| n);
        write!(f, "{}:{}:{}", self.shape.arch, self.shape.size, quant)?;
        if self.seed != 0 {
            write!(f, ":{}", self.seed)?;
        }
        Ok(())
    }
}

/// Every `ARCH:SIZE` on offer, for error messages and `--help`.
pub fn known_shapes() -> String {
    SHAPES.iter().map(|s| format!("{}:{}", s.arch, s.size)).collect::<Vec<_>>().join(", ")
}

impl FromStr for SyntheticSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: String| Error::BadConfig(format!("synthetic model `{}`: {why}", super::gguf::excerpt(s)));
        let parts: Vec<&str> = s.split(':').collect();
        let [arch, size, quant, rest @ ..] = parts.as_slice() else {
            return Err(bad("expected ARCH:SIZE:QUANT[:SEED], for example qwen2:7b:q4_k".into()));
        };
        let shape = SHAPES
            .iter()
            .find(|sh| sh.arch.eq_ignore_ascii_case(arch) && sh.size.eq_ignore_ascii_case(size))
            .copied()
            .ok_or_else(|| bad(format!("no shape `{arch}:{size}` (known: {})", known_shapes())))?;
        let quant = QUANTS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(quant))
            .map(|(_, d)| *d)
            .ok_or_else(|| {
                let names: Vec<&str> = QUANTS.iter().map(|(n, _)| *n).collect();
                bad(format!("no type `{quant}` (known: {})", names.join(", ")))
            })?;
        let seed = match rest {
            [] => 0,
            [seed] => seed.parse().map_err(|_| bad(format!("seed `{seed}` is not a whole number")))?,
            _ => return Err(bad("too many fields: expected ARCH:SIZE:QUANT[:SEED]".into())),
        };
        Ok(Self { shape, quant, seed })
    }
}

/// The type a matrix with rows of `k` values gets: `quant`, or llama.cpp's fallback when its
/// rows are not whole blocks of it (as in real Q4_K_M files of Gemma 3 and Qwen2.5-0.5B).
pub fn storage_type(quant: GgmlDType, k: usize) -> GgmlDType {
    if k.is_multiple_of(quant.block_size()) {
        return quant;
    }
    let fallback = match quant {
        GgmlDType::Q2K | GgmlDType::Q3K => GgmlDType::Q4_0,
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        _ => GgmlDType::Q8_0,
    };
    if k.is_multiple_of(fallback.block_size()) {
        fallback
    } else {
        GgmlDType::F16
    }
}

/// SplitMix64: a seeded generator whose sequence is fixed by its definition, so the same seed
/// gives the same weights with any crate version on any machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A standard normal sample (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u1 = ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// What fills one tensor.
enum Fill {
    /// Quantized blocks drawn from the pool for (type, row width).
    Random,
    /// Every element this value (norm weights, biases).
    Constant(f32),
}

/// The tensors of `shape`, in file order: name, dims (outermost first), fill.
fn tensor_list(sh: &Shape) -> Vec<(String, Vec<usize>, Fill)> {
    let (e, hd, f) = (sh.n_embd, sh.head_dim, sh.ffn);
    let (qd, kd) = (sh.n_head * hd, sh.n_kv * hd);
    let mut t = vec![
        ("token_embd.weight".to_string(), vec![sh.vocab, e], Fill::Random),
        ("output_norm.weight".to_string(), vec![e], Fill::Constant(1.0)),
    ];
    if !sh.tied {
        t.push(("output.weight".to_string(), vec![sh.vocab, e], Fill::Random));
    }
    for il in 0..sh.n_layer {
        let p = format!("blk.{il}");
        let mut add = |name: &str, dims: Vec<usize>, fill: Fill| t.push((format!("{p}.{name}"), dims, fill));
        add("attn_norm.weight", vec![e], Fill::Constant(1.0));
        add("attn_q.weight", vec![qd, e], Fill::Random);
        add("attn_k.weight", vec![kd, e], Fill::Random);
        add("attn_v.weight", vec![kd, e], Fill::Random);
        if sh.arch == "qwen2" {
            add("attn_q.bias", vec![qd], Fill::Constant(0.0));
            add("attn_k.bias", vec![kd], Fill::Constant(0.0));
            add("attn_v.bias", vec![kd], Fill::Constant(0.0));
        }
        if matches!(sh.arch, "qwen3" | "gemma3") {
            add("attn_q_norm.weight", vec![hd], Fill::Constant(1.0));
            add("attn_k_norm.weight", vec![hd], Fill::Constant(1.0));
        }
        add("attn_output.weight", vec![e, qd], Fill::Random);
        if sh.arch == "gemma3" {
            add("post_attention_norm.weight", vec![e], Fill::Constant(1.0));
        }
        add("ffn_norm.weight", vec![e], Fill::Constant(1.0));
        add("ffn_gate.weight", vec![f, e], Fill::Random);
        add("ffn_up.weight", vec![f, e], Fill::Random);
        add("ffn_down.weight", vec![e, f], Fill::Random);
        if sh.arch == "gemma3" {
            add("post_ffw_norm.weight", vec![e], Fill::Constant(1.0));
        }
    }
    t
}

/// The metadata of `shape`: its hyper-parameters, a byte-level BPE vocabulary of the real
/// size, ChatML.
fn metadata(spec: &SyntheticSpec) -> Vec<(String, Value)> {
    let sh = &spec.shape;
    let a = sh.arch;
    let u = |v: usize| Value::U32(v as u32);
    let mut meta = vec![
        ("general.architecture".to_string(), Value::String(a.into())),
        ("general.name".to_string(), Value::String(format!("synthetic {spec} ({} shapes)", sh.like))),
        (format!("{a}.block_count"), u(sh.n_layer)),
        (format!("{a}.context_length"), u(CONTEXT)),
        (format!("{a}.embedding_length"), u(sh.n_embd)),
        (format!("{a}.feed_forward_length"), u(sh.ffn)),
        (format!("{a}.attention.head_count"), u(sh.n_head)),
        (format!("{a}.attention.head_count_kv"), u(sh.n_kv)),
        (format!("{a}.attention.key_length"), u(sh.head_dim)),
        (format!("{a}.attention.value_length"), u(sh.head_dim)),
        (format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (format!("{a}.rope.freq_base"), Value::F32(sh.rope_base)),
    ];
    if let Some(w) = sh.window {
        meta.push((format!("{a}.attention.sliding_window"), u(w)));
    }
    const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let bytes = super::tokenizer::byte_level_chars();
    let mut tokens: Vec<String> = bytes.iter().map(char::to_string).collect();
    let fillers = sh.vocab.saturating_sub(bytes.len() + SPECIALS.len());
    tokens.extend((0..fillers).map(|i| format!("syn{i}")));
    let mut types = vec![1i32; tokens.len()];
    tokens.extend(SPECIALS.iter().map(|s| s.to_string()));
    types.extend([3; SPECIALS.len()]);
    let id = |s: &str| Value::U32(tokens.iter().position(|t| t == s).unwrap_or(0) as u32);
    let (eos, bos) = (id("<|im_end|>"), id("<|endoftext|>"));
    meta.extend([
        ("tokenizer.ggml.model".to_string(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".to_string(), Value::String("qwen2".into())),
        ("tokenizer.ggml.token_type".to_string(), Value::Array(Array::I32(types))),
        ("tokenizer.ggml.merges".to_string(), Value::Array(Array::String(Strings::default()))),
        ("tokenizer.ggml.eos_token_id".to_string(), eos),
        ("tokenizer.ggml.bos_token_id".to_string(), bos),
        ("tokenizer.ggml.add_bos_token".to_string(), Value::Bool(false)),
        ("tokenizer.chat_template".to_string(), Value::String(CHATML.into())),
        (
            "tokenizer.ggml.tokens".to_string(),
            Value::Array(Array::String(Strings::from_strs(tokens.iter().map(String::as_str)))),
        ),
    ]);
    meta
}

const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Rows of 256 values quantized into each pool: enough distinct blocks that no two nearby
/// rows repeat, small enough to quantize in milliseconds.
const POOL_ROWS: usize = 64;
const POOL_WIDTH: usize = 256;
const ALIGNMENT: usize = 32;

/// Quantized blocks of normal values with standard deviation `1/√k`, in type `dtype`.
fn pool(dtype: GgmlDType, k: usize, rng: &mut SplitMix) -> Result<Vec<u8>, Error> {
    let sigma = 1.0 / (k as f32).sqrt();
    let values: Vec<f32> = (0..POOL_ROWS * POOL_WIDTH).map(|_| rng.normal() * sigma).collect();
    let t = Tensor::from_vec(values, (POOL_ROWS, POOL_WIDTH), &Device::Cpu)?;
    Ok(QTensor::quantize(&t, dtype)?.data()?.into_owned())
}

/// The header of the model `spec` describes, without its data: what `info` shows.
pub fn header(spec: &SyntheticSpec) -> GgufHeader {
    let mut infos = Vec::new();
    let mut offset = 0usize;
    for (name, dims, fill) in tensor_list(&spec.shape) {
        let k = *dims.last().unwrap_or(&1);
        let dtype = match fill {
            Fill::Random => storage_type(spec.quant, k),
            Fill::Constant(_) => GgmlDType::F32,
        };
        let elems: usize = dims.iter().product();
        let size = elems / dtype.block_size() * dtype.type_size();
        infos.push(TensorInfo {
            name,
            shape: dims,
            dtype,
            offset: offset as u64,
            size_in_bytes: size as u64,
        });
        offset = (offset + size).next_multiple_of(ALIGNMENT);
    }
    GgufHeader::from_parts(metadata(spec), infos, offset as u64)
}

/// The header and tensor data of the model `spec` describes.
pub fn build(spec: &SyntheticSpec) -> Result<(GgufHeader, memmap2::Mmap), Error> {
    let header = header(spec);
    let fills = tensor_list(&spec.shape);
    let io_error = |source| Error::Open {
        path: format!("synthetic:{spec}").into(),
        source,
    };
    let mut map = memmap2::MmapMut::map_anon((header.file_size as usize).max(1)).map_err(io_error)?;
    let mut rng = SplitMix(spec.seed);
    let mut pools: Vec<((GgmlDType, usize), Vec<u8>)> = Vec::new();
    for (info, (_, _, fill)) in header.tensors.iter().zip(&fills) {
        let dst = &mut map[info.offset as usize..(info.offset + info.size_in_bytes) as usize];
        match fill {
            Fill::Constant(v) => {
                for chunk in dst.chunks_exact_mut(4) {
                    chunk.copy_from_slice(&v.to_le_bytes());
                }
            }
            Fill::Random => {
                let key = (info.dtype, *info.shape.last().unwrap_or(&1));
                let src = match pools.iter().position(|(k, _)| *k == key) {
                    Some(i) => &pools[i].1,
                    None => {
                        pools.push((key, pool(key.0, key.1, &mut rng)?));
                        &pools[pools.len() - 1].1
                    }
                };
                let block = info.dtype.type_size();
                let blocks = src.len() / block;
                for b in dst.chunks_exact_mut(block) {
                    let i = (rng.next() % blocks as u64) as usize;
                    b.copy_from_slice(&src[i * block..(i + 1) * block]);
                }
            }
        }
    }
    let map = map.make_read_only().map_err(io_error)?;
    Ok((header, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for s in ["qwen2:7b:q4_k", "llama:135m:q4_1:7", "gemma3:270m:q8_0", "QWEN3:0.6B:Q4_K"] {
            let spec: SyntheticSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s.to_ascii_lowercase());
        }
        for (bad, why) in [
            ("qwen2:7b", "expected ARCH:SIZE:QUANT"),
            ("qwen2:9b:q4_k", "no shape `qwen2:9b`"),
            ("mamba:7b:q4_k", "known: llama:135m"),
            ("qwen2:7b:q4_kk", "no type `q4_kk`"),
            ("qwen2:7b:q4_k:x", "seed `x`"),
            ("qwen2:7b:q4_k:1:2", "too many fields"),
        ] {
            let e = bad.parse::<SyntheticSpec>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn rows_that_are_not_whole_blocks_fall_back_like_llama_cpp() {
        assert_eq!(storage_type(GgmlDType::Q4K, 3584), GgmlDType::Q4K);
        assert_eq!(storage_type(GgmlDType::Q4K, 640), GgmlDType::Q5_0);
        assert_eq!(storage_type(GgmlDType::Q6K, 896), GgmlDType::Q8_0);
        assert_eq!(storage_type(GgmlDType::Q4_1, 48), GgmlDType::F16);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let spec: SyntheticSpec = "llama:135m:q4_1".parse().unwrap();
        let (h1, a) = build(&spec).unwrap();
        let (_, b) = build(&spec).unwrap();
        assert!(a[..] == b[..]);
        let (_, c) = build(&SyntheticSpec { seed: 1, ..spec }).unwrap();
        assert!(a[..] != c[..]);
        // The shapes of the real SmolLM2-135M: 30 layers, tied embeddings, 49 152 tokens.
        assert_eq!(h1.tensors.iter().filter(|t| t.name.ends_with("attn_q.weight")).count(), 30);
        assert!(h1.tensor("output.weight").is_none());
        assert_eq!(h1.tensor("token_embd.weight").unwrap().shape, vec![49152, 576]);
        assert_eq!(h1.tensor("blk.0.ffn_down.weight").unwrap().dtype, GgmlDType::Q4_1);
        assert!(h1.tensors.iter().all(|t| (t.offset as usize).is_multiple_of(ALIGNMENT)));
    }
}
