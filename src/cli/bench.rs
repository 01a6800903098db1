//! `pae-local bench`: prompt-processing and generation throughput, in llama-bench's terms, so
//! the two can be run side by side on the same file.

use std::time::Instant;

use candle_core::{Device, DeviceLocation};
use clap::Args;
use pae_local::model::agreement::{self, Agreement};
use pae_local::model::{Logits, Model};

use super::args::ModelArgs;
use super::load::{load_model, SYNTHETIC};
use super::printer;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Models to compare [default: --model, or the default model].
    models: Vec<String>,
    /// Prompt tokens for the prompt-processing test (0 skips it).
    #[arg(long = "n-prompt", short = 'p', default_value_t = 512)]
    n_prompt: usize,
    /// Tokens for the generation test (0 skips it).
    #[arg(long = "n-gen", short = 'n', default_value_t = 128)]
    n_gen: usize,
    /// Timed repetitions of each test (after one warm-up).
    #[arg(long, short = 'r', default_value_t = 5)]
    repetitions: usize,
    /// Largest number of prompt tokens per forward pass.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Print one JSON array (llama-bench's `-o json` fields where they apply).
    #[arg(long)]
    json: bool,
    /// Also benchmark a random-weight model with a real model's shapes, made in memory:
    /// ARCH:SIZE:QUANT[:SEED], for example qwen2:7b:q4_k or qwen3:0.6b:q4_k (repeatable).
    #[arg(long, value_name = "ARCH:SIZE:QUANT")]
    synthetic: Vec<String>,
    /// Also run each model's weights on the CPU and compare the logits of N teacher-forced
    /// tokens with those on --device; fails when they disagree beyond the stated tolerance.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "64")]
    vs_cpu: Option<usize>,
}

/// One test of one model: its tokens/s over the timed repetitions.
struct Measurement {
    model: String,
    /// Where the model ran, as `--device` spells it (`cpu`, `cuda:0`).
    device: String,
    size: u64,
    params: u64,
    test: String,
    n_prompt: usize,
    n_gen: usize,
    samples: Vec<f64>,
}

/// One model's logits on its device against the same weights on the CPU.
struct VsCpu {
    model: String,
    device: String,
    agreement: Agreement,
}

impl Measurement {
    fn mean(&self) -> f64 {
        self.samples.iter().sum::<f64>() / self.samples.len() as f64
    }

