//! Matrix products for Q4_1, Q5_0 and Q5_1 weights on x86 CPUs with AVX2 (and AVX-512 VNNI
//! where present, detected at run time; `PAE_CPU_KERNELS=avx2|scalar` forces a lower level).
//!
//! Written by hand because candle 0.11 has no SIMD dot product for these types on x86: it falls
//! back to scalar loops, which took 78% of decode time on SmolLM2-135M-Instruct Q4_1 (the
//! default model) and most of Gemma-3-270M's, whose projections are Q5_0. The kernels follow
//! llama.cpp (`ggml_vec_dot_q4_1_q8_1`, `…_q5_0_q8_0`, `…_q5_1_q8_1`): activations are
//! quantized to 8 bits per 32-value block exactly as llama.cpp's AVX path does (scale
//! `127 / amax`, round half to even, f16 scale, block sum in f32), unsigned-by-signed byte
//! products are summed in integers and scaled once per block. Work is split over candle's
//! thread pool, so `--threads` governs it too.
//!
//! Decode (one activation row) multiplies four weight rows at once with the row; prefill
//! unpacks each weight block once and multiplies it with a tile of activation rows, where
//! unpacking (the fifth bits above all) had cost as much as the products.

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

/// Whether `dtype` is one this module handles.
pub fn handles(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
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
}

const EMPTY_ACT: ActBlock = ActBlock {
    qs: [0; QK],
    d: 0.0,
    s: 0.0,
    sum: 0,
};

/// The weight encodings, after llama.cpp's names. Every block holds 32 weights
/// `d * q + m`; the low 4 bits of each `q` are packed two per byte (weights j and j + 16 in
/// byte j), Q5 types add a fifth bit per weight in `qh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `q` in 0..16, with a per-block `m`.
    Q4_1,
    /// `q - 16` with `q` in 0..32, no `m`.
    Q5_0,
    /// `q` in 0..32, with a per-block `m`.
    Q5_1,
}

/// A weight matrix `[n, k]` (n outputs, k inputs) in one of the formats.
///
/// Blocks are split into packed values, fifth bits and scale/offset pairs widened to f32 at
/// load: the dot product then converts nothing, which measured faster than reading the 20%
/// fewer bytes of f16 scales.
#[derive(Debug)]
pub struct QuantMatrix {
    format: Format,
    qs: Vec<[u8; QK / 2]>,
    /// Fifth bits (Q5 types; empty otherwise).
    qh: Vec<u32>,
    /// `(d, m)` of each block (`m = 0` for Q5_0).
    dm: Vec<[f32; 2]>,
    n: usize,
    k: usize,
}

impl QuantMatrix {
    /// Takes the blocks of a CPU tensor of shape `[n, k]` whose type [`handles`] accepts.
    pub fn from_qtensor(t: &QTensor) -> Result<Self> {
        let (format, block_bytes) = match t.dtype() {
            GgmlDType::Q4_1 => (Format::Q4_1, 20),
            GgmlDType::Q5_0 => (Format::Q5_0, 22),
            GgmlDType::Q5_1 => (Format::Q5_1, 24),
            other => candle_core::bail!("no CPU kernel for {other:?}"),
        };
        let (n, k) = t.shape().dims2()?;
        if k % QK != 0 {
            candle_core::bail!("rows of {k} values are not whole blocks")
        }
        let bytes = t.data()?;
        let count = n * k / QK;
        if bytes.len() != count * block_bytes {
            candle_core::bail!("{:?} tensor holds {} bytes, expected {}", t.dtype(), bytes.len(), count * block_bytes)
        }
        let half_at = |b: &[u8], i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
        let mut qs = Vec::with_capacity(count);
        let mut qh = Vec::with_capacity(if format == Format::Q4_1 { 0 } else { count });
        let mut dm = Vec::with_capacity(count);
        for b in bytes.chunks_exact(block_bytes) {
            let (d, m, rest) = match format {
                Format::Q4_1 => (half_at(b, 0), half_at(b, 2), &b[4..]),
                Format::Q5_0 => (half_at(b, 0), 0.0, &b[2..]),
                Format::Q5_1 => (half_at(b, 0), half_at(b, 2), &b[4..]),
            };
            let packed = if format == Format::Q4_1 {
                rest
            } else {
                qh.push(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
                &rest[4..]
            };
            let mut q = [0u8; QK / 2];
            q.copy_from_slice(packed);
            qs.push(q);
            dm.push([d, m]);
        }
        Ok(Self { format, qs, qh, dm, n, k })
    }

    fn row(&self, i: usize) -> Row<'_> {
        let per_row = self.k / QK;
        let r = i * per_row..(i + 1) * per_row;
        Row {
            qs: &self.qs[r.clone()],
            qh: if self.qh.is_empty() { &[] } else { &self.qh[r.clone()] },
            dm: &self.dm[r],
        }
    }

