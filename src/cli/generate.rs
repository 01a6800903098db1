//! `pae-local generate`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pae_local::decode::{Engine, GenerateRequest, Grammar};
use pae_local::model::Message;

use super::args::{ModelArgs, SamplingArgs};
use super::load::load_model;
use super::printer;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The prompt.
    #[arg(long, short = 'p')]
    prompt: String,
    /// Feed the prompt as is, without the chat template.
    #[arg(long)]
    raw: bool,
    /// System message (chat template only).
    #[arg(long)]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long = "max-tokens", short = 'n', default_value_t = 256)]
    max_tokens: usize,
    /// Stop when this string appears (repeatable); it is not printed.
    #[arg(long = "stop", value_name = "STR")]
    stop: Vec<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Constrain the output to a grammar in llguidance's Lark syntax.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["regex", "json_schema"])]
    grammar: Option<PathBuf>,
    /// Constrain the output to match a regular expression.
    #[arg(long, value_name = "RE", conflicts_with = "json_schema")]
    regex: Option<String>,
    /// Constrain the output to JSON valid against a schema.
    #[arg(long, value_name = "FILE")]
    json_schema: Option<PathBuf>,
    /// Print one JSON object at the end instead of streaming text.
    #[arg(long)]
    json: bool,
}

impl GenerateArgs {
    fn grammar(&self) -> anyhow::Result<Option<Grammar>> {
        if let Some(path) = &self.grammar {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading grammar `{}`", path.display()))?;
            return Ok(Some(Grammar::Lark(text)));
        }
        if let Some(re) = &self.regex {
            return Ok(Some(Grammar::Regex(re.clone())));
        }
        if let Some(path) = &self.json_schema {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading schema `{}`", path.display()))?;
            let schema = serde_json::from_str(&text).with_context(|| format!("`{}` is not JSON", path.display()))?;
            return Ok(Some(Grammar::JsonSchema(schema)));
        }
        Ok(None)
    }
}

pub fn run(margs: &ModelArgs, args: GenerateArgs) -> anyhow::Result<()> {
    let sampling = args.sampling.to_params()?;
    let grammar = args.grammar()?;
    anyhow::ensure!(args.max_tokens > 0, "--max-tokens must be at least 1");
    let model = load_model(margs, None)?;
    let text = if args.raw {
        args.prompt.clone()
    } else {
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(Message::system(s.clone()));
        }
        messages.push(Message::user(args.prompt.clone()));
        model.render_chat(&messages, true)?
    };
    let prompt = model.encode_prompt(&text)?;
    let mut stop = args.stop.clone();
    if !args.raw {
        stop.extend(model.template().stop_strings());
    }
    let req = GenerateRequest {
        max_tokens: args.max_tokens,
        sampling,
        stop_strings: stop,
        grammar,
    };
    let engine = Engine::new(model.clone());
    let mut session = engine.session();
    let stream = !args.json;
    let mut write_err = None;
    let gen = engine.generate(&mut session, &prompt, &req, &mut |piece| {
        if stream && write_err.is_none() {
            if let Err(e) = printer::out(piece) {
                write_err = Some(e);
            }
        }
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    let s = &gen.stats;
    if args.json {
        printer::json(&serde_json::json!({
            "text": gen.text,
            "tokens": gen.tokens,
            "prompt_tokens": prompt.len(),
            "generated_tokens": gen.tokens.len(),
            "stop_reason": gen.stop_reason.as_str(),
            "stop_detail": gen.stop_reason,
            "timings": {
                "prefill_secs": s.prefill_secs,
                "prefill_tokens_per_sec": s.prefill_tokens_per_sec(),
                "decode_secs": s.decode_secs,
                "decode_tokens_per_sec": s.decode_tokens_per_sec(),
                "forced_tokens": s.forced_tokens,
                "mask_secs": s.mask_secs,
            },
            "model": model.path().display().to_string(),
        }))?;
    } else {
        printer::out("\n")?;
        if !margs.quiet {
            eprintln!(
                "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, stop: {}]",
                prompt.len(),
                s.prefill_tokens_per_sec(),
                gen.tokens.len(),
                s.decode_tokens_per_sec(),
                gen.stop_reason.as_str()
            );
        }
    }
    Ok(())
}
