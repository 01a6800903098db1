//! Prints the prompts and grammars the agent would send for an objective, without loading a
//! model: for people writing their own templates (`pae-local run --templates DIR`).
//!
//! ```text
//! cargo run --example prompts -- "What is 17 * 23 + 4?"
//! cargo run --example prompts -- --templates my-templates "Which file mentions water?"
//! ```
//!
//! The tools are the calculator and the file tools over the current directory.

// Printing is what this program is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use pae_local::agent::grammars::{self, Limits};
use pae_local::agent::prompt::PromptContext;
use pae_local::agent::relevance;
use pae_local::agent::templates::Templates;
use pae_local::decode::Grammar;
use pae_local::agent::tools::{BuiltinTools, Registry};

/// Prints the prompts and grammars the agent would send for an objective, without a model.
#[derive(Parser)]
struct Args {
    /// Folder of templates overriding the built-in ones, as `pae-local run --templates`.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// The objective, in one or more words [default: What is 17 * 23 + 4?].
    objective: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let templates = Templates::load(args.templates.as_deref())?;
    let objective = if args.objective.is_empty() { "What is 17 * 23 + 4?".to_string() } else { args.objective.join(" ") };

    let tools = Registry::builtin(&BuiltinTools {
        timeout: Duration::from_secs(5),
        ..BuiltinTools::default()
    })?;

    let limits = Limits::default();
    // The agent shows the tools most relevant to the objective first.
    let specs = relevance::rank(&objective, &tools.specs());
    let step = format!("Use {} to answer: {objective}", specs[0].name);
    let ctx = PromptContext {
        objective: objective.clone(),
        tools: specs.clone(),
        plan: vec![step.clone()],
        step: step.clone(),
        step_number: 1,
        max_steps: limits.max_steps,
        max_iterations: 4,
        ..Default::default()
    };
    for (template, grammar) in [
        ("planner.jinja", grammars::plan(&templates, &specs, &limits, &objective, true)?),
        ("executor.jinja", grammars::executor(&templates, &specs, &limits, &[], &step, false, true)?),
    ] {
        println!("===== {template}");
        for m in ctx.messages(&templates, template)? {
            println!("--- {}\n{}", m.role, m.content);
        }
        match grammar {
            Grammar::Lark(text) => println!("--- grammar (Lark)\n{text}\n"),
            other => println!("--- grammar\n{other:?}\n"),
        }
    }
    Ok(())
}
