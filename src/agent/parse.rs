//! Strict parsers for what the agent's grammars let models write.
//!
//! The grammars make these parses succeed; the parsers still check everything (numbering,
//! lengths, tool names, JSON) so that a grammar edited by a user, or a scripted model in a test,
//! cannot slip a malformed output past the runtime.

use serde_json::Value;

use super::tools::ToolSpec;
use super::Error;

/// `1. step\n2. step\n…` → the steps, a step that repeats an earlier one word for word
/// dropped (a repeated step never helps: it would redo what is done).
pub fn plan(text: &str, max_steps: usize) -> Result<Vec<String>, Error> {
    let steps = without_repeats(plan_with_repeats(text, max_steps)?);
    if steps.is_empty() {
        return Err(Error::Parse("the plan has no steps but error text".into()));
    }
    Ok(steps)
}

/// The steps in order, each kept once, each cut before any error text a model copied into it
/// from a failure it was shown (`…: Error: SQL error: …`); a step left empty is dropped. A
/// plan is made of steps, never of error text. A repeat is the same words as an earlier
/// step, whatever their case, spacing or final stop: a plan that does one thing twice never
/// gains by it (a small model asked for four steps writes one four times).
pub fn without_repeats(steps: Vec<String>) -> Vec<String> {
    let words = |s: &str| -> String {
        s.trim_end_matches(['.', '!', '?', ' ']).split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
    };
    let mut out: Vec<String> = Vec::with_capacity(steps.len());
    for s in steps {
        let s = match s.find("Error:") {
            Some(i) => s[..i].trim_end().trim_end_matches(':').trim_end().to_string(),
            None => s,
        };
        if !s.is_empty() && !out.iter().any(|o| words(o) == words(&s)) {
            out.push(s);
        }
    }
    out
}

/// A step copied from the objective with its tool after it, `<clause> (tool: <tool>)`, as
/// every other step reads: `Use <tool> to <clause>`.
fn tool_last(step: &str) -> String {
    if let Some(body) = step.strip_suffix(')') {
        if let Some(i) = body.rfind(" (tool: ") {
            let tool = &body[i + " (tool: ".len()..];
            if !tool.is_empty() && !tool.contains(' ') {
                return format!("Use {tool} to {}", &body[..i]);
            }
        }
    }
    step.to_string()
}

fn plan_with_repeats(text: &str, max_steps: usize) -> Result<Vec<String>, Error> {
    let mut steps = Vec::new();
    for (i, line) in text.trim_end_matches('\n').split('\n').enumerate() {
        let want = format!("{}. ", i + 1);
        let step = line
            .strip_prefix(&want)
            .ok_or_else(|| Error::Parse(format!("plan line {} does not start with `{want}`: {line:?}", i + 1)))?;
        if step.trim().is_empty() {
            return Err(Error::Parse(format!("plan step {} is empty", i + 1)));
        }
        steps.push(tool_last(step.trim()));
    }
    if steps.is_empty() || text.trim().is_empty() {
        return Err(Error::Parse("the plan has no steps".into()));
    }
    if steps.len() > max_steps {
        return Err(Error::Parse(format!("the plan has {} steps, more than {max_steps}", steps.len())));
    }
    Ok(steps)
}

