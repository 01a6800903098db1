//! Building blocks of the decoder: projections, norms and rotary tables.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QStorage, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor, D};

use super::attention_cpu::RopeCpu;
use super::config::{Activation, RopeLayout};
use super::quant_cpu::{self, CpuMatrix};

/// A projection `x·Wᵀ (+ b)` whose weight stays in its file quantization.
///
/// On CPU, candle quantizes the activations to the weight's dot-product type (Q8_0, Q8_1 or
/// Q8_K) exactly as llama.cpp does, which is what keeps our logits close to its own.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Weight {
    Candle(QMatMul),
    /// Q4_1, Q5_x, Q4_K, Q5_K, Q6_K and Q8_0 on an AVX2 CPU: our kernels.
    Cpu(Arc<dyn CpuMatrix>),
}

impl Linear {
    pub fn new(weight: Arc<QTensor>, bias: Option<Tensor>) -> Result<Self> {
        let weight = if quant_cpu::handles(weight.dtype()) && weight.device().is_cpu() && quant_cpu::available() {
            Weight::Cpu(quant_cpu::matrix(weight)?)
        } else {
            Weight::Candle(QMatMul::from_arc(weight)?)
        };
        Ok(Self { weight, bias })
    }

    /// One projection computing several stacked outputs (`[q; k; v]`, `[gate; up]`): one
    /// activation quantization and one parallel region instead of several. `None` when the
    /// parts are stored in different types and cannot share one matrix.
    pub fn stacked(parts: &[(Arc<QTensor>, Option<Tensor>)]) -> Result<Option<Self>> {
        let Some((first, _)) = parts.first() else {
            return Ok(None);
        };
        let (dtype, device) = (first.dtype(), first.device());
        let k = first.shape().dims2()?.1;
        let mut n = 0;
        for (w, _) in parts {
            let (rows, cols) = w.shape().dims2()?;
            if w.dtype() != dtype || cols != k || !w.device().same_device(&device) {
                return Ok(None);
            }
            n += rows;
        }
        let mut bytes = Vec::new();
        for (w, _) in parts {
            bytes.extend_from_slice(&w.data()?);
        }
        let storage = QStorage::from_data(std::borrow::Cow::Owned(bytes), &device, dtype)?;
        let weight = Arc::new(QTensor::new(storage, (n, k))?);
        let bias = if parts.iter().any(|(_, b)| b.is_some()) {
            let mut bs = Vec::with_capacity(parts.len());
            for (w, b) in parts {
                bs.push(match b {
                    Some(b) => b.clone(),
                    None => Tensor::zeros(w.shape().dims2()?.0, DType::F32, &device)?,
                });
            }
            Some(Tensor::cat(&bs, 0)?)
        } else {
            None
        };
        Self::new(weight, bias).map(Some)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.weight {
            Weight::Candle(w) => w.forward(x)?,
            Weight::Cpu(w) => quant_cpu::forward(w, x)?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Root-mean-square norm over the last dimension, with the weight as stored in the file
/// (Gemma's converter already folds its `1 + w` into the stored weight).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn new(weight: Tensor, eps: f64) -> Self {
        Self {
            weight,
            eps: eps as f32,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 && self.weight.dtype() == DType::F32 {
            return x.contiguous()?.apply_op2_no_bwd(&self.weight.contiguous()?, &RmsNormCpu { eps: self.eps });
        }
        candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)
    }
}

/// RMS norm on the CPU, as candle computes it, with prefill's rows over the thread pool our
/// matmuls use: candle's kernel spreads them over rayon's, a second set of threads beside
/// ours on the same cores.
struct RmsNormCpu {
    eps: f32,
}

/// Values per row below which a norm is not worth a trip through the thread pool.
const RMS_NORM_PARALLEL_MIN: usize = 16 * 1024;

impl RmsNormCpu {
    /// Candle's arithmetic, operation for operation (the logits are sensitive to it: summing
    /// the squares in f64, as llama.cpp does, or in eight lanes each moved a clear top-1 of
    /// Gemma-3's away from llama.cpp's).
    fn row(&self, x: &[f32], w: &[f32], out: &mut [f32]) {
        let sum2: f32 = x.iter().map(|&v| v * v).sum();
        let m = (sum2 / x.len() as f32 + self.eps).sqrt();
        for ((o, &v), &w) in out.iter_mut().zip(x).zip(w) {
            *o = v / m * w;
        }
    }
}

impl candle_core::CustomOp2 for RmsNormCpu {
    fn name(&self) -> &'static str {
        "rms-norm-cpu"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("rms-norm needs contiguous inputs")
        };
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (s1, s2) else {
            candle_core::bail!("rms-norm needs f32 inputs")
        };
        let (x, w) = (&x[a..b], &w[c..d]);
        let n = w.len();
        if n == 0 || l1.shape().dims().last() != Some(&n) {
            candle_core::bail!("rms-norm weight of {n} values for rows of shape {:?}", l1.shape())
        }
        let rows = x.len() / n;
        let mut out = vec![0f32; x.len()];
        if x.len() < RMS_NORM_PARALLEL_MIN {
            for (xr, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
                self.row(xr, w, o);
            }
        } else {
            let out_ptr = super::cpu::SendPtr(out.as_mut_ptr());
            candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
                for r in range {
                    // SAFETY: each row `r < rows` is written by one work item, into its own
                    // `n` values of `out` (which holds `rows * n`).
                    let o = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(r * n), n) };
                    self.row(&x[r * n..(r + 1) * n], w, o);
                }
            });
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Rotary position embedding for one frequency base.
///
/// Angles are computed for the positions of each forward call rather than tabulated for the
/// whole context: a decode step needs `rope_dims / 2` sines, and a 128k-position table would
/// cost hundreds of megabytes for nothing.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f64>,
    /// Linear position scaling: position `p` rotates like `p / scale`.
    scale: f64,
    layout: RopeLayout,
    dims: usize,
}

