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
        _ => text.to_string(),
    }
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

/// Why a reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` names no result: {known}")]
pub struct UnknownReference {
    pub reference: String,
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
    fn indices_are_found() {
        assert_eq!(indices_in("#E2 + #E10 - #Ex #E"), vec![2, 10]);
        assert_eq!(indices_in("no refs"), Vec::<usize>::new());
    }
}
