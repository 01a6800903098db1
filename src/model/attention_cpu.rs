//! Attention for one layer on the CPU in a single pass: rotary embedding, KV-cache append,
//! grouped-query scores, causal/sliding-window masking, softmax and the weighted sum of values.
//!
//! Written by hand because composing it from candle ops costs ~20 tensor operations per layer,
//! each with its own allocation and dispatch: on a 135M-parameter model that overhead was
//! larger than the matmuls themselves. The arithmetic follows llama.cpp's CPU path: keys,
//! values, queries and probabilities are rounded to f16 (its default cache type and the
//! operand type of its attention matmuls), dot products accumulate in f32. The cache stores
//! keys and values as f16, half the memory of f32 for the same values.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::config::RopeLayout;
use super::cpu::SendPtr;

/// The attention geometry of a model.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub n_head: usize,
    pub n_kv: usize,
    pub head_dim: usize,
    pub value_dim: usize,
    /// Multiplier of query·key scores.
    pub scale: f32,
}

/// Per-position rotary tables: `cos[t * half + i]`, `sin[t * half + i]`.
#[derive(Debug, Clone)]
pub struct RopeCpu {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    /// Rotated dimensions per head (the rest pass through).
    pub dims: usize,
    pub layout: RopeLayout,
}

/// One layer's cached keys and values, `[position][kv_head][dim]`.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    pub k: Vec<f16>,
    pub v: Vec<f16>,
}

/// Appends `xs` rounded to f16 (`half` converts slices with F16C where the CPU has it).
fn extend_f16(cache: &mut Vec<f16>, xs: &[f32]) {
    let start = cache.len();
    cache.resize(start + xs.len(), f16::ZERO);
    cache[start..].convert_from_f32_slice(xs);
}

/// Rounds every value to the nearest f16 (as llama.cpp's f16 operands are), in place.
fn round_f16(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::cpu::simd_available() {
            // SAFETY: F16C/AVX2 were detected.
            return unsafe { round_f16_f16c(xs) };
        }
    }
    xs.iter_mut().for_each(|x| *x = f16::from_f32(*x).to_f32());
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round_f16_f16c(xs: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut chunks = xs.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = _mm256_loadu_ps(c.as_ptr());
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
        _mm256_storeu_ps(c.as_mut_ptr(), _mm256_cvtph_ps(h));
    }
    for x in chunks.into_remainder() {
        *x = f16::from_f32(*x).to_f32();
    }
}

impl RopeCpu {
    fn rotate(&self, x: &mut [f32], t: usize) {
        let half = self.dims / 2;
        let (cos, sin) = (&self.cos[t * half..(t + 1) * half], &self.sin[t * half..(t + 1) * half]);
        match self.layout {
            RopeLayout::Interleaved => {
                for i in 0..half {
                    let (a, b) = (x[2 * i], x[2 * i + 1]);
                    x[2 * i] = a * cos[i] - b * sin[i];
                    x[2 * i + 1] = a * sin[i] + b * cos[i];
                }
            }
            RopeLayout::Halves => {
                for i in 0..half {
                    let (a, b) = (x[i], x[i + half]);
                    x[i] = a * cos[i] - b * sin[i];
                    x[i + half] = a * sin[i] + b * cos[i];
                }
            }
        }
    }
}

