//! `pae-local tools`: every tool a run with the same tool flags would offer, built-in and
//! from MCP servers, with the input schema the grammars hold its calls to.

use clap::Args;
use serde_json::json;

use super::printer;
use super::tools::ToolArgs;

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// Print a JSON array of `{name, description, input_schema}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    tools: ToolArgs,
}

pub fn run(args: ToolsArgs) -> anyhow::Result<()> {
    let mcp = args.tools.mcp_servers()?;
    // `ask_human` is listed with --human but never called here: no one needs to answer.
    let human: Option<std::sync::Arc<dyn pae_local::agent::tools::Human>> =
        if args.tools.human { Some(std::sync::Arc::new(NoOne)) } else { None };
    let specs = args.tools.registry(human, &mcp)?.specs();
    if args.json {
        let list: Vec<_> = specs
            .iter()
            .map(|s| json!({"name": s.name, "description": s.description, "input_schema": s.input_schema}))
            .collect();
        printer::json(&json!(list))?;
    } else {
        for (i, s) in specs.iter().enumerate() {
            if i > 0 {
                printer::line("")?;
            }
            printer::line(&s.name)?;
            printer::line(&format!("  {}", s.description))?;
            printer::line(&format!("  input: {}", serde_json::to_string(&s.input_schema)?))?;
        }
    }
    Ok(())
}

/// Stands in for the person behind `ask_human`, which listing never calls.
struct NoOne;

impl pae_local::agent::tools::Human for NoOne {
    fn ask(&self, _: &str, _: &pae_local::agent::tools::Cancel) -> Option<String> {
        None
    }
}
