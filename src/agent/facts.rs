//! Facts the runtime states about an observation, so that an answer can quote them: how many
//! lines it has, and how many of them hold each word of the step.
//!
//! A final answer is quoted from what the tools returned (a 135M model writing freely invents
//! numbers), so a count that no tool printed ("How many lines of server.log contain ERROR?")
//! could never be answered. Counting lines is what `wc -l` and `grep -c` do for people; the
//! runtime does it for the model, only when the step asks for a count.

/// Words by which a request asks for a count.
pub const COUNT_CUES: &[&str] = &["how many", "number of", "count"];

/// Words too common to count lines by.
const SKIP: &[&str] = &[
    "how", "many", "number", "count", "the", "and", "are", "does", "did", "have", "has", "with", "that", "this", "what", "which", "line",
    "lines", "file", "files", "contain", "contains", "there", "from", "for", "use", "mention", "mentions",
];

/// Words by which a count is of lines of text (not of a value a line states: "how many
/// workers does config.ini set" wants `workers = 4`, not the lines that say workers).
const LINE_WORDS: &[&str] = &["line", "lines", "times", "entries", "occurrences"];

/// Whether `text` asks for a count (see [`COUNT_CUES`]).
pub fn asks_for_count(text: &str) -> bool {
    let lower = format!(" {} ", text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "));
    COUNT_CUES.iter().any(|c| lower.contains(&format!(" {c} ")))
}

/// For a `step` that asks for a count of lines (the words of `LINE_WORDS`), facts about
/// `observation` of two lines or more: `N lines`, and `K lines contain W` for each word W of
/// the step that some lines hold and others do not. None otherwise.
pub fn line_counts(step: &str, observation: &str) -> Vec<String> {
    let lines: Vec<&str> = observation.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('[')).collect();
    let of_lines = step.split(|c: char| !c.is_alphanumeric()).any(|w| LINE_WORDS.contains(&w.to_lowercase().as_str()));
    if lines.len() < 2 || !asks_for_count(step) || !of_lines {
        return Vec::new();
    }
    let mut out = vec![format!("{} lines", lines.len())];
    let mut seen: Vec<String> = Vec::new();
    // Words as written, file names whole (`server.log` is no `server`).
    for word in step.split(|c: char| !c.is_alphanumeric() && !"_-.".contains(c)) {
        let word = word.trim_matches('.');
        let lower = word.to_lowercase();
        if word.chars().count() < 3 || SKIP.contains(&lower.as_str()) || seen.contains(&lower) {
            continue;
        }
        seen.push(lower.clone());
        let holds = |line: &str| line.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-').any(|w| w.eq_ignore_ascii_case(word));
        let k = lines.iter().filter(|l| holds(l)).count();
        if k > 0 && k < lines.len() {
            out.push(if k == 1 { format!("1 line contains {word}") } else { format!("{k} lines contain {word}") });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "INFO server started\nERROR disk full\nINFO request served\nERROR timeout\n";

    #[test]
    fn counts_are_stated_when_asked_for() {
        assert_eq!(line_counts("how many lines of server.log contain ERROR?", LOG), ["4 lines", "2 lines contain ERROR"]);
        assert_eq!(line_counts("count the INFO lines", LOG), ["4 lines", "2 lines contain INFO"]);
        assert_eq!(line_counts("how many times does ERROR appear?", LOG), ["4 lines", "2 lines contain ERROR"]);
        assert_eq!(line_counts("how many lines does fruits.txt have?", "apple\nbanana\n[observation truncated: 2 of 9 tokens shown]"), ["2 lines"]);
        assert_eq!(line_counts("how many timeout lines", LOG), ["4 lines", "1 line contains timeout"]);
    }

    #[test]
    fn no_counts_unless_asked_for_or_for_one_line() {
        assert!(line_counts("what is the first line of the log?", LOG).is_empty());
        assert!(line_counts("how many users?", "users: 4").is_empty());
        assert!(line_counts("how many workers does config.ini set?", "host = a\nworkers = 4").is_empty(), "a value, not lines");
        assert!(!asks_for_count("the country of origin"), "`count` inside a word");
    }
}
