//! `pae-local plan`: the planner alone.

use std::sync::Arc;

use clap::Args;
use pae_local::agent::grammars::Limits;
use pae_local::agent::llm::LocalLlm;
use pae_local::agent::planner::Planner;
use pae_local::agent::prompt::PromptContext;
use pae_local::agent::templates::Templates;
use pae_local::agent::tools::{Cancel, Human};
use pae_local::decode::Engine;

use super::args::{ModelArgs, SamplingArgs};
use super::kinds::PlannerArg;
use super::load::load_model;
use super::printer;
use super::tools::ToolArgs;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// What the plan is for.
    objective: String,
    /// Most steps in the plan (as `run --plan-steps`).
    #[arg(long, default_value_t = 4, alias = "max-steps")]
    plan_steps: usize,
    /// Planner kind.
    #[arg(long, value_enum, default_value_t = PlannerArg::Numbered)]
    planner: PlannerArg,
    /// Folder of templates overriding the built-in ones.
    #[arg(long, value_name = "DIR")]
    templates: Option<std::path::PathBuf>,
    /// Print `{"steps": [...], "raw": "..."}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    tools: ToolArgs,
}

/// Nobody to ask: planning alone calls no tool.
struct NoOne;

impl Human for NoOne {
    fn ask(&self, _: &str, _: &Cancel) -> Option<String> {
        None
    }
}

pub fn run(margs: &ModelArgs, args: PlanArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=20).contains(&args.plan_steps), "--plan-steps must be between 1 and 20");
    let sampling = args.sampling.to_params()?;
    let templates = Templates::load(args.templates.as_deref())?;
    // `ask_human` (with --human) is only shown to the planner here, never called.
    let mcp = args.tools.mcp_servers()?;
    let registry = args.tools.registry(Some(Arc::new(NoOne)), &mcp)?;
    let model = load_model(margs, None)?;
    let llm = LocalLlm::new(Arc::new(Engine::new(model)));
    let limits = Limits {
        max_steps: args.plan_steps,
        ..Limits::default()
    };
    let ctx = PromptContext {
        objective: args.objective.clone(),
        tools: pae_local::agent::relevance::rank(&args.objective, &registry.specs()),
        max_steps: args.plan_steps,
        ..Default::default()
    };
    let planner = Planner::new(args.planner.into(), limits);
    let stream = !args.json;
    let out = planner.plan(&llm, &templates, &ctx, &sampling, &mut |t| {
        if stream {
            let _ = printer::out(t);
        }
    })?;
    if args.json {
        printer::json(&serde_json::json!({"steps": out.steps, "raw": out.raw}))?;
    } else if !out.raw.ends_with('\n') {
        printer::out("\n")?;
    }
    Ok(())
}
