//! Matrix products for quantized weights on x86 CPUs with AVX2 (and AVX-512 VNNI where
//! present, detected at run time; `PAE_CPU_KERNELS=avx2|scalar` forces a lower level): Q4_1,
//! Q5_0, Q5_1 and Q6_K in [`interleaved`] groups of rows, Q8_0 in place in [`int8`], Q4_K
//! and Q5_K unpacked by [`kquant`] into Q4_1 and Q5_1 blocks of the same values.
//!
//! Written by hand because candle 0.11 has no SIMD dot product for the 32-value types on x86:
//! it falls back to scalar loops, which took 78% of decode time on SmolLM2-135M-Instruct Q4_1
//! (the default model) and most of Gemma-3-270M's, whose projections are Q5_0. Its K-quant
//! kernels keep a second, repacked copy of every weight, and its Q8_0 one was the larger part
//! of Gemma-3's decode. The kernels follow llama.cpp (`ggml_vec_dot_q4_1_q8_1`,
//! `…_q5_0_q8_0`, `…_q5_1_q8_1`, `…_q8_0_q8_0`): activations are quantized to 8 bits per
//! 32-value block exactly as llama.cpp's AVX path does (scale `127 / amax`, round half to
//! even, f16 scale, block sum in f32), unsigned-by-signed byte products are summed in integers
//! and scaled once per block. For K-quants llama.cpp quantizes activations per 256 values
//! (Q8_K); per 32, as here, is closer to the exact product. Work is split over candle's
//! thread pool, so `--threads` governs it too.
//!
//! Every kernel computes [`GROUP`] weight rows per call. Decode (one activation row) reads
//! them as one sequential stream; prefill unpacks each weight block once and multiplies it
//! with a tile of activation rows, where unpacking (the fifth bits above all) had cost as
//! much as the products.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use half::f16;

use super::cpu::SendPtr;

const QK: usize = 32;

/// Whether this CPU can run the kernels.
pub fn available() -> bool {
    super::cpu::simd_available()
}

mod int8;
mod interleaved;
mod kquant;

use interleaved::QuantMatrix;

/// Whether `dtype` is one this module handles.
pub fn handles(dtype: GgmlDType) -> bool {
    use GgmlDType::*;
    matches!(dtype, Q4_1 | Q5_0 | Q5_1 | Q4K | Q5K | Q6K | Q8_0)
}

/// The kernels' form of a CPU tensor `[n, k]` whose type [`handles`] accepts: Q8_0 shares the
/// tensor's blocks, the others are unpacked into the kernels' layouts (the tensor can then be
/// dropped).
pub fn matrix(t: Arc<QTensor>) -> Result<Arc<dyn CpuMatrix>> {
    Ok(match t.dtype() {
        GgmlDType::Q8_0 => Arc::new(int8::Q8_0Matrix::new(t)?),
        GgmlDType::Q6K => Arc::new(interleaved::Q6Matrix::from_q6k(&t)?),
        GgmlDType::Q4K | GgmlDType::Q5K => Arc::new(QuantMatrix::from_kquant(&t)?),
        _ => Arc::new(QuantMatrix::from_qtensor(&t)?),
    })
}

/// 32 activations `d * q` with `q` in -127..=127; `d` and `s = d * Σq` hold the f16-rounded
/// values llama.cpp stores, widened to f32 once here instead of in every dot product.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct ActBlock {
    qs: [i8; QK],
    d: f32,
    s: f32,
    /// Σq, exact, for the Q5_0 offset of 16.
    sum: i32,
    /// Σq over the first 16 values, for Q6_K's offset of 32 in each half-block.
    half: i32,
}

const EMPTY_ACT: ActBlock = ActBlock {
    qs: [0; QK],
    d: 0.0,
    s: 0.0,
    sum: 0,
    half: 0,
};

/// Weight rows one kernel call computes: the rows of one interleaved group
/// ([`interleaved`]), or as many rows, one after another, for the row-major layouts.
const GROUP: usize = 8;

