//! Orders tools by how much their name and description share with the objective.
//!
//! Small models pick tools largely by position: given a list, a 135M model tends to take the
//! first entry whatever the objective says. Listing the most relevant tools first (by shared
//! words, file names, arithmetic symbols, and "number" for objectives with digits) lets that
//! habit work for it. The order only changes prompts; every tool stays available in the
//! grammars.

use super::tools::ToolSpec;

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "was", "what", "which", "who", "how", "many", "much", "does", "did", "with", "from", "that",
    "this", "there", "their", "have", "has", "into", "out", "use", "give", "tell", "find", "get", "all", "any", "its", "you",
    "your", "can", "will", "about", "some",
];

/// Lower-case words (a trailing plural `s` dropped), file names kept whole, and arithmetic
/// symbols.
fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || c == ',' || c == '?' || c == '(' || c == ')' || c == ':' || c == '"') {
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '.' && c != '_');
        let w = w.trim_end_matches('.').to_lowercase();
        if w.contains('.') && w.chars().any(char::is_alphabetic) {
            out.push(w); // a file name such as notes.txt
            continue;
        }
        if w.len() >= 3 && w.chars().all(|c| c.is_alphanumeric() || c == '_') && !STOPWORDS.contains(&w.as_str()) {
            out.push(w.strip_suffix('s').filter(|s| s.len() >= 3).unwrap_or(&w).to_string());
        }
    }
    for c in text.chars().filter(|c| "+*/^%×÷".contains(*c)) {
        out.push(c.to_string());
    }
    if text.chars().any(|c| c.is_ascii_digit()) {
        out.push("number".into());
    }
    out
}

/// The tools, most relevant to `objective` first (stable among equals).
pub fn rank(objective: &str, tools: &[ToolSpec]) -> Vec<ToolSpec> {
    let wanted = terms(objective);
    let mut scored: Vec<(usize, usize, ToolSpec)> = tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let have = terms(&format!("{} {}", t.name.replace('_', " "), t.description));
            let score = wanted.iter().filter(|w| have.contains(w)).count();
            (score, i, t.clone())
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, description: &str) -> ToolSpec {
        ToolSpec::new(name, description, serde_json::json!({"type": "object"}), serde_json::json!({}))
    }

    #[test]
    fn the_most_relevant_tool_comes_first() {
        let tools = vec![
            tool("calculator", "Computes arithmetic: + - * / ^."),
            tool("read_file", "Reads a text file. Files: notes.txt, config.ini."),
            tool("search_files", "Finds which files mention a word."),
            tool("sql_query", "Runs SQL. Tables: users(id, name, city, age)."),
        ];
        let first = |o: &str| rank(o, &tools)[0].name.clone();
        assert_eq!(first("What is 17 * 23 + 4?"), "calculator");
        assert_eq!(first("How many users live in Paris?"), "sql_query");
        assert_eq!(first("What port does config.ini set?"), "read_file");
        assert_eq!(first("Which file mentions water?"), "search_files");
        assert_eq!(first("Hello"), "calculator");
    }
}
