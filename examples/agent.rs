//! A plan-and-execute agent embedded in a Rust program, with a tool of its own beside the
//! built-in calculator.
//!
//! ```text
//! models/fetch.sh
//! cargo run --release --example agent -- "How many words are in 'the quick brown fox'?"
//! cargo run --release --example agent -- --model path/to/model.gguf "What is 12 * 12?"
//! ```
//!
//! Events stream to stderr as the run goes; the report is printed as JSON at the end.

// Printing is what this program is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use pae_local::agent::events::{Event, Observer};
use pae_local::agent::llm::LocalLlm;
use pae_local::agent::tools::{Calculator, Registry, Tool, ToolError, ToolFuture, ToolSpec};
use pae_local::agent::{Agent, AgentConfig};
use pae_local::decode::Engine;
use pae_local::model::{LoadOptions, Model};
use pae_local::source;
use serde_json::{json, Value};

/// Counts the words of a text. A tool is a spec (name, description, JSON schema of its input,
/// an example input) and an async call; the agent validates the input against the schema
/// before the call, and its grammar lets the model write only inputs that fit it.
struct WordCount {
    spec: ToolSpec,
}

impl WordCount {
    fn new() -> Self {
        Self {
            spec: ToolSpec::new(
                "word_count",
                "Counts the words of a text.",
                json!({
                    "type": "object",
                    "properties": {"text": {"type": "string", "maxLength": 400}},
                    "required": ["text"],
                    "additionalProperties": false
                }),
                json!({"text": "one two three"}),
            ),
        }
    }
}

impl Tool for WordCount {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        Box::pin(async move {
            let text = input["text"]
                .as_str()
                .ok_or_else(|| ToolError::InvalidInput("`text` must be a string".into()))?;
            Ok(text.split_whitespace().count().to_string())
        })
    }
}

/// Prints what happens, one line per event.
struct Log;

impl Observer for Log {
    fn on_event(&self, e: &Event) {
        match e {
            Event::Plan { steps, .. } => eprintln!("plan: {steps:?}"),
            Event::Action { tool, input, .. } => eprintln!("action: {tool} {input}"),
            Event::Observation { text, error, .. } => eprintln!("observation{}: {text}", if *error { " (error)" } else { "" }),
            _ => {}
        }
    }
}

/// Runs an objective with an agent that has the calculator and a word counter.
#[derive(Parser)]
struct Args {
    /// Model: a GGUF path, a name from models/manifest.json, or hf:OWNER/REPO/FILE.gguf
    /// [default: the manifest's default model].
    #[arg(long)]
    model: Option<String>,
    /// The objective, in one or more words [default: How many words are in 'the quick brown
    /// fox'?].
    objective: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let objective = args.objective.join(" ");
    let objective = if objective.is_empty() { "How many words are in 'the quick brown fox'?".to_string() } else { objective };

    // The model named, or the default one in models/.
    let path = source::resolve(args.model.as_deref())?;
    pae_local::model::threads::configure(None);
    let model = Arc::new(Model::load(&path, LoadOptions::default())?);
    let engine = Arc::new(Engine::new(model));

    let mut tools = Registry::new(Duration::from_secs(10));
    tools.add(Arc::new(Calculator::default())).map_err(anyhow::Error::msg)?;
    tools.add(Arc::new(WordCount::new())).map_err(anyhow::Error::msg)?;

    // One model plans and executes; `.planner(..)` and `.executor(..)` take separate ones.
    let agent = Agent::builder()
        .model(Arc::new(LocalLlm::new(engine)))
        .tools(tools)
        .config(AgentConfig::default())
        .observer(Arc::new(Log))
        .build()?;

    // Tools run on tokio; model calls run on their own threads.
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(agent.run(&objective));
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
