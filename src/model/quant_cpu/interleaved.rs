//! Weights of 4 or 5 bits per value (Q4_1, Q5_0, Q5_1, and Q4_K/Q5_K unpacked into Q4_1 and
//! Q5_1 blocks), stored at load in groups of [`GROUP`] rows interleaved four values at a time,
//! and Q6_K in the same layout, a byte per value.
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
//! - `d`, `m`: the eight rows' scales and offsets as the file stores them, in f16, widened by
//!   one instruction per block; K-quants keep theirs per super-block with a 6-bit factor per
//!   block and row in `sub`, multiplied in the kernel (the f32 product is exact).
//!
//! That is the file's 20 bytes per 32 values for Q4_1, 22 for Q5_0, 24 for Q5_1, and 18.5
//! and 22.5 for Q4_K and Q5_K (18 and 22 in the file). Decode streams these bytes, so their
//! count sets its speed: f32 scales had cost Gemma-3's Q4_K layers a third more.
//! A last group short of [`GROUP`] rows is padded with zero rows, whose outputs are dropped.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Result;

use super::kquant::{self, BlockScale, ValueBlock, BLOCKS_PER_SUPER, QK_K};
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
    /// Q4_1's values, with `d = super_d · sc` and `m = −dmin · mn` (see [`BlockScale::Sub`]).
    Q4K,
    /// Q5_1's values, scaled as Q4_K's.
    Q5K,
}

impl Format {
    fn fifth(self) -> bool {
        matches!(self, Format::Q5_0 | Format::Q5_1 | Format::Q5K)
    }

    fn offset(self) -> bool {
        self != Format::Q5_0
    }

    /// Scales per super-block, with a 6-bit factor per block.
    fn k_quant(self) -> bool {
        matches!(self, Format::Q4K | Format::Q5K)
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
    /// f16 bits of the scales: per block, or per super-block for K-quants (index
    /// `group * super_blocks_per_row + super_block`).
    d: Vec<[u16; GROUP]>,
    /// f16 bits of the offsets (`dmin` for K-quants), indexed as `d`; empty for Q5_0.
    m: Vec<[u16; GROUP]>,
    /// K-quants: each block's `[sc, mn]` per row; empty otherwise.
    sub: Vec<[[u8; GROUP]; 2]>,
    n: usize,
    k: usize,
}

impl QuantMatrix {
    /// An all-zero matrix with room for `n` rows (rounded up to whole groups).
    fn zeroed(format: Format, n: usize, k: usize) -> Result<Self> {
        let block = if format.k_quant() { QK_K } else { QK };
        if !k.is_multiple_of(block) {
            candle_core::bail!("rows of {k} values are not whole {block}-value blocks")
        }
        let count = n.div_ceil(GROUP) * (k / QK);
        let scales = if format.k_quant() { count / BLOCKS_PER_SUPER } else { count };
        Ok(Self {
            format,
            qs: vec![Packed([0; 128]); count],
            qh: if format.fifth() { vec![[0; 8]; count] } else { Vec::new() },
            d: vec![[0; GROUP]; scales],
            m: if format.offset() { vec![[0; GROUP]; scales] } else { Vec::new() },
            sub: if format.k_quant() { vec![[[0; GROUP]; 2]; count] } else { Vec::new() },
            n,
            k,
        })
    }

    /// Index of block `at`'s scales in `d` and `m`.
    fn scale_index(&self, at: usize) -> usize {
        if self.format.k_quant() {
            at / BLOCKS_PER_SUPER
        } else {
            at
        }
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
        let s = self.scale_index(at);
        match block.scale {
            BlockScale::Flat { d, m } => {
                self.d[s][r] = d;
                if self.format.offset() {
                    self.m[s][r] = m;
                }
            }
            BlockScale::Sub { super_d, dmin, sc, mn } => {
                (self.d[s][r], self.m[s][r]) = (super_d, dmin);
                self.sub[at][0][r] = sc;
                self.sub[at][1][r] = mn;
            }
        }
    }

