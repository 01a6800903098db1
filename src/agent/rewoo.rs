//! ReWOO (Xu et al. 2023, "ReWOO: Decoupling Reasoning from Observations"): the planner
//! writes the whole tool program in one constrained call, the runtime runs it with no model
//! call per step, and one solver call writes the answer from the evidence.
//!
//! ```text
//! #E1 = sql_query[{"query": "SELECT age FROM users WHERE name = 'Carol'"}]
//! #E2 = calculator[{"expression": "#E1 times 2"}]
//! ```
//!
//! Later calls use earlier results by name ([`super::references`]), so no model retypes a
//! value. The grammar (`templates/grammars/rewoo.lark.j2`) admits only registered tools and
//! inputs valid JSON for each tool's schema. A call that fails ends the program; the runner
//! then asks for a new program, telling the planner what failed.

use serde_json::Value;

use super::grammars::{self, Limits};
use super::llm::{LlmRequest, Purpose};
use super::prompt::{Evidence, PromptContext};
use super::templates::Templates;
use super::Error;
use crate::decode::SamplingParams;

/// One call of a program.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `#E1`, …
    pub name: String,
    /// Name of the tool to call.
    pub tool: String,
    /// The input as written, `#E` references not yet replaced (a JSON object).
    pub input: Value,
}

/// The program's lines (`#E1 = tool[{…}]`), checked to parse with [`parse_call`], numbered in
/// order from 1, at most `max_steps`. Calls at the end that repeat an earlier call exactly are
/// dropped: a small model tends to fill every line the grammar allows, and a repeated call
/// only returns what its first run did. (Repeats in the middle stay, so names keep their
/// meaning.)
pub fn parse_program(text: &str, max_steps: usize) -> Result<Vec<String>, Error> {
    let mut lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if lines.is_empty() {
        return Err(Error::Parse("the program has no calls".into()));
    }
    if lines.len() > max_steps {
        return Err(Error::Parse(format!("the program has {} calls, more than {max_steps}", lines.len())));
    }
    let mut calls = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let c = parse_call(line, i + 1)?;
        calls.push((c.tool, c.input));
    }
    while calls.len() > 1 && calls[..calls.len() - 1].contains(&calls[calls.len() - 1]) {
        calls.pop();
        lines.pop();
    }
    Ok(lines)
}

/// `#E<index> = tool[{json object}]` → the call. The input is checked to be a JSON object;
/// its schema is checked after references are substituted, when it runs.
pub fn parse_call(line: &str, index: usize) -> Result<Call, Error> {
    let name = super::references::name(index);
    let rest = line
        .trim()
        .strip_prefix(&format!("{name} = "))
        .ok_or_else(|| Error::Parse(format!("call {index} does not start with `{name} = `: {line:?}")))?;
    let (tool, input) = rest
        .split_once('[')
        .ok_or_else(|| Error::Parse(format!("call {index} has no `[`: {line:?}")))?;
    let input = input
        .strip_suffix(']')
        .ok_or_else(|| Error::Parse(format!("call {index} does not end with `]`: {line:?}")))?;
    let tool = tool.trim();
    if tool.is_empty() || !tool.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::Parse(format!("call {index} names no tool: {line:?}")));
    }
    let input: Value = serde_json::from_str(input).map_err(|e| Error::Parse(format!("the input of call {index} is not JSON: {e}")))?;
    if !input.is_object() {
        return Err(Error::Parse(format!("the input of call {index} is not a JSON object")));
    }
    Ok(Call {
        name,
        tool: tool.to_string(),
        input,
    })
}

/// Most tokens one program line may take, so that no program the grammar admits is cut: a
/// tool input string may be up to 400 characters (SQL), a token each at worst, plus the name
/// and JSON around it.
const TOKENS_PER_CALL: usize = 480;

/// The request for a program for `ctx.objective` (with `ctx.failure` when the last one failed).
pub fn plan_request(templates: &Templates, ctx: &PromptContext, limits: &Limits, sampling: &SamplingParams) -> Result<LlmRequest, Error> {
    Ok(LlmRequest {
        purpose: Purpose::Plan,
        messages: ctx.messages(templates, "rewoo.jinja")?,
        assistant_prefix: String::new(),
        grammar: Some(grammars::rewoo(templates, &ctx.tools, limits)?),
        sampling: sampling.clone(),
        max_tokens: limits.max_steps * TOKENS_PER_CALL + 32,
    })
}

/// The solver's request: `ctx.evidence` in the prompt, an answer quoted from it or written.
pub fn solve_request(templates: &Templates, ctx: &PromptContext, limits: &Limits, sampling: &SamplingParams) -> Result<LlmRequest, Error> {
    let observations = ctx.evidence.iter().rev().filter(|e| !e.error).map(|e| e.observation.as_str());
    let choices = grammars::answer_choices(observations, limits);
    Ok(LlmRequest {
        purpose: Purpose::Solve,
        messages: ctx.messages(templates, "solver.jinja")?,
        assistant_prefix: String::new(),
        grammar: Some(grammars::solver(templates, limits, &choices)?),
        sampling: sampling.clone(),
        max_tokens: limits.max_answer_chars + 16,
    })
}

/// The answer in the solver's output (`Answer: …`).
pub fn parse_answer(text: &str) -> Result<String, Error> {
    let answer = text
        .strip_prefix("Answer: ")
        .ok_or_else(|| Error::Parse(format!("the solver's output does not start with `Answer: `: {text:?}")))?
        .trim_end_matches('\n');
    if answer.trim().is_empty() || answer.contains('\n') {
        return Err(Error::Parse("the answer must be one non-empty line".into()));
    }
    Ok(super::parse::tidy_answer(answer))
}

/// How a failed call reads to the planner that writes the next program.
pub fn failure(e: &Evidence) -> String {
    format!("{} = {}[{}] gave {}", e.name, e.tool, e.input, e.observation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn programs_parse_strictly() {
        let text = "#E1 = calculator[{\"expression\": \"17 * 23\"}]\n#E2 = calculator[{\"expression\": \"#E1 / 5\"}]\n";
        let lines = parse_program(text, 4).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            parse_call(&lines[1], 2).unwrap(),
            Call { name: "#E2".into(), tool: "calculator".into(), input: json!({"expression": "#E1 / 5"}) }
        );
        for bad in [
            "",
            "#E2 = calculator[{\"expression\": \"1\"}]",
            "#E1 = calculator{\"expression\": \"1\"}",
            "#E1 = calculator[{\"expression\": \"1\"}",
            "#E1 = [{}]",
            "#E1 = calc ulator[{}]",
            "#E1 = calculator[[1]]",
            "#E1 = calculator[{bad json}]",
        ] {
            assert!(parse_program(bad, 4).is_err(), "{bad:?}");
        }
        assert!(parse_program(text, 1).is_err());
        let repeats = "#E1 = a[{\"x\": 1}]\n#E2 = a[{\"x\": 2}]\n#E3 = a[{\"x\": 1}]\n#E4 = a[{\"x\": 2}]\n";
        assert_eq!(parse_program(repeats, 4).unwrap().len(), 2);
    }

    #[test]
    fn answers_parse() {
        assert_eq!(parse_answer("Answer: 78.2\n").unwrap(), "78.2");
        assert!(parse_answer("78.2").is_err());
        assert!(parse_answer("Answer:  \n").is_err());
    }
}