/// A weight matrix in one of the kernels' layouts: what the parallel drivers below need of it.
trait Kernel: Sync {
    /// Outputs (rows of the weight).
    fn n(&self) -> usize;
    /// Inputs, a whole number of [`QK`]-value blocks.
    fn k(&self) -> usize;
    /// Decode: `x` (one activation row) times weight rows `first..first + GROUP`, `first` a
    /// multiple of [`GROUP`]; entries for rows at or past `n` are unspecified. The prefill
    /// tile with one row, unless a layout has a better way.
    fn dot_group(&self, level: Level, first: usize, x: &[ActBlock]) -> [f32; GROUP] {
        let mut out = [[0f32; GROUP]; TILE_ROWS];
        self.dot_tile(level, first, &[x], &mut out);
        out[0]
    }
    /// Prefill: `out[i][r] = W[first + r] · x[i]` for up to [`TILE_ROWS`] activation rows,
    /// each weight block unpacked once for all of them; entries past `n` as above.
    fn dot_tile(&self, level: Level, first: usize, x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]);
    /// The exact integer-sum reference for one weight row and one activation row, which the
    /// SIMD paths are tested against.
    #[cfg(test)]
    fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32;
}

/// A weight matrix our kernels multiply, whatever its layout.
pub trait CpuMatrix: std::fmt::Debug + Send + Sync {
    /// `(n, k)`: outputs and inputs.
    fn dims(&self) -> (usize, usize);
    /// `dst[r][c] = x[r] · W[c]` for the `m` rows of `x` (`[m, k]`, row-major).
    fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]);
}

impl<T: Kernel + std::fmt::Debug + Send> CpuMatrix for T {
    fn dims(&self) -> (usize, usize) {
        (self.n(), self.k())
    }

    fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]) {
        matmul(self, x, m, dst);
    }
}

/// Quantizes the activations once, then runs the decode or the prefill driver.
fn matmul<W: Kernel + ?Sized>(w: &W, x: &[f32], m: usize, dst: &mut [f32]) {
    let k = w.k();
    let per_row = k / QK;
    let mut xq = vec![EMPTY_ACT; m * per_row];
    quantize_rows(x, k, &mut xq);
    let level = kernel_level();
    if m >= 2 && level != Level::Scalar {
        return matmul_tiled(w, level, &xq, m, dst);
    }
    let n = w.n();
    // Work items: (activation row) × (group of GROUP output columns); decode has one row,
    // and the scalar level runs here for every row count.
    let groups = n.div_ceil(GROUP);
    let dst_ptr = SendPtr(dst.as_mut_ptr());
    let xq = &xq;
    candle_core::utils::barrier_pool().execute_chunked(m * groups, |items| {
        for item in items {
            let (r, first) = (item / groups, (item % groups) * GROUP);
            let v = w.dot_group(level, first, &xq[r * per_row..(r + 1) * per_row]);
            for (i, &val) in v.iter().enumerate().take(n - first) {
                // SAFETY: each (r, c) belongs to exactly one work item, and
                // r * n + c < m * n = dst.len().
                unsafe { *dst_ptr.get().add(r * n + first + i) = val };
            }
        }
    });
}

