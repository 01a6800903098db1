//! Weights of 4 or 5 bits per value (Q4_1, Q5_0, Q5_1, and Q4_K/Q5_K unpacked into Q4_1 and
//! Q5_1 blocks), stored at load in groups of [`GROUP`] rows interleaved four values at a time.
//!
//! Why interleave: with each row stored on its own, a dot product ends in a horizontal sum
//! of eight lanes, and every 32-value block pays a conversion and a multiply-add for one row.
//! Here one 32-byte vector holds four consecutive values of eight rows (lane `r` is row `r`),
//! so one `vpdpbusd` with four activation bytes broadcast to every lane advances all eight
//! dot products, the eight sums come out in eight lanes, and the block's integer sums are
//! scaled once for the eight rows. Decode reads a group's blocks as one sequential stream.
//! ik_llama.cpp's `_R4`/`_R8` types repack the same way; this layout is our own.
//!
//! Per group and 32-value block:
//! - `qs`: four vectors of 32 bytes; byte `4r + i` of vector `v` holds value `4v + i` of row
//!   `r` in its low 4 bits and value `16 + 4v + i` in its high 4 bits, so the low nibbles
//!   of vector `v` are "unpacked vector" `v` and the high ones unpacked vector `4 + v`;
//! - `qh` (Q5 types): one `u32` per unpacked vector `u`, bit `4r + i` the fifth bit of value
//!   `4u + i` of row `r`, which expands to the vector's bytes with one masked move;
//! - `d`, `m`: the eight rows' scales and offsets, widened to f32 at load.
//!
//! That is 24 bytes per 32 values for Q4_1 and Q5_0 (a Q5_0 file holds 22), 28 for Q5_1.
//! A last group short of [`GROUP`] rows is padded with zero rows, whose outputs are dropped.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Result;
use half::f16;

use super::kquant::{self, ValueBlock};
use super::{ActBlock, Kernel, Level, GROUP, QK, TILE_ROWS};

/// The weight encodings, after llama.cpp's names. Every value is `d * q + m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `q` in 0..16, with a per-block `m`.
    Q4_1,
    /// `q - 16` with `q` in 0..32, no `m`.
    Q5_0,
    /// `q` in 0..32, with a per-block `m`.
    Q5_1,
}

impl Format {
    fn fifth(self) -> bool {
        self != Format::Q4_1
    }

    fn offset(self) -> bool {
        self != Format::Q5_0
    }
}

/// One group's block of low 4 bits, aligned for whole-vector loads.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Packed([u8; 4 * 32]);

/// A weight matrix `[n, k]` (n outputs, k inputs) in groups of [`GROUP`] interleaved rows.
#[derive(Debug)]
pub struct QuantMatrix {
    format: Format,
    /// Index `group * blocks_per_row + block`, as for the arrays below.
    qs: Vec<Packed>,
    /// Fifth bits (Q5 types; empty otherwise).
    qh: Vec<[u32; 8]>,
    d: Vec<[f32; GROUP]>,
    /// Offsets (Q4_1, Q5_1; empty for Q5_0).
    m: Vec<[f32; GROUP]>,
    n: usize,
    k: usize,
}

impl QuantMatrix {
    /// An all-zero matrix with room for `n` rows (rounded up to whole groups).
    fn zeroed(format: Format, n: usize, k: usize) -> Result<Self> {
        if !k.is_multiple_of(QK) {
            candle_core::bail!("rows of {k} values are not whole blocks")
        }
        let count = n.div_ceil(GROUP) * (k / QK);
        Ok(Self {
            format,
            qs: vec![Packed([0; 128]); count],
            qh: if format.fifth() { vec![[0; 8]; count] } else { Vec::new() },
            d: vec![[0.0; GROUP]; count],
            m: if format.offset() { vec![[0.0; GROUP]; count] } else { Vec::new() },
            n,
            k,
        })
    }

