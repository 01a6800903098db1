//! The executor: carries out one plan step with tools, by grammar, with retries.
//!
//! ReAct (default): `Thought / Action / Action Input`, the runtime runs the tool and appends
//! `Observation: …`, until `Final Answer`. Direct: one JSON tool call, no thought; its
//! observation is the step's result. A tool error, a timeout or the iteration cap fails the
//! attempt; the step is retried with the failure in the prompt, up to the retry limit.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decode::SamplingParams;

use super::calls::{Caller, Halt};
use super::events::{Event, StepStatus};
use super::grammars::{self, Limits};
use super::llm::{Llm, LlmRequest, Purpose};
use super::parse::{self, ReactStep};
use super::prompt::{ActionView, PromptContext};
use super::templates::Templates;
use super::tools::{Registry, ToolSpec};

/// How steps are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// Thought / Action / Observation rounds until a final answer.
    #[default]
    React,
    /// One tool call with JSON arguments, no thought (faster, for simple steps).
    Direct,
}

/// One tool call and its observation.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    /// The model's Thought line (or the runtime's, for an action it took itself).
    pub thought: String,
    /// Name of the tool called.
    pub tool: String,
    /// The input as written, `#E` references not yet replaced by their values.
    pub input: Value,
    /// What the tool returned, or `Error: …` when it failed; cut to the observation cap.
    pub observation: String,
    /// Whether the tool reported a failure (the observation is then an error text).
    pub error: bool,
    /// Whether the observation was cut to the observation token cap.
    pub truncated: bool,
    /// How long the tool took.
    pub elapsed_secs: f64,
    /// Counts the step asked for, taken from the whole output before any cut (see
    /// [`facts`](super::facts)); an answer may quote them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
}

/// One try at a step.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// The tool calls of this try, in order.
    pub actions: Vec<ActionRecord>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// A finished (or abandoned) step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// 1-based position among the steps run.
    pub index: usize,
    /// The step's text, references to earlier results made explicit (`#E1`).
    pub step: String,
    /// How the step ended.
    pub status: StepStatus,
    /// The step's answer (what `#E<index>` stands for later), or why it failed.
    pub result: String,
    /// Every try, the failed ones first.
    pub attempts: Vec<AttemptRecord>,
}

impl StepRecord {
    /// Every action of every attempt.
    pub fn actions(&self) -> impl Iterator<Item = &ActionRecord> {
        self.attempts.iter().flat_map(|a| a.actions.iter())
    }
}

/// Executor settings.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutorConfig {
    /// How a step is carried out: a ReAct loop, or one direct call.
    pub kind: ExecutorKind,
    /// Length bounds the grammars enforce (thoughts, inputs, answers).
    pub limits: Limits,
    /// Thought/Action rounds per attempt.
    pub max_iterations: usize,
    /// Extra attempts after a failure.
    pub retries: usize,
    /// Sampling of executor calls (greedy by default: a step has one right call).
    pub sampling: SamplingParams,
    /// Observations longer than this many tokens are cut, with a note.
    pub observation_tokens: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            kind: ExecutorKind::React,
            limits: Limits::default(),
            max_iterations: 4,
            retries: 2,
            sampling: SamplingParams::greedy(),
            observation_tokens: 256,
        }
    }
}

/// What executing a step needs from the runner.
pub(crate) struct StepEnv<'a> {
    pub caller: &'a Caller,
    pub llm: &'a Arc<dyn Llm>,
    pub templates: &'a Templates,
    pub registry: &'a Registry,
    pub config: &'a ExecutorConfig,
    pub count_tokens: &'a (dyn Fn(&str) -> usize + Send + Sync),
}

/// How an attempt ended: done with its result, or failed and why.
type Outcome = (StepStatus, String);

