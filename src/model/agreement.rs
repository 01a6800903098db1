//! How closely two runs of one model agree: the same weights on two devices (CPU and CUDA),
//! teacher-forced over the same tokens.
//!
//! Quantized kernels differ between devices (the CPU quantizes activations to 8 bits for
//! every product; a GPU may dequantize weights and multiply in f32 or f16), so logits are
//! never bit-identical. What must hold is that the differences stay small next to the spread
//! of the logits, and that the chosen token is the same wherever the reference's choice is
//! clear. [`Agreement::acceptable`] states those tolerances.

use candle_core::Tensor;

use super::{Error, KvCache, Logits, Model};

/// Largest difference allowed, as a fraction of the reference logits' standard deviation.
pub const MAX_RELATIVE_DIFF: f64 = 0.1;
/// A position's top-1 is "clear" when it leads the runner-up by this fraction of the
/// standard deviation; at clear positions both runs must choose the same token.
pub const CLEAR_MARGIN: f64 = 0.1;

/// Differences between reference logits and another run's, over every position.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Agreement {
    /// Positions compared.
    pub positions: usize,
    /// Largest |a − b| over every logit.
    pub max_abs_diff: f64,
    /// Mean |a − b|.
    pub mean_abs_diff: f64,
    /// Standard deviation of the reference logits, the scale the differences are judged by.
    pub reference_std: f64,
    /// `max_abs_diff / reference_std`.
    pub max_relative_diff: f64,
    /// Positions where both runs' top-1 tokens are the same.
    pub top1_same: usize,
    /// Positions whose reference top-1 leads by [`CLEAR_MARGIN`] or more.
    pub clear_positions: usize,
    /// Clear positions where both runs' top-1 tokens are the same.
    pub clear_top1_same: usize,
}

impl Agreement {
    /// Compares `other` with `reference`, both row-major `[positions, width]`.
    pub fn compare(reference: &[f32], other: &[f32], width: usize) -> Self {
        assert_eq!(reference.len(), other.len(), "logit tables of different sizes");
        let width = width.max(1);
        let n = reference.len().max(1) as f64;
        let mean = reference.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = reference.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let reference_std = var.sqrt();
        let (mut max_abs_diff, mut sum_abs) = (0f64, 0f64);
        for (&a, &b) in reference.iter().zip(other) {
            let d = (a as f64 - b as f64).abs();
            // NaN anywhere is the worst disagreement there is.
            max_abs_diff = if d.is_nan() { f64::INFINITY } else { max_abs_diff.max(d) };
            sum_abs += d;
        }
        let (mut top1_same, mut clear_positions, mut clear_top1_same) = (0, 0, 0);
        for (ra, rb) in reference.chunks_exact(width).zip(other.chunks_exact(width)) {
            let (best, lead) = top1_and_lead(ra);
            let same = best == top1_and_lead(rb).0;
            top1_same += usize::from(same);
            if lead >= CLEAR_MARGIN * reference_std {
                clear_positions += 1;
                clear_top1_same += usize::from(same);
            }
        }
        Self {
            positions: reference.len() / width,
            max_abs_diff,
            mean_abs_diff: sum_abs / n,
            reference_std,
            max_relative_diff: if reference_std > 0.0 { max_abs_diff / reference_std } else { max_abs_diff },
            top1_same,
            clear_positions,
            clear_top1_same,
        }
    }

    /// Within [`MAX_RELATIVE_DIFF`], and the same choice at every clear position.
    pub fn acceptable(&self) -> bool {
        self.max_relative_diff <= MAX_RELATIVE_DIFF && self.clear_top1_same == self.clear_positions
    }
}

/// The index of the largest value and how far it leads the second largest.
fn top1_and_lead(row: &[f32]) -> (usize, f64) {
    let (mut best, mut first, mut second) = (0, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for (i, &v) in row.iter().enumerate() {
        let v = v as f64;
        if v > first {
            (second, first, best) = (first, v, i);
        } else if v > second {
            second = v;
        }
    }
    (best, first - second)
}

/// Every position's logits for `ids` fed at once from an empty cache, as f32 `[len, width]`.
pub fn teacher_forced(model: &Model, ids: &[u32]) -> Result<Vec<f32>, Error> {
    let mut cache: KvCache = model.new_cache();
    let logits: Tensor = model.forward(ids, &mut cache, Logits::All)?;
    Ok(logits.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_logits_agree_exactly() {
        let a = [1.0, 3.0, 2.0, 0.5, 0.1, 0.2];
        let g = Agreement::compare(&a, &a, 3);
        assert_eq!((g.positions, g.max_abs_diff, g.top1_same), (2, 0.0, 2));
        assert!(g.acceptable());
    }

    #[test]
    fn a_changed_clear_choice_or_a_large_difference_is_refused() {
        let reference = [0.0, 4.0, 0.0, 1.0, 0.0, 0.0];
        // Position 0's clear top-1 (index 1) moves to index 2.
        let flipped = [0.0, 4.0, 4.5, 1.0, 0.0, 0.0];
        let g = Agreement::compare(&reference, &flipped, 3);
        assert_eq!((g.clear_positions, g.clear_top1_same), (2, 1));
        assert!(!g.acceptable());
        // Same choices, but one logit off by a whole standard deviation.
        let shifted = [0.0, 4.0, 0.0, 1.0, -1.5, 0.0];
        let g = Agreement::compare(&reference, &shifted, 3);
        assert_eq!(g.clear_top1_same, g.clear_positions);
        assert!(g.max_relative_diff > MAX_RELATIVE_DIFF && !g.acceptable(), "{g:?}");
        // A small difference that keeps every choice passes.
        let close = [0.01, 4.02, 0.0, 1.0, 0.0, -0.01];
        assert!(Agreement::compare(&reference, &close, 3).acceptable());
    }

    #[test]
    fn a_near_tie_may_flip_without_failing() {
        // Indexes 0 and 1 are tied within 0.01: not a clear position.
        let reference = [2.0, 1.99, -3.0, 0.0];
        let other = [1.99, 2.0, -3.0, 0.0];
        let g = Agreement::compare(&reference, &other, 4);
        assert_eq!((g.top1_same, g.clear_positions), (0, 0));
        assert!(g.acceptable(), "{g:?}");
    }

    #[test]
    fn nan_is_never_acceptable() {
        let g = Agreement::compare(&[1.0, 2.0], &[1.0, f32::NAN], 2);
        assert!(g.max_abs_diff.is_infinite() && !g.acceptable());
    }
}