    /// Writes block `b` of row `row` into its group.
    fn place(&mut self, row: usize, b: usize, block: &ValueBlock) {
        let (r, at) = (row % GROUP, (row / GROUP) * (self.k / QK) + b);
        let qs = &mut self.qs[at].0;
        for (j, &q) in block.q.iter().enumerate() {
            let (u, i) = (j / 4, j % 4);
            qs[32 * (u % 4) + 4 * r + i] |= (q & 0x0F) << (4 * (u / 4));
            if self.format.fifth() {
                self.qh[at][u] |= (((q >> 4) & 1) as u32) << (4 * r + i);
            }
        }
        self.d[at][r] = block.d;
        if self.format.offset() {
            self.m[at][r] = block.m;
        }
    }

    /// Takes the blocks of a CPU Q4_1, Q5_0 or Q5_1 tensor of shape `[n, k]`.
    pub fn from_qtensor(t: &QTensor) -> Result<Self> {
        let (format, block_bytes) = match t.dtype() {
            GgmlDType::Q4_1 => (Format::Q4_1, 20),
            GgmlDType::Q5_0 => (Format::Q5_0, 22),
            GgmlDType::Q5_1 => (Format::Q5_1, 24),
            other => candle_core::bail!("no CPU kernel for {other:?}"),
        };
        let (n, k) = t.shape().dims2()?;
        let mut matrix = Self::zeroed(format, n, k)?;
        let bytes = t.data()?;
        let count = n * k / QK;
        if bytes.len() != count * block_bytes {
            candle_core::bail!("{:?} tensor holds {} bytes, expected {}", t.dtype(), bytes.len(), count * block_bytes)
        }
        let half_at = |b: &[u8], i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
        for (i, b) in bytes.chunks_exact(block_bytes).enumerate() {
            let (d, m, rest) = match format {
                Format::Q5_0 => (half_at(b, 0), 0.0, &b[2..]),
                Format::Q4_1 | Format::Q5_1 => (half_at(b, 0), half_at(b, 2), &b[4..]),
            };
            let (qh, packed) = match format {
                Format::Q4_1 => (0, rest),
                _ => (u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]), &rest[4..]),
            };
            // ggml's order: value j's low bits in byte j (j < 16) or the high half of byte
            // j − 16, its fifth bit at bit j of `qh`.
            let q = std::array::from_fn(|j| {
                let nibble = if j < QK / 2 { packed[j] & 0x0F } else { packed[j - QK / 2] >> 4 };
                nibble | ((((qh >> j) & 1) as u8) << 4)
            });
            let per_row = k / QK;
            matrix.place(i / per_row, i % per_row, &ValueBlock { q, d, m });
        }
        Ok(matrix)
    }

    /// Takes a CPU Q4_K or Q5_K tensor `[n, k]` as Q4_1 or Q5_1 blocks of the same values.
    pub fn from_kquant(t: &QTensor) -> Result<Self> {
        let (n, k) = t.shape().dims2()?;
        let fifth = match t.dtype() {
            GgmlDType::Q4K => false,
            GgmlDType::Q5K => true,
            other => candle_core::bail!("{other:?} is not Q4_K or Q5_K"),
        };
        let mut matrix = Self::zeroed(if fifth { Format::Q5_1 } else { Format::Q4_1 }, n, k)?;
        let per_row = k / QK;
        let mut i = 0;
        kquant::k_to_values(&t.data()?, n * k, fifth, |block| {
            matrix.place(i / per_row, i % per_row, &block);
            i += 1;
        })?;
        Ok(matrix)
    }

    fn group(&self, g: usize) -> Group<'_> {
        let per_row = self.k / QK;
        let r = g * per_row..(g + 1) * per_row;
        Group {
            qs: &self.qs[r.clone()],
            qh: if self.qh.is_empty() { &[] } else { &self.qh[r.clone()] },
            d: &self.d[r.clone()],
            m: if self.m.is_empty() { &[] } else { &self.m[r] },
        }
    }

    /// The unsigned 4- or 5-bit value `j` of block `b` of row `row`.
    fn value(&self, row: usize, b: usize, j: usize) -> i32 {
        let (r, at) = (row % GROUP, (row / GROUP) * (self.k / QK) + b);
        let (u, i) = (j / 4, j % 4);
        let nibble = (self.qs[at].0[32 * (u % 4) + 4 * r + i] >> (4 * (u / 4))) & 0x0F;
        let fifth = self.qh.get(at).map_or(0, |h| (h[u] >> (4 * r + i)) & 1);
        nibble as i32 | (fifth as i32) << 4
    }

    /// Weight `(row, col)` as it multiplies: `d * q + m`.
    #[cfg(test)]
    pub(super) fn dequantized(&self, row: usize, col: usize) -> f32 {
        let (b, j) = (col / QK, col % QK);
        let at = (row / GROUP) * (self.k / QK) + b;
        let q = self.value(row, b, j) - if self.format == Format::Q5_0 { 16 } else { 0 };
        self.d[at][row % GROUP] * q as f32 + self.m.get(at).map_or(0.0, |m| m[row % GROUP])
    }

    /// The exact integer-sum reference for one row, and the fallback without AVX2.
    fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32 {
        let g = self.group(row / GROUP);
        let r = row % GROUP;
        let mut total = 0f32;
        for (b, bx) in x.iter().enumerate() {
            let mut isum = 0i32;
            for j in 0..QK {
                isum += self.value(row, b, j) * bx.qs[j] as i32;
            }
            if self.format == Format::Q5_0 {
                isum -= 16 * bx.sum;
            }
            total += g.d[b][r] * bx.d * isum as f32 + g.m.get(b).map_or(0.0, |m| m[r] * bx.s);
        }
        total
    }
}