/// Runs step `index` (`ctx` carries the objective, tools, plan and earlier results).
pub(crate) async fn execute_step(env: &StepEnv<'_>, ctx: &PromptContext, index: usize, step: &str) -> Result<StepRecord, Halt> {
    let mut attempts = Vec::new();
    let mut failure = String::new();
    for attempt in 0..=env.config.retries {
        env.caller.emit(Event::StepStart {
            index,
            step: step.to_string(),
            attempt: attempt + 1,
        });
        let mut ctx = ctx.clone();
        ctx.step = step.to_string();
        ctx.failure = failure.clone();
        // A greedy retry would repeat the failed attempt word for word: retries sample.
        let sampling = env.config.sampling.nth_sample(attempt, 0.7);
        let mut actions = Vec::new();
        let outcome = match env.config.kind {
            ExecutorKind::React => react(env, &ctx, index, &mut actions, &sampling).await?,
            ExecutorKind::Direct => direct(env, &ctx, index, &mut actions, &sampling).await?,
        };
        match outcome {
            (StepStatus::Done, result) => {
                attempts.push(AttemptRecord { actions, failure: None });
                return Ok(StepRecord {
                    index,
                    step: step.to_string(),
                    status: StepStatus::Done,
                    result,
                    attempts,
                });
            }
            (StepStatus::Failed, reason) => {
                attempts.push(AttemptRecord {
                    actions,
                    failure: Some(reason.clone()),
                });
                if attempt < env.config.retries {
                    env.caller.emit(Event::Retry {
                        index,
                        attempt: attempt + 2,
                        reason: reason.clone(),
                    });
                }
                failure = reason;
            }
        }
    }
    Ok(StepRecord {
        index,
        step: step.to_string(),
        status: StepStatus::Failed,
        result: failure,
        attempts,
    })
}

/// The single-line results a final answer may quote verbatim: this attempt's observations
/// and earlier steps' results. Of an observation of several lines (with the counts the step
/// asked for, see [`facts`](super::facts)) or of a row's fields, only those that share the
/// most words with the step (see [`relevance::best_lines`](super::relevance::best_lines)).
fn choices(ctx: &PromptContext, actions: &[ActionRecord], limits: &Limits) -> Vec<String> {
    let obs: Vec<String> = actions
        .iter()
        .rev()
        .filter(|a| !a.error)
        .map(|a| match a.observation.lines().count() {
            0 | 1 => {
                // A row of `label: value` fields (`id: 3, name: Carol, city: Paris`): its fields.
                let fields = row_fields(&a.observation);
                if fields.len() > 1 {
                    super::relevance::best_lines(&ctx.step, &fields.join("\n")).join("\n")
                } else {
                    a.observation.clone()
                }
            }
            _ => {
                // Counts the step asked for are facts to quote too (see `facts`).
                let text = [a.observation.trim_end()].into_iter().chain(a.facts.iter().map(String::as_str)).collect::<Vec<_>>().join("\n");
                super::relevance::best_lines_beyond(&ctx.step, &text, &paths_in(&a.input)).join("\n")
            }
        })
        .collect();
    let past = ctx.past_steps.iter().rev().filter(|s| !s.failed).map(|s| s.result.as_str());
    grammars::answer_choices(obs.iter().map(String::as_str).chain(past), limits)
}

