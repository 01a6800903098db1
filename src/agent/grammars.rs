//! The grammars that make the agent's model outputs parse, rendered from `templates/grammars`.

use serde::Serialize;

use crate::decode::constraint::compact_json;
use crate::decode::Grammar;

use super::templates::Templates;
use super::tools::ToolSpec;
use super::Error;

/// Bounds the grammars put on free text; every piece of text a model writes has a maximum
/// length, so no output can run on forever.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// Most steps a plan may have.
    pub max_steps: usize,
    /// Longest plan step, in characters.
    pub max_step_chars: usize,
    /// Longest thought, in characters.
    pub max_thought_chars: usize,
    /// Longest result line offered as a final answer to quote, in characters.
    pub max_answer_chars: usize,
    /// Most words in a final answer a model writes itself instead of quoting a result line.
    /// Each word is one that the objective or a result holds (see [`answer_words`]): a model
    /// can rephrase and combine ("Alice is older"), but not invent a number.
    pub max_written_answer_words: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: 5,
            max_step_chars: 100,
            max_thought_chars: 120,
            max_answer_chars: 200,
            max_written_answer_words: 8,
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    tools: Vec<ToolSpec>,
    max_steps: usize,
    max_step_chars: usize,
    max_thought_chars: usize,
    max_answer_chars: usize,
    max_written_answer_words: usize,
    answer_choices: &'a [String],
    answer_words: Vec<String>,
    can_continue: bool,
    candidates: Vec<Vec<String>>,
    step: String,
    has_observation: bool,
    objective: String,
    clauses: Vec<PlanClause>,
}

/// A clause of the objective as the plan grammar offers it: the step's text and the tools it
/// may name.
#[derive(Serialize)]
struct PlanClause {
    opening: String,
    tools: Vec<String>,
}

fn context<'a>(tools: &[ToolSpec], limits: &Limits, answer_choices: &'a [String]) -> Context<'a> {
    Context {
        // Tool inputs are written as compact JSON (see `compact_json`).
        tools: tools
            .iter()
            .map(|t| ToolSpec {
                input_schema: compact_json(t.input_schema.clone()),
                ..t.clone()
            })
            .collect(),
        max_steps: limits.max_steps.max(1),
        max_step_chars: limits.max_step_chars.max(1),
        max_thought_chars: limits.max_thought_chars.max(1),
        max_answer_chars: limits.max_answer_chars.max(1),
        max_written_answer_words: limits.max_written_answer_words.max(1),
        answer_choices,
        answer_words: answer_words(answer_choices.iter().map(String::as_str)),
        can_continue: true,
        candidates: Vec::new(),
        step: String::new(),
        has_observation: false,
        objective: String::new(),
        clauses: Vec::new(),
    }
}

/// Most answer choices a grammar offers.
const MAX_CHOICES: usize = 24;

