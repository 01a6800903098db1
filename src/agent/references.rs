//! Results carried forward by name: the result of step *k* is `#Ek`, a later tool input may
//! contain `#E1`, `#E2` …, and the runtime puts the values in before the tool runs.
//!
//! Small models copy well and retype badly: a number read by step 1 and typed again by step 2
//! is where multi-step runs go wrong. With a reference the model writes four characters and
//! the exact value arrives.
//!
//! The value of a result is its text, except that a one-line `label: value` or
//! `label = value` result (how the SQL and file tools print a single field, and how a ReAct
//! answer quoting such a line reads) stands for its value: `COUNT(*): 4` is `4`,
//! `config.ini:3: port = 8080` is `8080`. That keeps a reference usable in an arithmetic
//! expression without a model having to pick the number out.

use serde_json::Value;

/// The name of the `index`-th result (1-based).
pub fn name(index: usize) -> String {
    format!("#E{index}")
}

/// The value a reference to `result` stands for (see the module docs).
pub fn value_of(result: &str) -> String {
    let text = result.trim();
    if text.contains('\n') {
        return text.to_string();
    }
    let cut = [": ", " = "]
        .iter()
        .filter_map(|sep| text.rfind(sep).map(|i| i + sep.len()))
        .max();
    match cut {
        Some(i) if !text[i..].trim().is_empty() => text[i..].trim().to_string(),
        _ => only_number(text).unwrap_or(text).to_string(),
    }
}

/// The one number a sentence states (`The team has 6 members.` → `6`), if it states exactly
/// one; a date or a version (`2025-03-14`, `1.2.3`) is not a number.
fn only_number(text: &str) -> Option<&str> {
    let mut found = None;
    for word in text.split_whitespace() {
        let w = word.trim_start_matches(['(', '"', '\'']).trim_end_matches([',', '.', ';', ':', '!', '?', ')', '"', '\'', '%']);
        let digits = w.strip_prefix(['-', '$', '€', '£']).unwrap_or(w);
        let is_number = !digits.is_empty()
            && digits.starts_with(|c: char| c.is_ascii_digit())
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',')
            && digits.matches('.').count() <= 1;
        if is_number {
            if found.is_some() {
                return None;
            }
            found = Some(w.trim_start_matches(['$', '€', '£']));
        } else if word.chars().any(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    found
}

/// The indices of the references in `text`, in order (`#E2 + #E10` → `[2, 10]`).
pub fn indices_in(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' && bytes.get(i + 1) == Some(&b'E') {
            let start = i + 2;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end > start {
                if let Ok(n) = text[start..end].parse::<usize>() {
                    out.push(n);
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Words by which a step means the result of the step before (`add 1 to it`, `divide the
/// result by 5`, `multiply that by 25`). A plan copied from the objective's clauses speaks
/// this way; the runtime makes the reference exact before the step runs.
const BACK_REFERENCES: &[&str] = &[
    "the result", "the sum", "the count", "the total", "the product", "the difference", "the answer", "that number",
    "this number", "that value", "this value", "that", "this", "it",
];

/// `step` with its first back reference (the phrases of `BACK_REFERENCES`) replaced by the name of
/// result `previous`, unless it already names a result. `that` and `this` count where a
/// pronoun stands (before `by`, `to`, `from`, `and` or the end), and with the noun after them
/// when the step before (`previous_step`) spoke of it or it is generic (`that person`, `that
/// value`): after `customer.txt names a customer`, `that customer` is its result. `the total` counts only where `of` does not
/// follow (`the total of` is a new quantity).
pub fn refer_back(step: &str, previous: usize, previous_step: &str) -> String {
    if previous == 0 || !indices_in(step).is_empty() {
        return step.to_string();
    }
    let lower = step.to_ascii_lowercase();
    // A step that begins with arithmetic (`multiplied by 2`) works on the result before.
    let body = lower.strip_prefix("use ").and_then(|r| r.split_once(" to ")).map_or(0, |(tool, _)| "use ".len() + tool.len() + " to ".len());
    if super::clauses::OPERATIONS.iter().any(|op| lower[body..].starts_with(op)) {
        return format!("{}{} {}", &step[..body], name(previous), &step[body..]);
    }
    let mut best: Option<(usize, usize)> = None;
    for phrase in BACK_REFERENCES {
        let mut from = 0;
        while let Some(i) = lower[from..].find(phrase).map(|i| i + from) {
            let end = i + phrase.len();
            let starts_word = i == 0 || !lower[..i].ends_with(|c: char| c.is_alphanumeric() || c == '\'' || c == '#');
            let after = lower[end..].trim_start_matches([',', '.', '?', '!', ';']);
            let ends_word = !lower[end..].starts_with(|c: char| c.is_alphanumeric() || c == '\'' || c == '_' || c == '-');
            let next_word = after.split_whitespace().next().unwrap_or("");
            let noun = next_word.trim_end_matches(|c: char| !c.is_alphanumeric());
            let spoken_of = noun.len() >= 3 && (mentions(previous_step, noun) || GENERIC_NOUNS.contains(&noun));
            let (pronoun_ok, end) = match *phrase {
                "that" | "this" if spoken_of => (true, end + (lower[end..].len() - lower[end..].trim_start().len()) + noun.len()),
                "that" | "this" => (matches!(next_word, "" | "by" | "to" | "from" | "and" | "plus" | "minus" | "times" | "divided" | "multiplied" | "squared"), end),
                _ => (next_word != "of", end),
            };
            if starts_word && ends_word && pronoun_ok {
                if best.is_none_or(|(b, _)| i < b) {
                    best = Some((i, end));
                }
                break;
            }
            from = end;
        }
    }
    match best {
        Some((i, end)) => format!("{}{}{}", &step[..i], name(previous), &step[end..]),
        None => step.to_string(),
    }
}

/// Nouns that, after `that` or `this`, name whatever the step before found.
const GENERIC_NOUNS: &[&str] = &["person", "one", "value", "amount", "name", "figure", "total", "result", "thing", "item"];

/// Whether `text` has `word` as a whole word, ignoring case.
fn mentions(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|w| w.eq_ignore_ascii_case(word))
}

/// Why a reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` names no result: {known}")]
pub struct UnknownReference {
    /// The reference as written (`#E3`).
    pub reference: String,
    /// Which results there are, in words, for the error message.
    pub known: String,
}

/// `input` with every `#Ek` inside its strings replaced by the value of `results[k - 1]`.
pub fn substitute(input: &Value, results: &[String]) -> Result<Value, UnknownReference> {
    Ok(match input {
        Value::String(s) => Value::String(substitute_text(s, results)?),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, results)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, results)?)))
                .collect::<Result<_, UnknownReference>>()?,
        ),
        other => other.clone(),
    })
}