/// One group of rows: the blocks of [`QuantMatrix`]'s arrays that belong to it.
#[derive(Clone, Copy)]
struct Group<'a> {
    qs: &'a [Packed],
    qh: &'a [[u32; 8]],
    d: &'a [[f32; GROUP]],
    m: &'a [[f32; GROUP]],
}

impl Kernel for QuantMatrix {
    fn n(&self) -> usize {
        self.n
    }

    fn k(&self) -> usize {
        self.k
    }

    fn dot_tile(&self, level: Level, first: usize, x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
        debug_assert_eq!(first % GROUP, 0);
        #[cfg(target_arch = "x86_64")]
        {
            let w = self.group(first / GROUP);
            macro_rules! tiles {
                ($kernel:ident) => {
                    match self.format {
                        Format::Q4_1 => by_rows!(x.len(), $kernel, [false, true], (w, x, out)),
                        Format::Q5_0 => by_rows!(x.len(), $kernel, [true, false], (w, x, out)),
                        Format::Q5_1 => by_rows!(x.len(), $kernel, [true, true], (w, x, out)),
                    }
                };
            }
            match level {
                // SAFETY: `kernel_level` (or the tests) detected each level's features.
                Level::Vnni => return unsafe { tiles!(tile_vnni) },
                Level::Avx2 => return unsafe { tiles!(tile_avx2) },
                Level::Scalar => {}
            }
        }
        let _ = level;
        scalar_tile(self.n, first, x, out, |row, xr| self.dot_scalar(row, xr));
    }

    #[cfg(test)]
    fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32 {
        QuantMatrix::dot_scalar(self, row, x)
    }
}

/// Calls `kernel::<consts…, Y>(args…)` with `Y` the tile's activation row count (1 to 8), a
/// constant so that each tile's accumulators stay in registers.
macro_rules! by_rows {
    ($rows:expr, $kernel:ident, [$($c:expr),*], ($($arg:expr),*)) => {
        match $rows {
            8 => $kernel::<$($c,)* 8>($($arg),*),
            7 => $kernel::<$($c,)* 7>($($arg),*),
            6 => $kernel::<$($c,)* 6>($($arg),*),
            5 => $kernel::<$($c,)* 5>($($arg),*),
            4 => $kernel::<$($c,)* 4>($($arg),*),
            3 => $kernel::<$($c,)* 3>($($arg),*),
            2 => $kernel::<$($c,)* 2>($($arg),*),
            _ => $kernel::<$($c,)* 1>($($arg),*),
        }
    };
}
use by_rows;

/// The tile by the scalar reference `dot` (CPUs without AVX2), for the group's rows below `n`.
fn scalar_tile(
    n: usize,
    first: usize,
    x: &[&[ActBlock]],
    out: &mut [[f32; GROUP]; TILE_ROWS],
    dot: impl Fn(usize, &[ActBlock]) -> f32,
) {
    for (o, xr) in out.iter_mut().zip(x) {
        for (i, v) in o.iter_mut().enumerate().take(n.saturating_sub(first)) {
            *v = dot(first + i, xr);
        }
    }
}

