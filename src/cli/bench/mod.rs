//! `pae-local bench`: prompt-processing and generation throughput, in llama-bench's terms, so
//! the two can be run side by side on the same file; with each model's load time and peak
//! memory, and optionally what an agent does with it: constrained decoding (`--grammar`) and
//! a whole task (`--agent`).

mod agent;
mod grammar;
mod peak_rss;

use std::time::{Duration, Instant};

use candle_core::{Device, DeviceLocation};
use clap::Args;
use pae_local::model::agreement::{self, Agreement};
use pae_local::model::{Logits, Model};

use super::args::ModelArgs;
use super::load::{load_model, SYNTHETIC};
use super::printer;
use grammar::{GrammarArg, GrammarRun};
use agent::AgentRun;

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
    /// Also measure constrained decoding: the planner's grammar (`plan`), the executor's
    /// (`executor`), both over the built-in tools, or a Lark grammar file; tokens/s against
    /// free decoding, and grammar mask µs p50/p99 (repeatable).
    #[arg(long, value_name = "plan|executor|FILE")]
    grammar: Vec<GrammarArg>,
    /// Also run a fixed built-in agent task (read a file, then compute): model calls, prompt
    /// tokens computed and reused, per-call latency.
    #[arg(long)]
    agent: bool,
}

/// What loading one model cost: time, and the process's peak resident memory from before the
/// load to the end of its throughput tests (what llama-bench's process holds), then to the end
/// of the grammar and agent tests too (grammar tables, sessions, tools).
#[derive(Clone, Copy)]
struct Footprint {
    load_secs: f64,
    peak_rss: Option<u64>,
    peak_rss_all: Option<u64>,
}

/// Everything measured on one model.
struct ModelResults {
    model: String,
    device: String,
    footprint: Footprint,
    grammars: Vec<GrammarRun>,
    agent: Option<AgentRun>,
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
    /// The model's load time and peak memory, known once all its tests ran.
    footprint: Option<Footprint>,
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

/// Everything one `bench` run measured.
#[derive(Default)]
struct Results {
    throughput: Vec<Measurement>,
    checks: Vec<VsCpu>,
    models: Vec<ModelResults>,
}

/// Loads each model in turn and measures every test on it; with `progress`, each result goes
/// to stderr as soon as it is known, since a whole run can take minutes.
fn measure_all(margs: &ModelArgs, args: &BenchArgs, progress: bool) -> anyhow::Result<Results> {
    let mut out = Results::default();
    // The built-in tools over a workspace holding the agent task's file: what the grammars
    // constrain to and what the task uses.
    let workspace = tempfile::tempdir()?;
    pae_local::agent::workload::write_workspace(workspace.path())?;
    let tools = || -> anyhow::Result<pae_local::agent::tools::Registry> {
        let settings = pae_local::agent::tools::BuiltinTools {
            workspace: Some(workspace.path().to_path_buf()),
            timeout: Duration::from_secs(10),
            ..Default::default()
        };
        Ok(pae_local::agent::tools::Registry::builtin(&settings)?)
    };
    let specs = tools()?.specs();
    for spec in model_specs(margs, args) {
        peak_rss::reset();
        let t = Instant::now();
        let model = load_model(margs, spec.as_deref())?;
        let load_secs = t.elapsed().as_secs_f64();
        let first_row = out.throughput.len();
        for test in tests(args) {
            let r = measure(&model, test, args)?;
            if progress {
                eprintln!("{} {}: {:.2} ± {:.2} tokens/s", r.model, r.test, r.mean(), r.stddev());
            }
            out.throughput.push(r);
        }
        let peak_rss = peak_rss::bytes();
        let engine = pae_local::decode::Engine::new(model.clone());
        let mut grammars = Vec::new();
        for g in &args.grammar {
            let r = grammar::measure(&engine, g, &specs, args.repetitions)?;
            if progress {
                eprintln!("{} {}: {}", model_name(&model), r.test, describe_grammar(&r));
            }
            grammars.push(r);
        }
        drop(engine);
        let agent = if args.agent {
            let r = agent::measure(&model, tools, args.repetitions)?;
            if progress {
                eprintln!("{} agent: {}", model_name(&model), describe_agent(&r));
            }
            Some(r)
        } else {
            None
        };
        // Before the CPU copy below, which is a second model.
        let footprint = Footprint {
            load_secs,
            peak_rss,
            peak_rss_all: if args.grammar.is_empty() && !args.agent { peak_rss } else { peak_rss::bytes() },
        };
        if progress {
            eprintln!("{} {}", model_name(&model), describe_footprint(&footprint));
        }
        for r in &mut out.throughput[first_row..] {
            r.footprint = Some(footprint);
        }
        out.models.push(ModelResults {
            model: model_name(&model),
            device: device_label(model.device()),
            footprint,
            grammars,
            agent,
        });
        if let Some(n) = args.vs_cpu {
            let check = compare_with_cpu(margs, spec.as_deref(), &model, n)?;
            if progress {
                eprintln!("{} logits vs cpu: {}", check.model, describe(&check.agreement));
            }
            out.checks.push(check);
        }
    }
    Ok(out)
}

/// Load time and peak memory, for a person.
fn describe_footprint(f: &Footprint) -> String {
    let mib = |b: Option<u64>| b.map_or("unknown".to_string(), |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)));
    let mut s = format!("loaded in {:.2} s; peak RSS {}", f.load_secs, mib(f.peak_rss));
    if f.peak_rss_all != f.peak_rss {
        s += &format!(" ({} with the grammar and agent tests)", mib(f.peak_rss_all));
    }
    s
}

