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

use std::time::Duration;

use pae_local::agent::grammars::{self, Limits};
use pae_local::agent::prompt::PromptContext;
use pae_local::agent::relevance;
use pae_local::agent::templates::Templates;
use pae_local::decode::Grammar;
use pae_local::agent::tools::{BuiltinTools, Registry};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.iter().position(|a| a == "--templates") {
        Some(i) if i + 1 < args.len() => {
            let dir = args.remove(i + 1);
            args.remove(i);
            Some(std::path::PathBuf::from(dir))
        }
        _ => None,
    };
    let templates = Templates::load(dir.as_deref())?;
    let objective = if args.is_empty() { "What is 17 * 23 + 4?".to_string() } else { args.join(" ") };

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
