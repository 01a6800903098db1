//! K-quant super-blocks (256 values) unpacked at load into the 32-value blocks the kernels
//! multiply, without loss: every weight keeps its exact value `d · sc · q − dmin · m`.
//!
//! Q4_K and Q5_K are eight 32-value sub-blocks, each with its own 6-bit scale and minimum:
//! each becomes a Q4_1 or Q5_1 block whose scale is `d · sc` and offset `−dmin · m`. Q6_K
//! has a scale per 16 values and 6-bit values: they become signed bytes (`q − 32`) with two
//! scales per 32 values. The layouts follow ggml's `block_q4_K`, `block_q5_K` and
//! `block_q6_K`.

use candle_core::Result;
use half::f16;

use super::QK;

/// Values per super-block.
const QK_K: usize = 256;

fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
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
    pub d: f32,
    pub m: f32,
}

/// Q4_K (`fifth = false`, 144-byte blocks) or Q5_K (`fifth = true`, 176-byte blocks) as
/// 32-value blocks, handed to `take` in order (straight into the caller's arrays: no second
/// copy of the tensor while it loads).
pub(super) fn k_to_values(bytes: &[u8], values: usize, fifth: bool, mut take: impl FnMut(ValueBlock)) -> Result<()> {
    let size = if fifth { 176 } else { 144 };
    super_blocks(bytes, values, size, if fifth { "Q5_K" } else { "Q4_K" })?;
    for b in bytes.chunks_exact(size) {
        let (d, dmin, scales) = (half_at(b, 0), half_at(b, 2), &b[4..16]);
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
            let (sc, m) = scale_min(j, scales);
            take(ValueBlock { q, d: d * sc as f32, m: -(dmin * m as f32) });
        }
    }
    Ok(())
}

/// Signed 32-value blocks, and the scales of each block's two halves.
pub(super) type SplitBlocks = (Vec<[i8; QK]>, Vec<[f32; 2]>);

/// Q6_K (210-byte blocks) as signed 32-value blocks with the scales of their two halves.
pub(super) fn q6k_to_int8(bytes: &[u8], values: usize) -> Result<SplitBlocks> {
    let count = super_blocks(bytes, values, 210, "Q6_K")?;
    let mut qs = Vec::with_capacity(count * QK_K / QK);
    let mut scales = Vec::with_capacity(count * QK_K / QK);
    for b in bytes.chunks_exact(210) {
        let (ql, qh, sc, d) = (&b[0..128], &b[128..192], &b[192..208], half_at(b, 208));
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
            qs.push(block);
            scales.push([d * sc[2 * j] as i8 as f32, d * sc[2 * j + 1] as i8 as f32]);
        }
    }
    Ok((qs, scales))
}