/// `FIFTH`: the format has a fifth bit per value. `OFFSET`: it has a per-block `m` (Q5_0,
/// without one, is `q − 16`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_avx2<const FIFTH: bool, const OFFSET: bool, const Y: usize>(
    w: Group<'_>,
    x: &[&[ActBlock]],
    out: &mut [[f32; GROUP]; TILE_ROWS],
) {
    tile_body::<FIFTH, OFFSET, Y, false>(w, x, out);
}

/// [`tile_avx2`] with `vpdpbusd`, and fifth bits expanded by one masked byte move.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl,avx512bw")]
unsafe fn tile_vnni<const FIFTH: bool, const OFFSET: bool, const Y: usize>(
    w: Group<'_>,
    x: &[&[ActBlock]],
    out: &mut [[f32; GROUP]; TILE_ROWS],
) {
    tile_body::<FIFTH, OFFSET, Y, true>(w, x, out);
}

/// `out[y][r] = W[r] · x[y]` for the group's rows and `Y` activation rows: each block's eight
/// vectors of values are unpacked once, then multiplied with every activation row. Inlined
/// into both callers, so it is compiled with each one's instructions; plain loops, no
/// closures (a closure is not compiled with its caller's target features).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `u` also indexes the activation's words
unsafe fn tile_body<const FIFTH: bool, const OFFSET: bool, const Y: usize, const VNNI: bool>(
    w: Group<'_>,
    x: &[&[ActBlock]],
    out: &mut [[f32; GROUP]; TILE_ROWS],
) {
    use std::arch::x86_64::*;
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let sixteen = _mm256_set1_epi8(0x10);
    // AVX2's expansion of 32 bits to 32 bytes: byte j takes the bit's byte of the word, then
    // all bits but bit j % 8 are set, and a byte is all ones only where that bit was.
    let spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    let bit_mask = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
    let all = _mm256_set1_epi64x(-1);
    let mut acc = [_mm256_setzero_ps(); Y];
    // The offsets' share, summed apart and added last, as llama.cpp does: the two sums are
    // large and of opposite sign, and adding them block by block measurably moved the logits.
    let mut mins = [_mm256_setzero_ps(); Y];
    let xs: [&[ActBlock]; Y] = std::array::from_fn(|i| x[i]);
    for b in 0..w.qs.len() {
        let packed = w.qs.get_unchecked(b).0.as_ptr() as *const __m256i;
        let mut q = [_mm256_setzero_si256(); 8];
        for v in 0..4 {
            let p = _mm256_load_si256(packed.add(v));
            q[v] = _mm256_and_si256(p, low);
            q[v + 4] = _mm256_and_si256(_mm256_srli_epi16::<4>(p), low);
        }
        if FIFTH {
            let qh = w.qh.get_unchecked(b);
            for u in 0..8 {
                let bits = if VNNI {
                    _mm256_maskz_mov_epi8(qh[u], sixteen)
                } else {
                    let spread = _mm256_shuffle_epi8(_mm256_set1_epi32(qh[u] as i32), spread);
                    _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_or_si256(spread, bit_mask), all), sixteen)
                };
                q[u] = _mm256_or_si256(q[u], bits);
            }
        }
        let d = _mm256_loadu_ps(w.d.get_unchecked(b).as_ptr());
        let m = if OFFSET { _mm256_loadu_ps(w.m.get_unchecked(b).as_ptr()) } else { _mm256_setzero_ps() };
        for y in 0..Y {
            let bx = xs[y].get_unchecked(b);
            let a = bx.qs.as_ptr() as *const i32;
            // Σ q·a over the block, per row, in i32: VNNI sums four byte products per lane;
            // AVX2 sums pairs to i16 (at most 2·31·127), four such sums still fit i16, and
            // `madd` widens them.
            let mut isum = _mm256_setzero_si256();
            if VNNI {
                for u in 0..8 {
                    isum = _mm256_dpbusd_epi32(isum, q[u], _mm256_set1_epi32(a.add(u).read_unaligned()));
                }
            } else {
                for half in 0..2 {
                    let mut s = _mm256_setzero_si256();
                    for u in 4 * half..4 * half + 4 {
                        let p = _mm256_maddubs_epi16(q[u], _mm256_set1_epi32(a.add(u).read_unaligned()));
                        s = _mm256_add_epi16(s, p);
                    }
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(s, ones));
                }
            }
            if !OFFSET {
                // Q5_0's values are q − 16: Σ(q − 16)·a = Σq·a − 16·Σa.
                isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(16 * bx.sum));
            }
            let scale = _mm256_mul_ps(d, _mm256_set1_ps(bx.d));
            acc[y] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc[y]);
            if OFFSET {
                mins[y] = _mm256_fmadd_ps(m, _mm256_set1_ps(bx.s), mins[y]);
            }
        }
    }
    for y in 0..Y {
        _mm256_storeu_ps(out[y].as_mut_ptr(), _mm256_add_ps(acc[y], mins[y]));
    }
}

