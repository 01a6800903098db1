//! Chat templates as a GGUF file may carry them: arbitrary template text, compiled and
//! rendered on a short conversation. Errors are fine; panics, hangs and blow-ups are not
//! (fuel and the output cap bound every render).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pae_local::model::{ChatTemplate, Message, TemplateSource};

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let Ok(t) = ChatTemplate::new(&source, TemplateSource::Gguf, "<s>", "</s>") else { return };
    let messages = [
        Message::new("system", "Be brief."),
        Message::new("user", "What is 2 + 3?"),
        Message::new("assistant", "5"),
        Message::new("user", "And 4 * 4?"),
    ];
    let _ = t.render(&messages, true);
});
