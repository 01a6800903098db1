//! A request to stop a run early, from outside it (Ctrl-C in the CLI, a host program's
//! cancel button). The run stops at its next safe point: before a model call or a step, or
//! during a tool call. A model call already generating finishes first (it is bounded by its
//! token limit); the run then ends with status `interrupted`, a `run_end` event and the best
//! answer so far.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Shared by whoever asks for the stop and the runs that honour it. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks runs holding this handle to stop. Returns whether it had already been asked.
    pub fn trigger(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }

    /// Whether a stop has been asked for (and not reset since).
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears the request, for the next run (an interactive session goes on).
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// Resolves once triggered: raced against tool calls, which may take long.
    pub async fn triggered(&self) {
        while !self.is_triggered() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