/// Quantizes the rows of `x` (`k` values each) into `xq`, over the thread pool when there are
/// several: serial, it had taken 3.5% of Gemma-3's prefill, on one core while the other waited.
fn quantize_rows(x: &[f32], k: usize, xq: &mut [ActBlock]) {
    let (m, per_row) = (x.len() / k, k / QK);
    if m < 4 {
        for r in 0..m {
            quantize_row(&x[r * k..(r + 1) * k], &mut xq[r * per_row..(r + 1) * per_row]);
        }
        return;
    }
    let xq_ptr = SendPtr(xq.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(m, |rows| {
        for r in rows {
            // SAFETY: each row `r < m` is quantized by one work item, into its own `per_row`
            // blocks of `xq` (which holds `m * per_row`).
            let out = unsafe { std::slice::from_raw_parts_mut(xq_ptr.get().add(r * per_row), per_row) };
            quantize_row(&x[r * k..(r + 1) * k], out);
        }
    });
}

/// Prefill: each weight block is unpacked once and multiplied with [`TILE_ROWS`] activation
/// rows. Work items are (tile of activation rows) × (two groups of output columns),
/// tile-major, so a thread's consecutive items share the activation tile in its cache.
fn matmul_tiled<W: Kernel + ?Sized>(w: &W, level: Level, xq: &[ActBlock], m: usize, dst: &mut [f32]) {
    const COLS: usize = 2 * GROUP;
    let (n, per_row) = (w.n(), w.k() / QK);
    let col_groups = n.div_ceil(COLS);
    let row_tiles = m.div_ceil(TILE_ROWS);
    let dst_ptr = SendPtr(dst.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(row_tiles * col_groups, |items| {
        for item in items {
            let (tile, group) = (item / col_groups, item % col_groups);
            let rows = tile * TILE_ROWS..((tile + 1) * TILE_ROWS).min(m);
            let mut x: [&[ActBlock]; TILE_ROWS] = [&[]; TILE_ROWS];
            for (slot, r) in x.iter_mut().zip(rows.clone()) {
                *slot = &xq[r * per_row..(r + 1) * per_row];
            }
            let x = &x[..rows.len()];
            for first in (group * COLS..((group + 1) * COLS).min(n)).step_by(GROUP) {
                let mut out = [[0f32; GROUP]; TILE_ROWS];
                w.dot_tile(level, first, x, &mut out);
                // Whole rows of results at once: read back one float at a time, the kernels'
                // vector stores stalled store forwarding (5% of SmolLM2's prefill).
                let take = GROUP.min(n - first);
                for (i, r) in rows.clone().enumerate() {
                    // SAFETY: the cells (r, first..first + take) belong to this work item alone,
                    // and r * n + first + take <= m * n = dst.len().
                    unsafe { std::ptr::copy_nonoverlapping(out[i].as_ptr(), dst_ptr.get().add(r * n + first), take) };
                }
            }
        }
    });
}

/// Activation rows one weight block is multiplied with while it sits in registers: 8
/// measured 6–10% faster than 4 in prefill on an AVX-512 machine (whose 32 vector registers
/// hold the 8 accumulators); AVX2 alone spills a little but still gains from the reuse.
const TILE_ROWS: usize = 8;

/// Which instructions the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// AVX2 with AVX-512 VNNI (and BW) on 256-bit vectors: one `vpdpbusd` for each byte
    /// product and its sum, where AVX2 needs `vpmaddubsw` then `vpmaddwd`.
    Vnni,
    /// AVX2, FMA and F16C.
    Avx2,
    /// Plain Rust: CPUs without AVX2, and tests that compare the two.
    Scalar,
}

/// The best level this CPU has, or a lower one that `PAE_CPU_KERNELS` (`avx2` or `scalar`)
/// asks for: so that every path can be tested, and a suspected kernel bug ruled out, on a
/// machine that has the higher ones.
fn kernel_level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = if !available() {
            Level::Scalar
        } else if vnni_available() {
            Level::Vnni
        } else {
            Level::Avx2
        };
        match std::env::var("PAE_CPU_KERNELS").as_deref() {
            Ok("scalar") => Level::Scalar,
            Ok("avx2") if best == Level::Vnni => Level::Avx2,
            _ => best,
        }
    })
}

fn vnni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// llama.cpp's AVX `quantize_row_q8_0` / `quantize_row_q8_1` (they round the same way).
fn quantize_row(x: &[f32], out: &mut [ActBlock]) {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: the features were detected.
            return unsafe { quantize_row_avx2(x, out) };
        }
    }
    quantize_row_portable(x, out);
}

/// [`quantize_row_portable`] in vectors, with the same result to the bit: the maximum does
/// not depend on order, each value is multiplied and rounded half to even alike, and the
/// sum is of integers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_row_avx2(x: &[f32], out: &mut [ActBlock]) {
    use std::arch::x86_64::*;
    let sign = _mm256_set1_ps(-0.0);
    // `packs` interleaves the 128-bit halves; this puts the 32 bytes back in order.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (xs, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        // Plain loops, no closures: a closure is not compiled with this function's features.
        let mut v = [_mm256_setzero_ps(); 4];
        for (i, vi) in v.iter_mut().enumerate() {
            *vi = _mm256_loadu_ps(xs.as_ptr().add(8 * i));
        }
        let mut m = _mm256_andnot_ps(sign, v[0]);
        for vi in &v[1..] {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *vi));
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
        let mut q = [_mm256_setzero_si256(); 4];
        for (qi, vi) in q.iter_mut().zip(v) {
            let rounded = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(vi, id));
            *qi = _mm256_cvtps_epi32(rounded);
        }
        let first = _mm256_add_epi32(q[0], q[1]);
        let half = hsum_i32(first);
        let sum = half + hsum_i32(_mm256_add_epi32(q[2], q[3]));
        let bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_store_si256(b.qs.as_mut_ptr() as *mut __m256i, _mm256_permutevar8x32_epi32(bytes, order));
        // Through f16 and back with F16C, rounding to nearest even as `half` does.
        let both = _mm_cvtph_ps(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_setr_ps(d, d * sum as f32, 0.0, 0.0)));
        b.d = _mm_cvtss_f32(both);
        b.s = _mm_cvtss_f32(_mm_movehdup_ps(both));
        b.sum = sum;
        b.half = half;
    }
}