/// The file paths among an action's input strings (one word with a `/` or an extension):
/// what located an observation, not what the step asks of it.
fn paths_in(input: &Value) -> String {
    let Some(fields) = input.as_object() else {
        return String::new();
    };
    fields
        .values()
        .filter_map(Value::as_str)
        .filter(|v| !v.trim().contains(char::is_whitespace) && (v.contains('/') || v.rsplit_once('.').is_some_and(|(_, ext)| ext.chars().all(char::is_alphabetic) && !ext.is_empty())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `label: value` fields of a one-line row as the SQL tool prints it (`id: 3, name:
/// Carol`), or nothing for a line that is not such a row.
fn row_fields(line: &str) -> Vec<&str> {
    let fields: Vec<&str> = line.trim().split(", ").collect();
    if fields.iter().all(|f| f.split_once(": ").is_some_and(|(label, _)| !label.is_empty() && !label.contains(' '))) {
        fields
    } else {
        Vec::new()
    }
}

/// The results of earlier steps by position: `#E1` is the first step run.
fn results(ctx: &PromptContext) -> Vec<String> {
    ctx.past_steps.iter().map(|s| s.result.clone()).collect()
}

/// The spec of `tool` for the first action of a first attempt at the step, with the input
/// schema the tool offers for the step's words (see [`Tool::input_schema_for`]); after a
/// failure, the spec's own schema, so that a retry is not held to what just failed.
///
/// [`Tool::input_schema_for`]: super::tools::Tool::input_schema_for
fn narrowed(env: &StepEnv<'_>, ctx: &PromptContext, tool: &ToolSpec) -> ToolSpec {
    let mut spec = tool.clone();
    if ctx.failure.is_empty() {
        // The request as the tool will see it: `#E1` stands for its value (`Carol`).
        let words = step_words(&ctx.step, tool);
        let words = super::references::substitute(&Value::String(words.to_string()), &results(ctx))
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| words.to_string());
        if let Some(schema) = env.registry.get(&tool.name).and_then(|t| t.input_schema_for(&words)) {
            spec.input_schema = schema;
        }
    }
    spec
}

/// What a step naming `tool` asks of it: the words after `Use <tool> to`.
fn step_words<'a>(step: &'a str, tool: &ToolSpec) -> &'a str {
    let words = step.trim().strip_prefix("Use ").and_then(|r| r.strip_prefix(tool.name.as_str())).unwrap_or(step).trim_start();
    words.strip_prefix("to ").unwrap_or(words).trim()
}

/// Whether the last action repeats an earlier one of the attempt (same tool, same input): a
/// small model that asks again for what it has keeps asking, and the answer is in hand.
fn repeats_itself(actions: &[ActionRecord]) -> bool {
    match actions.split_last() {
        Some((last, before)) => before.iter().any(|a| a.tool == last.tool && a.input == last.input),
        None => false,
    }
}

/// The tool a step names (`Use <tool> to …`, as the plan grammar writes steps), if it exists.
fn named_tool<'a>(step: &str, specs: &'a [ToolSpec]) -> Option<&'a ToolSpec> {
    let rest = step.trim().strip_prefix("Use ")?;
    specs.iter().find(|t| rest.strip_prefix(t.name.as_str()).is_some_and(|r| r.starts_with(' ') || r.is_empty()))
}

/// A step naming a tool that reads requests in words (`Use calculator to divide #E1 by 5`)
/// is tried first with its own words as that input (see [`ToolSpec::words_field`]), without
/// a model call. Only on a first attempt: `None` (the model writes the input) when the step
/// names no such tool, and after a failed try the step's retry is the model's.
async fn in_words(
    env: &StepEnv<'_>,
    ctx: &PromptContext,
    index: usize,
    actions: &mut Vec<ActionRecord>,
    specs: &[ToolSpec],
) -> Result<Option<Outcome>, Halt> {
    if !ctx.failure.is_empty() {
        return Ok(None);
    }
    let Some(tool) = named_tool(&ctx.step, specs) else {
        return Ok(None);
    };
    let Some(field) = &tool.words_field else {
        return Ok(None);
    };
    // Only the plan grammar's own form, `Use <tool> to <words>`.
    let canonical = ctx.step.trim().strip_prefix("Use ").and_then(|r| r.strip_prefix(tool.name.as_str())).is_some_and(|r| r.starts_with(" to "));
    let words = step_words(&ctx.step, tool);
    if !canonical || words.is_empty() {
        return Ok(None);
    }
    // Quantities the step names that earlier tools stated (`the seed budget` → `380`).
    let words = super::named_values::put_in(words, &super::named_values::stated(&ctx.past_steps));
    let mut input = serde_json::Map::new();
    input.insert(field.clone(), Value::String(words));
    let input = Value::Object(input);
    if tool.validate(&input).is_err() {
        return Ok(None);
    }
    let thought = format!("The step says it in words: {} reads them.", tool.name);
    let record = run_tool(env, index, &ctx.step, thought, tool.name.clone(), input, &results(ctx)).await?;
    let outcome = if record.error {
        (StepStatus::Failed, record.observation.clone())
    } else {
        (StepStatus::Done, record.observation.clone())
    };
    actions.push(record);
    Ok(Some(outcome))
}

