//! Q8_0 weights: signed bytes with an f16 scale per 32, multiplied as stored in the file.
//!
//! Q8_0 is read in place from candle's blocks, never copied: Gemma-3's 178 MB embedding is
//! also its output projection, and a second copy would double the model's largest tensor.
//! Candle's own Q8_0 dot product converted every block's f16 scale through a function call
//! and summed each row on its own; here one activation block is loaded once for four weight
//! rows (decode) and one weight block once for a tile of activation rows (prefill).

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Result;
use half::f16;

use super::{ActBlock, Kernel, Level, GROUP, QK, TILE_ROWS};

/// What the kernel reads of one weight row: block `b`'s 32 signed values and the bits of its
/// f16 scale, which the SIMD paths widen with one instruction rather than `half`'s run-time
/// dispatch.
trait I8Row: Copy {
    fn qs(self, b: usize) -> *const i8;
    fn f16_bits(self, b: usize) -> u16;
}

/// One block of a Q8_0 tensor as the file (and candle) lays it out: f16 scale, 32 values.
#[repr(C)]
#[derive(Clone, Copy)]
struct BlockQ8_0 {
    d: [u8; 2],
    qs: [i8; QK],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

#[derive(Clone, Copy)]
struct Q8_0Row<'a>(&'a [BlockQ8_0]);

impl I8Row for Q8_0Row<'_> {
    #[inline(always)]
    fn qs(self, b: usize) -> *const i8 {
        // SAFETY (of the callers' reads): `b` is below the row's block count.
        unsafe { self.0.get_unchecked(b).qs.as_ptr() }
    }

    #[inline(always)]
    fn f16_bits(self, b: usize) -> u16 {
        // SAFETY: as above.
        u16::from_le_bytes(unsafe { self.0.get_unchecked(b) }.d)
    }
}

/// A Q8_0 weight `[n, k]`, multiplied in place.
#[derive(Debug)]
pub struct Q8_0Matrix {
    /// Owns the blocks `blocks` points at.
    _tensor: Arc<QTensor>,
    /// The tensor's `n * k / QK` blocks, found once: asking candle for them per row went
    /// through two dynamic calls and a `Cow`, 30% of the time of the products themselves.
    blocks: *const BlockQ8_0,
    n: usize,
    k: usize,
}

// SAFETY: `blocks` points into the storage `tensor` owns, which is never written or moved
// while the `Arc` lives (a CPU `QTensor` keeps its blocks in a boxed vector), and is only read.
unsafe impl Send for Q8_0Matrix {}
unsafe impl Sync for Q8_0Matrix {}

impl Q8_0Matrix {
    /// Shares `t`'s blocks (a CPU Q8_0 tensor of shape `[n, k]`).
    pub fn new(t: Arc<QTensor>) -> Result<Self> {
        if t.dtype() != GgmlDType::Q8_0 {
            candle_core::bail!("expected a Q8_0 tensor, got {:?}", t.dtype())
        }
        let (n, k) = t.shape().dims2()?;
        if k % QK != 0 {
            candle_core::bail!("rows of {k} values are not whole blocks")
        }
        let blocks = match t.data()? {
            std::borrow::Cow::Borrowed(b) if b.len() == n * k / QK * 34 => b.as_ptr() as *const BlockQ8_0,
            std::borrow::Cow::Borrowed(b) => {
                candle_core::bail!("Q8_0 tensor holds {} bytes, expected {}", b.len(), n * k / QK * 34)
            }
            std::borrow::Cow::Owned(_) => candle_core::bail!("the Q8_0 kernel needs a CPU tensor"),
        };
        Ok(Self { _tensor: t, blocks, n, k })
    }

    /// Row `i < n`.
    fn row(&self, i: usize) -> Q8_0Row<'_> {
        assert!(i < self.n, "row {i} of {}", self.n);
        let per_row = self.k / QK;
        // SAFETY: `BlockQ8_0` is 34 bytes of plain integers with alignment 1; `blocks` holds
        // `n * k / QK` of them (checked in `new`), alive as long as `self`, and row `i < n`
        // is the `per_row` blocks from `i * per_row`.
        Q8_0Row(unsafe { std::slice::from_raw_parts(self.blocks.add(i * per_row), per_row) })
    }
}

