//! Output: stdout for results, stderr for errors and progress.

use std::io::Write;

/// Writes `text` to stdout and flushes (streamed tokens must show at once).
pub fn out(text: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// Writes a line to stdout.
pub fn line(text: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{text}")
}

/// Prints a JSON value on one line.
pub fn json(value: &serde_json::Value) -> std::io::Result<()> {
    line(&serde_json::to_string(value).unwrap_or_default())
}

/// Prints an error and its causes on one line.
pub fn error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

/// A closed stdout (`pae-local … | head`) is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
