//! How long the grammar mask takes, step by step, along an output the grammar produced.
//!
//! A mask's cost depends on the grammar state (inside a JSON string, at a choice of tool
//! names, …), so it is timed along real outputs: the output is replayed through a fresh
//! constraint, timing every [`Constraint::apply_mask`](super::Constraint::apply_mask) the
//! decoder would call. That is a distribution of single calls over a trajectory, which a
//! harness that repeats one identical call (criterion) does not give.

use std::time::{Duration, Instant};

use super::{Engine, Error, Grammar};

/// Times every mask the decoder computes along `tokens`, an output of `grammar` (forced
/// tokens are skipped, as the decoder skips them). Fails when `tokens` leaves the grammar.
pub fn replay_masks(engine: &Engine, grammar: &Grammar, tokens: &[u32]) -> Result<Vec<Duration>, Error> {
    let mut c = engine.grammars()?.compile(grammar)?;
    let mut logits = vec![0f32; engine.model().logits_width()];
    let mut times = Vec::with_capacity(tokens.len());
    let mut pos = 0;
    loop {
        let forced = c.forced_tokens()?;
        if !forced.is_empty() {
            if tokens.get(pos..pos + forced.len()) != Some(&forced[..]) {
                return Err(Error::Grammar(format!("the replayed output leaves the grammar at token {pos}")));
            }
            pos += forced.len();
            if c.is_stopped() {
                return Ok(times);
            }
            continue;
        }
        if c.is_stopped() {
            return Ok(times);
        }
        logits.fill(0.0);
        let t = Instant::now();
        c.apply_mask(&mut logits)?;
        times.push(t.elapsed());
        // The output ended here (an end-of-turn token was sampled, or the budget ran out).
        let Some(&tok) = tokens.get(pos) else { return Ok(times) };
        c.commit(tok)?;
        pos += 1;
    }
}

/// The `p` quantile (0–1, nearest rank) of `sorted`, in microseconds; 0 when empty.
pub fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_ranks() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile_us(&d, 0.5), 51.0);
        assert_eq!(percentile_us(&d, 0.99), 99.0);
        assert_eq!(percentile_us(&d, 1.0), 100.0);
        assert_eq!(percentile_us(&[], 0.5), 0.0);
    }
}
