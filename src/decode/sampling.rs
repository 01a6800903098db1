//! Logits → token: llama.cpp's sampler chain, seeded.
//!
//! Order, as llama.cpp's default chain: repetition penalty → top-k → top-p → min-p →
//! temperature → draw. Top-p and min-p look at probabilities before temperature, as there.
//! Tokens a grammar forbids arrive as `-inf` and can never be drawn.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Sampling settings. `temperature <= 0` means greedy (argmax).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Above 1 flattens the distribution, below 1 sharpens it; 0 or less is greedy.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p`; 1.0 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the top token's probability; 0 keeps all.
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recently seen tokens; 1.0 is off.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    /// Seed of the random draws: the same seed gives the same tokens.
    pub seed: u64,
}

impl Default for SamplingParams {
    /// llama.cpp's defaults.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Always the most likely token.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Whether sampling always takes the most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// The `k`-th of several samples drawn with these settings: seed `seed + k`, and for
    /// `k > 0` a greedy sampler gets `temperature`, since greedy samples would all be alike.
    pub fn nth_sample(&self, k: usize, temperature: f32) -> Self {
        let mut s = self.clone();
        s.seed = s.seed.wrapping_add(k as u64);
        if k > 0 && s.is_greedy() {
            s.temperature = temperature;
        }
        s
    }
}

/// A seeded sampler: the same seed, logits and history give the same tokens.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
}

impl Sampler {
    /// A sampler with `params`, its random state seeded from `params.seed`.
    pub fn new(params: SamplingParams) -> Self {
        let rng = StdRng::seed_from_u64(params.seed);
        Self { params, rng }
    }

    /// The settings it samples with.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks a token from `logits` (modified in place by the penalty). `history` holds the
    /// tokens so far, for the repetition penalty. Returns `None` when every token is masked.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> Option<u32> {
        let p = &self.params;
        if p.repeat_penalty != 1.0 && p.repeat_last_n > 0 {
            let start = history.len().saturating_sub(p.repeat_last_n);
            let mut seen = history[start..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 { *l / p.repeat_penalty } else { *l * p.repeat_penalty };
                }
            }
        }
        if p.is_greedy() {
            return argmax(logits);
        }
        // Candidates sorted by logit, best first.
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if cand.is_empty() {
            return None;
        }
        let k = if p.top_k == 0 { cand.len() } else { p.top_k.min(cand.len()) };
        if k < cand.len() {
            cand.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
            cand.truncate(k);
        }
        cand.sort_by(|a, b| b.1.total_cmp(&a.1));
        let probs = softmax(cand.iter().map(|c| c.1), 1.0);
        if p.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = cand.len();
            for (i, pr) in probs.iter().enumerate() {
                acc += pr;
                if acc >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep.max(1));
        }
        if p.min_p > 0.0 {
            let floor = probs[0] * p.min_p;
            let keep = probs.iter().take(cand.len()).take_while(|&&pr| pr >= floor).count();
            cand.truncate(keep.max(1));
        }
        let probs = softmax(cand.iter().map(|c| c.1), p.temperature);
        let r: f32 = self.rng.random();
        let mut acc = 0.0;
        for (c, pr) in cand.iter().zip(&probs) {
            acc += pr;
            if r < acc {
                return Some(c.0);
            }
        }
        cand.last().map(|c| c.0)
    }
}

/// Index of the largest finite logit, lowest index on ties.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_finite() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

fn softmax(logits: impl Iterator<Item = f32> + Clone, temperature: f32) -> Vec<f32> {
    let max = logits.clone().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.map(|l| ((l - max) / temperature).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_k: usize, top_p: f32, min_p: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            min_p,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 42,
        }
    }

    fn draws(p: SamplingParams, logits: &[f32], n: usize) -> Vec<u32> {
        let mut s = Sampler::new(p);
        (0..n).map(|_| s.sample(&mut logits.to_vec(), &[]).unwrap()).collect()
    }

    #[test]
    fn greedy_takes_the_argmax() {
        assert_eq!(draws(SamplingParams::greedy(), &[0.1, 0.9, 0.3, 0.2], 3), vec![1, 1, 1]);
    }

    #[test]
    fn same_seed_same_draws() {
        let l = [1.0, 1.1, 0.9, 1.05];
        assert_eq!(draws(params(1.0, 0, 1.0, 0.0), &l, 20), draws(params(1.0, 0, 1.0, 0.0), &l, 20));
    }

    #[test]
    fn top_k_one_is_greedy() {
        assert!(draws(params(1.5, 1, 1.0, 0.0), &[0.1, 0.9, 0.3, 0.2], 50).iter().all(|&t| t == 1));
    }

    #[test]
    fn top_p_drops_the_tail() {
        // p = softmax([3, 2, 0, -5]) ≈ [0.70, 0.26, 0.035, 0.0002]; top-p 0.9 keeps two.
        let seen = draws(params(1.0, 0, 0.9, 0.0), &[3.0, 2.0, 0.0, -5.0], 300);
        assert!(seen.iter().all(|&t| t < 2), "{seen:?}");
        assert!(seen.contains(&0) && seen.contains(&1));
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        let seen = draws(params(1.0, 0, 1.0, 0.2), &[3.0, 2.5, 0.0, -5.0], 300);
        assert!(seen.iter().all(|&t| t < 2), "{seen:?}");
    }

    #[test]
    fn masked_tokens_are_never_drawn() {
        let l = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.1];
        let seen = draws(params(1.5, 0, 1.0, 0.0), &l, 200);
        assert!(seen.iter().all(|&t| t == 1 || t == 3));
        let mut all_masked = [f32::NEG_INFINITY; 3];
        assert_eq!(Sampler::new(SamplingParams::greedy()).sample(&mut all_masked, &[]), None);
    }

    #[test]
    fn repeat_penalty_discourages_recent_tokens() {
        let mut s = Sampler::new(SamplingParams {
            repeat_penalty: 2.0,
            ..SamplingParams::greedy()
        });
        assert_eq!(s.sample(&mut [1.0, 0.8, 0.0], &[0]), Some(1));
    }
}