    /// `dst[r][c] = x[r] · W[c]` for the `m` rows of `x` (`[m, k]`, row-major).
    pub fn matmul(&self, x: &[f32], m: usize, dst: &mut [f32]) {
        let k = self.k;
        let per_row = k / QK;
        let mut xq = vec![EMPTY_ACT; m * per_row];
        for r in 0..m {
            quantize_row(&x[r * k..(r + 1) * k], &mut xq[r * per_row..(r + 1) * per_row]);
        }
        if m >= 2 && kernel_level() != Level::Scalar {
            return self.matmul_tiled(kernel_level(), &xq, m, dst);
        }
        let n = self.n;
        // Work items: (tile of up to 4 activation rows) × (group of 8 output columns).
        const COLS: usize = 8;
        const ROWS: usize = 4;
        let col_groups = n.div_ceil(COLS);
        let row_tiles = m.div_ceil(ROWS);
        let dst_ptr = SendPtr(dst.as_mut_ptr());
        let xq = &xq;
        candle_core::utils::barrier_pool().execute_chunked(row_tiles * col_groups, |items| {
            for item in items {
                let (tile, group) = (item / col_groups, item % col_groups);
                let cols = group * COLS..((group + 1) * COLS).min(n);
                for r in tile * ROWS..((tile + 1) * ROWS).min(m) {
                    let xr = &xq[r * per_row..(r + 1) * per_row];
                    let mut c = cols.start;
                    while c < cols.end {
                        let take = (cols.end - c).min(4);
                        let rows: [Row<'_>; 4] = std::array::from_fn(|i| self.row(c + i.min(take - 1)));
                        let v = dot4(self.format, rows, xr);
                        for (i, &val) in v.iter().enumerate().take(take) {
                            // SAFETY: each (r, c) belongs to exactly one work item, and
                            // r * n + c < m * n = dst.len().
                            unsafe { *dst_ptr.get().add(r * n + c + i) = val };
                        }
                        c += take;
                    }
                }
            }
        });
    }
}

impl QuantMatrix {
    /// Prefill: each weight block is unpacked once and multiplied with [`TILE_ROWS`]
    /// activation rows (the decode path, [`dot4`], unpacks it again for every row). Work
    /// items are (tile of activation rows) × (group of output columns), tile-major, so a
    /// thread's consecutive items share the activation tile in its cache.
    fn matmul_tiled(&self, level: Level, xq: &[ActBlock], m: usize, dst: &mut [f32]) {
        const COLS: usize = 16;
        let (n, per_row) = (self.n, self.k / QK);
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
                for c in group * COLS..((group + 1) * COLS).min(n) {
                    let mut out = [0f32; TILE_ROWS];
                    dot_rows(level, self.format, self.row(c), x, &mut out);
                    for (i, r) in rows.clone().enumerate() {
                        // SAFETY: each (r, c) belongs to exactly one work item, and
                        // r * n + c < m * n = dst.len().
                        unsafe { *dst_ptr.get().add(r * n + c) = out[i] };
                    }
                }
            }
        });
    }
}

/// Activation rows one weight block is multiplied with while it sits in registers: 8
/// measured 6–10% faster than 4 in prefill on an AVX-512 machine (whose 32 vector registers
/// hold the 8 accumulators); AVX2 alone spills a little but still gains from the reuse.
const TILE_ROWS: usize = 8;

