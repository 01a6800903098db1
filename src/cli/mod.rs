//! Command line: arguments → validated settings → library calls → printed results.
//!
//! The only layer that prints, uses `anyhow` or picks exit codes: 0 success, 1 failure,
//! 2 bad usage (clap's own code). A closed stdout (`| head`) counts as success.

// The command line is where this crate prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod bench;
mod console;
mod eval;
mod generate;
mod info;
mod input;
mod kinds;
mod load;
mod mcp;
mod plan;
mod printer;
mod review;
mod session;
mod run;
mod tokenize;
mod tools;
mod tools_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use args::ModelArgs;

/// Offline plan-and-execute agents on quantized GGUF models, in-process.
#[derive(Debug, Parser)]
#[command(name = "pae-local", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    model: ModelArgs,
}

/// `run`'s arguments at their defaults, for the interactive session.
#[derive(Debug, Parser)]
struct Defaults {
    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate text from a prompt (through the model's chat template unless --raw).
    Generate(generate::GenerateArgs),
    /// Print the token ids of a text, like llama.cpp's llama-tokenize.
    Tokenize(tokenize::TokenizeArgs),
    /// Describe a model file: architecture, sizes, quantization, tokenizer, template.
    Info(info::InfoArgs),
    /// Measure prompt and generation throughput (tokens/s), as llama-bench does.
    Bench(bench::BenchArgs),
    /// Run the planner alone and print its plan.
    Plan(plan::PlanArgs),
    /// Plan and execute an objective with tools (interactive without an objective).
    Run(Box<run::RunArgs>),
    /// Run a task file (JSON lines with checks) and print the score by category.
    Eval(Box<eval::EvalArgs>),
    /// List the tools a run with the same tool flags would offer (built-in and MCP).
    Tools(Box<tools_cmd::ToolsArgs>),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    if let Err(e) = check_threads(cli.model.threads) {
        printer::error(&e);
        return ExitCode::FAILURE;
    }
    pae_local::model::threads::configure(cli.model.threads);
    let result = match cli.command {
        Some(Command::Generate(a)) => generate::run(&cli.model, a),
        Some(Command::Tokenize(a)) => tokenize::run(&cli.model, a),
        Some(Command::Info(a)) => info::run(&cli.model, a),
        Some(Command::Bench(a)) => bench::run(&cli.model, a),
        Some(Command::Plan(a)) => plan::run(&cli.model, a),
        Some(Command::Run(a)) => run::run(&cli.model, *a),
        Some(Command::Eval(a)) => eval::run(&cli.model, *a),
        Some(Command::Tools(a)) => tools_cmd::run(*a),
        // No subcommand: an interactive session with the default settings.
        None => match Defaults::try_parse_from(["pae-local"]) {
            Ok(d) => run::run(&cli.model, d.run),
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if printer::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<run::Interrupted>() => ExitCode::from(130),
        Err(e) => {
            printer::error(&e);
            ExitCode::FAILURE
        }
    }
}

/// `--threads` between 1 and four per logical CPU: more only slows the matmuls, and
/// thousands make the thread pool fail to start.
fn check_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(n) = threads {
        anyhow::ensure!((1..=4 * cpus).contains(&n), "--threads must be between 1 and {} (four per CPU), not {n}", 4 * cpus);
    }
    Ok(())
}

fn init_tracing() {
    // `RUST_LOG=pae_local=debug` shows timings and decisions; quiet by default.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
