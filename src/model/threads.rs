//! How many CPU threads the matmuls use.
//!
//! candle sizes its thread pools from `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS`, read when
//! the pools start, and while neither is set it re-derives the count from `/proc/cpuinfo` on
//! every float matmul (4.5% of decode time measured). [`configure`] settles the count once.

/// Sets the thread count for candle's pools: `threads` if given, else whatever the
/// environment already says, else candle's own default (the physical cores). Call it before
/// loading a model, from the main thread, before other threads start: it writes environment
/// variables.
pub fn configure(threads: Option<usize>) -> usize {
    let n = match threads {
        Some(n) => n.max(1),
        None => match std::env::var("CANDLE_NUM_THREADS").ok().and_then(|s| s.parse().ok()) {
            Some(n) if n > 0 => n,
            _ => candle_core::utils::get_num_threads(),
        },
    };
    let s = n.to_string();
    // SAFETY (edition 2021: safe call): documented above to run before other threads exist.
    std::env::set_var("CANDLE_NUM_THREADS", &s);
    std::env::set_var("RAYON_NUM_THREADS", &s);
    n
}
