//! Speed of grammar-constrained decoding, on each model present in `models/`:
//!
//! - **mask time** p50 / p99 / max (µs) for each grammar the agent uses (plan, executor before
//!   and after an observation, replanner), a regex and a JSON schema;
//! - **decode tokens/s** constrained vs unconstrained, from the same prompt with the same
//!   sampler and the same token budget;
//! - **forced share**: the tokens the grammar fixed, which are fed to the model in multi-token
//!   forwards instead of being sampled one by one.
//!
//! Run: `cargo bench --bench constrained` (options after `--`: `--runs N` samples per grammar,
//! default 8; `--threads N`; `--model PATH` instead of every model in `models/`).
//!
//! Masks are timed along real outputs (`pae_local::decode::mask_timing`): a distribution of
//! single calls over a trajectory, which criterion (means over repetitions of one identical
//! call) does not give, hence a plain harness.

// Printing is what this program is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use pae_local::agent::grammars::{self, Limits};
use pae_local::agent::prompt::PromptContext;
use pae_local::agent::templates::Templates;
use pae_local::agent::tools::{BuiltinTools, Registry, ToolSpec};
use pae_local::agent::workload::{self, GrammarCase};
use pae_local::decode::mask_timing::{percentile_us, replay_masks};
use pae_local::decode::{Engine, GenerateRequest, Grammar, SamplingParams};
use pae_local::model::{LoadOptions, Model};

/// Speed of grammar-constrained decoding: mask times and constrained vs free tokens/s.
#[derive(Parser)]
struct Options {
    /// Samples per grammar.
    #[arg(long, default_value_t = 8, value_name = "N")]
    runs: u64,
    /// CPU threads for the matmuls [default: physical cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// A model to measure (repeatable) [default: the models of models/ that are present].
    #[arg(long = "model", value_name = "PATH")]
    models: Vec<PathBuf>,
    /// What cargo passes to every bench target; accepted so that `cargo bench` runs.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
}

fn options() -> Options {
    let mut o = Options::parse();
    if o.models.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        for file in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"] {
            let p = dir.join(file);
            if p.is_file() {
                o.models.push(p);
            } else {
                eprintln!("skipping {file}: not in models/ (run models/fetch.sh all)");
            }
        }
    }
    o
}

/// The tools of a run over the public evaluation set's workspace and database (`evals/`):
/// the schemas a user's run would constrain to. The database is built from its SQL text in
/// `dir`; the workspace is read where it is.
fn tools(dir: &Path) -> Vec<ToolSpec> {
    let evals = Path::new(env!("CARGO_MANIFEST_DIR")).join("evals");
    let db = dir.join("shop.db");
    let sql = std::fs::read_to_string(evals.join("shop.sql")).unwrap();
    rusqlite::Connection::open(&db).unwrap().execute_batch(&sql).unwrap();
    let tools = BuiltinTools {
        workspace: Some(evals.join("workspace")),
        sqlite: Some(db),
        timeout: Duration::from_secs(10),
        ..BuiltinTools::default()
    };
    Registry::builtin(&tools).unwrap().specs()
}

fn cases(m: &Model, specs: &[ToolSpec]) -> Vec<GrammarCase> {
    let t = Templates::builtin().unwrap();
    let limits = Limits::default();
    let user = |text: &str| {
        let text = m.render_chat(&[pae_local::model::Message::user(text)], true).unwrap();
        m.encode_prompt(&text).unwrap()
    };
    let choices = vec!["apple: 3 euros".to_string()];
    let replan_ctx = PromptContext {
        objective: workload::OBJECTIVE.into(),
        tools: specs.to_vec(),
        plan: vec![workload::STEP.into()],
        max_steps: limits.max_steps,
        ..Default::default()
    };
    let replan_text = m.render_chat(&replan_ctx.messages(&t, "replanner.jinja").unwrap(), true).unwrap();
    let customer = serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 24},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "city": {"enum": ["Paris", "Berlin", "Rome"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3}
        },
        "required": ["name", "age", "city"],
        "additionalProperties": false
    });
    vec![
        workload::plan(m, &t, specs, true).unwrap(),
        workload::plan(m, &t, specs, false).unwrap(),
        workload::executor(m, &t, specs, &[]).unwrap(),
        workload::executor(m, &t, specs, &choices).unwrap(),
        GrammarCase {
            name: "replan".into(),
            grammar: grammars::replan(&t, specs, &limits, &choices, false, workload::OBJECTIVE).unwrap(),
            prompt: m.encode_prompt(&replan_text).unwrap(),
            max_tokens: 300,
        },
        GrammarCase {
            name: "regex (date)".into(),
            grammar: Grammar::Regex(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])".into()),
            prompt: user("When did the first person land on the Moon? Give the date."),
            max_tokens: 64,
        },
        GrammarCase {
            name: "json schema".into(),
            grammar: Grammar::JsonSchema(customer),
            prompt: user("Describe a customer as JSON."),
            max_tokens: 160,
        },
    ]
}