    /// Block `b` of row `row`'s `(d, m)` in f32, as the kernels compute them.
    fn scales(&self, row: usize, b: usize) -> (f32, f32) {
        let (r, at) = (row % GROUP, (row / GROUP) * (self.k / QK) + b);
        let s = self.scale_index(at);
        let (d, m) = (self.d[s][r], self.m.get(s).map_or(0, |m| m[r]));
        let scale = if self.format.k_quant() {
            BlockScale::Sub { super_d: d, dmin: m, sc: self.sub[at][0][r], mn: self.sub[at][1][r] }
        } else {
            BlockScale::Flat { d, m }
        };
        scale.widened()
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
        let half_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        for (i, b) in bytes.chunks_exact(block_bytes).enumerate() {
            let (d, m, rest) = match format {
                Format::Q5_0 => (half_at(b, 0), 0, &b[2..]),
                _ => (half_at(b, 0), half_at(b, 2), &b[4..]),
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
            matrix.place(i / per_row, i % per_row, &ValueBlock { q, scale: BlockScale::Flat { d, m } });
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
        let mut matrix = Self::zeroed(if fifth { Format::Q5K } else { Format::Q4K }, n, k)?;
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
        let s = self.scale_index(r.start)..self.scale_index(r.end);
        Group {
            qs: &self.qs[r.clone()],
            qh: if self.qh.is_empty() { &[] } else { &self.qh[r.clone()] },
            d: &self.d[s.clone()],
            m: if self.m.is_empty() { &[] } else { &self.m[s] },
            sub: if self.sub.is_empty() { &[] } else { &self.sub[r] },
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
        let q = self.value(row, b, j) - if self.format == Format::Q5_0 { 16 } else { 0 };
        let (d, m) = self.scales(row, b);
        d * q as f32 + m
    }

    /// The exact integer-sum reference for one row, and the fallback without AVX2.
    fn dot_scalar(&self, row: usize, x: &[ActBlock]) -> f32 {
        let mut total = 0f32;
        for (b, bx) in x.iter().enumerate() {
            let mut isum = 0i32;
            for j in 0..QK {
                isum += self.value(row, b, j) * bx.qs[j] as i32;
            }
            if self.format == Format::Q5_0 {
                isum -= 16 * bx.sum;
            }
            let (d, m) = self.scales(row, b);
            total += d * bx.d * isum as f32 + m * bx.s;
        }
        total
    }
}

/// One group of rows: the blocks of [`QuantMatrix`]'s arrays that belong to it.
#[derive(Clone, Copy)]
struct Group<'a> {
    qs: &'a [Packed],
    qh: &'a [[u32; 8]],
    d: &'a [[u16; GROUP]],
    m: &'a [[u16; GROUP]],
    sub: &'a [[[u8; GROUP]; 2]],
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
                        Format::Q4_1 => by_rows!(x.len(), $kernel, [false, true, false], (w, x, out)),
                        Format::Q5_0 => by_rows!(x.len(), $kernel, [true, false, false], (w, x, out)),
                        Format::Q5_1 => by_rows!(x.len(), $kernel, [true, true, false], (w, x, out)),
                        Format::Q4K => by_rows!(x.len(), $kernel, [false, true, true], (w, x, out)),
                        Format::Q5K => by_rows!(x.len(), $kernel, [true, true, true], (w, x, out)),
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
/// without one, is `q − 16`). `KQ`: scales per super-block with 6-bit factors (K-quants).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_avx2<const FIFTH: bool, const OFFSET: bool, const KQ: bool, const Y: usize>(
    w: Group<'_>,
    x: &[&[ActBlock]],
    out: &mut [[f32; GROUP]; TILE_ROWS],
) {
    tile_body::<FIFTH, OFFSET, KQ, Y, false>(w, x, out);
}

/// [`tile_avx2`] with `vpdpbusd`, and fifth bits expanded by one masked byte move.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl,avx512bw")]
unsafe fn tile_vnni<const FIFTH: bool, const OFFSET: bool, const KQ: bool, const Y: usize>(
    w: Group<'_>,
    x: &[&[ActBlock]],
    out: &mut [[f32; GROUP]; TILE_ROWS],
) {
    tile_body::<FIFTH, OFFSET, KQ, Y, true>(w, x, out);
}

/// `out[y][r] = W[r] · x[y]` for the group's rows and `Y` activation rows: each block's eight
/// vectors of values are unpacked once, then multiplied with every activation row. Inlined
/// into both callers, so it is compiled with each one's instructions; plain loops, no
/// closures (a closure is not compiled with its caller's target features).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `u` also indexes the activation's words
unsafe fn tile_body<const FIFTH: bool, const OFFSET: bool, const KQ: bool, const Y: usize, const VNNI: bool>(
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
        // The rows' scales and offsets: f16 widened; for K-quants, the super-block's times
        // each row's 6-bit factor (exact in f32, the same bits as a product taken at load).
        let s = if KQ { b / BLOCKS_PER_SUPER } else { b };
        let d = _mm256_cvtph_ps(_mm_loadu_si128(w.d.get_unchecked(s).as_ptr() as *const __m128i));
        let m = if OFFSET { _mm256_cvtph_ps(_mm_loadu_si128(w.m.get_unchecked(s).as_ptr() as *const __m128i)) } else { _mm256_setzero_ps() };
        let (d, m) = if KQ {
            let [sc, mn] = w.sub.get_unchecked(b);
            (_mm256_mul_ps(d, widen_factors(sc)), _mm256_mul_ps(m, widen_factors(mn)))
        } else {
            (d, m)
        };
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
            if KQ {
                // K-quants subtract their offsets (`−dmin · mn`).
                mins[y] = _mm256_fnmadd_ps(m, _mm256_set1_ps(bx.s), mins[y]);
            } else if OFFSET {
                mins[y] = _mm256_fmadd_ps(m, _mm256_set1_ps(bx.s), mins[y]);
            }
        }
    }
    for y in 0..Y {
        _mm256_storeu_ps(out[y].as_mut_ptr(), _mm256_add_ps(acc[y], mins[y]));
    }
}

/// Eight rows' unsigned byte factors as f32 lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn widen_factors(f: &[u8; GROUP]) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(f.as_ptr() as *const __m128i)))
}

