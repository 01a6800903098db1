//! The decoder forward pass shared by every supported architecture.
//!
//! Per-architecture differences are switches in [`ModelConfig`] and optional tensors:
//!
//! ```text
//!  x = embed(ids) (· sqrt(n_embd) for Gemma)
//!  for each layer:
//!      h = attn_norm(x)
//!      q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)      phi3: one fused Wqkv
//!      q, k = q_norm(q), k_norm(k)                        qwen3, gemma3: per-head norms
//!      q, k = rope(q), rope(k)                            llama: adjacent pairs, others: halves
//!      a = softmax(q kᵀ · scale + mask) v                 mask: causal, + window on local layers
//!      x = x + post_attn_norm(Wo a)                       post norms: gemma3 only
//!      h = ffn_norm(x)
//!      x = x + post_ffn_norm(Wdown (act(Wgate h) * Wup h))   phi3: fused gate|up
//!  logits = Wout final_norm(x)                            Wout defaults to the embedding
//! ```
//!
//! Written here rather than taken from candle-transformers because its quantized models cap
//! or mis-size the context, break on multi-token forwards past position 0, and keep the KV
//! cache inside the layers without truncation; see `kv_cache.rs` for the cache this uses.

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{DType, Device, Result, Tensor, D};

use super::config::{Arch, ModelConfig};
use super::kv_cache::KvCache;
use super::attention_cpu::{self, Geometry, RopeCpu};
use super::layers::{GatedActivation, Linear, Rope, RopeTables, RmsNorm};
use super::weights::Weights;
use super::Error;

/// Which positions to compute logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Every token's (teacher forcing, verification of forced tokens).
    All,
}

/// The query/key/value projections: one stacked matrix when the file stores them in one
/// type (or fused, as phi3 does), else three.
enum Qkv {
    Split { q: Linear, k: Linear, v: Linear },
    Stacked(Linear),
}

/// The gate/up projections, stacked `[gate; up]` when possible.
enum GateUp {
    Split { gate: Linear, up: Linear },
    Stacked(Linear),
}

struct Block {
    attn_norm: RmsNorm,
    qkv: Qkv,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    o: Linear,
    post_attn_norm: Option<RmsNorm>,
    ffn_norm: RmsNorm,
    gate_up: GateUp,
    down: Linear,
    post_ffn_norm: Option<RmsNorm>,
    sliding: bool,
}

/// Weights of a decoder-only transformer, immutable once loaded and shared by all sessions.
pub struct Transformer {
    cfg: ModelConfig,
    embed: Arc<QTensor>,
    blocks: Vec<Block>,
    norm: RmsNorm,
    output: Linear,
    rope_global: Rope,
    rope_local: Option<Rope>,
    vocab_size: usize,
    device: Device,
}

/// A projection's quantized weight and optional bias, read but not yet made into a [`Linear`],
/// so that several can be stacked into one matrix.
type Part = (Arc<QTensor>, Option<Tensor>);

/// Reads a required RMS norm weight of width `n`; every norm shares the model's epsilon.
fn norm(c: &ModelConfig, w: &mut Weights<'_>, name: &str, n: usize) -> std::result::Result<RmsNorm, Error> {
    Ok(RmsNorm::new(w.f32(name, &[n])?, c.rms_eps))
}

/// Reads an RMS norm that only some files carry (e.g. post norms outside Gemma 3).
fn norm_opt(c: &ModelConfig, w: &mut Weights<'_>, name: &str, n: usize) -> std::result::Result<Option<RmsNorm>, Error> {
    Ok(w.f32_opt(name, &[n])?.map(|t| RmsNorm::new(t, c.rms_eps)))
}

/// Reads `{name}.weight` as `[out, inp]` and its optional bias, kept apart so callers can
/// decide whether to stack it with its siblings.
fn part(w: &mut Weights<'_>, name: &str, out: usize, inp: usize) -> std::result::Result<Part, Error> {
    let weight = w.qtensor(&format!("{name}.weight"), &[out, inp])?;
    let bias = w.f32_opt(&format!("{name}.bias"), &[out])?;
    Ok((weight, bias))
}

/// Reads a projection that is always used on its own.
fn linear(w: &mut Weights<'_>, name: &str, out: usize, inp: usize) -> std::result::Result<Linear, Error> {
    let (weight, bias) = part(w, name, out, inp)?;
    Ok(Linear::new(weight, bias)?)
}

