//! Bounds on template rendering. Chat templates come inside model files and agent templates
//! from `--templates` folders: both are untrusted programs. minijinja bounds what it can
//! (ranges, string repetition); fuel bounds the work, and a capped writer bounds the output,
//! so a template with nested loops fails with an error instead of growing to gigabytes.

use std::io;

use minijinja::{Environment, Template};
use serde::Serialize;

/// minijinja instructions one render may run. Real templates use a few thousand per message;
/// two nested `range(100000)` loops would use 10^10.
pub const FUEL: u64 = 20_000_000;

/// Gives `env` the fuel limit.
pub fn limit(env: &mut Environment<'_>) {
    env.set_fuel(Some(FUEL));
}

/// Renders `tmpl` with `ctx` into at most `max_bytes` of text.
pub fn render<S: Serialize>(tmpl: &Template<'_, '_>, ctx: S, max_bytes: usize) -> Result<String, minijinja::Error> {
    let mut w = Capped {
        buf: Vec::new(),
        max: max_bytes,
        over: false,
    };
    let result = tmpl.render_captured_to(ctx, &mut w).map(|_| ());
    if w.over {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("the output passed {max_bytes} bytes"),
        ));
    }
    result?;
    // minijinja writes whole `str`s, and the writer keeps all or fails.
    String::from_utf8(w.buf)
        .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "the output is not UTF-8"))
}

struct Capped {
    buf: Vec<u8>,
    max: usize,
    over: bool,
}

impl io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() + b.len() > self.max {
            self.over = true;
            return Err(io::Error::other("template output too large"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