/// `{"steps": [...]}` → the steps.
pub fn plan_json(text: &str, max_steps: usize) -> Result<Vec<String>, Error> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::Parse(format!("plan is not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| Error::Parse("plan is not a JSON object".into()))?;
    if obj.len() != 1 {
        return Err(Error::Parse("plan object must have exactly the key `steps`".into()));
    }
    let arr = obj
        .get("steps")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Parse("plan has no `steps` array".into()))?;
    let steps = arr
        .iter()
        .map(|s| match s.as_str() {
            Some(s) if !s.trim().is_empty() && !s.contains('\n') => Ok(s.trim().to_string()),
            _ => Err(Error::Parse(format!("plan step {s} is not a one-line string"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if steps.is_empty() || steps.len() > max_steps {
        return Err(Error::Parse(format!("the plan has {} steps (1 to {max_steps} allowed)", steps.len())));
    }
    let steps = without_repeats(steps);
    if steps.is_empty() {
        return Err(Error::Parse("the plan has no steps but error text".into()));
    }
    Ok(steps)
}

/// A final answer as reported: trimmed, a word repeated in a row said once. The answer
/// grammar lets a model write a few words of the results' own, and a small model given that
/// freedom tends to repeat the word it likes (`4 4 4 4`).
pub fn tidy_answer(answer: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for w in answer.split_whitespace() {
        if out.last() != Some(&w) {
            out.push(w);
        }
    }
    out.join(" ")
}

/// A tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Name of one of the tools offered.
    pub tool: String,
    /// The input, valid against the tool's schema.
    pub input: Value,
}

/// What one ReAct step wrote.
#[derive(Debug, Clone, PartialEq)]
pub enum ReactStep {
    /// Call a tool.
    Action {
        /// What the model wrote on its Thought line.
        thought: String,
        /// The call on its Action and Action Input lines.
        call: ToolCall,
    },
    /// Finish the step with an answer.
    FinalAnswer {
        /// What the model wrote on its Thought line.
        thought: String,
        /// The step's result, one line, tidied by [`tidy_answer`].
        answer: String,
    },
}

/// `Thought: …\nAction: tool\nAction Input: {json}\n` or `Thought: …\nFinal Answer: …`,
/// with the tool known and its input valid against its schema.
pub fn react(text: &str, tools: &[ToolSpec]) -> Result<ReactStep, Error> {
    let rest = text
        .strip_prefix("Thought: ")
        .ok_or_else(|| Error::Parse(format!("step does not start with `Thought: `: {text:?}")))?;
    let (thought, rest) = rest
        .split_once('\n')
        .ok_or_else(|| Error::Parse("the thought is not followed by an action or answer".into()))?;
    if thought.trim().is_empty() {
        return Err(Error::Parse("the thought is empty".into()));
    }
    let thought = thought.trim().to_string();
    if let Some(answer) = rest.strip_prefix("Final Answer: ") {
        let answer = answer.trim_end_matches('\n');
        if answer.trim().is_empty() || answer.contains('\n') {
            return Err(Error::Parse("the final answer must be one non-empty line".into()));
        }
        return Ok(ReactStep::FinalAnswer {
            thought,
            answer: tidy_answer(answer),
        });
    }
    let rest = rest
        .strip_prefix("Action: ")
        .ok_or_else(|| Error::Parse(format!("expected `Action: ` or `Final Answer: `, got {rest:?}")))?;
    let (tool, rest) = rest
        .split_once('\n')
        .ok_or_else(|| Error::Parse("the action is not followed by its input".into()))?;
    let input = rest
        .strip_prefix("Action Input: ")
        .ok_or_else(|| Error::Parse(format!("expected `Action Input: `, got {rest:?}")))?;
    let input = input.strip_suffix('\n').unwrap_or(input);
    let call = tool_call(tool, input, tools)?;
    Ok(ReactStep::Action { thought, call })
}

/// `{"tool": "name", "input": {...}}` from the direct executor.
pub fn direct(text: &str, tools: &[ToolSpec]) -> Result<ToolCall, Error> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::Parse(format!("tool call is not JSON: {e}")))?;
    let tool = v
        .get("tool")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Parse("tool call has no `tool` name".into()))?;
    let input = v.get("input").ok_or_else(|| Error::Parse("tool call has no `input`".into()))?;
    tool_call(tool, &input.to_string(), tools)
}

fn tool_call(tool: &str, input: &str, tools: &[ToolSpec]) -> Result<ToolCall, Error> {
    let spec = tools
        .iter()
        .find(|t| t.name == tool)
        .ok_or_else(|| Error::Parse(format!("unknown tool `{tool}`")))?;
    let input: Value = serde_json::from_str(input)
        .map_err(|e| Error::Parse(format!("input of `{tool}` is not JSON: {e}")))?;
    spec.validate(&input).map_err(Error::Parse)?;
    Ok(ToolCall {
        tool: tool.to_string(),
        input,
    })
}

/// The replanner's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go on with the next step of the plan.
    Continue,
    /// Replace the rest of the plan with these steps.
    Replan(Vec<String>),
    /// End the run with this answer.
    Answer(String),
}