/// Stacks projections that read the same input into one matrix (one matmul instead of
/// several) when their storage types allow it; otherwise returns them separately, in order.
fn stack_or_split(parts: Vec<Part>) -> std::result::Result<std::result::Result<Linear, Vec<Linear>>, Error> {
    if let Some(l) = Linear::stacked(&parts)? {
        return Ok(Ok(l));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (w, b) in parts {
        out.push(Linear::new(w, b)?);
    }
    Ok(Err(out))
}

impl Qkv {
    /// Reads layer `p`'s query/key/value projections, either as phi3's fused `attn_qkv` or as
    /// three matrices, stacked when possible.
    fn load(c: &ModelConfig, w: &mut Weights<'_>, p: &str) -> std::result::Result<Self, Error> {
        let q_dim = c.n_head * c.head_dim;
        let k_dim = c.n_head_kv * c.head_dim;
        let v_dim = c.n_head_kv * c.value_dim;
        if w.has(&format!("{p}.attn_qkv.weight")) {
            return Ok(Qkv::Stacked(linear(w, &format!("{p}.attn_qkv"), q_dim + k_dim + v_dim, c.n_embd)?));
        }
        let parts = vec![
            part(w, &format!("{p}.attn_q"), q_dim, c.n_embd)?,
            part(w, &format!("{p}.attn_k"), k_dim, c.n_embd)?,
            part(w, &format!("{p}.attn_v"), v_dim, c.n_embd)?,
        ];
        Ok(match stack_or_split(parts)? {
            Ok(l) => Qkv::Stacked(l),
            Err(mut ls) => {
                let v = ls.pop().expect("three parts");
                let k = ls.pop().expect("three parts");
                let q = ls.pop().expect("three parts");
                Qkv::Split { q, k, v }
            }
        })
    }
}

impl GateUp {
    /// Reads layer `p`'s gate and up projections, stacked when possible.
    fn load(c: &ModelConfig, w: &mut Weights<'_>, p: &str) -> std::result::Result<Self, Error> {
        if !w.has(&format!("{p}.ffn_gate.weight")) {
            // phi3 stores gate and up stacked in `ffn_up`.
            return Ok(GateUp::Stacked(linear(w, &format!("{p}.ffn_up"), 2 * c.ffn_dim, c.n_embd)?));
        }
        let parts = vec![
            part(w, &format!("{p}.ffn_gate"), c.ffn_dim, c.n_embd)?,
            part(w, &format!("{p}.ffn_up"), c.ffn_dim, c.n_embd)?,
        ];
        Ok(match stack_or_split(parts)? {
            Ok(l) => GateUp::Stacked(l),
            Err(mut ls) => {
                let up = ls.pop().expect("two parts");
                let gate = ls.pop().expect("two parts");
                GateUp::Split { gate, up }
            }
        })
    }
}

impl Block {
    /// Reads layer `il`'s tensors; the architecture decides which norms are required,
    /// optional or absent.
    fn load(c: &ModelConfig, w: &mut Weights<'_>, il: usize) -> std::result::Result<Self, Error> {
        let p = format!("blk.{il}");
        let qkv = Qkv::load(c, w, &p)?;
        let gate_up = GateUp::load(c, w, &p)?;
        let (q_norm, k_norm) = match c.arch {
            Arch::Qwen3 | Arch::Gemma3 => (
                Some(norm(c, w, &format!("{p}.attn_q_norm.weight"), c.head_dim)?),
                Some(norm(c, w, &format!("{p}.attn_k_norm.weight"), c.head_dim)?),
            ),
            _ => (None, None),
        };
        let (post_attn_norm, post_ffn_norm) = match c.arch {
            Arch::Gemma3 => (
                Some(norm(c, w, &format!("{p}.post_attention_norm.weight"), c.n_embd)?),
                Some(norm(c, w, &format!("{p}.post_ffw_norm.weight"), c.n_embd)?),
            ),
            _ => (
                norm_opt(c, w, &format!("{p}.post_attention_norm.weight"), c.n_embd)?,
                norm_opt(c, w, &format!("{p}.post_ffw_norm.weight"), c.n_embd)?,
            ),
        };
        Ok(Block {
            attn_norm: norm(c, w, &format!("{p}.attn_norm.weight"), c.n_embd)?,
            qkv,
            q_norm,
            k_norm,
            o: linear(w, &format!("{p}.attn_output"), c.n_embd, c.n_head * c.value_dim)?,
            post_attn_norm,
            ffn_norm: norm(c, w, &format!("{p}.ffn_norm.weight"), c.n_embd)?,
            gate_up,
            down: linear(w, &format!("{p}.ffn_down"), c.n_embd, c.ffn_dim)?,
            post_ffn_norm,
            sliding: c.is_sliding(il),
        })
    }
}

/// Reads the output projection and the logits width it gives, falling back to the embedding
/// for models that tie the two.
fn load_output(
    c: &ModelConfig,
    w: &mut Weights<'_>,
    embed: &Arc<QTensor>,
    vocab_size: usize,
) -> std::result::Result<(Linear, usize), Error> {
    // Models with tied embeddings (SmolLM2, Gemma) have no `output.weight`.
    Ok(match w.shape("output.weight").map(|s| s[0]) {
        Some(rows) => (linear(w, "output", rows, c.n_embd)?, rows),
        None => (Linear::new(embed.clone(), None)?, vocab_size),
    })
}

/// Builds the global rotary embedding and, for models with local (sliding-window) layers, the
/// local one, applying the file's per-frequency factors; rejects scalings we do not implement
/// rather than running them wrongly.
fn load_ropes(c: &ModelConfig, w: &mut Weights<'_>) -> std::result::Result<(Rope, Option<Rope>), Error> {
    if w.has("rope_factors_long.weight") {
        return Err(Error::BadConfig(
            "long-rope scaling (rope_factors_long) is not supported".into(),
        ));
    }
    let freq_factors = if w.has("rope_freqs.weight") {
        let t = w.f32("rope_freqs.weight", &[c.rope_dims / 2])?;
        Some(t.to_vec1::<f32>()?)
    } else {
        None
    };
    let rope_global = Rope::new(c.rope_base, c.rope_dims, c.rope_scale, c.rope_layout, freq_factors.as_deref());
    let rope_local = c
        .rope_base_local
        .map(|base| Rope::new(base, c.rope_dims, 1.0, c.rope_layout, freq_factors.as_deref()));
    Ok((rope_global, rope_local))
}

impl Transformer {
    /// Builds the forward pass of `cfg` from the file's tensors, checking each one's shape.
    pub fn load(cfg: &ModelConfig, w: &mut Weights<'_>) -> std::result::Result<Self, Error> {
        let c = cfg;
        let vocab_size = w
            .shape("token_embd.weight")
            .ok_or_else(|| Error::MissingTensor("token_embd.weight".into()))?[0];
        let embed = w.qtensor("token_embd.weight", &[vocab_size, c.n_embd])?;
        let mut blocks = Vec::with_capacity(c.n_layer);
        for il in 0..c.n_layer {
            blocks.push(Block::load(c, w, il)?);
        }
        let norm_out = norm(c, w, "output_norm.weight", c.n_embd)?;
        let (output, vocab_out) = load_output(c, w, &embed, vocab_size)?;
        let (rope_global, rope_local) = load_ropes(c, w)?;
        Ok(Self {
            cfg: c.clone(),
            embed,
            blocks,
            norm: norm_out,
            output,
            rope_global,
            rope_local,
            vocab_size: vocab_out,
            device: w.device().clone(),
        })
    }

    /// The configuration the transformer was built for.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Width of the logits (can exceed the tokenizer's vocabulary).
    pub fn logits_width(&self) -> usize {
        self.vocab_size
    }

    /// The device its weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs `ids` at the cache's current position and appends them to the cache.
    ///
    /// Any number of tokens at any position: a prompt may be fed whole, in chunks, or one token
    /// at a time, with the same result up to float rounding. Returns f32 logits of shape
    /// `[1, width]` for [`Logits::Last`] or `[ids.len(), width]` for [`Logits::All`].
    pub fn forward(&self, ids: &[u32], cache: &mut KvCache, which: Logits) -> Result<Tensor> {
        let t = ids.len();
        if t == 0 {
            candle_core::bail!("forward called with no tokens")
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.embed.shape().dims()[0]) {
            candle_core::bail!("token id {bad} is outside the vocabulary")
        }
        let pos = cache.len();
        cache.reserve(t)?;
        let ids_t = Tensor::from_slice(ids, t, &self.device)?;
        let mut x = self.embed.embedding(&ids_t)?;
        if let Some(s) = self.cfg.embed_scale {
            x = (x * s)?;
        }
        let tensors = !cache.is_flat();
        let global = Positions::new(&self.rope_global, pos, t, None, tensors, &self.device)?;
        let local = Positions::new(
            self.rope_local.as_ref().unwrap_or(&self.rope_global),
            pos,
            t,
            self.cfg.sliding_window,
            tensors,
            &self.device,
        )?;
        for (il, b) in self.blocks.iter().enumerate() {
            let at = if b.sliding { &local } else { &global };
            x = self.block(b, il, &x, cache, at)?;
        }
        cache.advance(t);
        let x = match which {
            Logits::Last => x.narrow(0, t - 1, 1)?,
            Logits::All => x,
        };
        let x = self.norm.forward(&x)?;
        self.output.forward(&x)
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        b: &Block,
        il: usize,
        x: &Tensor,
        cache: &mut KvCache,
        at: &Positions<'_>,
    ) -> Result<Tensor> {
        let h = b.attn_norm.forward(x)?;
        let mut a = self.attention(b, il, &h, cache, at)?;
        if let Some(n) = &b.post_attn_norm {
            a = n.forward(&a)?;
        }
        let x = (x + a)?;
        let h = b.ffn_norm.forward(&x)?;
        let mut m = self.mlp(b, &h)?;
        if let Some(n) = &b.post_ffn_norm {
            m = n.forward(&m)?;
        }
        x + m
    }

    fn attention(&self, b: &Block, il: usize, h: &Tensor, cache: &mut KvCache, at: &Positions<'_>) -> Result<Tensor> {
        let c = &self.cfg;
        let t = h.dim(0)?;
        let (qd, kd, vd) = (c.n_head * c.head_dim, c.n_head_kv * c.head_dim, c.n_head_kv * c.value_dim);
        let (q, k, v) = match &b.qkv {
            Qkv::Split { q, k, v } => (q.forward(h)?, k.forward(h)?, v.forward(h)?),
            Qkv::Stacked(w) => {
                let y = w.forward(h)?;
                (y.narrow(1, 0, qd)?, y.narrow(1, qd, kd)?, y.narrow(1, qd + kd, vd)?)
            }
        };
        let mut q = q.reshape((t, c.n_head, c.head_dim))?;
        let mut k = k.reshape((t, c.n_head_kv, c.head_dim))?;
        if let Some(n) = &b.q_norm {
            q = n.forward(&q)?;
        }
        if let Some(n) = &b.k_norm {
            k = n.forward(&k)?;
        }
        if let Some(layer) = cache.cpu_layer(il) {
            let geometry = Geometry {
                n_head: c.n_head,
                n_kv: c.n_head_kv,
                head_dim: c.head_dim,
                value_dim: c.value_dim,
                scale: c.attn_scale as f32,
            };
            let mut qv = q.flatten_all()?.to_vec1::<f32>()?;
            let mut kv = k.flatten_all()?.to_vec1::<f32>()?;
            let vv = v.flatten_all()?.to_vec1::<f32>()?;
            let out = attention_cpu::attend(geometry, &mut qv, &mut kv, &vv, &at.cpu, layer, at.pos, at.window);
            return b.o.forward(&Tensor::from_vec(out, (t, c.n_head * c.value_dim), &self.device)?);
        }
        self.attention_tensors(b, il, q, k, v, cache, at)
    }

    /// The attention of [`Self::attention`] as tensor operations, for non-CPU devices.
    #[allow(clippy::too_many_arguments)]
    fn attention_tensors(
        &self,
        b: &Block,
        il: usize,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        cache: &mut KvCache,
        at: &Positions<'_>,
    ) -> Result<Tensor> {
        let c = &self.cfg;
        let t = q.dim(0)?;
        let Some((tables, mask)) = &at.device else {
            candle_core::bail!("tensor attention without tensor tables")
        };
        let rope = at.rope;
        let v = v.reshape((t, c.n_head_kv, c.value_dim))?;
        // [t, heads, d] -> [1, heads, t, d] for the rope kernels.
        let q = rope.apply(&q.transpose(0, 1)?.contiguous()?.unsqueeze(0)?, tables)?;
        let k = rope.apply(&k.transpose(0, 1)?.contiguous()?.unsqueeze(0)?, tables)?;
        // The same f16 roundings as the CPU attention, so that both paths give one answer.
        let q = (round_f16(&q)? * c.attn_scale)?;
        let k = round_f16(&k.squeeze(0)?)?;
        let v = round_f16(&v.transpose(0, 1)?.contiguous()?)?;

        let (keys, values) = cache.write(il, &k, &v, mask.start)?;
        let n_rep = c.n_rep();
        let n_keys = keys.dim(1)?;
        // Grouped-query attention without copying K/V per query head: the `n_rep` query heads
        // that share a K/V head are stacked as extra rows of one matmul.
        let q = q.reshape((c.n_head_kv, n_rep * t, c.head_dim))?;
        let scores = q.matmul(&keys.t()?)?;
        let scores = match &mask.bias {
            Some(bias) => scores
                .reshape((c.n_head_kv, n_rep, t, n_keys))?
                .broadcast_add(bias)?
                .reshape((c.n_head_kv, n_rep * t, n_keys))?,
            None => scores,
        };
        let probs = round_f16(&candle_nn::ops::softmax_last_dim(&scores)?)?;
        let out = probs.matmul(&values)?; // [n_kv, n_rep * t, vd]
        let out = out
            .reshape((c.n_head, t, c.value_dim))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((t, c.n_head * c.value_dim))?;
        b.o.forward(&out)
    }

    fn mlp(&self, b: &Block, h: &Tensor) -> Result<Tensor> {
        let act = GatedActivation {
            activation: self.cfg.activation,
            f: self.cfg.ffn_dim,
        };
        let hidden = match &b.gate_up {
            GateUp::Stacked(w) => act.forward(&w.forward(h)?)?,
            GateUp::Split { gate, up } => act.forward(&Tensor::cat(&[gate.forward(h)?, up.forward(h)?], D::Minus1)?)?,
        };
        b.down.forward(&hidden)
    }
}

/// Rounds to the nearest f16, keeping f32 (see `attention_cpu.rs` for why).
fn round_f16(t: &Tensor) -> Result<Tensor> {
    t.to_dtype(DType::F16)?.to_dtype(DType::F32)
}

/// What one forward call needs to know about positions, for layers of one kind (global or
/// sliding-window): rotary tables and, off the CPU, their tensor forms and the mask.
struct Positions<'a> {
    pos: usize,
    window: Option<usize>,
    rope: &'a Rope,
    cpu: RopeCpu,
    device: Option<(RopeTables, Mask)>,
}