macro_rules! kernel_for {
    ($matrix:ty) => {
        impl Kernel for $matrix {
            fn n(&self) -> usize {
                self.n
            }

            fn k(&self) -> usize {
                self.k
            }

            fn dot_group(&self, level: Level, first: usize, x: &[ActBlock]) -> [f32; GROUP] {
                // Rows past the end repeat the last one (their results are dropped).
                let row = |i: usize| self.row((first + i).min(self.n - 1));
                let [a, b, c, d] = dot4(level, [row(0), row(1), row(2), row(3)], x);
                let [e, f, g, h] = dot4(level, [row(4), row(5), row(6), row(7)], x);
                [a, b, c, d, e, f, g, h]
            }

            fn dot_tile(&self, level: Level, first: usize, x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
                for i in 0..GROUP.min(self.n - first) {
                    let mut one = [0f32; TILE_ROWS];
                    dot_rows(level, self.row(first + i), x, &mut one);
                    for (o, v) in out.iter_mut().zip(one) {
                        o[i] = v;
                    }
                }
            }

            #[cfg(test)]
            fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32 {
                dot_scalar(self.row(row), x)
            }
        }
    };
}
kernel_for!(Q8_0Matrix);

/// Reference implementation (and the fallback without AVX2): integer sums, scaled.
fn dot_scalar<R: I8Row>(w: R, x: &[ActBlock]) -> f32 {
    let mut total = 0f32;
    for (b, bx) in x.iter().enumerate() {
        // SAFETY: `qs` points at the block's 32 values.
        let qs = unsafe { std::slice::from_raw_parts(w.qs(b), QK) };
        let sum: i32 = qs.iter().zip(&bx.qs).map(|(&w, &x)| w as i32 * x as i32).sum();
        total += bx.d * f16::from_bits(w.f16_bits(b)).to_f32() * sum as f32;
    }
    total
}

/// Decode runs the AVX2 body on both SIMD levels: this loop streams the weights (Gemma-3's
/// 178 MB output projection above all) and does one product per loaded byte, and on an AMD
/// EPYC with AVX-512 VNNI its `vpdpbusd` form decoded Gemma-3 8–23% slower than
/// `vpmaddubsw` + `vpmaddwd` (measured A/B, alternating, in one sitting). Prefill, which
/// reuses each weight block for a tile of rows, keeps `vpdpbusd`.
fn dot4<R: I8Row>(level: Level, w: [R; 4], x: &[ActBlock]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        match level {
            // SAFETY: `kernel_level` (or the tests) detected each level's features.
            Level::Vnni | Level::Avx2 => return unsafe { dot4_avx2(w, x) },
            Level::Scalar => {}
        }
    }
    let _ = level;
    w.map(|row| dot_scalar(row, x))
}