/// Runs attention for `t` new tokens at positions `pos..pos + t`.
///
/// `q` is `[t][n_head][head_dim]`, `k` `[t][n_kv][head_dim]`, `v` `[t][n_kv][value_dim]`, all
/// before rotation. The cache must hold exactly `pos` positions; the new keys and values are
/// appended. Keys with `query_pos - key_pos >= window` are not attended. Returns
/// `[t][n_head][value_dim]`.
// The hot loop's inputs, each a separate borrow (queries and keys are rotated in place).
#[allow(clippy::too_many_arguments)]
pub fn attend(
    g: Geometry,
    q: &mut [f32],
    k: &mut [f32],
    v: &[f32],
    rope: &RopeCpu,
    cache: &mut LayerCache,
    pos: usize,
    window: Option<usize>,
) -> Vec<f32> {
    let (hd, vd) = (g.head_dim, g.value_dim);
    let t = q.len() / (g.n_head * hd);
    let kv_stride = g.n_kv * hd;
    let v_stride = g.n_kv * vd;
    debug_assert_eq!(cache.k.len(), pos * kv_stride);
    for ti in 0..t {
        for h in 0..g.n_head {
            rope.rotate(&mut q[(ti * g.n_head + h) * hd..][..hd], ti);
        }
        for h in 0..g.n_kv {
            rope.rotate(&mut k[(ti * g.n_kv + h) * hd..][..hd], ti);
        }
    }
    round_f16(q);
    extend_f16(&mut cache.k, k);
    extend_f16(&mut cache.v, v);

    let n_rep = g.n_head / g.n_kv;
    // Prefill attends the query heads that share a key/value head together (see
    // `attend_group_avx2`); decode keeps one item per head, to spread a single token's heads
    // over the threads.
    let grouped = t >= 2 && (2..=MAX_GROUP).contains(&n_rep) && super::cpu::simd_available();
    let heads = if grouped { n_rep } else { 1 };
    let mut out = vec![0f32; t * g.n_head * vd];
    let (cache_k, cache_v) = (&cache.k, &cache.v);
    let q = &*q;
    // One work item per (query token, head), or per (query token, key/value head): its
    // `heads` query heads are consecutive, in `q` and in `out` alike.
    let work = |item: usize, out_rows: &mut [f32], scores: &mut Vec<f32>| {
        let (ti, h) = (item / (g.n_head / heads), (item % (g.n_head / heads)) * heads);
        let qpos = pos + ti;
        let first = window.map_or(0, |w| (qpos + 1).saturating_sub(w));
        let head = Head {
            q: &q[(ti * g.n_head + h) * hd..][..heads * hd],
            keys: &cache_k[first * kv_stride..(qpos + 1) * kv_stride],
            values: &cache_v[first * v_stride..(qpos + 1) * v_stride],
            kv_offset: (h / n_rep) * hd,
            v_offset: (h / n_rep) * vd,
            kv_stride,
            v_stride,
            scale: g.scale,
        };
        if heads == 1 {
            head.attend(out_rows, scores);
        } else {
            head.attend_group(heads, out_rows, scores);
        }
    };
    let items = t * g.n_head / heads;
    let keys_seen = pos + t;
    let row = heads * vd;
    // Threads pay off once there is real work; a short decode step runs inline.
    if t * g.n_head * keys_seen * hd < 1 << 16 {
        let mut scores = Vec::with_capacity(heads * keys_seen);
        for (item, rows) in out.chunks_mut(row).enumerate() {
            work(item, rows, &mut scores);
        }
    } else {
        let out_ptr = SendPtr(out.as_mut_ptr());
        candle_core::utils::barrier_pool().execute_chunked(items, |range| {
            let mut scores = Vec::with_capacity(heads * keys_seen);
            for item in range {
                // SAFETY: each item owns rows `item * heads..(item + 1) * heads` of `out`,
                // inside its bounds.
                let rows = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(item * row), row) };
                work(item, rows, &mut scores);
            }
        });
    }
    out
}

/// Most query heads per key/value head that [`Head::attend_group`] takes together (more
/// attend one by one).
const MAX_GROUP: usize = 8;

/// One query head against its key/value head, or (for [`Head::attend_group`]) the
/// consecutive query heads that share it.
struct Head<'a> {
    /// `[head][head_dim]`.
    q: &'a [f32],
    /// Cached positions from the first visible key to the query, `[pos][kv_head][dim]`.
    keys: &'a [f16],
    values: &'a [f16],
    kv_offset: usize,
    v_offset: usize,
    kv_stride: usize,
    v_stride: usize,
    scale: f32,
}