/// One group's block of Q6_K values, a byte each: vector `u` (32 bytes) holds values
/// `4u..4u + 4` of the eight rows, as the unpacked nibble vectors above do.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Bytes([u8; 8 * 32]);

/// Q6_K in groups of [`GROUP`] interleaved rows: each value's unsigned 6 bits `q` (the value
/// is `q − 32`) as a byte, and the scale `d · sc` of each half-block (16 values) in f32.
/// 10 bits per weight where the file holds 6.6, for the few tensors Q4_K_M files keep in
/// Q6_K; the products then need no unpacking, and candle's repacked second copy (32 MB on
/// Gemma-3) is spared.
#[derive(Debug)]
pub struct Q6Matrix {
    qs: Vec<Bytes>,
    /// `[half][row]` scales of each (group, block).
    d: Vec<[[f32; GROUP]; 2]>,
    n: usize,
    k: usize,
}

impl Q6Matrix {
    /// Unpacks a CPU Q6_K tensor of shape `[n, k]`.
    pub fn from_q6k(t: &QTensor) -> Result<Self> {
        let (n, k) = t.shape().dims2()?;
        if !k.is_multiple_of(QK) {
            candle_core::bail!("rows of {k} values are not whole blocks")
        }
        let (blocks, scales) = kquant::q6k_to_int8(&t.data()?, n * k)?;
        let per_row = k / QK;
        let count = n.div_ceil(GROUP) * per_row;
        let mut m = Self { qs: vec![Bytes([0; 256]); count], d: vec![[[0.0; GROUP]; 2]; count], n, k };
        for (i, (values, halves)) in blocks.iter().zip(&scales).enumerate() {
            let (row, b) = (i / per_row, i % per_row);
            let (r, at) = (row % GROUP, (row / GROUP) * per_row + b);
            for (j, &v) in values.iter().enumerate() {
                m.qs[at].0[32 * (j / 4) + 4 * r + j % 4] = (v as i32 + 32) as u8;
            }
            m.d[at][0][r] = halves[0];
            m.d[at][1][r] = halves[1];
        }
        Ok(m)
    }

    /// The exact integer-sum reference for one row, and the fallback without AVX2.
    fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32 {
        let per_row = self.k / QK;
        let r = row % GROUP;
        let mut total = 0f32;
        for (b, bx) in x.iter().enumerate() {
            let at = (row / GROUP) * per_row + b;
            let mut halves = [0i32; 2];
            for j in 0..QK {
                let q = self.qs[at].0[32 * (j / 4) + 4 * r + j % 4] as i32 - 32;
                halves[j / 16] += q * bx.qs[j] as i32;
            }
            total += bx.d * (self.d[at][0][r] * halves[0] as f32 + self.d[at][1][r] * halves[1] as f32);
        }
        total
    }
}

impl Kernel for Q6Matrix {
    fn n(&self) -> usize {
        self.n
    }

    fn k(&self) -> usize {
        self.k
    }