impl<'a> Positions<'a> {
    fn new(rope: &'a Rope, pos: usize, t: usize, window: Option<usize>, tensors: bool, device: &Device) -> Result<Self> {
        let cpu = rope.cpu_tables(pos, t);
        let device = if !tensors {
            None
        } else {
            let half = cpu.cos.len() / t;
            Some((
                RopeTables::new(
                    Tensor::from_slice(&cpu.cos, (t, half), device)?,
                    Tensor::from_slice(&cpu.sin, (t, half), device)?,
                ),
                causal_mask(pos, t, window, device)?,
            ))
        };
        Ok(Self {
            pos,
            window,
            rope,
            cpu,
            device,
        })
    }
}

/// Which keys one forward call attends to: those from `start` on, with an additive bias
/// `[t, keys]` where some of them must stay hidden.
struct Mask {
    start: usize,
    bias: Option<Tensor>,
}

/// Builds the mask for `t` queries at positions `pos..pos + t`.
///
/// ```text
///  keys →      start .. pos .. pos+t-1
///  query pos     0  0  0  -∞ -∞          (-∞: a later token, or one outside the window)
///  query pos+1   0  0  0  0  -∞
/// ```
///
/// A single query (a decode step) needs no bias: keys before `start` are simply not read.
fn causal_mask(pos: usize, t: usize, window: Option<usize>, device: &Device) -> Result<Mask> {
    // The earliest key any query of this call can see.
    let start = window.map_or(0, |w| (pos + 1).saturating_sub(w));
    if t == 1 {
        return Ok(Mask { start, bias: None });
    }
    let n_keys = pos + t - start;
    let mut bias = vec![0f32; t * n_keys];
    for i in 0..t {
        let qpos = pos + i;
        for j in 0..n_keys {
            let kpos = start + j;
            if kpos > qpos || window.is_some_and(|w| qpos - kpos >= w) {
                bias[i * n_keys + j] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Mask {
        start,
        bias: Some(Tensor::from_vec(bias, (t, n_keys), device)?),
    })
}
