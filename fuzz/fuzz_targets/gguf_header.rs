//! The GGUF header and metadata reader on arbitrary bytes, then everything built from a
//! header: model info, hyper-parameters, tokenizer, chat template.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pae_local::model::{GgufHeader, ModelConfig, ModelInfo, Tokenizer};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = GgufHeader::read(std::io::Cursor::new(data), data.len() as u64) else { return };
    let _ = ModelInfo::from_header(&h);
    let _ = ModelConfig::from_gguf(&h);
    if let Ok(tok) = Tokenizer::from_gguf(&h) {
        let _ = tok.encode("Hello, world! 123", true, true);
    }
});