/// The sum of eight i32 lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn hsum_i32(v: std::arch::x86_64::__m256i) -> i32 {
    use std::arch::x86_64::*;
    let t4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let t2 = _mm_add_epi32(t4, _mm_shuffle_epi32::<0b01_00_11_10>(t4));
    _mm_cvtsi128_si32(_mm_add_epi32(t2, _mm_shuffle_epi32::<0b10_11_00_01>(t2)))
}

#[inline(always)]
fn quantize_row_portable(x: &[f32], out: &mut [ActBlock]) {
    for (xs, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let (mut sum, mut half) = (0i32, 0i32);
        for (j, (q, &v)) in b.qs.iter_mut().zip(xs).enumerate() {
            let r = (v * id).round_ties_even() as i32;
            *q = r as i8;
            sum += r;
            if j < QK / 2 {
                half += r;
            }
        }
        b.d = f16::from_f32(d).to_f32();
        b.s = f16::from_f32(d * sum as f32).to_f32();
        b.sum = sum;
        b.half = half;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)))
}

/// The candle op that runs [`QuantMatrix::matmul`] on a `[.., k]` f32 tensor.
#[derive(Debug, Clone)]
pub struct QuantMatMul(pub Arc<dyn CpuMatrix>);

impl CustomOp1 for QuantMatMul {
    fn name(&self) -> &'static str {
        "quant-cpu-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let w = &self.0;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("quant-cpu-matmul needs a contiguous input")
        };
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("quant-cpu-matmul needs f32 input")
        };
        let x = &data[start..end];
        let mut dims = layout.shape().dims().to_vec();
        let k = dims.pop().unwrap_or(0);
        let (n, wk) = w.dims();
        if k != wk {
            candle_core::bail!("quant-cpu-matmul: input has {k} features, the weight {wk}")
        }
        let m = x.len() / k;
        let mut dst = vec![0f32; m * n];
        w.matmul(x, m, &mut dst);
        dims.push(n);
        Ok((CpuStorage::F32(dst), Shape::from(dims)))
    }
}

