//! Quantities named in words, found in what earlier tools returned.
//!
//! A settings file or a table row states several values at once (`seed_budget = 380`,
//! `tool_budget = 215.50`), but a step's result is one line, so `#E1` can carry only one of
//! them forward. A later step that combines them speaks of them by name (`add the seed budget
//! to the tool budget`), and a 135M executor asked to type the numbers retypes the wrong one.
//! So where a step names a quantity that an earlier observation stated under that name, the
//! runtime writes the number in, the way it writes `#E1`'s value in.

use super::prompt::PastStep;
use super::relevance::stem;

/// A value an observation stated, and the words of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedValue {
    /// The name's words, lower case and stemmed (`seed_budget` → `seed`, `budget`), without
    /// words of one or two letters (units such as `kg` or `m`).
    pub words: Vec<String>,
    /// The number as the observation wrote it.
    pub value: String,
}

/// Words that may stand before a name and go with it (`the seed budget`).
const ARTICLES: &[&str] = &["the", "a", "an", "my", "our", "its", "their", "his", "her", "this", "that"];

/// Every `name = number` or `name: number` stated in the non-error observations of `past`
/// (one per line, or per `|`- or `;`-separated field of a line; a `path:line:` prefix, as
/// search results print, is skipped). A name stated with two different values is left out:
/// which one a step means is not known.
pub fn stated(past: &[PastStep]) -> Vec<NamedValue> {
    let mut out: Vec<NamedValue> = Vec::new();
    let mut ambiguous: Vec<Vec<String>> = Vec::new();
    let observations = past.iter().flat_map(|s| &s.actions).filter(|a| !a.error).map(|a| a.observation.as_str());
    for line in observations.flat_map(str::lines) {
        for field in line.split(['|', ';']) {
            let Some(found) = parse_field(field) else { continue };
            match out.iter().position(|v| v.words == found.words) {
                Some(i) if out[i].value != found.value => {
                    ambiguous.push(found.words);
                }
                Some(_) => {}
                None => out.push(found),
            }
        }
    }
    out.retain(|v| !ambiguous.contains(&v.words));
    // Longest names first, so that `tool budget` is written in before `budget`.
    out.sort_by_key(|v| std::cmp::Reverse(v.words.len()));
    out
}

/// One `name = number` or `name: number` field, the number optionally followed by one word
/// (a unit).
fn parse_field(field: &str) -> Option<NamedValue> {
    let field = skip_location(field.trim());
    let sep = field.find(['=', ':'])?;
    let (name, rest) = (field[..sep].trim(), field[sep + 1..].trim());
    let mut rest_words = rest.split_whitespace();
    let value = rest_words.next()?;
    let unit = rest_words.next();
    if rest_words.next().is_some() || unit.is_some_and(|u| u.chars().any(|c| c.is_ascii_digit())) || !is_number(value) {
        return None;
    }
    if name.is_empty() || !name.starts_with(|c: char| c.is_alphabetic()) || name.len() > 40 {
        return None;
    }
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ')) {
        return None;
    }
    let words: Vec<String> =
        name.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3).map(|w| stem(&w.to_lowercase())).collect();
    (!words.is_empty()).then(|| NamedValue { words, value: value.trim_start_matches(['$', '€', '£']).to_string() })
}

/// `field` without a leading `path:line:` (how search results locate a line).
fn skip_location(field: &str) -> &str {
    let mut parts = field.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(path), Some(line), Some(rest))
            if !path.contains(' ') && path.contains('.') && !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) =>
        {
            rest
        }
        _ => field,
    }
}

/// Whether `word` is a plain number (`380`, `215.50`, `-3`, `$1,200`).
fn is_number(word: &str) -> bool {
    let digits = word.strip_prefix('-').unwrap_or(word).trim_start_matches(['$', '€', '£']);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        && digits.matches('.').count() <= 1
        && !digits.ends_with(['.', ','])
}

