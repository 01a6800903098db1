//! Evaluation tasks: one JSON object per line, each with an objective and a check of its answer.
//!
//! ```text
//! {"id": "calc-1", "category": "single", "objective": "What is 17 * 23 + 4?", "check": {"number": 395}}
//! {"id": "file-3", "category": "single", "objective": "Which file mentions water?", "check": {"contains": "todo.txt"}}
//! {"id": "sql-3", "category": "single", "objective": "What city does Bob live in?", "check": {"any_of": ["Berlin"]}}
//! ```
//!
//! A check passes only if the expected value appears as a whole token in an answer of at most
//! [`MAX_ANSWER_CHARS`] characters: a dumped file or table that happens to contain the value is
//! not an answer.

use serde::{Deserialize, Serialize};

/// Longest answer a check accepts.
pub const MAX_ANSWER_CHARS: usize = 80;
/// Longest task file line read (a task is a sentence, not a document).
const MAX_LINE_BYTES: usize = 64 * 1024;

/// One task of an evaluation set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Unique name of the task in its file.
    pub id: String,
    /// Group the summary counts it in (`single`, `two_step` …).
    pub category: String,
    /// What the agent is asked.
    pub objective: String,
    /// How its answer is judged.
    pub check: Check,
}

/// What a right answer holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged, try_from = "RawCheck")]
pub enum Check {
    /// A number within `tolerance` (absolute; default: equal up to 1e-9 relative).
    Number {
        /// The expected value.
        number: f64,
        /// Largest absolute difference accepted; `None` allows only rounding error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tolerance: Option<f64>,
    },
    /// This text, case-insensitive, as a whole token.
    Contains {
        /// The text the answer must hold.
        contains: String,
    },
    /// Any of these texts, case-insensitive, as a whole token.
    AnyOf {
        /// The texts, any one of which the answer must hold.
        any_of: Vec<String>,
    },
}

/// A check as written: exactly one of `number`, `contains`, `any_of`; `tolerance` only with
/// `number`. Unknown keys are errors, so a typo never turns a check into a different one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    number: Option<f64>,
    tolerance: Option<f64>,
    contains: Option<String>,
    any_of: Option<Vec<String>>,
}

impl TryFrom<RawCheck> for Check {
    type Error = String;

    fn try_from(r: RawCheck) -> Result<Self, String> {
        match (r.number, r.contains, r.any_of) {
            (Some(number), None, None) => Ok(Check::Number { number, tolerance: r.tolerance }),
            (None, Some(contains), None) if r.tolerance.is_none() => Ok(Check::Contains { contains }),
            (None, None, Some(any_of)) if r.tolerance.is_none() => Ok(Check::AnyOf { any_of }),
            (None, None, None) => Err("a check needs `number`, `contains` or `any_of`".into()),
            _ => Err("a check has exactly one of `number`, `contains`, `any_of` (and `tolerance` only with `number`)".into()),
        }
    }
}

/// Why a task file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TaskFileError {
    /// A line is not a valid task.
    #[error("line {line}: {message}")]
    Line {
        /// Line number in the file, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The file holds no task, only blank and comment lines.
    #[error("the task file has no tasks")]
    Empty,
}

/// Parses a task file (JSON lines; blank lines and lines starting with `//` are skipped).
pub fn parse_tasks(text: &str) -> Result<Vec<Task>, TaskFileError> {
    let mut tasks: Vec<Task> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |message: String| TaskFileError::Line { line: line_no, message };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("//") {
            continue;
        }
        if trimmed.len() > MAX_LINE_BYTES {
            return Err(err(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let task: Task = serde_json::from_str(trimmed).map_err(|e| {
            err(format!(
                "{e} (a task is {{\"id\", \"category\", \"objective\", \"check\"}}; a check is {{\"number\": N[, \"tolerance\": T]}}, {{\"contains\": \"…\"}} or {{\"any_of\": [\"…\", …]}})"
            ))
        })?;
        for (what, value) in [("id", &task.id), ("category", &task.category), ("objective", &task.objective)] {
            if value.trim().is_empty() {
                return Err(err(format!("`{what}` is empty")));
            }
        }
        if tasks.iter().any(|t| t.id == task.id) {
            return Err(err(format!("the id `{}` is used twice", task.id)));
        }
        task.check.validate().map_err(err)?;
        tasks.push(task);
    }
    if tasks.is_empty() {
        return Err(TaskFileError::Empty);
    }
    Ok(tasks)
}

impl Check {
    fn validate(&self) -> Result<(), String> {
        match self {
            Check::Number { number, tolerance } => {
                if !number.is_finite() {
                    return Err("`number` must be finite".into());
                }
                if tolerance.is_some_and(|t| !t.is_finite() || t < 0.0) {
                    return Err("`tolerance` must be a finite number at least 0".into());
                }
            }
            Check::Contains { contains } => {
                if contains.trim().is_empty() {
                    return Err("`contains` is empty".into());
                }
            }
            Check::AnyOf { any_of } => {
                if any_of.is_empty() || any_of.iter().any(|s| s.trim().is_empty()) {
                    return Err("`any_of` needs at least one non-empty text".into());
                }
            }
        }
        Ok(())
    }

    /// Whether `answer` passes.
    pub fn passes(&self, answer: Option<&str>) -> bool {
        let Some(answer) = answer else { return false };
        if answer.chars().count() > MAX_ANSWER_CHARS {
            return false;
        }
        match self {
            Check::Number { number, tolerance } => {
                let tol = tolerance.unwrap_or(1e-9 * number.abs().max(1.0));
                numbers_in(answer).into_iter().any(|x| (x - number).abs() <= tol)
            }
            Check::Contains { contains } => has_token(answer, contains),
            Check::AnyOf { any_of } => any_of.iter().any(|t| has_token(answer, t)),
        }
    }
}

/// Whether `needle` occurs in `hay` (ignoring case) with no letter or digit glued to either
/// end: "4" is not in "45", "Paris" is not in "Parisian".
pub fn has_token(hay: &str, needle: &str) -> bool {
    let hay = hay.to_lowercase();
    let needle = needle.trim().to_lowercase();
    if needle.is_empty() {
        return false;
    }
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    hay.match_indices(&needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        let starts_word = needle.chars().next().is_some_and(char::is_alphanumeric);
        let ends_word = needle.chars().next_back().is_some_and(char::is_alphanumeric);
        !(starts_word && word(before) || ends_word && word(after))
    })
}

/// The numbers written in `text`: `-12`, `3.5`, `1,250` (thousands separators), each a whole
/// token (not part of a word such as `v2`, not a piece of a longer number).
pub fn numbers_in(text: &str) -> Vec<f64> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit() || (chars[i] == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        let glued = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '.' || (chars[i] != '-' && chars[i - 1] == '-' && i > 1 && chars[i - 2].is_alphanumeric()));
        if !starts || glued {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < chars.len() {
            let c = chars[i];
            let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c.is_ascii_digit() || ((c == '.' || c == ',') && next_digit) {
                i += 1;
            } else {
                break;
            }
        }
        if chars.get(i).is_some_and(|c| c.is_alphabetic()) {
            continue; // `3rd`, `10x`
        }
        let fraction = |j: usize| chars.get(j) == Some(&'/');
        if fraction(i) || (start > 0 && fraction(start - 1)) {
            continue; // `250/3` is one value, and not 250
        }
        let token: String = chars[start..i].iter().collect();
        let plain = if thousands(&token) { token.replace(',', "") } else { token.clone() };
        if let Ok(x) = plain.parse::<f64>() {
            out.push(x);
        } else {
            // `1,2`: a list, not one number; each part counts.
            out.extend(token.split(',').filter_map(|p| p.parse::<f64>().ok()));
        }
    }
    out
}