/// Applies the kernel: `x` of shape `[.., k]` → `[.., n]`.
pub fn forward(w: &Arc<dyn CpuMatrix>, x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&QuantMatMul(w.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};

    /// Every type the kernels take, with the kernel each is unpacked into.
    const TYPES: [GgmlDType; 7] = [
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
        GgmlDType::Q8_0,
    ];

    /// Every instruction level this CPU has, whatever `PAE_CPU_KERNELS` says.
    fn levels() -> impl Iterator<Item = Level> {
        [Level::Scalar, Level::Avx2, Level::Vnni].into_iter().filter(|l| match l {
            Level::Scalar => true,
            Level::Avx2 => available(),
            Level::Vnni => available() && vnni_available(),
        })
    }

    /// A random `[n, k]` weight in `dtype`, as candle quantizes it, and our kernel's form.
    fn random_weight(dtype: GgmlDType, n: usize, k: usize) -> (QTensor, Box<dyn KernelMatrix>) {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let kernel: Box<dyn KernelMatrix> = match dtype {
            GgmlDType::Q8_0 => Box::new(int8::Q8_0Matrix::new(Arc::new(QTensor::quantize(&w, dtype).unwrap())).unwrap()),
            GgmlDType::Q6K => Box::new(interleaved::Q6Matrix::from_q6k(&q).unwrap()),
            GgmlDType::Q4K | GgmlDType::Q5K => Box::new(QuantMatrix::from_kquant(&q).unwrap()),
            _ => Box::new(QuantMatrix::from_qtensor(&q).unwrap()),
        };
        (q, kernel)
    }

    /// [`Kernel`] as an object, for tests over every type.
    trait KernelMatrix {
        fn kernel(&self) -> &dyn KernelDyn;
    }
    trait KernelDyn {
        fn n(&self) -> usize;
        fn dot_group(&self, level: Level, first: usize, x: &[ActBlock]) -> [f32; GROUP];
        fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32;
        fn tiled(&self, level: Level, xq: &[ActBlock], m: usize, dst: &mut [f32]);
        fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]);
    }
    impl<T: Kernel> KernelDyn for T {
        fn n(&self) -> usize {
            Kernel::n(self)
        }
        fn dot_group(&self, level: Level, first: usize, x: &[ActBlock]) -> [f32; GROUP] {
            Kernel::dot_group(self, level, first, x)
        }
        fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32 {
            Kernel::dot_scalar(self, row, x)
        }
        fn tiled(&self, level: Level, xq: &[ActBlock], m: usize, dst: &mut [f32]) {
            matmul_tiled(self, level, xq, m, dst);
        }
        fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]) {
            matmul(self, x, m, dst);
        }
    }
    impl<T: Kernel> KernelMatrix for T {
        fn kernel(&self) -> &dyn KernelDyn {
            self
        }
    }

    fn quantized(x: &[f32], m: usize, k: usize) -> Vec<ActBlock> {
        let mut xq = vec![EMPTY_ACT; m * k / QK];
        for r in 0..m {
            quantize_row(&x[r * k..(r + 1) * k], &mut xq[r * k / QK..(r + 1) * k / QK]);
        }
        xq
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn k_quants_unpack_to_exactly_the_values_candle_dequantizes() {
        for dtype in [GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K] {
            let w = Tensor::randn(0f32, 1.0, (3, 512), &Device::Cpu).unwrap();
            let q = QTensor::quantize(&w, dtype).unwrap();
            let want = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let got: Vec<f32> = match dtype {
                GgmlDType::Q6K => {
                    let blocks = kquant::q6k_to_int8(&q.data().unwrap(), 3 * 512).unwrap();
                    blocks
                        .iter()
                        .flat_map(|b| (0..QK).map(move |j| b.scales()[j / 16] * b.q[j] as f32))
                        .collect()
                }
                _ => {
                    let m = QuantMatrix::from_kquant(&q).unwrap();
                    (0..3).flat_map(|r| (0..512).map(move |c| (r, c))).map(|(r, c)| m.dequantized(r, c)).collect()
                }
            };
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{dtype:?} value {i}: {g} vs {w}");
            }
        }
    }

    /// Root-mean-square of `a - b` relative to that of `b`.
    fn relative_rms(a: &Tensor, b: &Tensor) -> f32 {
        let rms = |t: &Tensor| t.sqr().unwrap().mean_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap();
        rms(&(a - b).unwrap()) / rms(b)
    }

    #[test]
    fn every_type_matches_dequantized_weights_and_candle() {
        let dev = Device::Cpu;
        for dtype in TYPES {
            let kquant = matches!(dtype, GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K);
            // K-quants need rows of whole 256-value blocks. 37 rows leave a tail of 5 after
            // groups of 8 and after pairs of them (prefill).
            let k = if kquant { 512 } else { 96 };
            let (q, ours) = random_weight(dtype, 37, k);
            let dequantized = q.dequantize(&dev).unwrap();
            let candle = candle_core::quantized::QMatMul::from_qtensor(q).unwrap();
            for m in [1, 5] {
                let x = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
                let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let mut got = vec![0f32; m * 37];
                ours.kernel().matmul(&xs, m, &mut got);
                let got = Tensor::from_vec(got, (m, 37), &dev).unwrap();
                // Dequantized weights times f32 activations: only activation rounding differs
                // (about 0.5% of the result's magnitude).
                let exact = x.matmul(&dequantized.t().unwrap()).unwrap();
                let ours_err = relative_rms(&got, &exact);
                assert!(ours_err < 0.02, "{dtype:?} m={m}: relative error {ours_err}");
                let theirs = candle.forward(&x).unwrap();
                if kquant {
                    // candle quantizes the activations per 256 values (llama.cpp's Q8_K), we
                    // per 32, with finer scales: no further from the exact product.
                    let candle_err = relative_rms(&theirs, &exact);
                    assert!(ours_err <= candle_err * 1.5, "{dtype:?} m={m}: relative error {ours_err}, candle's {candle_err}");
                } else {
                    // The same activation quantization as candle and llama.cpp.
                    let diff = relative_rms(&got, &theirs);
                    assert!(diff < 5e-3, "{dtype:?} m={m}: relative difference from candle {diff}");
                }
            }
        }
    }

    #[test]
    fn decode_kernels_match_the_scalar_kernel_on_every_level() {
        for dtype in TYPES {
            let k = if matches!(dtype, GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K) { 256 } else { 96 };
            // 10 rows: a whole group of 8 and a tail of 2.
            let (_, ours) = random_weight(dtype, 10, k);
            let w = ours.kernel();
            let x = Tensor::randn(0f32, 1.0, k, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
            let xq = quantized(&x, 1, k);
            for level in levels() {
                for first in [0, GROUP] {
                    let got = w.dot_group(level, first, &xq);
                    for (i, g) in got.into_iter().enumerate().take(10 - first) {
                        let want = w.dot_scalar(first + i, &xq);
                        assert!(close(g, want), "{dtype:?} {level:?} row {}: {g} vs {want}", first + i);
                    }
                }
            }
        }
    }

    #[test]
    fn prefill_tiles_match_the_scalar_kernel_for_every_shape() {
        for dtype in TYPES {
            let k = if matches!(dtype, GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K) { 256 } else { 96 };
            // 37 outputs: two full column groups of 16 and a tail of 5.
            let (_, ours) = random_weight(dtype, 37, k);
            let w = ours.kernel();
            let per_row = k / QK;
            // Row counts that leave every tail size (1 to 7) after whole tiles of 8.
            for m in [2, 3, 4, 5, 6, 7, 8, 9, 15, 20] {
                let x = Tensor::randn(0f32, 1.0, m * k, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap();
                let xq = quantized(&x, m, k);
                for level in levels() {
                    let mut got = vec![f32::NAN; m * 37];
                    w.tiled(level, &xq, m, &mut got);
                    for r in 0..m {
                        for c in 0..w.n() {
                            let want = w.dot_scalar(c, &xq[r * per_row..(r + 1) * per_row]);
                            let g = got[r * 37 + c];
                            assert!(close(g, want), "{dtype:?} {level:?} m={m} ({r}, {c}): {g} vs {want}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn vector_quantization_gives_the_portable_bits() {
        if !available() {
            return;
        }
        // Ties (x.5 after scaling), zeros, an all-zero block and large values.
        let mut x: Vec<f32> = Tensor::randn(0f32, 3.0, 4 * QK, &Device::Cpu).unwrap().to_vec1().unwrap();
        x[..QK].iter_mut().enumerate().for_each(|(i, v)| *v = (i as f32 - 16.0) * 0.5);
        x[QK] = 0.0;
        x[2 * QK..3 * QK].iter_mut().for_each(|v| *v = 0.0);
        x[3 * QK] = -1.0e6;
        let (mut a, mut b) = ([EMPTY_ACT; 4], [EMPTY_ACT; 4]);
        quantize_row_portable(&x, &mut a);
        // SAFETY: `available` checked the features.
        unsafe { quantize_row_avx2(&x, &mut b) };
        for (a, b) in a.iter().zip(&b) {
            assert_eq!((a.qs, a.d.to_bits(), a.s.to_bits(), a.sum, a.half), (b.qs, b.d.to_bits(), b.s.to_bits(), b.sum, b.half));
        }
    }

    #[test]
    fn quantization_rounds_like_llama_cpp() {
        let mut xs = [0f32; QK];
        xs[0] = 127.0;
        xs[1] = 2.5; // half to even: 2
        xs[2] = -3.5; // half to even: -4
        let mut b = [EMPTY_ACT];
        quantize_row(&xs, &mut b);
        assert_eq!(&b[0].qs[..3], &[127, 2, -4]);
        assert_eq!((b[0].s, b[0].sum), (125.0, 125));
    }
}
