//! What several targets share: the default model's tokenizer, loaded once.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use pae_local::model::{GgufHeader, Tokenizer};

/// The default model (run `models/fetch.sh` first), or `PAE_FUZZ_MODEL`.
pub fn model_path() -> PathBuf {
    std::env::var_os("PAE_FUZZ_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

pub fn header() -> &'static GgufHeader {
    static H: OnceLock<GgufHeader> = OnceLock::new();
    H.get_or_init(|| GgufHeader::read_path(&model_path()).expect("the default model: run models/fetch.sh"))
}

pub fn tokenizer() -> Arc<Tokenizer> {
    static T: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    T.get_or_init(|| Arc::new(Tokenizer::from_gguf(header()).expect("the default model's tokenizer"))).clone()
}