/// Which instructions the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// AVX2 with AVX-512 VNNI on 256-bit vectors: one `vpdpbusd` for each byte product and
    /// its sum, where AVX2 needs `vpmaddubsw` then `vpmaddwd`.
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
        is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[i] = w · x[i]` for up to [`TILE_ROWS`] activation rows, with `level`'s instructions
/// (which the caller has checked this CPU has).
fn dot_rows(level: Level, format: Format, w: Row<'_>, x: &[&[ActBlock]], out: &mut [f32; TILE_ROWS]) {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! tiles {
            ($kernel:ident) => {
                match (format, x.len()) {
                    (Format::Q4_1, 8) => $kernel::<false, false, 8>(w, x, out),
                    (Format::Q4_1, 7) => $kernel::<false, false, 7>(w, x, out),
                    (Format::Q4_1, 6) => $kernel::<false, false, 6>(w, x, out),
                    (Format::Q4_1, 5) => $kernel::<false, false, 5>(w, x, out),
                    (Format::Q4_1, 4) => $kernel::<false, false, 4>(w, x, out),
                    (Format::Q4_1, 3) => $kernel::<false, false, 3>(w, x, out),
                    (Format::Q4_1, 2) => $kernel::<false, false, 2>(w, x, out),
                    (Format::Q4_1, _) => $kernel::<false, false, 1>(w, x, out),
                    (Format::Q5_0, 8) => $kernel::<true, true, 8>(w, x, out),
                    (Format::Q5_0, 7) => $kernel::<true, true, 7>(w, x, out),
                    (Format::Q5_0, 6) => $kernel::<true, true, 6>(w, x, out),
                    (Format::Q5_0, 5) => $kernel::<true, true, 5>(w, x, out),
                    (Format::Q5_0, 4) => $kernel::<true, true, 4>(w, x, out),
                    (Format::Q5_0, 3) => $kernel::<true, true, 3>(w, x, out),
                    (Format::Q5_0, 2) => $kernel::<true, true, 2>(w, x, out),
                    (Format::Q5_0, _) => $kernel::<true, true, 1>(w, x, out),
                    (Format::Q5_1, 8) => $kernel::<true, false, 8>(w, x, out),
                    (Format::Q5_1, 7) => $kernel::<true, false, 7>(w, x, out),
                    (Format::Q5_1, 6) => $kernel::<true, false, 6>(w, x, out),
                    (Format::Q5_1, 5) => $kernel::<true, false, 5>(w, x, out),
                    (Format::Q5_1, 4) => $kernel::<true, false, 4>(w, x, out),
                    (Format::Q5_1, 3) => $kernel::<true, false, 3>(w, x, out),
                    (Format::Q5_1, 2) => $kernel::<true, false, 2>(w, x, out),
                    (Format::Q5_1, _) => $kernel::<true, false, 1>(w, x, out),
                }
            };
        }
        match level {
            // SAFETY: `kernel_level` detected each level's features.
            Level::Vnni => return unsafe { tiles!(dot_rows_vnni) },
            Level::Avx2 => return unsafe { tiles!(dot_rows_avx2) },
            Level::Scalar => {}
        }
    }
    for (o, xr) in out.iter_mut().zip(x) {
        *o = dot_scalar(format, w, xr);
    }
}

/// One weight row with `Y` activation rows: the block is unpacked once, then multiplied with
/// each row. `FIFTH`/`CENTERED` as in [`dot4_avx2`]; Q5_0's signed weights (`q − 16`) are
/// multiplied exactly through `maddubs(|w|, sign(x, w))`, since `maddubs` wants its first
/// operand unsigned.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows_avx2<const FIFTH: bool, const CENTERED: bool, const Y: usize>(
    w: Row<'_>,
    x: &[&[ActBlock]],
    out: &mut [f32; TILE_ROWS],
) {
    dot_rows_body::<FIFTH, CENTERED, Y, false>(w, x, out);
}

/// [`dot_rows_avx2`] with `vpdpbusd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
unsafe fn dot_rows_vnni<const FIFTH: bool, const CENTERED: bool, const Y: usize>(
    w: Row<'_>,
    x: &[&[ActBlock]],
    out: &mut [f32; TILE_ROWS],
) {
    dot_rows_body::<FIFTH, CENTERED, Y, true>(w, x, out);
}