impl Head<'_> {
    fn attend(&self, out: &mut [f32], scores: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        {
            if super::cpu::simd_available() {
                // SAFETY: the features were detected.
                return unsafe { self.attend_avx2(out, scores) };
            }
        }
        self.attend_portable(out, scores);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn attend_avx2(&self, out: &mut [f32], scores: &mut Vec<f32>) {
        self.attend_with::<true>(out, scores);
    }

    fn attend_portable(&self, out: &mut [f32], scores: &mut Vec<f32>) {
        // SAFETY: without F16C the SIMD loops are not taken.
        unsafe { self.attend_with::<false>(out, scores) };
    }

    /// Scores, softmax and the weighted sum of values; `F16C`: read the cache with F16C (the
    /// caller has checked the CPU has it and is compiled with it). Plain `if`s on the constant,
    /// not closures, which would not be compiled with the caller's target features.
    #[inline(always)]
    unsafe fn attend_with<const F16C: bool>(&self, out: &mut [f32], scores: &mut Vec<f32>) {
        let hd = self.q.len();
        let n = self.keys.len() / self.kv_stride;
        scores.clear();
        let mut max = f32::NEG_INFINITY;
        for j in 0..n {
            let kj = &self.keys[j * self.kv_stride + self.kv_offset..][..hd];
            #[cfg(target_arch = "x86_64")]
            let s = if F16C { dot_f16c(self.q, kj) } else { dot(self.q, kj) } * self.scale;
            #[cfg(not(target_arch = "x86_64"))]
            let s = dot(self.q, kj) * self.scale;
            max = max.max(s);
            scores.push(s);
        }
        softmax_f16::<F16C>(scores, max);
        let vd = out.len();
        out.fill(0.0);
        for (j, &p) in scores.iter().enumerate() {
            let vj = &self.values[j * self.v_stride + self.v_offset..][..vd];
            #[cfg(target_arch = "x86_64")]
            if F16C {
                axpy_f16c(out, p, vj);
                continue;
            }
            axpy(out, p, vj);
        }
    }

    /// `heads` query heads (2..=[`MAX_GROUP`], consecutive in `q` and `out`) that share this
    /// key/value head: each key and value is widened from f16 once for all of them, and their
    /// independent sums overlap where one head's would wait on its own chain of additions.
    /// Each head's operations are [`Head::attend`]'s, in the same order: the same bits.
    fn attend_group(&self, heads: usize, out: &mut [f32], scores: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `attend` groups heads only where the features were detected.
            unsafe {
                match heads {
                    2 => return self.attend_group_avx2::<2>(out, scores),
                    3 => return self.attend_group_avx2::<3>(out, scores),
                    4 => return self.attend_group_avx2::<4>(out, scores),
                    5 => return self.attend_group_avx2::<5>(out, scores),
                    6 => return self.attend_group_avx2::<6>(out, scores),
                    7 => return self.attend_group_avx2::<7>(out, scores),
                    8 => return self.attend_group_avx2::<8>(out, scores),
                    _ => {}
                }
            }
        }
        let (hd, vd) = (self.q.len() / heads, out.len() / heads);
        for (h, out) in out.chunks_mut(vd).enumerate() {
            Head { q: &self.q[h * hd..][..hd], ..*self }.attend(out, scores);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    #[allow(clippy::needless_range_loop)] // `h` indexes the accumulators, queries and outputs
    unsafe fn attend_group_avx2<const R: usize>(&self, out: &mut [f32], scores: &mut Vec<f32>) {
        use std::arch::x86_64::*;
        let (hd, vd) = (self.q.len() / R, out.len() / R);
        let n = self.keys.len() / self.kv_stride;
        scores.clear();
        scores.resize(R * n, 0.0);
        let (q, keys, values) = (self.q.as_ptr(), self.keys.as_ptr(), self.values.as_ptr());
        let mut lanes = [0f32; 8];
        for j in 0..n {
            let kj = keys.add(j * self.kv_stride + self.kv_offset);
            let mut acc = [_mm256_setzero_ps(); R];
            let mut i = 0;
            while i + 8 <= hd {
                let kb = _mm256_cvtph_ps(_mm_loadu_si128(kj.add(i) as *const __m128i));
                for h in 0..R {
                    acc[h] = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(q.add(h * hd + i)), kb), acc[h]);
                }
                i += 8;
            }
            for h in 0..R {
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc[h]);
                let mut s: f32 = lanes.iter().sum();
                for d in i..hd {
                    s += *q.add(h * hd + d) * (*kj.add(d)).to_f32();
                }
                scores[h * n + j] = s * self.scale;
            }
        }
        for h in 0..R {
            let row = &mut scores[h * n..(h + 1) * n];
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            softmax_f16::<true>(row, max);
        }
        // Output lanes outermost, kept in registers over every key: no load and store of the
        // outputs per key, and each sum is still 0 + p₀v₀ + p₁v₁ + … in key order.
        let (o, p) = (out.as_mut_ptr(), scores.as_ptr());
        let mut i = 0;
        while i + 8 <= vd {
            let mut acc = [_mm256_setzero_ps(); R];
            let mut vj = values.add(self.v_offset + i);
            for j in 0..n {
                let vb = _mm256_cvtph_ps(_mm_loadu_si128(vj as *const __m128i));
                for h in 0..R {
                    acc[h] = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(*p.add(h * n + j)), vb), acc[h]);
                }
                vj = vj.add(self.v_stride);
            }
            for h in 0..R {
                _mm256_storeu_ps(o.add(h * vd + i), acc[h]);
            }
            i += 8;
        }
        for d in i..vd {
            for h in 0..R {
                let mut s = 0f32;
                for j in 0..n {
                    s += *p.add(h * n + j) * (*values.add(j * self.v_stride + self.v_offset + d)).to_f32();
                }
                *o.add(h * vd + d) = s;
            }
        }
    }
}