/// Eight rows' signed byte factors as f32 lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn widen_signed(f: &[i8; GROUP]) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(f.as_ptr() as *const __m128i)))
}

/// One group's block of Q6_K values, a byte each: vector `u` (32 bytes) holds values
/// `4u..4u + 4` of the eight rows, as the unpacked nibble vectors above do.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Bytes([u8; 8 * 32]);

/// Q6_K in groups of [`GROUP`] interleaved rows: each value's unsigned 6 bits `q` (the value
/// is `q − 32`) as a byte, and the file's scales: an f16 `d` per super-block and row, an
/// 8-bit `sc` per half-block (16 values) and row, multiplied in the kernel. 8.6 bits per
/// weight where the file holds 6.6, for the few tensors Q4_K_M files keep in Q6_K; the
/// products then need no unpacking, and candle's repacked second copy (32 MB on Gemma-3) is
/// spared.
#[derive(Debug)]
pub struct Q6Matrix {
    qs: Vec<Bytes>,
    /// f16 bits of `d`, per (group, super-block).
    d: Vec<[u16; GROUP]>,
    /// `[half][row]` factors of each (group, block).
    sc: Vec<[[i8; GROUP]; 2]>,
    n: usize,
    k: usize,
}

impl Q6Matrix {
    /// Unpacks a CPU Q6_K tensor of shape `[n, k]`.
    pub fn from_q6k(t: &QTensor) -> Result<Self> {
        let (n, k) = t.shape().dims2()?;
        if !k.is_multiple_of(QK_K) {
            candle_core::bail!("rows of {k} values are not whole {QK_K}-value blocks")
        }
        let blocks = kquant::q6k_to_int8(&t.data()?, n * k)?;
        let per_row = k / QK;
        let count = n.div_ceil(GROUP) * per_row;
        let mut m = Self {
            qs: vec![Bytes([0; 256]); count],
            d: vec![[0; GROUP]; count / BLOCKS_PER_SUPER],
            sc: vec![[[0; GROUP]; 2]; count],
            n,
            k,
        };
        for (i, block) in blocks.iter().enumerate() {
            let (row, b) = (i / per_row, i % per_row);
            let (r, at) = (row % GROUP, (row / GROUP) * per_row + b);
            for (j, &v) in block.q.iter().enumerate() {
                m.qs[at].0[32 * (j / 4) + 4 * r + j % 4] = (v as i32 + 32) as u8;
            }
            m.d[at / BLOCKS_PER_SUPER][r] = block.super_d;
            m.sc[at][0][r] = block.sc[0];
            m.sc[at][1][r] = block.sc[1];
        }
        Ok(m)
    }