/// The answers a grammar offers verbatim: for each of `texts` (observations, step results,
/// most recent first) the value of a one-line `label: value` result (see
/// [`references::value_of`](super::references::value_of)), then every line, trimmed, short
/// enough, not empty, without repeats.
pub fn answer_choices<'a>(texts: impl IntoIterator<Item = &'a str>, limits: &Limits) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in texts {
        let value = super::references::value_of(text);
        for line in std::iter::once(value.as_str()).filter(|v| !v.contains('\n')).chain(text.lines()) {
            let c = line.trim();
            if !c.is_empty()
                && !c.starts_with('[')
                && c.chars().count() <= limits.max_answer_chars
                && !out.iter().any(|o| o == c)
                && out.len() < MAX_CHOICES
            {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// Most distinct words a written answer may draw on.
const MAX_ANSWER_WORDS: usize = 256;

/// The words a written answer may use: those of `texts` (the answer choices), split at white
/// space, stripped of surrounding punctuation, each once. A 135M model asked to write freely
/// invents numbers, and offered the objective's words it restates the question; drawing on
/// these it can only recombine what the tools returned.
pub fn answer_words<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in texts {
        for w in text.split_whitespace() {
            let w = w.trim_matches(|c: char| ",;:!?\"'()[]".contains(c)).trim_end_matches('.');
            if !w.is_empty() && w.chars().count() <= 40 && !out.iter().any(|o| o == w) && out.len() < MAX_ANSWER_WORDS {
                out.push(w.to_string());
            }
        }
    }
    out
}

/// A numbered plan whose steps each name one of `tools`. With `copy_clauses`, the steps are
/// the objective's clauses in order (see [`clauses`](super::clauses)); otherwise free text, with
/// `objective` (if not empty) offered verbatim as what a step does.
pub fn plan(t: &Templates, tools: &[ToolSpec], limits: &Limits, objective: &str, copy_clauses: bool) -> Result<Grammar, Error> {
    let objective = one_line(objective);
    let ctx = Context {
        clauses: if copy_clauses && !objective.is_empty() {
            super::clauses::split(&objective, limits.max_steps)
                .into_iter()
                .map(|c| PlanClause {
                    tools: super::relevance::best_for(&c.text, tools),
                    opening: c.opening,
                })
                .collect()
        } else {
            Vec::new()
        },
        objective,
        ..context(tools, limits, &[])
    };
    Ok(Grammar::Lark(t.render("grammars/plan.lark.j2", ctx)?))
}

/// `text` on one line (a grammar literal must not contain the line end that closes a step).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `{"steps": [...]}` by JSON schema.
pub fn plan_json(t: &Templates, limits: &Limits) -> Result<Grammar, Error> {
    let text = t.render("grammars/plan.schema.json.j2", context(&[], limits, &[]))?;
    let schema = serde_json::from_str(&text)
        .map_err(|e| Error::Template(format!("grammars/plan.schema.json.j2 does not render JSON: {e}")))?;
    Ok(Grammar::JsonSchema(schema))
}

/// One ReAct round over `tools` for `step`; `has_observation` once a tool has answered;
/// another action only if `can_act`.
pub fn executor(
    t: &Templates,
    tools: &[ToolSpec],
    limits: &Limits,
    answer_choices: &[String],
    step: &str,
    has_observation: bool,
    can_act: bool,
) -> Result<Grammar, Error> {
    if tools.is_empty() {
        return Err(Error::Template("the executor needs at least one tool".into()));
    }
    let ctx = Context {
        step: step.trim().trim_end_matches('.').to_string(),
        has_observation,
        can_continue: can_act,
        ..context(tools, limits, answer_choices)
    };
    Ok(Grammar::Lark(t.render("grammars/executor.lark.j2", ctx)?))
}

/// The replanner's decision; `continue` is offered only when `can_continue` (steps remain), the
/// answer only when there are `answer_choices` to quote.
pub fn replan(
    t: &Templates,
    tools: &[ToolSpec],
    limits: &Limits,
    answer_choices: &[String],
    can_continue: bool,
    objective: &str,
) -> Result<Grammar, Error> {
    let ctx = Context {
        can_continue,
        objective: one_line(objective),
        ..context(tools, limits, answer_choices)
    };
    Ok(Grammar::Lark(t.render("grammars/replan.lark.j2", ctx)?))
}

/// A ReWOO tool program over `tools`: `#E1 = tool[{…}]` lines, at most `limits.max_steps`.
pub fn rewoo(t: &Templates, tools: &[ToolSpec], limits: &Limits) -> Result<Grammar, Error> {
    if tools.is_empty() {
        return Err(Error::Template("the ReWOO planner needs at least one tool".into()));
    }
    Ok(Grammar::Lark(t.render("grammars/rewoo.lark.j2", context(tools, limits, &[]))?))
}

/// The ReWOO solver's answer: one of `answer_choices`, or a few of their words.
pub fn solver(t: &Templates, limits: &Limits, answer_choices: &[String]) -> Result<Grammar, Error> {
    Ok(Grammar::Lark(t.render("grammars/solver.lark.j2", context(&[], limits, answer_choices))?))
}

/// The judge's pick among `candidates` plans.
pub fn judge(t: &Templates, candidates: &[Vec<String>]) -> Result<Grammar, Error> {
    let ctx = Context {
        candidates: candidates.to_vec(),
        ..context(&[], &Limits::default(), &[])
    };
    Ok(Grammar::Lark(t.render("grammars/judge.lark.j2", ctx)?))
}

/// One direct tool call as JSON.
pub fn direct(t: &Templates, tools: &[ToolSpec]) -> Result<Grammar, Error> {
    if tools.is_empty() {
        return Err(Error::Template("the direct executor needs at least one tool".into()));
    }
    Ok(Grammar::Lark(t.render("grammars/direct.lark.j2", context(tools, &Limits::default(), &[]))?))
}