/// Softmax of scores whose maximum is `max`, rounded to f16 (llama.cpp's operand type).
/// `SIMD`: the caller is compiled with AVX2 and FMA (and checked the CPU has them); the
/// exponentials then come eight at a time, with the same bits as one at a time.
#[inline(always)]
unsafe fn softmax_f16<const SIMD: bool>(scores: &mut [f32], max: f32) {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if SIMD {
        use std::arch::x86_64::*;
        let m = _mm256_set1_ps(max);
        while i + 8 <= scores.len() {
            let p = scores.as_mut_ptr().add(i);
            _mm256_storeu_ps(p, exp8(_mm256_sub_ps(_mm256_loadu_ps(p), m)));
            i += 8;
        }
    }
    for s in &mut scores[i..] {
        *s = exp(*s - max);
    }
    let mut sum = 0f32;
    for s in scores.iter() {
        sum += *s;
    }
    let inv = 1.0 / sum;
    scores.iter_mut().for_each(|s| *s *= inv);
    round_f16(scores);
}

/// Below this, `exp` is 0 in f32 (and the exponent arithmetic below would wrap).
const EXP_MIN: f32 = -87.0;

/// `e^x` for `x <= 0` (softmax's arguments), within 2 ulp of libm's: `x = n·ln 2 + r` with
/// `|r| <= ln 2 / 2`, `e^r` by its Taylor series to degree 7 (error below 1e-8), times `2^n`
/// through the exponent bits. Written out because libm's `expf`, one call per score, was 6%
/// of SmolLM2's prefill, and [`exp8`] must do the same operations so that both paths agree
/// to the bit; `mul_add` is the fused multiply-add that `exp8` uses.
pub(super) fn exp(x: f32) -> f32 {
    if x < EXP_MIN {
        return 0.0;
    }
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-LN2_HI, x);
    let r = n.mul_add(-LN2_LO, r);
    let mut p = EXP_TAYLOR[0];
    for c in &EXP_TAYLOR[1..] {
        p = p.mul_add(r, *c);
    }
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// ln 2 split so that `n · LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1/7!, 1/6!, …, 1/1!, 1/0!: Horner's order.
const EXP_TAYLOR: [f32; 8] = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];

/// [`exp`] of eight values, operation for operation.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn exp8(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
    let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    let mut p = _mm256_set1_ps(EXP_TAYLOR[0]);
    for c in &EXP_TAYLOR[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
    }
    let scale = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
    let e = _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
    // Zero below EXP_MIN (where the exponent above is meaningless).
    _mm256_and_ps(e, _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(EXP_MIN)))
}

/// `a · b` in eight partial sums, multiplied then added, summed in order at the end: the same
/// operations as [`dot_f16c`], so both paths give the same bits. (The logits are sensitive
/// enough to the order that a tree sum moved SmolLM2's largest difference from llama.cpp's
/// from 0.56 to 0.74.)
fn dot(a: &[f32], b: &[f16]) -> f32 {
    let mut acc = [0f32; 8];
    let n = a.len().min(b.len()) / 8 * 8;
    for (x, y) in a[..n].chunks_exact(8).zip(b[..n].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i].to_f32();
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in a[n..].iter().zip(&b[n..]) {
        s += x * y.to_f32();
    }
    s
}

