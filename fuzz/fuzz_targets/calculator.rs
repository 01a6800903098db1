//! The calculator's parser and exact arithmetic on arbitrary text: errors, never panics,
//! and never long work (sizes are checked before powers are computed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pae_local::agent::tools::{evaluate, format_number};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(v) = evaluate(&text) {
        let _ = format_number(&v);
    }
});