    fn dot_tile(&self, level: Level, first: usize, x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
        debug_assert_eq!(first % GROUP, 0);
        #[cfg(target_arch = "x86_64")]
        {
            let per_row = self.k / QK;
            let at = (first / GROUP) * per_row..(first / GROUP + 1) * per_row;
            let (qs, d) = (&self.qs[at.clone()], &self.d[at]);
            macro_rules! tiles {
                ($kernel:ident) => {
                    by_rows!(x.len(), $kernel, [], (qs, d, x, out))
                };
            }
            match level {
                // SAFETY: `kernel_level` (or the tests) detected each level's features.
                Level::Vnni => return unsafe { tiles!(q6_tile_vnni) },
                Level::Avx2 => return unsafe { tiles!(q6_tile_avx2) },
                Level::Scalar => {}
            }
        }
        let _ = level;
        scalar_tile(self.n, first, x, out, |row, xr| self.dot_scalar(row, xr));
    }

    #[cfg(test)]
    fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32 {
        Q6Matrix::dot_scalar(self, row, x)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_tile_avx2<const Y: usize>(qs: &[Bytes], d: &[[[f32; GROUP]; 2]], x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
    q6_tile_body::<Y, false>(qs, d, x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl,avx512bw")]
unsafe fn q6_tile_vnni<const Y: usize>(qs: &[Bytes], d: &[[[f32; GROUP]; 2]], x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
    q6_tile_body::<Y, true>(qs, d, x, out);
}

/// [`tile_body`] for Q6_K: the values need no unpacking; each half-block's integer sum is
/// corrected for the offset of 32 and scaled on its own.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `u` also indexes the activation's words
unsafe fn q6_tile_body<const Y: usize, const VNNI: bool>(
    qs: &[Bytes],
    d: &[[[f32; GROUP]; 2]],
    x: &[&[ActBlock]],
    out: &mut [[f32; GROUP]; TILE_ROWS],
) {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); Y];
    let xs: [&[ActBlock]; Y] = std::array::from_fn(|i| x[i]);
    for b in 0..qs.len() {
        let p = qs.get_unchecked(b).0.as_ptr() as *const __m256i;
        let mut q = [_mm256_setzero_si256(); 8];
        for u in 0..8 {
            q[u] = _mm256_load_si256(p.add(u));
        }
        let [lo, hi] = d.get_unchecked(b);
        let (dlo, dhi) = (_mm256_loadu_ps(lo.as_ptr()), _mm256_loadu_ps(hi.as_ptr()));
        for y in 0..Y {
            let bx = xs[y].get_unchecked(b);
            let a = bx.qs.as_ptr() as *const i32;
            // Σ q·a per half-block and row. AVX2: a pair of byte products is at most
            // 2·63·127 in i16, two pairs still fit, `madd` widens them.
            let mut sums = [_mm256_setzero_si256(); 2];
            for half in 0..2 {
                for pair in 0..2 {
                    let u = 4 * half + 2 * pair;
                    let (a0, a1) = (_mm256_set1_epi32(a.add(u).read_unaligned()), _mm256_set1_epi32(a.add(u + 1).read_unaligned()));
                    sums[half] = if VNNI {
                        _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(sums[half], q[u], a0), q[u + 1], a1)
                    } else {
                        let s = _mm256_add_epi16(_mm256_maddubs_epi16(q[u], a0), _mm256_maddubs_epi16(q[u + 1], a1));
                        _mm256_add_epi32(sums[half], _mm256_madd_epi16(s, ones))
                    };
                }
            }
            // The values are q − 32: Σ(q − 32)·a = Σq·a − 32·Σa, per half.
            let lo_sum = _mm256_sub_epi32(sums[0], _mm256_set1_epi32(32 * bx.half));
            let hi_sum = _mm256_sub_epi32(sums[1], _mm256_set1_epi32(32 * (bx.sum - bx.half)));
            let dx = _mm256_set1_ps(bx.d);
            acc[y] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo_sum), _mm256_mul_ps(dlo, dx), acc[y]);
            acc[y] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi_sum), _mm256_mul_ps(dhi, dx), acc[y]);
        }
    }
    for y in 0..Y {
        _mm256_storeu_ps(out[y].as_mut_ptr(), acc[y]);
    }
}