    /// The scales of block `at`'s two halves for row `r`, as the kernels compute them.
    fn scales(&self, at: usize, r: usize) -> [f32; 2] {
        let d = half::f16::from_bits(self.d[at / BLOCKS_PER_SUPER][r]).to_f32();
        self.sc[at].map(|s| d * s[r] as f32)
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
            let [lo, hi] = self.scales(at, r);
            total += bx.d * (lo * halves[0] as f32 + hi * halves[1] as f32);
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
            let supers = at.start / BLOCKS_PER_SUPER..at.end / BLOCKS_PER_SUPER;
            let w = Q6Group { qs: &self.qs[at.clone()], d: &self.d[supers], sc: &self.sc[at] };
            macro_rules! tiles {
                ($kernel:ident) => {
                    by_rows!(x.len(), $kernel, [], (w, x, out))
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

/// One group of rows of a [`Q6Matrix`].
#[derive(Clone, Copy)]
struct Q6Group<'a> {
    qs: &'a [Bytes],
    d: &'a [[u16; GROUP]],
    sc: &'a [[[i8; GROUP]; 2]],
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_tile_avx2<const Y: usize>(w: Q6Group<'_>, x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
    q6_tile_body::<Y, false>(w, x, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl,avx512bw")]
unsafe fn q6_tile_vnni<const Y: usize>(w: Q6Group<'_>, x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
    q6_tile_body::<Y, true>(w, x, out);
}

/// [`tile_body`] for Q6_K: the values need no unpacking; each half-block's integer sum is
/// corrected for the offset of 32 and scaled on its own.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `u` also indexes the activation's words
unsafe fn q6_tile_body<const Y: usize, const VNNI: bool>(w: Q6Group<'_>, x: &[&[ActBlock]], out: &mut [[f32; GROUP]; TILE_ROWS]) {
    use std::arch::x86_64::*;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); Y];
    let xs: [&[ActBlock]; Y] = std::array::from_fn(|i| x[i]);
    for b in 0..w.qs.len() {
        let p = w.qs.get_unchecked(b).0.as_ptr() as *const __m256i;
        let mut q = [_mm256_setzero_si256(); 8];
        for u in 0..8 {
            q[u] = _mm256_load_si256(p.add(u));
        }
        // `d · sc` per half: f16 widened times the signed factor, exact in f32.
        let d = _mm256_cvtph_ps(_mm_loadu_si128(w.d.get_unchecked(b / BLOCKS_PER_SUPER).as_ptr() as *const __m128i));
        let [lo, hi] = w.sc.get_unchecked(b);
        let (dlo, dhi) = (_mm256_mul_ps(d, widen_signed(lo)), _mm256_mul_ps(d, widen_signed(hi)));
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