fn axpy(out: &mut [f32], p: f32, v: &[f16]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o += p * x.to_f32();
    }
}

/// `a · b`, eight lanes at a time, widening `b` with F16C; the operations of [`dot`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dot_f16c(a: &[f32], b: &[f16]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        let kb = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i) as *const __m128i));
        acc = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(a.as_ptr().add(i)), kb), acc);
        i += 8;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
    let mut s: f32 = lanes.iter().sum();
    for j in i..n {
        s += a[j] * b[j].to_f32();
    }
    s
}

/// `out += p · v`, eight lanes at a time, widening `v` with F16C; multiplied then added, as
/// [`axpy`] does.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn axpy_f16c(out: &mut [f32], p: f32, v: &[f16]) {
    use std::arch::x86_64::*;
    let n = out.len().min(v.len());
    let pv = _mm256_set1_ps(p);
    let mut i = 0;
    while i + 8 <= n {
        let vb = _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().add(i) as *const __m128i));
        let o = out.as_mut_ptr().add(i);
        _mm256_storeu_ps(o, _mm256_add_ps(_mm256_mul_ps(pv, vb), _mm256_loadu_ps(o)));
        i += 8;
    }
    for j in i..n {
        out[j] += p * v[j].to_f32();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive attention in f64 without any rounding, for comparison.
    fn naive(g: Geometry, q: &[f32], keys: &[f32], values: &[f32], t: usize, pos: usize, window: Option<usize>) -> Vec<f32> {
        let (hd, vd) = (g.head_dim, g.value_dim);
        let mut out = vec![0f32; t * g.n_head * vd];
        for ti in 0..t {
            for h in 0..g.n_head {
                let kvh = h / (g.n_head / g.n_kv);
                let qpos = pos + ti;
                let js: Vec<usize> = (0..=qpos).filter(|&j| window.is_none_or(|w| qpos - j < w)).collect();
                let s: Vec<f64> = js
                    .iter()
                    .map(|&j| {
                        (0..hd)
                            .map(|d| q[(ti * g.n_head + h) * hd + d] as f64 * keys[(j * g.n_kv + kvh) * hd + d] as f64)
                            .sum::<f64>()
                            * g.scale as f64
                    })
                    .collect();
                let m = s.iter().copied().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for d in 0..vd {
                    out[(ti * g.n_head + h) * vd + d] = js
                        .iter()
                        .zip(&e)
                        .map(|(&j, p)| p / z * values[(j * g.n_kv + kvh) * vd + d] as f64)
                        .sum::<f64>() as f32;
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_attention_with_gqa_and_window() {
        let g = Geometry { n_head: 4, n_kv: 2, head_dim: 8, value_dim: 6, scale: 0.35 };
        let no_rope = RopeCpu { cos: vec![1.0; 64], sin: vec![0.0; 64], dims: 8, layout: RopeLayout::Halves };
        let mut rng = 1u64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        for window in [None, Some(3)] {
            let (t0, t1) = (5, 3);
            let total = t0 + t1;
            let q: Vec<f32> = (0..total * 4 * 8).map(|_| next()).collect();
            let k: Vec<f32> = (0..total * 2 * 8).map(|_| next()).collect();
            let v: Vec<f32> = (0..total * 2 * 6).map(|_| next()).collect();
            let mut cache = LayerCache::default();
            let mut a = attend(g, &mut q[..t0 * 32].to_vec(), &mut k[..t0 * 16].to_vec(), &v[..t0 * 12], &no_rope, &mut cache, 0, window);
            a.extend(attend(g, &mut q[t0 * 32..].to_vec(), &mut k[t0 * 16..].to_vec(), &v[t0 * 12..], &no_rope, &mut cache, t0, window));
            let want = naive(g, &q, &k, &v, total, 0, window);
            for (x, y) in a.iter().zip(&want) {
                assert!((x - y).abs() < 2e-3, "{x} vs {y} (window {window:?})");
            }
        }
    }

    #[test]
    fn f16c_and_portable_paths_agree_to_the_bit() {
        let mut rng = 7u64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        // 20 dimensions: two blocks of 8 and a tail of 4.
        let (hd, n) = (20, 37);
        let q: Vec<f32> = (0..hd).map(|_| f16::from_f32(next()).to_f32()).collect();
        let keys: Vec<f16> = (0..n * hd).map(|_| f16::from_f32(next())).collect();
        let values: Vec<f16> = (0..n * hd).map(|_| f16::from_f32(next())).collect();
        let head = Head { q: &q, keys: &keys, values: &values, kv_offset: 0, v_offset: 0, kv_stride: hd, v_stride: hd, scale: 0.3 };
        let (mut a, mut b) = (vec![0f32; hd], vec![0f32; hd]);
        head.attend_portable(&mut a, &mut Vec::new());
        #[cfg(target_arch = "x86_64")]
        if crate::model::cpu::simd_available() {
            // SAFETY: detected just above.
            unsafe { head.attend_avx2(&mut b, &mut Vec::new()) };
            assert_eq!(a, b);
        }
        assert!(a.iter().all(|x| x.is_finite() && *x != 0.0));
    }

    #[test]
    fn grouped_heads_give_the_same_bits_as_one_head_at_a_time() {
        let mut rng = 11u64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            f16::from_f32(((rng >> 33) as f32 / (1u64 << 31) as f32) - 0.5)
        };
        // Two key/value heads of 20 dimensions (two blocks of 8 and a tail of 4), 12 values.
        let (hd, vd, n_kv, n) = (20, 12, 2, 29);
        let keys: Vec<f16> = (0..n * n_kv * hd).map(|_| next()).collect();
        let values: Vec<f16> = (0..n * n_kv * vd).map(|_| next()).collect();
        for heads in 2..=MAX_GROUP {
            let q: Vec<f32> = (0..heads * hd).map(|_| next().to_f32()).collect();
            let head = Head { q: &q, keys: &keys, values: &values, kv_offset: hd, v_offset: vd, kv_stride: n_kv * hd, v_stride: n_kv * vd, scale: 0.3 };
            let mut grouped = vec![0f32; heads * vd];
            head.attend_group(heads, &mut grouped, &mut Vec::new());
            for h in 0..heads {
                let mut one = vec![0f32; vd];
                Head { q: &q[h * hd..][..hd], ..head }.attend(&mut one, &mut Vec::new());
                assert_eq!(&grouped[h * vd..][..vd], &one[..], "{heads} heads, head {h}");
            }
        }
    }

    #[test]
    fn exp_is_within_two_ulp_and_both_forms_agree_to_the_bit() {
        let xs: Vec<f32> = (0..20_000).map(|i| -(i as f32) * 0.0045).chain([0.0, -0.0, -86.9, -87.0, -87.1, -1e30]).collect();
        for &x in &xs {
            let (ours, libm) = (exp(x), x.exp());
            let ulp = (libm.to_bits() as i64 - ours.to_bits() as i64).abs();
            assert!(x < EXP_MIN + 0.5 || ulp <= 2, "exp({x}) = {ours}, libm {libm}");
        }
        #[cfg(target_arch = "x86_64")]
        if crate::model::cpu::simd_available() {
            for chunk in xs.chunks_exact(8) {
                let mut got = [0f32; 8];
                // SAFETY: the features were detected just above.
                unsafe {
                    use std::arch::x86_64::*;
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn run(x: &[f32], out: &mut [f32; 8]) {
                        _mm256_storeu_ps(out.as_mut_ptr(), exp8(_mm256_loadu_ps(x.as_ptr())));
                    }
                    run(chunk, &mut got);
                }
                for (x, g) in chunk.iter().zip(got) {
                    assert_eq!(g.to_bits(), exp(*x).to_bits(), "exp8({x})");
                }
            }
        }
    }

    #[test]
    fn rope_rotates_pairs() {
        let r = RopeCpu { cos: vec![0.0, 1.0], sin: vec![1.0, 0.0], dims: 4, layout: RopeLayout::Interleaved };
        let mut x = [1.0, 2.0, 3.0, 4.0];
        r.rotate(&mut x, 0);
        assert_eq!(x, [-2.0, 1.0, 3.0, 4.0]);
        let r = RopeCpu { layout: RopeLayout::Halves, ..r };
        let mut x = [1.0, 2.0, 3.0, 4.0];
        r.rotate(&mut x, 0);
        assert_eq!(x, [-3.0, 2.0, 1.0, 4.0]);
    }
}