/// `Decision: continue\n`, `Decision: replan\n<plan>` or `Decision: answer\nFinal Answer: …`.
pub fn decision(text: &str, max_steps: usize) -> Result<Decision, Error> {
    let rest = text
        .strip_prefix("Decision: ")
        .ok_or_else(|| Error::Parse(format!("decision does not start with `Decision: `: {text:?}")))?;
    if rest.trim_end() == "continue" {
        return Ok(Decision::Continue);
    }
    if let Some(p) = rest.strip_prefix("replan\n") {
        return plan(p, max_steps).map(Decision::Replan);
    }
    if let Some(a) = rest.strip_prefix("answer\nFinal Answer: ") {
        let a = a.trim_end_matches('\n');
        if a.trim().is_empty() || a.contains('\n') {
            return Err(Error::Parse("the final answer must be one non-empty line".into()));
        }
        return Ok(Decision::Answer(tidy_answer(a)));
    }
    Err(Error::Parse(format!("unknown decision {rest:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc() -> Vec<ToolSpec> {
        vec![ToolSpec::new(
            "calculator",
            "Computes.",
            serde_json::json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"], "additionalProperties": false}),
            serde_json::json!({"expression": "1 + 1"}),
        )]
    }

    #[test]
    fn a_step_said_again_is_dropped() {
        let text = "1. Use ask_human to ask the person to calculate 12 * 12.\n2. Use ask_human to ask the person to calculate 12 * 12.\n3. use ask_human to ask  the person to calculate 12 * 12\n4. Use calculator to add 1 to #E1\n";
        assert_eq!(
            plan(text, 4).unwrap(),
            ["Use ask_human to ask the person to calculate 12 * 12.", "Use calculator to add 1 to #E1"]
        );
    }

    #[test]
    fn plans_parse_strictly() {
        assert_eq!(plan("1. a\n2. b\n", 5).unwrap(), vec!["a", "b"]);
        assert_eq!(plan("1. a\n2. b\n3. a\n4. a\n", 5).unwrap(), vec!["a", "b"]);
        assert_eq!(plan("1. Use sql_query to count: Error: SQL error: x\n2. b\n", 5).unwrap(), vec!["Use sql_query to count", "b"]);
        assert!(plan("1. a\n3. b\n", 5).is_err());
        assert!(plan("2. a\n", 5).is_err());
        assert!(plan("1. a\n2. b\n3. c\n", 2).is_err());
        assert!(plan("", 5).is_err());
        assert_eq!(plan_json(r#"{"steps": ["x", "y"]}"#, 3).unwrap(), vec!["x", "y"]);
        assert!(plan_json(r#"{"steps": []}"#, 3).is_err());
        assert!(plan_json(r#"{"steps": ["x"], "extra": 1}"#, 3).is_err());
    }

    #[test]
    fn react_steps_parse_and_validate() {
        let a = react("Thought: add\nAction: calculator\nAction Input: {\"expression\": \"1+2\"}\n", &calc()).unwrap();
        assert!(matches!(a, ReactStep::Action { ref call, .. } if call.input["expression"] == "1+2"));
        let f = react("Thought: done\nFinal Answer: 3", &calc()).unwrap();
        assert_eq!(f, ReactStep::FinalAnswer { thought: "done".into(), answer: "3".into() });
        assert!(react("Thought: x\nAction: shell\nAction Input: {}\n", &calc()).is_err());
        assert!(react("Thought: x\nAction: calculator\nAction Input: {\"expr\": 1}\n", &calc()).is_err());
        assert!(react("Action: calculator\n", &calc()).is_err());
    }

    #[test]
    fn answers_are_tidied() {
        assert_eq!(tidy_answer(" 4 4 4  4 "), "4");
        assert_eq!(tidy_answer("port = 8080"), "port = 8080");
        assert_eq!(tidy_answer("a b a b"), "a b a b");
    }

    #[test]
    fn decisions_parse() {
        assert_eq!(decision("Decision: continue\n", 3).unwrap(), Decision::Continue);
        assert_eq!(decision("Decision: replan\n1. a\n", 3).unwrap(), Decision::Replan(vec!["a".into()]));
        assert_eq!(decision("Decision: answer\nFinal Answer: 42", 3).unwrap(), Decision::Answer("42".into()));
        assert!(decision("Decision: maybe\n", 3).is_err());
    }
}
