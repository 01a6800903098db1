//! Generation that must match a JSON schema: the output always parses and validates, whatever
//! the model, seed or temperature.
//!
//! ```text
//! models/fetch.sh
//! cargo run --release --example constrained
//! cargo run --release --example constrained -- --model path/to/model.gguf
//! ```

// Printing is what this program is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use clap::Parser;
use pae_local::decode::{Engine, GenerateRequest, Grammar, SamplingParams};
use pae_local::model::{LoadOptions, Message, Model};
use pae_local::source;
use serde_json::json;

/// Generates JSON that matches a schema, with three seeds.
#[derive(Parser)]
struct Args {
    /// Model: a GGUF path, a name from models/manifest.json, or hf:OWNER/REPO/FILE.gguf
    /// [default: the manifest's default model].
    #[arg(long)]
    model: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let path = source::resolve(args.model.as_deref())?;
    pae_local::model::threads::configure(None);
    let model = Arc::new(Model::load(&path, LoadOptions::default())?);
    let engine = Engine::new(model.clone());

    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 24},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "city": {"enum": ["Paris", "Berlin", "Rome"]}
        },
        "required": ["name", "age", "city"],
        "additionalProperties": false
    });
    // The prompt goes through the model's own chat template.
    let text = model.render_chat(&[Message::user("Describe a customer as JSON.")], true)?;
    let prompt = model.encode_prompt(&text)?;
    let mut session = engine.session();
    for seed in 0..3 {
        let req = GenerateRequest {
            max_tokens: 120,
            sampling: SamplingParams { temperature: 1.0, seed, ..Default::default() },
            stop_strings: Vec::new(),
            grammar: Some(Grammar::json_schema(schema.clone())),
        };
        // Streams as it goes; the prompt is computed once and reused by later seeds.
        let g = engine.generate(&mut session, &prompt, &req, &mut |piece| print!("{piece}"))?;
        let value: serde_json::Value = serde_json::from_str(&g.text)?;
        println!(
            "\n  seed {seed}: {} tokens, {} forced by the grammar, city = {}",
            g.stats.generated_tokens, g.stats.forced_tokens, value["city"]
        );
    }
    Ok(())
}