/// The body of both: inlined into each, so it is compiled with that caller's instructions.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_rows_body<const FIFTH: bool, const CENTERED: bool, const Y: usize, const VNNI: bool>(
    w: Row<'_>,
    x: &[&[ActBlock]],
    out: &mut [f32; TILE_ROWS],
) {
    use std::arch::x86_64::*;
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    let bit_mask = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    let sixteen = _mm256_set1_epi8(0x10);
    let mut acc = [_mm256_setzero_ps(); Y];
    let mut mins = [0f32; Y];
    let xs: [&[ActBlock]; Y] = std::array::from_fn(|i| x[i]);
    for b in 0..w.qs.len() {
        let [d, m] = *w.dm.get_unchecked(b);
        let packed = _mm_loadu_si128(w.qs.get_unchecked(b).as_ptr() as *const __m128i);
        let both = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(packed), _mm_srli_epi16::<4>(packed));
        let mut qw = _mm256_and_si256(both, low);
        if FIFTH {
            let bits = *w.qh.get_unchecked(b) as i32;
            let set = _mm256_cmpeq_epi8(
                _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(bits), spread), bit_mask),
                _mm256_set1_epi64x(-1),
            );
            qw = _mm256_or_si256(qw, _mm256_and_si256(set, sixteen));
        }
        // Q5_0: signed weights q − 16, kept as magnitude (for maddubs) and sign (moved to x).
        let signed = if CENTERED { _mm256_sub_epi8(qw, sixteen) } else { qw };
        let magnitude = if CENTERED { _mm256_sign_epi8(signed, signed) } else { qw };
        for y in 0..Y {
            let bx = xs[y].get_unchecked(b);
            let mut qx = _mm256_load_si256(bx.qs.as_ptr() as *const __m128i as *const __m256i);
            if CENTERED {
                qx = _mm256_sign_epi8(qx, signed);
            } else {
                mins[y] += m * bx.s;
            }
            // u8 × i8 products summed in fours to i32 (VNNI), or in pairs to i16 (at most
            // 2·31·127, no overflow) and then to i32.
            let p = if VNNI {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), magnitude, qx)
            } else {
                _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, qx), ones)
            };
            acc[y] = _mm256_fmadd_ps(_mm256_set1_ps(d * bx.d), _mm256_cvtepi32_ps(p), acc[y]);
        }
    }
    for y in 0..Y {
        out[y] = hsum(acc[y]) + mins[y];
    }
}

/// One weight row.
#[derive(Clone, Copy)]
struct Row<'a> {
    qs: &'a [[u8; QK / 2]],
    qh: &'a [u32],
    dm: &'a [[f32; 2]],
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_row_avx2(x: &[f32], out: &mut [ActBlock]) {
    // The same arithmetic, compiled with AVX so that rounding is an instruction, not a call.
    quantize_row_portable(x, out);
}

#[inline(always)]
fn quantize_row_portable(x: &[f32], out: &mut [ActBlock]) {
    for (xs, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in b.qs.iter_mut().zip(xs) {
            let r = (v * id).round_ties_even() as i32;
            *q = r as i8;
            sum += r;
        }
        b.d = f16::from_f32(d).to_f32();
        b.s = f16::from_f32(d * sum as f32).to_f32();
        b.sum = sum;
    }
}

/// The unsigned 5-bit (or 4-bit) value of weight `j` of a block.
fn weight(format: Format, qs: &[u8; QK / 2], qh: u32, j: usize) -> i32 {
    let nibble = if j < QK / 2 { qs[j] & 0x0F } else { qs[j - QK / 2] >> 4 } as i32;
    match format {
        Format::Q4_1 => nibble,
        Format::Q5_0 | Format::Q5_1 => nibble | ((((qh >> j) & 1) as i32) << 4),
    }
}

/// Four dot products of weight rows with one activation row.
fn dot4(format: Format, w: [Row<'_>; 4], x: &[ActBlock]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if kernel_level() != Level::Scalar {
            // SAFETY: `kernel_level` detected each level's features.
            return unsafe {
                match (format, kernel_level() == Level::Vnni) {
                    (Format::Q4_1, false) => dot4_avx2::<false, false>(w, x),
                    (Format::Q5_0, false) => dot4_avx2::<true, true>(w, x),
                    (Format::Q5_1, false) => dot4_avx2::<true, false>(w, x),
                    (Format::Q4_1, true) => dot4_vnni::<false, false>(w, x),
                    (Format::Q5_0, true) => dot4_vnni::<true, true>(w, x),
                    (Format::Q5_1, true) => dot4_vnni::<true, false>(w, x),
                }
            };
        }
    }
    w.map(|row| dot_scalar(format, row, x))
}