fn substitute_text(text: &str, results: &[String]) -> Result<String, UnknownReference> {
    if !text.contains("#E") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("#E") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push_str("#E");
            rest = after;
            continue;
        }
        let n: usize = after[..digits].parse().unwrap_or(0);
        let value = n
            .checked_sub(1)
            .and_then(|i| results.get(i))
            .ok_or_else(|| UnknownReference {
                reference: format!("#E{}", &after[..digits]),
                known: match results.len() {
                    0 => "there are no results yet".into(),
                    1 => "the only result so far is #E1".into(),
                    k => format!("the results so far are #E1 to #E{k}"),
                },
            })?;
        out.push_str(&value_of(value));
        rest = &after[digits..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_of_results() {
        assert_eq!(value_of("395"), "395");
        assert_eq!(value_of("COUNT(*): 4"), "4");
        assert_eq!(value_of("config.ini:3: port = 8080"), "8080");
        assert_eq!(value_of("The launch date is 2025-03-14."), "The launch date is 2025-03-14.");
        assert_eq!(value_of("The team has 6 members."), "6");
        assert_eq!(value_of("It costs 1,200.50 in total"), "1,200.50");
        assert_eq!(value_of("Between 3 and 4 people"), "Between 3 and 4 people", "two numbers: no single value");
        assert_eq!(value_of("Version 1.2.3 is out"), "Version 1.2.3 is out");
        assert_eq!(value_of("a: 1\nb: 2"), "a: 1\nb: 2");
        assert_eq!(value_of("label: "), "label:");
    }

    #[test]
    fn references_are_substituted_in_strings() {
        let results = vec!["391".to_string(), "age: 45".to_string()];
        let input = json!({"expression": "#E1 / 5 + #E2", "n": 3, "list": ["#E2"]});
        assert_eq!(substitute(&input, &results).unwrap(), json!({"expression": "391 / 5 + 45", "n": 3, "list": ["45"]}));
        assert_eq!(substitute(&json!("#Ex and #E"), &results).unwrap(), json!("#Ex and #E"));
        let e = substitute(&json!("#E3"), &results).unwrap_err();
        assert_eq!(e.to_string(), "`#E3` names no result: the results so far are #E1 to #E2");
        assert!(substitute(&json!("#E0"), &results).is_err());
        assert!(substitute(&json!("#E1"), &[]).unwrap_err().to_string().contains("no results yet"));
        assert!(substitute(&json!("#E99999999999999999999999"), &results).is_err());
    }

    #[test]
    fn back_references_name_the_result_before() {
        assert_eq!(refer_back("add 1 to it.", 1, ""), "add 1 to #E1.");
        assert_eq!(refer_back("divide the result by 5.", 2, ""), "divide #E2 by 5.");
        assert_eq!(refer_back("Multiply that by 25.", 1, ""), "Multiply #E1 by 25.");
        assert_eq!(refer_back("multiply the count by 10.", 3, ""), "multiply #E3 by 10.");
        assert_eq!(refer_back("In which city does that customer live?", 1, ""), "In which city does that customer live?");
        assert_eq!(refer_back("In which city does that customer live?", 1, "customer.txt names a customer"), "In which city does #E1 live?");
        assert_eq!(refer_back("what is that number plus 4?", 1, ""), "what is #E1 plus 4?");
        assert_eq!(refer_back("which plot does that person have?", 1, ""), "which plot does #E1 have?");
        assert_eq!(refer_back("find the total of all orders", 1, ""), "find the total of all orders");
        assert_eq!(refer_back("edit the file", 1, ""), "edit the file", "`it` inside a word");
        assert_eq!(refer_back("add #E1 to it", 2, ""), "add #E1 to it", "a step that names a result keeps it");
        assert_eq!(refer_back("add 1 to it", 0, ""), "add 1 to it", "the first step has nothing before it");
        assert_eq!(refer_back("divide it by the result", 1, ""), "divide #E1 by the result", "only the first");
        assert_eq!(refer_back("Use calculator to multiplied by 2?", 1, ""), "Use calculator to #E1 multiplied by 2?");
        assert_eq!(refer_back("plus 4", 2, ""), "#E2 plus 4");
    }

    #[test]
    fn indices_are_found() {
        assert_eq!(indices_in("#E2 + #E10 - #Ex #E"), vec![2, 10]);
        assert_eq!(indices_in("no refs"), Vec::<usize>::new());
    }
}