/// `1,250` or `12,345,678.5`: groups of three digits after the first comma.
fn thousands(token: &str) -> bool {
    let int = token.split('.').next().unwrap_or_default().trim_start_matches('-');
    let mut groups = int.split(',');
    let first = groups.next().unwrap_or_default();
    int.contains(',') && (1..=3).contains(&first.len()) && groups.all(|g| g.len() == 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_whole_tokens() {
        assert_eq!(numbers_in("COUNT(*): 4"), vec![4.0]);
        assert_eq!(numbers_in("45"), vec![45.0]);
        assert_eq!(numbers_in("total: 1,250.5 and -3"), vec![1250.5, -3.0]);
        assert_eq!(numbers_in("v2 3rd 10x"), Vec::<f64>::new());
        assert_eq!(numbers_in("2025-03-14"), vec![2025.0]); // the rest of a date is glued to it
        assert_eq!(numbers_in("The answer is 78.2."), vec![78.2]);
        assert_eq!(numbers_in("1,2"), vec![1.0, 2.0]);
        assert_eq!(numbers_in("250/3 (≈ 83.25)"), vec![83.25]);
    }

    #[test]
    fn checks_want_a_short_answer_holding_the_value() {
        let n = Check::Number { number: 4.0, tolerance: None };
        assert!(n.passes(Some("COUNT(*): 4")));
        assert!(!n.passes(Some("45")));
        assert!(!n.passes(None));
        assert!(Check::Number { number: 78.2, tolerance: Some(0.01) }.passes(Some("78.2")));
        assert!(Check::Number { number: 0.3, tolerance: None }.passes(Some("0.3")));
        let c = Check::Contains { contains: "todo.txt".into() };
        assert!(c.passes(Some("todo.txt:1: - water the plants")));
        assert!(!c.passes(Some("mytodo.txt")));
        let a = Check::AnyOf { any_of: vec!["Berlin".into(), "Rome".into()] };
        assert!(a.passes(Some("city: berlin")));
        assert!(!a.passes(Some(&format!("{} Berlin", "London, ".repeat(20)))));
        assert!(!Check::Contains { contains: "Paris".into() }.passes(Some("Parisian")));
    }

    #[test]
    fn task_files_parse_strictly() {
        let ok = "// a comment\n{\"id\": \"a\", \"category\": \"c\", \"objective\": \"o\", \"check\": {\"number\": 1}}\n\n{\"id\": \"b\", \"category\": \"c\", \"objective\": \"o\", \"check\": {\"any_of\": [\"x\"]}}\n";
        let tasks = parse_tasks(ok).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].check, Check::AnyOf { any_of: vec!["x".into()] });
        let bad = [
            ("{\"id\": \"a\"}", "line 1"),
            ("{\"id\": \"a\", \"category\": \"c\", \"objective\": \"o\", \"check\": {\"number\": 1, \"x\": 2}}", "line 1"),
            ("{\"id\": \"a\", \"category\": \"c\", \"objective\": \" \", \"check\": {\"number\": 1}}", "`objective` is empty"),
            ("{\"id\": \"a\", \"category\": \"c\", \"objective\": \"o\", \"check\": {\"any_of\": []}}", "any_of"),
            ("{\"id\": \"a\", \"category\": \"c\", \"objective\": \"o\", \"check\": {\"number\": 1, \"tolerance\": -1}}", "tolerance"),
            ("not json", "line 1"),
            ("", "no tasks"),
        ];
        for (text, want) in bad {
            let e = parse_tasks(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let twice = format!("{}\n{}", ok.lines().nth(1).unwrap(), ok.lines().nth(1).unwrap());
        assert!(parse_tasks(&twice).unwrap_err().to_string().contains("used twice"));
    }
}
