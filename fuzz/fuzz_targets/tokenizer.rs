//! The default model's tokenizer on arbitrary text: encoding never fails or panics, and
//! decoding what was encoded gives the text back (control characters aside). Arbitrary ids decode without panicking.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tok = common::tokenizer();
    let text = String::from_utf8_lossy(data);
    let ids = tok.encode(&text, false, false).expect("encoding any text succeeds");
    // Control characters whose byte has no token in the vocabulary are dropped, as
    // llama.cpp drops them; all other text comes back exactly.
    if !text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        assert_eq!(tok.decode(&ids, true), text, "decode(encode(text)) == text");
    }
    let _ = tok.encode(&text, true, true);
    let n = tok.vocab_size() as u32 + 8;
    let ids: Vec<u32> = data.chunks(4).map(|c| c.iter().fold(0u32, |a, &b| a << 8 | b as u32) % n).collect();
    let _ = tok.decode(&ids, true);
    let _ = tok.decode(&ids, false);
});
