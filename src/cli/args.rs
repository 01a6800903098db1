//! Argument groups shared by several subcommands.

use clap::Args;
use pae_local::decode::SamplingParams;
use pae_local::model::DeviceChoice;

/// Which model, where, and with what context.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model: a GGUF path, a name from models/manifest.json, hf:OWNER/REPO/FILE.gguf, or
    /// synthetic:ARCH:SIZE:QUANT[:SEED] (random weights, a real model's shapes)
    /// [default: the manifest's default model]
    #[arg(long, short = 'm', global = true, value_name = "MODEL")]
    pub model: Option<String>,
    /// Device to run on.
    #[arg(long, global = true, default_value = "auto", value_name = "auto|cpu|cuda[:N]")]
    pub device: DeviceChoice,
    /// CPU threads for the matmuls [default: physical cores].
    #[arg(long, short = 't', global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Context length in tokens [default: the model's trained length].
    #[arg(long, short = 'c', global = true, value_name = "N")]
    pub ctx: Option<usize>,
    /// No progress bar.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

/// Sampling flags in llama.cpp's spelling.
#[derive(Debug, Clone, Args)]
pub struct SamplingArgs {
    /// Temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 0.8, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Top-p (1.0 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p (0.0 = off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty over the last 64 tokens (1.0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed.
    #[arg(long, short = 's', default_value_t = 0)]
    pub seed: u64,
    /// Always take the most likely token (same as --temp 0).
    #[arg(long)]
    pub greedy: bool,
}

impl SamplingArgs {
    pub fn to_params(&self) -> anyhow::Result<SamplingParams> {
        anyhow::ensure!(self.temperature >= 0.0, "--temp must be at least 0, got {}", self.temperature);
        anyhow::ensure!((0.0..=1.0).contains(&self.top_p), "--top-p must be between 0 and 1, got {}", self.top_p);
        anyhow::ensure!((0.0..=1.0).contains(&self.min_p), "--min-p must be between 0 and 1, got {}", self.min_p);
        anyhow::ensure!(self.repeat_penalty > 0.0, "--repeat-penalty must be positive, got {}", self.repeat_penalty);
        Ok(SamplingParams {
            temperature: if self.greedy { 0.0 } else { self.temperature },
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: 64,
            seed: self.seed,
        })
    }
}