/// The cos/sin tables of one forward call, shape `[t, dims / 2]`.
pub struct RopeTables {
    cos: Tensor,
    sin: Tensor,
}

impl RopeTables {
    pub fn new(cos: Tensor, sin: Tensor) -> Self {
        Self { cos, sin }
    }
}

impl Rope {
    /// `freq_factors` (Llama 3's `rope_freqs.weight`) divide the per-pair frequencies.
    pub fn new(
        base: f64,
        dims: usize,
        scale: f64,
        layout: RopeLayout,
        freq_factors: Option<&[f32]>,
    ) -> Self {
        let inv_freq = (0..dims / 2)
            .map(|i| {
                let f = 1.0 / base.powf(2.0 * i as f64 / dims as f64);
                match freq_factors {
                    Some(ff) => f / ff[i] as f64,
                    None => f,
                }
            })
            .collect();
        Self {
            inv_freq,
            scale,
            layout,
            dims,
        }
    }

    /// Tables for positions `start..start + len`, as plain vectors for the CPU attention.
    pub fn cpu_tables(&self, start: usize, len: usize) -> RopeCpu {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for p in start..start + len {
            let p = p as f64 / self.scale;
            for &f in &self.inv_freq {
                let (s, c) = (p * f).sin_cos();
                cos.push(c as f32);
                sin.push(s as f32);
            }
        }
        RopeCpu {
            cos,
            sin,
            dims: self.dims,
            layout: self.layout,
        }
    }

    /// Rotates `x` of shape `[1, heads, t, head_dim]` (contiguous).
    pub fn apply(&self, x: &Tensor, t: &RopeTables) -> Result<Tensor> {
        let head_dim = x.dim(D::Minus1)?;
        if self.dims == head_dim {
            return self.rotate(x, t);
        }
        // Partial rotary: only the first `dims` dimensions turn.
        let rot = x.narrow(D::Minus1, 0, self.dims)?.contiguous()?;
        let pass = x.narrow(D::Minus1, self.dims, head_dim - self.dims)?;
        Tensor::cat(&[&self.rotate(&rot, t)?, &pass], D::Minus1)
    }

    fn rotate(&self, x: &Tensor, t: &RopeTables) -> Result<Tensor> {
        match self.layout {
            RopeLayout::Interleaved => candle_nn::rotary_emb::rope_i(x, &t.cos, &t.sin),
            RopeLayout::Halves => candle_nn::rotary_emb::rope(x, &t.cos, &t.sin),
        }
    }
}

/// The gated activation `act(gate) * up` over a stacked `[.., 2·f]` tensor (`[gate | up]`),
/// one pass on the CPU instead of narrow, activation and multiply ops.
#[derive(Debug, Clone, Copy)]
pub struct GatedActivation {
    pub activation: Activation,
    pub f: usize,
}

impl GatedActivation {
    pub fn forward(&self, gate_up: &Tensor) -> Result<Tensor> {
        if gate_up.device().is_cpu() {
            return gate_up.contiguous()?.apply_op1_no_bwd(self);
        }
        let gate = gate_up.narrow(D::Minus1, 0, self.f)?;
        let up = gate_up.narrow(D::Minus1, self.f, self.f)?;
        let act = match self.activation {
            Activation::Silu => gate.silu()?,
            Activation::GeluTanh => gate.gelu()?,
        };
        act * up
    }
}

impl CustomOp1 for GatedActivation {
    fn name(&self) -> &'static str {
        "gated-activation"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gated-activation needs a contiguous input")
        };
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("gated-activation needs f32 input")
        };
        let f = self.f;
        let x = &data[start..end];
        let rows = x.len() / (2 * f);
        let mut out = vec![0f32; rows * f];
        let activation = self.activation;
        let one_row = move |row: &[f32], out: &mut [f32]| {
            let (gate, up) = row.split_at(f);
            super::activation_cpu::gated(activation, gate, up, out);
        };
        if rows < 4 {
            for (row, o) in x.chunks_exact(2 * f).zip(out.chunks_exact_mut(f)) {
                one_row(row, o);
            }
        } else {
            // Prefill: rows over the thread pool (on one thread, 4% of Gemma-3's prefill).
            let out_ptr = super::cpu::SendPtr(out.as_mut_ptr());
            candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
                for r in range {
                    // SAFETY: each row `r < rows` is written by one work item, into its own
                    // `f` values of `out` (which holds `rows * f`).
                    let o = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(r * f), f) };
                    one_row(&x[r * 2 * f..(r + 1) * 2 * f], o);
                }
            });
        }
        let mut dims = layout.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = f;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}