fn dot_rows<R: I8Row>(level: Level, w: R, x: &[&[ActBlock]], out: &mut [f32; TILE_ROWS]) {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! tiles {
            ($kernel:ident) => {
                match x.len() {
                    8 => $kernel::<R, 8>(w, x, out),
                    7 => $kernel::<R, 7>(w, x, out),
                    6 => $kernel::<R, 6>(w, x, out),
                    5 => $kernel::<R, 5>(w, x, out),
                    4 => $kernel::<R, 4>(w, x, out),
                    3 => $kernel::<R, 3>(w, x, out),
                    2 => $kernel::<R, 2>(w, x, out),
                    _ => $kernel::<R, 1>(w, x, out),
                }
            };
        }
        match level {
            // SAFETY: `kernel_level` (or the tests) detected each level's features.
            Level::Vnni => return unsafe { tiles!(dot_rows_vnni) },
            Level::Avx2 => return unsafe { tiles!(dot_rows_avx2) },
            Level::Scalar => {}
        }
    }
    let _ = level;
    for (o, xr) in out.iter_mut().zip(x) {
        *o = dot_scalar(w, xr);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot4_avx2<R: I8Row>(w: [R; 4], x: &[ActBlock]) -> [f32; 4] {
    dot4_body(w, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows_avx2<R: I8Row, const Y: usize>(w: R, x: &[&[ActBlock]], out: &mut [f32; TILE_ROWS]) {
    dot_rows_body::<R, Y, false>(w, x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
unsafe fn dot_rows_vnni<R: I8Row, const Y: usize>(w: R, x: &[&[ActBlock]], out: &mut [f32; TILE_ROWS]) {
    dot_rows_body::<R, Y, true>(w, x, out);
}

/// Block `b`'s scale in every lane.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn lane_scales<R: I8Row>(w: R, b: usize) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    _mm256_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(w.f16_bits(b) as i32))))
}

/// Signed bytes times signed bytes: `maddubs` and `dpbusd` take their first operand unsigned,
/// so the weight's magnitude goes first and its sign moves onto the activation. A weight of
/// -128 has magnitude 128, still exact as an unsigned byte; pairs of products stay within
/// i16 (2 · 128 · 127).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn signed_dot<const VNNI: bool>(
    magnitude: std::arch::x86_64::__m256i,
    qw: std::arch::x86_64::__m256i,
    qx: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let sx = _mm256_sign_epi8(qx, qw);
    let p = if VNNI {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), magnitude, sx)
    } else {
        _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, sx), _mm256_set1_epi16(1))
    };
    _mm256_cvtepi32_ps(p)
}

/// Row after row, each read front to back: the four rows lie one after another in memory,
/// so this is one sequential stream, which the hardware prefetcher follows. Interleaving the
/// rows block by block (four short streams of 680 bytes at once) had made Gemma-3's decode,
/// bound by reading its 262144 × 640 output projection, 1.8× slower.
const PREFETCH_AHEAD: usize = 1024;

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot4_body<R: I8Row>(w: [R; 4], x: &[ActBlock]) -> [f32; 4] {
    use std::arch::x86_64::*;
    // Plain loops, no closures: a closure is not compiled with its caller's target features,
    // and its intrinsics would become calls (20× slower decode where it was not inlined).
    let mut out = [0f32; 4];
    for i in 0..4 {
        let mut acc = _mm256_setzero_ps();
        for (b, bx) in x.iter().enumerate() {
            let qx = _mm256_load_si256(bx.qs.as_ptr() as *const __m256i);
            _mm_prefetch::<_MM_HINT_T0>(w[i].qs(b).add(PREFETCH_AHEAD));
            let qw = _mm256_loadu_si256(w[i].qs(b) as *const __m256i);
            let p = signed_dot::<false>(_mm256_sign_epi8(qw, qw), qw, qx);
            acc = _mm256_fmadd_ps(_mm256_mul_ps(lane_scales(w[i], b), _mm256_set1_ps(bx.d)), p, acc);
        }
        out[i] = super::hsum(acc);
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_rows_body<R: I8Row, const Y: usize, const VNNI: bool>(w: R, x: &[&[ActBlock]], out: &mut [f32; TILE_ROWS]) {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); Y];
    let xs: [&[ActBlock]; Y] = std::array::from_fn(|i| x[i]);
    for b in 0..xs[0].len() {
        let qw = _mm256_loadu_si256(w.qs(b) as *const __m256i);
        let magnitude = _mm256_sign_epi8(qw, qw);
        let scales = lane_scales(w, b);
        for y in 0..Y {
            let bx = xs[y].get_unchecked(b);
            let qx = _mm256_load_si256(bx.qs.as_ptr() as *const __m256i);
            let p = signed_dot::<VNNI>(magnitude, qw, qx);
            acc[y] = _mm256_fmadd_ps(_mm256_mul_ps(scales, _mm256_set1_ps(bx.d)), p, acc[y]);
        }
    }
    for y in 0..Y {
        out[y] = super::hsum(acc[y]);
    }
}