/// One grammar's figures, for a person.
fn describe_grammar(r: &GrammarRun) -> String {
    format!(
        "{:.1} tokens/s constrained vs {:.1} free ({:.2}×); {:.0}% forced; mask p50 {:.0} µs, p99 {:.0} µs over {} masks",
        grammar::mean(&r.constrained),
        grammar::mean(&r.free),
        r.ratio(),
        100.0 * r.forced as f64 / r.tokens.max(1) as f64,
        r.mask_p50_us(),
        r.mask_p99_us(),
        r.masks.len()
    )
}

/// The agent task's figures, for a person.
fn describe_agent(r: &AgentRun) -> String {
    let prompt = r.prompt_tokens();
    let reused = r.reused_tokens();
    let latencies: Vec<String> = r.calls.iter().map(|c| format!("{:.2}", c.secs)).collect();
    format!(
        "{} in {:.2} s (mean of {}); {} model calls; prompt tokens {} computed + {} reused ({:.0}% from the 2nd call on); {} generated; call latency s: {}",
        serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        grammar::mean(&r.run_secs),
        r.run_secs.len(),
        r.calls.len(),
        prompt - reused,
        reused,
        100.0 * r.reuse_ratio,
        r.generated_tokens(),
        latencies.join(", ")
    )
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
        footprint: None,
    })
}

/// The footprint fields every row of a model carries: the peak after the throughput tests on
/// their rows, after everything on the grammar and agent rows.
fn footprint_json(f: Option<Footprint>, all: bool) -> serde_json::Value {
    serde_json::json!({
        "load_secs": f.map(|f| f.load_secs),
        "peak_rss_bytes": f.and_then(|f| if all { f.peak_rss_all } else { f.peak_rss }),
    })
}

/// Adds the fields of `extra` (an object) to `row` (an object).
fn merged(mut row: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(row), serde_json::Value::Object(extra)) = (row.as_object_mut(), extra) {
        row.extend(extra);
    }
    row
}

/// Prints the results as llama-bench's `-o json` does (the fields that apply, and load time
/// and peak memory beside them), so scripts written for it can read ours. Grammar, agent and
/// agreement rows carry a `test` field and no `n_prompt`/`avg_ts` pair of a throughput test.
fn print_json(results: &Results, threads: usize, batch: usize) -> anyhow::Result<()> {
    let mut rows: Vec<serde_json::Value> = results
        .throughput
        .iter()
        .map(|r| {
            let row = serde_json::json!({
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
            });
            merged(row, footprint_json(r.footprint, false))
        })
        .collect();
    for m in &results.models {
        for g in &m.grammars {
            let row = serde_json::json!({
                "model_filename": m.model,
                "device": m.device,
                "n_threads": threads,
                "test": g.test,
                "constrained_avg_ts": grammar::mean(&g.constrained),
                "constrained_samples_ts": g.constrained,
                "free_avg_ts": grammar::mean(&g.free),
                "free_samples_ts": g.free,
                "constrained_vs_free": g.ratio(),
                "generated_tokens": g.tokens,
                "forced_tokens": g.forced,
                "masks": g.masks.len(),
                "mask_us_p50": g.mask_p50_us(),
                "mask_us_p99": g.mask_p99_us(),
            });
            rows.push(merged(row, footprint_json(Some(m.footprint), true)));
        }
        if let Some(a) = &m.agent {
            let row = serde_json::json!({
                "model_filename": m.model,
                "device": m.device,
                "n_threads": threads,
                "test": "agent",
                "task": pae_local::agent::workload::AGENT_TASK,
                "status": a.status,
                "final_answer": a.answer,
                "model_calls": a.calls.len(),
                "prompt_tokens": a.prompt_tokens(),
                "reused_tokens": a.reused_tokens(),
                "computed_tokens": a.prompt_tokens() - a.reused_tokens(),
                "generated_tokens": a.generated_tokens(),
                "prefix_reuse": a.reuse_ratio,
                "calls": a.calls,
                "avg_run_secs": grammar::mean(&a.run_secs),
                "samples_run_secs": a.run_secs,
            });
            rows.push(merged(row, footprint_json(Some(m.footprint), true)));
        }
    }
    // Agreement rows carry no timing fields, so scripts reading llama-bench rows skip them.
    rows.extend(results.checks.iter().map(|c| {
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
    if results.is_empty() {
        return Ok(());
    }
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

/// After the throughput table: each model's footprint, grammar and agent figures.
fn print_details(results: &Results) -> anyhow::Result<()> {
    for m in &results.models {
        printer::line(&format!("{} on {}: {}", m.model, m.device, describe_footprint(&m.footprint)))?;
        for g in &m.grammars {
            printer::line(&format!("{} {}: {}", m.model, g.test, describe_grammar(g)))?;
        }
        if let Some(a) = &m.agent {
            printer::line(&format!("{} agent: {}", m.model, describe_agent(a)))?;
        }
    }
    Ok(())
}

pub fn run(margs: &ModelArgs, args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.repetitions > 0, "--repetitions must be at least 1");
    // Before any model loads: the pools read the count when they start.
    let threads = pae_local::model::threads::configure(margs.threads);
    for g in &args.grammar {
        g.check()?;
    }
    let results = measure_all(margs, &args, !args.json && !margs.quiet)?;
    let checks = &results.checks;
    if args.json {
        print_json(&results, threads, args.batch)?;
    } else {
        print_table(&results.throughput, threads)?;
        print_details(&results)?;
        for c in checks {
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