/// Reference implementation (and the fallback without AVX2).
fn dot_scalar(format: Format, w: Row<'_>, x: &[ActBlock]) -> f32 {
    let mut total = 0f32;
    for (b, bx) in x.iter().enumerate() {
        let [d, m] = w.dm[b];
        let qh = w.qh.get(b).copied().unwrap_or(0);
        let mut isum = 0i32;
        for j in 0..QK {
            isum += weight(format, &w.qs[b], qh, j) * bx.qs[j] as i32;
        }
        if format == Format::Q5_0 {
            isum -= 16 * bx.sum;
        }
        total += d * bx.d * isum as f32 + m * bx.s;
    }
    total
}

/// `FIFTH`: the format has a fifth bit per weight. `CENTERED`: weights are `q - 16` (Q5_0).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot4_avx2<const FIFTH: bool, const CENTERED: bool>(w: [Row<'_>; 4], x: &[ActBlock]) -> [f32; 4] {
    dot4_body::<FIFTH, CENTERED, false>(w, x)
}

/// [`dot4_avx2`] with `vpdpbusd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
unsafe fn dot4_vnni<const FIFTH: bool, const CENTERED: bool>(w: [Row<'_>; 4], x: &[ActBlock]) -> [f32; 4] {
    dot4_body::<FIFTH, CENTERED, true>(w, x)
}

/// The body of both, inlined into each so that it is compiled with that caller's instructions.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot4_body<const FIFTH: bool, const CENTERED: bool, const VNNI: bool>(
    w: [Row<'_>; 4],
    x: &[ActBlock],
) -> [f32; 4] {
    use std::arch::x86_64::*;
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    // Byte i of the vector selects byte i / 8 of `qh`; the mask has every bit but one set, so
    // only bytes whose bit is set compare equal to all-ones.
    let spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    let bit_mask = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    let sixteen = _mm256_set1_epi8(0x10);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut mins = [0f32; 4];
    for (b, bx) in x.iter().enumerate() {
        let qx = _mm256_load_si256(bx.qs.as_ptr() as *const __m256i);
        // Q5_0's weights are q - 16: subtract 16·Σx per lane, computed once per block.
        let offset = if CENTERED && VNNI {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), sixteen, qx)
        } else if CENTERED {
            _mm256_madd_epi16(_mm256_maddubs_epi16(sixteen, qx), ones)
        } else {
            _mm256_setzero_si256()
        };
        for i in 0..4 {
            let [d, m] = *w[i].dm.get_unchecked(b);
            if !CENTERED {
                mins[i] += m * bx.s;
            }
            let packed = _mm_loadu_si128(w[i].qs.get_unchecked(b).as_ptr() as *const __m128i);
            // Low nibbles (weights 0..16) in the low lane, high nibbles (16..32) in the high lane.
            let both = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(packed), _mm_srli_epi16::<4>(packed));
            let mut qw = _mm256_and_si256(both, low);
            if FIFTH {
                let bits = *w[i].qh.get_unchecked(b) as i32;
                let set = _mm256_cmpeq_epi8(
                    _mm256_or_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(bits), spread), bit_mask),
                    _mm256_set1_epi64x(-1),
                );
                qw = _mm256_or_si256(qw, _mm256_and_si256(set, sixteen));
            }
            // u8 × i8 products summed in fours to i32 (VNNI), or in pairs to i16 (at most
            // 2·31·127, no overflow) and then to i32.
            let mut p = if VNNI {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), qw, qx)
            } else {
                _mm256_madd_epi16(_mm256_maddubs_epi16(qw, qx), ones)
            };
            if CENTERED {
                p = _mm256_sub_epi32(p, offset);
            }
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * bx.d), _mm256_cvtepi32_ps(p), acc[i]);
        }
    }
    std::array::from_fn(|i| hsum(acc[i]) + mins[i])
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
pub struct QuantMatMul(pub Arc<QuantMatrix>);

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
        if k != w.k {
            candle_core::bail!("quant-cpu-matmul: input has {k} features, the weight {}", w.k)
        }
        let m = x.len() / k;
        let mut dst = vec![0f32; m * w.n];
        w.matmul(x, m, &mut dst);
        dims.push(w.n);
        Ok((CpuStorage::F32(dst), Shape::from(dims)))
    }
}

