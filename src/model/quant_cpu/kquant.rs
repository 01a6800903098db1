//! K-quant super-blocks (256 values) unpacked at load into the 32-value blocks the kernels
//! multiply, without loss: every weight keeps its exact value `d · sc · q − dmin · m`.
//!
//! Q4_K and Q5_K are eight 32-value sub-blocks, each with its own 6-bit scale and minimum:
//! each becomes a Q4_1 or Q5_1 block whose scale is `d · sc` and offset `−dmin · m`. Q6_K
//! has a scale per 16 values and 6-bit values: they become signed bytes (`q − 32`) with two
//! scales per 32 values. The factors are handed on as the file stores them (f16 bits and
//! small integers) and multiplied in the kernels, where the f32 product is exact and the same
//! bits as widening at load, at a quarter of the bytes per weight. The layouts follow ggml's
//! `block_q4_K`, `block_q5_K` and `block_q6_K`.

use candle_core::Result;
use half::f16;

use super::QK;

/// Values per super-block.
pub(super) const QK_K: usize = 256;

/// 32-value blocks per super-block.
pub(super) const BLOCKS_PER_SUPER: usize = QK_K / QK;

fn half_bits(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

/// Checks that `bytes` holds whole super-blocks of `size` bytes for `values` weights.
fn super_blocks(bytes: &[u8], values: usize, size: usize, name: &str) -> Result<usize> {
    if !values.is_multiple_of(QK_K) {
        candle_core::bail!("{name} tensor of {values} values is not whole {QK_K}-value blocks")
    }
    let count = values / QK_K;
    if bytes.len() != count * size {
        candle_core::bail!("{name} tensor holds {} bytes, expected {}", bytes.len(), count * size)
    }
    Ok(count)
}

/// Scale and minimum of sub-block `j` (0..8), packed in 6 bits each into 12 bytes: ggml's
/// `get_scale_min_k4`.
fn scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// One 32-value block of unsigned 4- or 5-bit values `q` that stand for `d * q + m`.
pub(super) struct ValueBlock {
    pub q: [u8; QK],
    pub scale: BlockScale,
}

/// A block's `d` and `m`, as the file stores them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BlockScale {
    /// f16 bits of `d` and `m` (Q4_1, Q5_1; Q5_0 has no `m` and gives 0).
    Flat { d: u16, m: u16 },
    /// A K-quant sub-block: `d = f16(super_d) · sc` and `m = −f16(dmin) · mn`.
    Sub { super_d: u16, dmin: u16, sc: u8, mn: u8 },
}

impl BlockScale {
    /// `(d, m)` in f32, as the kernels compute them.
    pub fn widened(self) -> (f32, f32) {
        let f = |bits: u16| f16::from_bits(bits).to_f32();
        match self {
            BlockScale::Flat { d, m } => (f(d), f(m)),
            BlockScale::Sub { super_d, dmin, sc, mn } => (f(super_d) * sc as f32, -(f(dmin) * mn as f32)),
        }
    }
}

/// Q4_K (`fifth = false`, 144-byte blocks) or Q5_K (`fifth = true`, 176-byte blocks) as
/// 32-value blocks, handed to `take` in order (straight into the caller's arrays: no second
/// copy of the tensor while it loads).
pub(super) fn k_to_values(bytes: &[u8], values: usize, fifth: bool, mut take: impl FnMut(ValueBlock)) -> Result<()> {
    let size = if fifth { 176 } else { 144 };
    super_blocks(bytes, values, size, if fifth { "Q5_K" } else { "Q4_K" })?;
    for b in bytes.chunks_exact(size) {
        let (super_d, dmin, scales) = (half_bits(b, 0), half_bits(b, 2), &b[4..16]);
        let (qh, qs) = if fifth { (&b[16..48], &b[48..176]) } else { (&[][..], &b[16..144]) };
        // Each 32 bytes of `qs` hold two sub-blocks: low nibbles, then high nibbles.
        for j in 0..QK_K / QK {
            let packed = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            let shift = 4 * (j % 2);
            let mut q = [0u8; QK];
            for (l, v) in q.iter_mut().enumerate() {
                *v = (packed[l] >> shift) & 0x0F;
                if fifth {
                    *v |= ((qh[l] >> j) & 1) << 4;
                }
            }
            let (sc, mn) = scale_min(j, scales);
            take(ValueBlock { q, scale: BlockScale::Sub { super_d, dmin, sc, mn } });
        }
    }
    Ok(())
}

/// One 32-value block of Q6_K: signed values, the 8-bit scales of its two halves (16 values
/// each) and the f16 bits of its super-block's `d`; value `j` is `d · sc[j / 16] · q[j]`.
pub(super) struct SplitBlock {
    pub q: [i8; QK],
    pub sc: [i8; 2],
    pub super_d: u16,
}

impl SplitBlock {
    /// The two halves' scales in f32, as the kernels compute them.
    #[cfg(test)]
    pub fn scales(&self) -> [f32; 2] {
        let d = f16::from_bits(self.super_d).to_f32();
        self.sc.map(|s| d * s as f32)
    }
}

/// Q6_K (210-byte blocks) as signed 32-value blocks with the scales of their two halves.
pub(super) fn q6k_to_int8(bytes: &[u8], values: usize) -> Result<Vec<SplitBlock>> {
    let count = super_blocks(bytes, values, 210, "Q6_K")?;
    let mut blocks = Vec::with_capacity(count * QK_K / QK);
    for b in bytes.chunks_exact(210) {
        let (ql, qh, sc, super_d) = (&b[0..128], &b[128..192], &b[192..208], half_bits(b, 208));
        let mut q = [0i8; QK_K];
        // Two halves of 128 values; in each, 64 bytes of low 4 bits and 32 of high 2 bits.
        for half in 0..2 {
            let (ql, qh) = (&ql[64 * half..64 * half + 64], &qh[32 * half..32 * half + 32]);
            let q = &mut q[128 * half..128 * half + 128];
            for l in 0..32 {
                let v = [
                    (ql[l] & 0x0F) | ((qh[l] & 3) << 4),
                    (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4),
                    (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                ];
                for (i, v) in v.into_iter().enumerate() {
                    q[l + 32 * i] = v as i8 - 32;
                }
            }
        }
        for j in 0..QK_K / QK {
            let mut block = [0i8; QK];
            block.copy_from_slice(&q[QK * j..QK * (j + 1)]);
            blocks.push(SplitBlock { q: block, sc: [sc[2 * j] as i8, sc[2 * j + 1] as i8], super_d });
        }
    }
    Ok(blocks)
}
