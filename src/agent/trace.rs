//! `--trace FILE.jsonl`: one JSON object per event, written and flushed as it happens, so a
//! run killed at any point leaves a valid file up to its last event.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use super::events::{Event, Observer};

/// Writes events to a JSONL file.
pub struct TraceWriter {
    out: Mutex<BufWriter<File>>,
    start: Instant,
}

impl TraceWriter {
    /// Creates (or truncates) the file at `path`; event times are seconds from now.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            out: Mutex::new(BufWriter::new(File::create(path)?)),
            start: Instant::now(),
        })
    }
}

impl Observer for TraceWriter {
    fn on_event(&self, event: &Event) {
        if matches!(event, Event::Text { .. }) {
            return;
        }
        let mut value = serde_json::to_value(event).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("t".into(), serde_json::json!(self.start.elapsed().as_secs_f64()));
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A trace that cannot be written must not stop the run; the write error surfaces on
        // the next event or at exit through the OS.
        let _ = serde_json::to_writer(&mut *out, &value);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
}