/// `text` with each quantity it names by one of `values`' names (with an article before it,
/// if any) replaced by the value: `add the seed budget to the tool budget` → `add 380 to
/// 215.50`. Words are compared stemmed and without case; the rest of `text` is kept as is.
pub fn put_in(text: &str, values: &[NamedValue]) -> String {
    if values.is_empty() {
        return text.to_string();
    }
    // Words with their byte spans.
    let mut words: Vec<(usize, usize, String)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i, stem(&text[s..i].to_lowercase())));
                start = None;
            }
            _ => {}
        }
    }
    let mut spans: Vec<(usize, usize, &str)> = Vec::new();
    for v in values {
        for at in 0..words.len() {
            let end = at + v.words.len();
            if end > words.len() || words[at..end].iter().zip(&v.words).any(|(w, n)| w.2 != *n) {
                continue;
            }
            // The whole name: not the tail of a longer one (`total seed budget`), nor inside a
            // `snake_case` word.
            let (from, to) = (words[at].0, words[end - 1].1);
            let joined = |i: usize, j: usize| text[i..j].chars().all(|c| c == '_' || c == '-');
            if (at > 0 && joined(words[at - 1].1, from)) || (end < words.len() && joined(to, words[end].0)) {
                continue;
            }
            let from = match at.checked_sub(1) {
                Some(prev) if ARTICLES.contains(&words[prev].2.as_str()) && text[words[prev].1..from].trim().is_empty() => words[prev].0,
                _ => from,
            };
            if spans.iter().all(|&(a, b, _)| to <= a || from >= b) {
                spans.push((from, to, v.value.as_str()));
            }
        }
    }
    spans.sort_by_key(|s| s.0);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (from, to, value) in spans {
        out.push_str(&text[last..from]);
        out.push_str(value);
        last = to;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::prompt::{ActionView, PastStep};

    fn past(observations: &[&str]) -> Vec<PastStep> {
        vec![PastStep {
            name: "#E1".into(),
            step: "Use read_file to read budget.txt".into(),
            result: String::new(),
            failed: false,
            actions: observations
                .iter()
                .map(|o| ActionView { tool: "read_file".into(), input: serde_json::Value::Null, observation: (*o).into(), error: false })
                .collect(),
        }]
    }

    #[test]
    fn named_quantities_are_written_in() {
        let values = stated(&past(&["# 2024 purchase budget (euros)\nseed_budget = 380\ntool_budget = 215.50\n"]));
        assert_eq!(put_in("add the seed budget to the tool budget", &values), "add 380 to 215.50");
        assert_eq!(put_in("Add the Seed Budget and tool_budget.", &values), "Add 380 and 215.50.");
        assert_eq!(put_in("the total budget", &values), "the total budget", "no value is named `budget` alone");
        assert_eq!(put_in("multiply 3 by 4", &values), "multiply 3 by 4");
    }

    #[test]
    fn fields_rows_and_locations() {
        let values = stated(&past(&["name: Tomas Reyes | weight_kg: 12.4 | plot_number: 7", "config.ini:3: port = 8080", "plots = 24 plots"]));
        assert_eq!(put_in("convert the weight to pounds", &values), "convert 12.4 to pounds", "a unit word in the name is dropped");
        assert_eq!(put_in("the port plus 1", &values), "8080 plus 1");
        assert_eq!(put_in("double the plots", &values), "double 24");
        assert_eq!(put_in("Tomas Reyes", &values), "Tomas Reyes", "only numbers");
    }

    #[test]
    fn a_name_with_two_values_is_left_alone() {
        let values = stated(&past(&["rate = 3", "rate = 4"]));
        assert_eq!(put_in("the rate times 2", &values), "the rate times 2");
        let values = stated(&past(&["rate = 3", "rate = 3"]));
        assert_eq!(put_in("the rate times 2", &values), "3 times 2");
    }
}