fn sampling(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 0.7 + (seed % 9) as f32 * 0.1,
        seed,
        ..Default::default()
    }
}

#[derive(Default)]
struct Throughput {
    tokens: usize,
    forced: usize,
    secs: f64,
}

impl Throughput {
    fn add(&mut self, other: &Throughput) {
        self.tokens += other.tokens;
        self.forced += other.forced;
        self.secs += other.secs;
    }

    fn per_sec(&self) -> f64 {
        self.tokens as f64 / self.secs.max(1e-9)
    }
}

fn bench_model(path: &Path, runs: u64, specs: &[ToolSpec]) {
    let m = Arc::new(Model::load(path, LoadOptions::default()).unwrap());
    let vocab = m.tokenizer().vocab_size();
    let engine = Engine::new(m.clone());
    let name = path.file_name().unwrap().to_string_lossy();
    println!("\n## {name} (vocabulary {vocab}, logits {})\n", m.logits_width());
    println!("| grammar | masks | mask p50 µs | mask p99 µs | mask max µs | forced | constrained tok/s | unconstrained tok/s | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut all_masks = Vec::new();
    let (mut all_c, mut all_u) = (Throughput::default(), Throughput::default());
    for case in cases(&m, specs) {
        let mut masks = Vec::new();
        let (mut c, mut u) = (Throughput::default(), Throughput::default());
        for seed in 0..runs {
            // A fresh session each time: no prompt reuse favours either side.
            let req = GenerateRequest {
                max_tokens: case.max_tokens,
                sampling: sampling(seed),
                stop_strings: Vec::new(),
                grammar: Some(case.grammar.clone()),
            };
            let g = engine.generate(&mut engine.session(), &case.prompt, &req, &mut |_| {}).unwrap();
            c.tokens += g.stats.generated_tokens;
            c.forced += g.stats.forced_tokens;
            c.secs += g.stats.decode_secs;
            masks.extend(replay_masks(&engine, &case.grammar, &g.tokens).unwrap());
            // The same prompt, sampler and number of tokens, free.
            let free = GenerateRequest {
                max_tokens: g.tokens.len().max(1),
                grammar: None,
                ..req
            };
            let f = engine.generate(&mut engine.session(), &case.prompt, &free, &mut |_| {}).unwrap();
            u.tokens += f.stats.generated_tokens;
            u.secs += f.stats.decode_secs;
        }
        row(&case.name, &mut masks, &c, &u);
        all_masks.extend(masks);
        all_c.add(&c);
        all_u.add(&u);
    }
    row("**all**", &mut all_masks, &all_c, &all_u);
}

/// One line of the table: mask percentiles, forced share, constrained and free tokens/s.
fn row(name: &str, masks: &mut [Duration], c: &Throughput, u: &Throughput) {
    masks.sort();
    println!(
        "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} % | {:.1} | {:.1} | {:.2} |",
        masks.len(),
        percentile_us(masks, 0.5),
        percentile_us(masks, 0.99),
        percentile_us(masks, 1.0),
        100.0 * c.forced as f64 / c.tokens.max(1) as f64,
        c.per_sec(),
        u.per_sec(),
        c.per_sec() / u.per_sec().max(1e-9),
    );
}

fn main() {
    let o = options();
    let threads = pae_local::model::threads::configure(o.threads);
    println!("# constrained decoding: {} samples per grammar, {threads} threads, temperatures 0.7–1.5", o.runs);
    let dir = tempfile::tempdir().unwrap();
    let specs = tools(dir.path());
    for path in &o.models {
        bench_model(path, o.runs, &specs);
    }
}
