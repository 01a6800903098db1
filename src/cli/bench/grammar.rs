//! `bench --grammar plan|executor|FILE`: constrained decoding as the agent does it — tokens/s
//! under the grammar against free decoding of as many tokens from the same prompt and sampler,
//! and the time of each grammar mask (p50, p99).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use pae_local::agent::templates::Templates;
use pae_local::agent::tools::ToolSpec;
use pae_local::agent::workload::{self, GrammarCase};
use pae_local::decode::mask_timing::{percentile_us, replay_masks};
use pae_local::decode::{Engine, GenerateRequest, Grammar, SamplingParams};
use pae_local::model::{Message, Model};

/// A grammar `--grammar` names.
#[derive(Debug, Clone)]
pub enum GrammarArg {
    /// The planner's plan over the built-in tools, every step written by the model (the
    /// free planner's grammar: the numbered planner's copies the objective's clauses, forced,
    /// and leaves few masks to time).
    Plan,
    /// The executor's Thought / Action / Action Input lines over the built-in tools.
    Executor,
    /// A grammar in llguidance's Lark syntax, as `generate --grammar` takes.
    File(PathBuf),
}

impl FromStr for GrammarArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "plan" => Ok(Self::Plan),
            "executor" => Ok(Self::Executor),
            "" => Err("expected plan, executor or a Lark grammar file".into()),
            path => Ok(Self::File(path.into())),
        }
    }
}

/// The prompt a grammar file is decoded from: no task of its own, so a neutral request.
const FILE_PROMPT: &str = "Write one answer in the required format.";

/// Most tokens generated under a grammar file.
const FILE_MAX_TOKENS: usize = 256;

impl GrammarArg {
    /// Reads a grammar file (a clear error when it cannot), before any model loads.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Self::File(path) = self {
            std::fs::read_to_string(path).with_context(|| format!("reading grammar `{}`", path.display()))?;
        }
        Ok(())
    }

    fn case(&self, model: &Model, tools: &[ToolSpec]) -> anyhow::Result<GrammarCase> {
        let templates = Templates::builtin()?;
        Ok(match self {
            Self::Plan => workload::plan(model, &templates, tools, false)?,
            Self::Executor => workload::executor(model, &templates, tools, &[])?,
            Self::File(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading grammar `{}`", path.display()))?;
                let prompt = model.encode_prompt(&model.render_chat(&[Message::user(FILE_PROMPT)], true)?)?;
                GrammarCase {
                    name: path.display().to_string(),
                    grammar: Grammar::Lark(text),
                    prompt,
                    max_tokens: FILE_MAX_TOKENS,
                }
            }
        })
    }
}

/// One grammar on one model.
pub struct GrammarRun {
    /// `grammar:plan`, `grammar:executor` or `grammar:PATH`.
    pub test: String,
    /// Constrained tokens/s of each repetition (forced tokens count: they are output).
    pub constrained: Vec<f64>,
    /// Free tokens/s of each repetition, the same prompt, sampler and number of tokens.
    pub free: Vec<f64>,
    /// Every mask along every constrained output, sorted.
    pub masks: Vec<Duration>,
    /// Tokens generated under the grammar, over all repetitions.
    pub tokens: usize,
    /// Of those, tokens the grammar forced.
    pub forced: usize,
}

impl GrammarRun {
    pub fn mask_p50_us(&self) -> f64 {
        percentile_us(&self.masks, 0.5)
    }

    pub fn mask_p99_us(&self) -> f64 {
        percentile_us(&self.masks, 0.99)
    }

    /// Mean constrained tokens/s over the repetitions, divided by the mean free tokens/s.
    pub fn ratio(&self) -> f64 {
        mean(&self.constrained) / mean(&self.free).max(1e-9)
    }
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Decodes `grammar`'s case `repetitions` times (seeds 0, 1, …, each from a fresh session, so
/// no prompt reuse favours either side), free decoding after each, then replays each output
/// to time its masks.
pub fn measure(engine: &Engine, grammar: &GrammarArg, tools: &[ToolSpec], repetitions: usize) -> anyhow::Result<GrammarRun> {
    let case = grammar.case(engine.model(), tools)?;
    let mut run = GrammarRun {
        test: format!("grammar:{}", case.name),
        constrained: Vec::new(),
        free: Vec::new(),
        masks: Vec::new(),
        tokens: 0,
        forced: 0,
    };
    // One untimed pass builds the grammar factory and warms the caches.
    for seed in 0..=repetitions as u64 {
        let req = GenerateRequest {
            max_tokens: case.max_tokens,
            sampling: SamplingParams {
                temperature: 0.8,
                seed,
                ..Default::default()
            },
            stop_strings: Vec::new(),
            grammar: Some(case.grammar.clone()),
        };
        let g = engine.generate(&mut engine.session(), &case.prompt, &req, &mut |_| {})?;
        let free_req = GenerateRequest {
            max_tokens: g.tokens.len().max(1),
            grammar: None,
            ..req
        };
        let f = engine.generate(&mut engine.session(), &case.prompt, &free_req, &mut |_| {})?;
        if seed == 0 {
            continue;
        }
        run.constrained.push(g.stats.generated_tokens as f64 / g.stats.decode_secs.max(1e-9));
        run.free.push(f.stats.generated_tokens as f64 / f.stats.decode_secs.max(1e-9));
        run.tokens += g.stats.generated_tokens;
        run.forced += g.stats.forced_tokens;
        run.masks.extend(replay_masks(engine, &case.grammar, &g.tokens)?);
    }
    run.masks.sort();
    Ok(run)
}
