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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::decode::constraint::GrammarFactory;
    use crate::model::gguf::{Array, GgufHeader, Strings, Value};
    use crate::model::Tokenizer;

    /// A byte-level BPE vocabulary with no merges, so that token `b` is byte `b`, plus an
    /// end token (256): enough to walk any text through a grammar byte by byte.
    fn factory() -> GrammarFactory {
        let mut tokens: Vec<String> = crate::model::tokenizer::byte_level_chars().iter().map(char::to_string).collect();
        tokens.push("<|end|>".into());
        let mut types = vec![1i32; 256];
        types.push(3);
        let meta = vec![
            ("tokenizer.ggml.model".to_string(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".to_string(), Value::String("qwen2".into())),
            ("tokenizer.ggml.tokens".to_string(), Value::Array(Array::String(Strings::from_strs(tokens.iter().map(String::as_str))))),
            ("tokenizer.ggml.token_type".to_string(), Value::Array(Array::I32(types))),
            ("tokenizer.ggml.merges".to_string(), Value::Array(Array::String(Strings::default()))),
            ("tokenizer.ggml.eos_token_id".to_string(), Value::U32(256)),
        ];
        let tok = Tokenizer::from_gguf(&GgufHeader::from_metadata(meta)).unwrap();
        GrammarFactory::new(Arc::new(tok), &[256], 257).unwrap()
    }

    /// Whether `grammar` matches `text` exactly: every byte allowed in turn, then the end.
    fn matches(f: &GrammarFactory, grammar: &Grammar, text: &str) -> bool {
        let mut c = f.compile(grammar).unwrap();
        for &b in text.as_bytes() {
            let mut logits = vec![0f32; 257];
            if c.is_stopped() || c.apply_mask(&mut logits).is_err() || !logits[b as usize].is_finite() {
                return false;
            }
            c.commit(b as u32).unwrap();
        }
        c.is_accepting().unwrap()
    }

    #[track_caller]
    fn table(f: &GrammarFactory, grammar: &Grammar, accept: &[&str], reject: &[&str]) {
        let mut failures = Vec::new();
        for t in accept {
            if !matches(f, grammar, t) {
                failures.push(format!("rejected {t:?}"));
            }
        }
        for t in reject {
            if matches(f, grammar, t) {
                failures.push(format!("accepted {t:?}"));
            }
        }
        assert!(failures.is_empty(), "{}\n{grammar:?}", failures.join("\n"));
    }

    fn calculator() -> ToolSpec {
        ToolSpec::new(
            "calculator",
            "Evaluates arithmetic.",
            json!({"type": "object", "properties": {"expression": {"type": "string", "maxLength": 20}},
                   "required": ["expression"], "additionalProperties": false}),
            json!({"expression": "1+1"}),
        )
    }

    fn read_file() -> ToolSpec {
        ToolSpec::new(
            "read_file",
            "Reads a file.",
            json!({"type": "object", "properties": {"path": {"type": "string"}},
                   "required": ["path"], "additionalProperties": false}),
            json!({"path": "a.txt"}),
        )
    }

    const LIMITS: Limits = Limits {
        max_steps: 2,
        max_step_chars: 20,
        max_thought_chars: 20,
        max_answer_chars: 12,
        max_written_answer_words: 3,
    };

    #[test]
    fn judge() {
        let t = Templates::builtin().unwrap();
        let g = super::judge(&t, &[vec!["a".into()], vec!["b".into()], vec!["c".into()]]).unwrap();
        table(
            &factory(),
            &g,
            &["Best plan: 1\n", "Best plan: 3\n"],
            &["Best plan: 4\n", "Best plan: 0\n", "Best plan: 1", "Best plan: 12\n", "best plan: 1\n", "Best plan:  1\n", ""],
        );
    }

    #[test]
    fn solver_quotes_or_writes_from_result_words() {
        let t = Templates::builtin().unwrap();
        let choices = vec!["42 apples".to_string(), "Alice is 30".to_string()];
        let g = super::solver(&t, &LIMITS, &choices).unwrap();
        table(
            &factory(),
            &g,
            &[
                "Answer: 42 apples",
                "Answer: Alice is 30",
                "Answer: (in my words) Alice",
                "Answer: (in my words) Alice is 42",
            ],
            &[
                "Answer: 43 apples",
                "Answer: 42",
                "Answer: (in my words) Bob",
                "Answer: (in my words) 42 apples is 30",
                "Answer: (in my words) ",
                "Answer: (in my words) Alice  is",
                "42 apples",
                "Answer: 42 apples\nmore",
            ],
        );
    }

    #[test]
    fn solver_without_choices_takes_one_bounded_line() {
        let t = Templates::builtin().unwrap();
        let g = super::solver(&t, &LIMITS, &[]).unwrap();
        table(
            &factory(),
            &g,
            &["Answer: x", "Answer: twelve chars"],
            &["Answer: ", "Answer: thirteen char", "Answer: two\nlines", "Answer:x"],
        );
    }

    #[test]
    fn rewoo_program() {
        let t = Templates::builtin().unwrap();
        let g = super::rewoo(&t, &[calculator(), read_file()], &LIMITS).unwrap();
        table(
            &factory(),
            &g,
            &[
                "#E1 = calculator[{\"expression\": \"1+2\"}]\n",
                "#E1 = read_file[{\"path\": \"a.txt\"}]\n#E2 = calculator[{\"expression\": \"#E1*2\"}]\n",
            ],
            &[
                "#E2 = calculator[{\"expression\": \"1+2\"}]\n",
                "#E1 = calculator[{\"expression\": \"1+2\"}]",
                "#E1 = shell[{\"command\":\"ls\"}]\n",
                "#E1 = calculator[{\"path\": \"a.txt\"}]\n",
                "#E1 = calculator[{\"expression\": \"1+2\", \"x\": 1}]\n",
                "#E1 = calculator[{\"expression\": \"123456789012345678901\"}]\n",
                "#E1 = calculator[{}]\n",
                "#E1 = calculator[{\"expression\": \"1\"}]\n#E2 = calculator[{\"expression\": \"2\"}]\n#E3 = calculator[{\"expression\": \"3\"}]\n",
                "",
            ],
        );
        assert!(super::rewoo(&t, &[], &LIMITS).is_err());
    }

    #[test]
    fn direct_call() {
        let t = Templates::builtin().unwrap();
        let g = super::direct(&t, &[calculator()]).unwrap();
        table(
            &factory(),
            &g,
            &["{\"tool\": \"calculator\", \"input\": {\"expression\": \"2*3\"}}"],
            &[
                "{\"tool\": \"read_file\", \"input\": {\"path\": \"a\"}}",
                "{\"tool\": \"calculator\", \"input\": {\"expression\": 2}}",
                "{\"tool\": \"calculator\", \"input\": {\"expression\": \"2*3\"}",
            ],
        );
        assert!(super::direct(&t, &[]).is_err());
    }

    #[test]
    fn executor_before_and_after_an_observation() {
        let t = Templates::builtin().unwrap();
        let f = factory();
        let tools = [calculator()];
        let first = super::executor(&t, &tools, &LIMITS, &[], "Add two and three.", false, true).unwrap();
        table(
            &f,
            &first,
            &["Thought: I will add two and three\nAction: calculator\nAction Input: {\"expression\": \"2+3\"}\n"],
            &[
                "Thought: I will multiply\nAction: calculator\nAction Input: {\"expression\": \"2+3\"}\n",
                "Thought: I will add two and three\nAction: read_file\nAction Input: {\"path\": \"a\"}\n",
                "Thought: I will add two and three\nAction: calculator\nAction Input: {\"expression\": \"2+3\"}\nObservation: 5",
                "Thought: I will add two and three\nFinal Answer: 5",
            ],
        );
        let choices = vec!["5".to_string()];
        let after = super::executor(&t, &tools, &LIMITS, &choices, "Add two and three", true, true).unwrap();
        let done = "Thought: The observation has the result.\nFinal Answer: 5";
        let more = "Thought: I need another action.\nAction: calculator\nAction Input: {\"expression\": \"5\"}\n";
        table(&f, &after, &[done, more], &["Thought: The observation has the result.\nFinal Answer: 6"]);
        let last = super::executor(&t, &tools, &LIMITS, &choices, "Add two and three", true, false).unwrap();
        table(&f, &last, &[done], &[more]);
        assert!(super::executor(&t, &[], &LIMITS, &[], "x", false, true).is_err());
    }

    #[test]
    fn answer_choices_and_words() {
        let limits = Limits { max_answer_chars: 10, ..Limits::default() };
        let texts = ["total: 42", "[note]\n\n  short  \nthis line is far too long", "short"];
        assert_eq!(answer_choices(texts, &limits), vec!["42", "total: 42", "short"]);
        let many: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        assert_eq!(answer_choices(many.iter().map(String::as_str), &limits).len(), MAX_CHOICES);
        assert_eq!(answer_words(["Alice, (30) is older.", "is \"Bob\"!"]), vec!["Alice", "30", "is", "older", "Bob"]);
    }
}