/// Applies the kernel: `x` of shape `[.., k]` → `[.., n]`.
pub fn forward(w: &Arc<QuantMatrix>, x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&QuantMatMul(w.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};

    #[test]
    fn matches_dequantized_weights_candle_and_scalar_kernel() {
        let dev = Device::Cpu;
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1] {
            let w = Tensor::randn(0f32, 1.0, (40, 96), &dev).unwrap();
            let q = QTensor::quantize(&w, dtype).unwrap();
            let mat = Arc::new(QuantMatrix::from_qtensor(&q).unwrap());
            let x = Tensor::randn(0f32, 1.0, (5, 96), &dev).unwrap();
            let ours = forward(&mat, &x).unwrap();
            // Dequantized weights times f32 activations: only activation rounding differs.
            let exact = x.matmul(&q.dequantize(&dev).unwrap().t().unwrap()).unwrap();
            let diff = (&ours - &exact).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 0.3, "{dtype:?}: max diff {diff}");
            // candle's own (scalar) path quantizes activations too: close, not identical.
            let candle = candle_core::quantized::QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
            let diff = (&ours - &candle).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 0.05, "{dtype:?}: max diff vs candle {diff}");
            // SIMD and scalar kernels agree to rounding.
            let xs = x.to_vec2::<f32>().unwrap();
            let mut xq = vec![EMPTY_ACT; 3];
            quantize_row(&xs[0], &mut xq);
            for c in (0..40).step_by(4) {
                let rows = std::array::from_fn(|i| mat.row(c + i));
                let mut kernels = vec![dot4(mat.format, rows, &xq)];
                if available() {
                    // SAFETY: detected just above (and below for VNNI).
                    kernels.push(unsafe {
                        match mat.format {
                            Format::Q4_1 => dot4_avx2::<false, false>(rows, &xq),
                            Format::Q5_0 => dot4_avx2::<true, true>(rows, &xq),
                            Format::Q5_1 => dot4_avx2::<true, false>(rows, &xq),
                        }
                    });
                }
                if available() && vnni_available() {
                    kernels.push(unsafe {
                        match mat.format {
                            Format::Q4_1 => dot4_vnni::<false, false>(rows, &xq),
                            Format::Q5_0 => dot4_vnni::<true, true>(rows, &xq),
                            Format::Q5_1 => dot4_vnni::<true, false>(rows, &xq),
                        }
                    });
                }
                for simd in kernels {
                    for (i, a) in simd.into_iter().enumerate() {
                        let b = dot_scalar(mat.format, mat.row(c + i), &xq);
                        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{dtype:?}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn prefill_tiles_match_the_scalar_kernel_for_every_shape() {
        let dev = Device::Cpu;
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1] {
            // 37 outputs: two full column groups of 16 and a tail of 5; 3 blocks per row.
            let w = Tensor::randn(0f32, 1.0, (37, 96), &dev).unwrap();
            let mat = QuantMatrix::from_qtensor(&QTensor::quantize(&w, dtype).unwrap()).unwrap();
            // Row counts that leave every tail size (1 to 7) after whole tiles of 8.
            for m in [2, 3, 4, 5, 6, 7, 8, 9, 15, 20] {
                let x = Tensor::randn(0f32, 1.0, (m, 96), &dev).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let mut xq = vec![EMPTY_ACT; m * 3];
                for r in 0..m {
                    quantize_row(&x[r * 96..(r + 1) * 96], &mut xq[r * 3..(r + 1) * 3]);
                }
                // Every instruction level this CPU has, whatever PAE_CPU_KERNELS says.
                let levels = [Level::Scalar, Level::Avx2, Level::Vnni].into_iter().filter(|l| match l {
                    Level::Scalar => true,
                    Level::Avx2 => available(),
                    Level::Vnni => available() && vnni_available(),
                });
                for level in levels {
                    let mut got = vec![f32::NAN; m * 37];
                    mat.matmul_tiled(level, &xq, m, &mut got);
                    for r in 0..m {
                        for c in 0..37 {
                            let want = dot_scalar(mat.format, mat.row(c), &xq[r * 3..(r + 1) * 3]);
                            let g = got[r * 37 + c];
                            assert!(
                                (g - want).abs() <= 1e-4 * want.abs().max(1.0),
                                "{dtype:?} {level:?} m={m} ({r}, {c}): {g} vs {want}"
                            );
                        }
                    }
                }
            }
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