async fn react(
    env: &StepEnv<'_>,
    ctx: &PromptContext,
    index: usize,
    actions: &mut Vec<ActionRecord>,
    sampling: &SamplingParams,
) -> Result<Outcome, Halt> {
    let specs = env.registry.specs();
    if let Some(outcome) = in_words(env, ctx, index, actions, &specs).await? {
        return Ok(outcome);
    }
    let messages = ctx.messages(env.templates, "executor.jinja")?;
    let mut scratchpad = String::new();
    let named_spec = named_tool(&ctx.step, &specs);
    let named = named_spec.map(|t| vec![narrowed(env, ctx, t)]);
    // Later actions may use any tool but a last-resort one (the person), unless the step
    // names it: unsure of what a file said, a small executor asks the person instead of
    // reading the observation it has.
    let later: Vec<ToolSpec> =
        specs.iter().filter(|t| !t.last_resort || named_spec.is_some_and(|n| n.name == t.name)).cloned().collect();
    let later = if later.is_empty() { specs.clone() } else { later };
    for _ in 0..env.config.max_iterations.max(1) {
        // The first action of a step that names its tool uses that tool: the planner chose it.
        let offered = match &named {
            Some(t) if actions.is_empty() => t,
            _ => &later,
        };
        let grammar = grammars::executor(
            env.templates,
            offered,
            &env.config.limits,
            &choices(ctx, actions, &env.config.limits),
            &ctx.step,
            !actions.is_empty(),
            !repeats_itself(actions),
        )?;
        let req = LlmRequest {
            purpose: Purpose::Execute,
            messages: messages.clone(),
            assistant_prefix: scratchpad.clone(),
            grammar: Some(grammar),
            sampling: sampling.clone(),
            max_tokens: 768,
        };
        let resp = env.caller.call(env.llm, "executor", req).await?;
        match parse::react(&resp.text, &specs) {
            Err(e) => return Ok((StepStatus::Failed, format!("the step's output did not parse: {e}"))),
            Ok(ReactStep::FinalAnswer { answer, .. }) => return Ok((StepStatus::Done, answer)),
            Ok(ReactStep::Action { thought, call }) => {
                let record = run_tool(env, index, &ctx.step, thought, call.tool, call.input, &results(ctx)).await?;
                scratchpad.push_str(&resp.text);
                if !scratchpad.ends_with('\n') {
                    scratchpad.push('\n');
                }
                scratchpad.push_str(&format!("Observation: {}\n", record.observation));
                let failed = record.error.then(|| record.observation.clone());
                actions.push(record);
                if let Some(reason) = failed {
                    return Ok((StepStatus::Failed, reason));
                }
            }
        }
    }
    Ok((StepStatus::Failed, format!(
        "no final answer after {} Thought/Action rounds",
        env.config.max_iterations.max(1)
    )))
}

async fn direct(
    env: &StepEnv<'_>,
    ctx: &PromptContext,
    index: usize,
    actions: &mut Vec<ActionRecord>,
    sampling: &SamplingParams,
) -> Result<Outcome, Halt> {
    let specs = env.registry.specs();
    let offered: Vec<ToolSpec> = match named_tool(&ctx.step, &specs) {
        Some(t) => vec![t.clone()],
        None => specs.clone(),
    };
    let req = LlmRequest {
        purpose: Purpose::Execute,
        messages: ctx.messages(env.templates, "executor.jinja")?,
        assistant_prefix: String::new(),
        grammar: Some(grammars::direct(env.templates, &offered)?),
        sampling: sampling.clone(),
        max_tokens: 512,
    };
    let resp = env.caller.call(env.llm, "executor", req).await?;
    let call = match parse::direct(&resp.text, &specs) {
        Ok(c) => c,
        Err(e) => return Ok((StepStatus::Failed, format!("the tool call did not parse: {e}"))),
    };
    let record = run_tool(env, index, &ctx.step, String::new(), call.tool, call.input, &results(ctx)).await?;
    let outcome = if record.error {
        (StepStatus::Failed, record.observation.clone())
    } else {
        (StepStatus::Done, record.observation.clone())
    };
    actions.push(record);
    Ok(outcome)
}

