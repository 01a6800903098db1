//! Shared helpers: model paths, the llama.cpp reference data, temp dirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use pae_local::model::{LoadOptions, Model};
use serde::Deserialize;

pub const SMOLLM: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A real model file; fetched by `models/fetch.sh all` (CI does this first).
pub fn model_path(file: &str) -> PathBuf {
    let p = repo().join("models").join(file);
    assert!(
        p.is_file(),
        "{} is missing: run `models/fetch.sh all` before the tests",
        p.display()
    );
    p
}

/// Real models are loaded once per test binary and shared.
/// Loaded models by file name.
type Loaded = Mutex<Vec<(String, Arc<Model>)>>;

pub fn model(file: &str) -> Arc<Model> {
    static CACHE: OnceLock<Loaded> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, m)) = guard.iter().find(|(f, _)| f == file) {
        return m.clone();
    }
    pae_local::model::threads::configure(None);
    let m = Arc::new(Model::load(&model_path(file), LoadOptions::default()).expect("model loads"));
    guard.push((file.to_string(), m.clone()));
    m
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    pub model_file: String,
    pub tokenize: Vec<TokenizeCase>,
    pub greedy: Vec<GreedyCase>,
}

#[derive(Debug, Deserialize)]
pub struct TokenizeCase {
    pub text: String,
    pub add_bos: bool,
    pub parse_special: bool,
    pub ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct GreedyCase {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
pub struct Step {
    pub top_ids: Vec<u32>,
    pub top_logits: Vec<f32>,
}

/// llama.cpp's reference data for a model (`../shared/reference`, or `$PAE_REFERENCE_DIR`).
pub fn reference(name: &str) -> Reference {
    let dir = std::env::var_os("PAE_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("tests/reference"));
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference parses")
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[allow(dead_code)]
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

/// A replay file (`pae-local run --replay FILE`) at `dir/name`: one `llm_call` event per
/// `(purpose, output)` model call, in order, so a run's models are scripted.
pub fn replay_file(dir: &Path, name: &str, calls: &[(&str, &str)]) -> PathBuf {
    let text: String = calls
        .iter()
        .map(|(purpose, output)| serde_json::json!({"event": "llm_call", "purpose": purpose, "output": output}).to_string() + "\n")
        .collect();
    write(dir, name, text.as_bytes())
}
