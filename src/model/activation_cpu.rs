//! The gated activations of the feed-forward blocks, `act(gate) · up`, on the CPU: SiLU
//! (SwiGLU) and llama.cpp's table GELU (GeGLU), eight values at a time where the CPU has AVX2.
//!
//! Written by hand because one scalar call per value had become a visible share of prefill
//! once the matmuls were fast: libm's `expf` and the SiLU around it 6% of SmolLM2's, the GELU
//! table (through `half`'s run-time dispatched f16 conversions) 5.5% of Gemma-3's. Each vector
//! form does the same operations as its scalar form, so both give the same bits.

use half::f16;

use super::attention_cpu::exp;
use super::config::Activation;

/// `out[i] = act(gate[i]) · up[i]`.
pub(super) fn gated(activation: Activation, gate: &[f32], up: &[f32], out: &mut [f32]) {
    let n = out.len().min(gate.len()).min(up.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::cpu::simd_available() {
        done = n / 8 * 8;
        // SAFETY: the features were checked just above; the slices hold `done` values each.
        unsafe {
            match activation {
                Activation::Silu => silu_avx2(&gate[..done], &up[..done], &mut out[..done]),
                Activation::GeluTanh => gelu_avx2(&gate[..done], &up[..done], &mut out[..done]),
            }
        }
    }
    let rest = out[done..n].iter_mut().zip(&gate[done..n]).zip(&up[done..n]);
    match activation {
        Activation::Silu => rest.for_each(|((o, &g), &u)| *o = silu(g) * u),
        Activation::GeluTanh => rest.for_each(|((o, &g), &u)| *o = gelu(g) * u),
    }
}

/// SiLU, `g · σ(g)`, with σ from `e = exp(−|g|)` so that the exponential never overflows:
/// `1 / (1 + e)` for `g ≥ 0`, `e / (1 + e)` below.
fn silu(g: f32) -> f32 {
    let e = exp(-g.abs());
    let s = if g >= 0.0 { 1.0 } else { e } / (1.0 + e);
    g * s
}

/// GELU, tanh approximation, as llama.cpp's CPU backend computes it: through a table indexed
/// by the f16 input, holding f16 outputs (so both sides are rounded to f16). The table also
/// makes it cheap: `tanh` per element had cost Gemma's prefill 10% of its time.
fn gelu(x: f32) -> f32 {
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    f16::from_bits(gelu_table()[f16::from_f32(x).to_bits() as usize]).to_f32()
}

/// The f16 bits of [`gelu_of_f16`] for every f16 input, and one entry of padding: the vector
/// form reads each entry as the low half of a 32-bit load.
fn gelu_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_of_f16(f16::from_bits(bits))).to_bits())
            .chain([0])
            .collect()
    })
}

/// The tanh GELU of an f16 input, in f32.
fn gelu_of_f16(x: f16) -> f32 {
    let x = x.to_f32();
    0.5 * x * (1.0 + (0.797_884_6 * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// [`silu`] times `up`, eight at a time; lengths are a multiple of 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn silu_avx2(gate: &[f32], up: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let one = _mm256_set1_ps(1.0);
    let sign = _mm256_set1_ps(-0.0);
    for i in (0..out.len()).step_by(8) {
        let g = _mm256_loadu_ps(gate.as_ptr().add(i));
        let e = super::attention_cpu::exp8(_mm256_or_ps(g, sign));
        let numerator = _mm256_blendv_ps(e, one, _mm256_cmp_ps::<_CMP_GE_OQ>(g, _mm256_setzero_ps()));
        let s = _mm256_div_ps(numerator, _mm256_add_ps(one, e));
        let y = _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_loadu_ps(up.as_ptr().add(i)));
        _mm256_storeu_ps(out.as_mut_ptr().add(i), y);
    }
}

/// [`gelu`] times `up`, eight at a time; lengths are a multiple of 8. The table is read by a
/// gather of 32-bit words at the f16 inputs' indices, whose low halves are the entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gelu_avx2(gate: &[f32], up: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let table = gelu_table().as_ptr() as *const i32;
    let low = _mm256_set1_epi32(0xFFFF);
    let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
    for i in (0..out.len()).step_by(8) {
        let x = _mm256_loadu_ps(gate.as_ptr().add(i));
        let index = _mm256_cvtepu16_epi32(_mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(x));
        let words = _mm256_and_si256(_mm256_i32gather_epi32::<2>(table, index), low);
        // Eight 16-bit entries into the low 128 bits: pack within each 128-bit lane, then
        // bring the two lanes' low halves together.
        let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(words, words));
        let mut y = _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
        y = _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GE_OQ>(x, hi));
        y = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(x, lo), y);
        _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(y, _mm256_loadu_ps(up.as_ptr().add(i))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_table_gives_the_formula_on_f16_rounded_input_and_output() {
        for i in -12_000..12_000 {
            let x = i as f32 * 1e-3;
            let want = if x <= -10.0 {
                0.0
            } else if x >= 10.0 {
                x
            } else {
                f16::from_f32(gelu_of_f16(f16::from_f32(x))).to_f32()
            };
            assert_eq!(gelu(x).to_bits(), want.to_bits(), "x = {x}");
        }
        assert!(gelu(f32::NAN).is_nan());
    }

    #[test]
    fn silu_is_within_four_ulp_of_the_libm_formula() {
        for i in -100_000..100_000 {
            let g = i as f32 * 1e-3;
            let (ours, libm) = (silu(g), g / (1.0 + (-g).exp()));
            let ulp = (ours.to_bits() as i64 - libm.to_bits() as i64).abs();
            assert!(ulp <= 4 || (ours - libm).abs() < 1e-30, "silu({g}) = {ours}, libm {libm}");
        }
        assert_eq!(silu(-200.0), 0.0);
        assert_eq!(silu(200.0), 200.0);
    }

    /// The vector forms against the scalar ones, bit for bit, over ties of the f16 rounding,
    /// both clamps of the GELU, zeros, and large values of either sign.
    #[test]
    fn vector_forms_give_the_scalar_bits() {
        if !super::super::cpu::simd_available() {
            return;
        }
        let mut gate: Vec<f32> = (0..4000).map(|i| (i as f32 - 2000.0) * 7.3e-3).collect();
        gate.extend([-10.0, 10.0, -9.999, 9.999, 0.0, -0.0, 1.0 + 1.0 / 2048.0, -100.0, 100.0, 1e30, -1e30, 3.0]);
        let up: Vec<f32> = (0..gate.len()).map(|i| 1.0 + (i % 7) as f32 * 0.37).collect();
        for activation in [Activation::Silu, Activation::GeluTanh] {
            let mut got = vec![0f32; gate.len()];
            gated(activation, &gate, &up, &mut got);
            for ((g, u), y) in gate.iter().zip(&up).zip(&got) {
                let want = match activation {
                    Activation::Silu => silu(*g) * u,
                    Activation::GeluTanh => gelu(*g) * u,
                };
                assert_eq!(y.to_bits(), want.to_bits(), "{activation:?}({g}) · {u}: {y} vs {want}");
            }
        }
    }
}