    fn stddev(&self) -> f64 {
        let n = self.samples.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        (self.samples.iter().map(|s| (s - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    }
}

/// A device as `--device` names it, so that the table says where each model really ran
/// (`--device auto` picks CUDA when it can).
fn device_label(device: &Device) -> String {
    match device.location() {
        DeviceLocation::Cpu => "cpu".into(),
        DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Deterministic prompt ids spread over the ordinary vocabulary (llama-bench uses random ones).
fn prompt_ids(m: &Model, n: usize) -> Vec<u32> {
    let tok = m.tokenizer();
    let vocab = tok.vocab_size() as u64;
    let mut ids = Vec::with_capacity(n);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while ids.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let id = (x % vocab) as u32;
        if tok.kind(id) == pae_local::model::TokenKind::Normal {
            ids.push(id);
        }
    }
    ids
}

fn run_pp(m: &Model, ids: &[u32], batch: usize) -> anyhow::Result<f64> {
    let mut cache = m.new_cache();
    let t = Instant::now();
    for chunk in ids.chunks(batch.max(1)) {
        m.forward(chunk, &mut cache, Logits::Last)?;
    }
    Ok(ids.len() as f64 / t.elapsed().as_secs_f64())
}

fn run_tg(m: &Model, n: usize, first: u32) -> anyhow::Result<f64> {
    let mut cache = m.new_cache();
    let mut tok = first;
    let t = Instant::now();
    for _ in 0..n {
        let logits = m.forward(&[tok], &mut cache, Logits::Last)?.squeeze(0)?.to_vec1::<f32>()?;
        // Greedy, and never an end token, so every step is a full decode step.
        tok = pae_local::decode::sampling::argmax(&logits).unwrap_or(first);
        if m.end_tokens().contains(&tok) {
            tok = first;
        }
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// One test to run on each model: llama-bench's `ppN` (prompt processing) or `tgN` (generation).
struct Test {
    name: String,
    n_prompt: usize,
    n_gen: usize,
}

/// The tests the arguments ask for, prompt processing first (a size of 0 skips a test).
fn tests(args: &BenchArgs) -> Vec<Test> {
    let mut tests = Vec::new();
    if args.n_prompt > 0 {
        tests.push(Test {
            name: format!("pp{}", args.n_prompt),
            n_prompt: args.n_prompt,
            n_gen: 0,
        });
    }
    if args.n_gen > 0 {
        tests.push(Test {
            name: format!("tg{}", args.n_gen),
            n_prompt: 0,
            n_gen: args.n_gen,
        });
    }
    tests
}

/// The models to measure: those named, then the synthetic ones; the default model when
/// neither is given.
fn model_specs(margs: &ModelArgs, args: &BenchArgs) -> Vec<Option<String>> {
    let mut specs: Vec<Option<String>> = args.models.iter().cloned().map(Some).collect();
    specs.extend(args.synthetic.iter().map(|s| Some(format!("{SYNTHETIC}{s}"))));
    if specs.is_empty() {
        specs.push(margs.model.clone());
    }
    specs
}

/// Loads each model in turn and measures every test on it; with `progress`, each result goes
/// to stderr as soon as it is known, since a whole run can take minutes.
fn measure_all(margs: &ModelArgs, args: &BenchArgs, progress: bool) -> anyhow::Result<(Vec<Measurement>, Vec<VsCpu>)> {
    let mut results = Vec::new();
    let mut checks = Vec::new();
    for spec in model_specs(margs, args) {
        let model = load_model(margs, spec.as_deref())?;
        for test in tests(args) {
            let r = measure(&model, test, args)?;
            if progress {
                eprintln!("{} {}: {:.2} ± {:.2} tokens/s", r.model, r.test, r.mean(), r.stddev());
            }
            results.push(r);
        }
        if let Some(n) = args.vs_cpu {
            let check = compare_with_cpu(margs, spec.as_deref(), &model, n)?;
            if progress {
                eprintln!("{} logits vs cpu: {}", check.model, describe(&check.agreement));
            }
            checks.push(check);
        }
    }
    Ok((results, checks))
}

/// Loads `spec` again on the CPU and compares the logits of `n` teacher-forced tokens.
fn compare_with_cpu(margs: &ModelArgs, spec: Option<&str>, model: &Model, n: usize) -> anyhow::Result<VsCpu> {
    anyhow::ensure!(n > 0, "--vs-cpu needs at least one token");
    let on_cpu = ModelArgs {
        device: pae_local::model::DeviceChoice::Cpu,
        ..margs.clone()
    };
    let cpu = load_model(&on_cpu, spec)?;
    let ids = prompt_ids(model, n.min(model.context_length()));
    let reference = agreement::teacher_forced(&cpu, &ids)?;
    let other = agreement::teacher_forced(model, &ids)?;
    Ok(VsCpu {
        model: model_name(model),
        device: device_label(model.device()),
        agreement: Agreement::compare(&reference, &other, model.logits_width()),
    })
}

/// One line for a person: the differences and the verdict.
fn describe(a: &Agreement) -> String {
    format!(
        "max |Δ| {:.4} ({:.2}% of σ {:.3}), mean |Δ| {:.5}; top-1 same at {}/{} positions, {}/{} clear ones: {}",
        a.max_abs_diff,
        100.0 * a.max_relative_diff,
        a.reference_std,
        a.mean_abs_diff,
        a.top1_same,
        a.positions,
        a.clear_top1_same,
        a.clear_positions,
        if a.acceptable() { "agree" } else { "DISAGREE" }
    )
}

/// The name a model goes by in results: its file name, or `synthetic:SPEC`.
fn model_name(model: &Model) -> String {
    model
        .path()
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs one test on `model`: one untimed warm-up, then the timed repetitions.
fn measure(model: &Model, test: Test, args: &BenchArgs) -> anyhow::Result<Measurement> {
    let ids = prompt_ids(model, test.n_prompt.max(1));
    let once = |m: &Model| -> anyhow::Result<f64> {
        if test.n_prompt > 0 {
            run_pp(m, &ids, args.batch)
        } else {
            run_tg(m, test.n_gen, ids[0])
        }
    };
    once(model)?; // warm-up
    let mut samples = Vec::with_capacity(args.repetitions);
    for _ in 0..args.repetitions {
        samples.push(once(model)?);
    }
    let info = model.info();
    Ok(Measurement {
        model: model_name(model),
        device: device_label(model.device()),
        size: info.file_size,
        params: info.n_params,
        test: test.name,
        n_prompt: test.n_prompt,
        n_gen: test.n_gen,
        samples,
    })
}

/// Prints the results as llama-bench's `-o json` does (the fields that apply), so scripts
/// written for it can read ours.
fn print_json(results: &[Measurement], checks: &[VsCpu], threads: usize, batch: usize) -> anyhow::Result<()> {
    let mut rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "model_filename": r.model,
                "device": r.device,
                "model_size": r.size,
                "model_n_params": r.params,
                "n_threads": threads,
                "n_prompt": r.n_prompt,
                "n_gen": r.n_gen,
                "n_batch": batch,
                "avg_ts": r.mean(),
                "stddev_ts": r.stddev(),
                "samples_ts": r.samples,
            })
        })
        .collect();
    // Agreement rows carry no timing fields, so scripts reading llama-bench rows skip them.
    rows.extend(checks.iter().map(|c| {
        serde_json::json!({
            "model_filename": c.model,
            "device": c.device,
            "test": "logits_vs_cpu",
            "agree": c.agreement.acceptable(),
            "agreement": c.agreement,
        })
    }));
    printer::line(&serde_json::to_string_pretty(&rows)?)?;
    Ok(())
}

/// Prints the results as llama-bench's markdown table, so the two can be compared side by side.
fn print_table(results: &[Measurement], threads: usize) -> anyhow::Result<()> {
    printer::line("| model | size | params | backend | threads | test | t/s |")?;
    printer::line("| --- | ---: | ---: | --- | ---: | ---: | ---: |")?;
    for r in results {
        printer::line(&format!(
            "| {} | {:.2} MiB | {:.2} M | {} | {} | {} | {:.2} ± {:.2} |",
            r.model,
            r.size as f64 / (1024.0 * 1024.0),
            r.params as f64 / 1e6,
            r.device,
            threads,
            r.test,
            r.mean(),
            r.stddev()
        ))?;
    }
    Ok(())
}

pub fn run(margs: &ModelArgs, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.repetitions > 0, "--repetitions must be at least 1");
    // Before any model loads: the pools read the count when they start.
    let threads = pae_local::model::threads::configure(margs.threads);
    let (results, checks) = measure_all(margs, &args, !args.json && !margs.quiet)?;
    if args.json {
        print_json(&results, &checks, threads, args.batch)?;
    } else {
        print_table(&results, threads)?;
        for c in &checks {
            printer::line(&format!("{} on {} vs cpu: {}", c.model, c.device, describe(&c.agreement)))?;
        }
    }
    let disagree: Vec<&str> = checks.iter().filter(|c| !c.agreement.acceptable()).map(|c| c.model.as_str()).collect();
    anyhow::ensure!(
        disagree.is_empty(),
        "logits on the device and on the CPU disagree beyond tolerance (max |Δ| ≤ {}·σ, the same clear top-1) for: {}",
        agreement::MAX_RELATIVE_DIFF,
        disagree.join(", ")
    );
    Ok(())
}