/// Runs `tool` on `input` for `request` (the step), with the references in `input` (`#E1` …)
/// replaced by the values of `results` (`results[0]` is `#E1`). An unknown reference is an
/// error observation.
pub(crate) async fn run_tool(
    env: &StepEnv<'_>,
    index: usize,
    request: &str,
    thought: String,
    tool: String,
    input: Value,
    results: &[String],
) -> Result<ActionRecord, Halt> {
    env.caller.emit(Event::Action {
        step: index,
        thought: thought.clone(),
        tool: tool.clone(),
        input: input.clone(),
    });
    let call = async {
        match super::references::substitute(&input, results) {
            Ok(resolved) => env.registry.call(&tool, &resolved).await,
            Err(e) => super::tools::Observation {
                text: format!("Error: {e}"),
                error: true,
                elapsed_secs: 0.0,
            },
        }
    };
    let time_left = env.caller.budgets().time_left();
    let limited = async {
        match time_left {
            Some(left) => match tokio::time::timeout(left, call).await {
                Ok(o) => Ok(o),
                Err(_) => {
                    let spent = env.caller.budgets().exhausted();
                    Err(Halt::Budget(spent.unwrap_or(super::events::Budget::Time)))
                }
            },
            None => Ok(call.await),
        }
    };
    // A stop asked for during a tool call drops the call (which cancels its blocking work).
    let obs = tokio::select! {
        o = limited => o?,
        () = env.caller.interrupt.triggered() => return Err(Halt::Interrupted),
    };
    let facts = if obs.error { Vec::new() } else { super::facts::line_counts(request, &obs.text) };
    let (text, truncated) = truncate(&obs.text, env.config.observation_tokens, env.count_tokens);
    if !obs.error {
        *env.caller.last_observation.lock().unwrap_or_else(|e| e.into_inner()) = Some(text.clone());
    }
    env.caller.emit(Event::Observation {
        step: index,
        tool: tool.clone(),
        text: text.clone(),
        error: obs.error,
        truncated,
        elapsed_secs: obs.elapsed_secs,
    });
    Ok(ActionRecord {
        thought,
        tool,
        input,
        observation: text,
        error: obs.error,
        truncated,
        elapsed_secs: obs.elapsed_secs,
        facts,
    })
}

/// Cuts `text` to at most `cap` tokens, saying so.
pub fn truncate(text: &str, cap: usize, count: &(dyn Fn(&str) -> usize + Send + Sync)) -> (String, bool) {
    let total = count(text);
    if total <= cap {
        return (text.to_string(), false);
    }
    // The longest prefix (on a character boundary) that fits, by bisection.
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let (mut lo, mut hi) = (0usize, bounds.len() - 1);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count(&text[..bounds[mid]]) <= cap {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let kept = &text[..bounds[lo]];
    (
        format!("{kept}\n[observation truncated: {} of {total} tokens shown]", count(kept)),
        true,
    )
}

/// How earlier steps look to later prompts.
pub(crate) fn past_step(record: &StepRecord) -> super::prompt::PastStep {
    super::prompt::PastStep {
        name: super::references::name(record.index),
        step: record.step.clone(),
        result: record.result.clone(),
        failed: record.status == StepStatus::Failed,
        actions: record
            .actions()
            .map(|a| ActionView {
                tool: a.tool.clone(),
                input: a.input.clone(),
                observation: a.observation.clone(),
                error: a.error,
            })
            .collect(),
    }
}
