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

/// Lower-case words (stemmed, see [`stem`]), file names kept whole, and arithmetic symbols.
fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split(|c: char| c.is_whitespace() || c == ',' || c == '?' || c == '(' || c == ')' || c == ':' || c == '"') {
        let w = raw.trim_matches(|c: char| !c.is_alphanumeric() && c != '.' && c != '_');
        let w = w.trim_end_matches('.').to_lowercase();
        if w.contains('.') && w.chars().any(char::is_alphabetic) {
            // A file name such as notes/season-2024.md: whole, and the words of its path
            // (so that "the season notes" meets it).
            for part in w.split(['/', '.', '-', '_']).filter(|p| p.len() >= 3 && p.chars().all(char::is_alphabetic)) {
                out.push(stem(part));
            }
            out.push(w);
            continue;
        }
        if w.len() >= 3 && w.chars().all(|c| c.is_alphanumeric() || c == '_') && !STOPWORDS.contains(&w.as_str()) {
            // A snake_case name (`seed_budget`, `water_days`): whole, and its words, so
            // that "the seed budget" meets the line `seed_budget = 380`.
            if w.contains('_') {
                for part in w.split('_').filter(|p| p.len() >= 3 && p.chars().all(char::is_alphabetic) && !STOPWORDS.contains(p)) {
                    out.push(stem(part));
                }
            }
            out.push(stem(&w));
        }
    }
    for c in text.chars().filter(|c| "+*/^%×÷".contains(*c)) {
        out.push(c.to_string());
    }
    out
}

/// The terms of what a tool is wanted for: as [`terms`], and "number" when it holds digits.
/// (Not for descriptions: digits in a table's sample rows say nothing of arithmetic.)
fn wanted_terms(text: &str) -> Vec<String> {
    let mut out = terms(text);
    if text.chars().any(|c| c.is_ascii_digit()) {
        out.push("number".into());
    }
    out
}

/// `word` without its ending, so that `multiply` meets `multiplies` and `multiplied`,
/// `divide` meets `divides` and `divided`, and `user` meets `users` (a crude stemmer: both
/// sides go through it, so only agreement matters).
pub(crate) fn stem(word: &str) -> String {
    let n = word.len();
    if n > 4 && (word.ends_with("ies") || word.ends_with("ied")) {
        return format!("{}y", &word[..n - 3]);
    }
    for ending in ["es", "ed", "s", "e"] {
        if let Some(s) = word.strip_suffix(ending) {
            if s.len() >= 3 && !s.ends_with('s') {
                return s.to_string();
            }
        }
    }
    word.to_string()
}

/// How much a shared term counts: a file name names its tool outright (it outweighs two
/// words); "number" (what any
/// digit in a request stands for) says least.
fn weight(term: &str) -> usize {
    if term.contains('.') {
        6
    } else if term == "number" {
        1
    } else {
        2
    }
}

/// How much of the terms of `text` each tool's name and description share (see [`weight`]).
fn scores(text: &str, tools: &[ToolSpec]) -> Vec<usize> {
    let wanted = wanted_terms(text);
    tools
        .iter()
        .map(|t| {
            let have = terms(&format!("{} {}", t.name.replace('_', " "), t.description));
            wanted.iter().filter(|w| have.contains(w)).map(|w| weight(w)).sum()
        })
        .collect()
}

/// The tools, most relevant to `objective` first (stable among equals); last-resort tools
/// come after all others whatever they share with it.
pub fn rank(objective: &str, tools: &[ToolSpec]) -> Vec<ToolSpec> {
    let scores = scores(objective, tools);
    let mut order: Vec<usize> = (0..tools.len()).collect();
    order.sort_by(|&a, &b| {
        (tools[a].last_resort.cmp(&tools[b].last_resort))
            .then(scores[b].cmp(&scores[a]))
            .then(a.cmp(&b))
    });
    order.into_iter().map(|i| tools[i].clone()).collect()
}

/// The lines of `text` that share the most with `step` (in their order), or every line when
/// none shares anything: what a step's answer may quote from a long observation. Asked to
/// pick the port from a whole config file, a 135M model quotes its first line; the line
/// that says `port` is the one to offer.
pub fn best_lines<'a>(step: &str, text: &'a str) -> Vec<&'a str> {
    best_lines_beyond(step, text, "")
}

/// As [`best_lines`], but the words of `located_by` (the path the text was read from) do
/// not count: "the garden settings file, how many plots" names the file `settings/garden.ini`
/// with two of its words, and the line that shares them is the file's title comment, not
/// `plots = 24`.
pub fn best_lines_beyond<'a>(step: &str, text: &'a str, located_by: &str) -> Vec<&'a str> {
    let located = terms(located_by);
    let wanted: Vec<String> = terms(step).into_iter().filter(|t| !located.contains(t)).collect();
    let score = |line: &str| -> usize { terms(line).iter().filter(|t| wanted.contains(t)).map(|t| weight(t)).sum() };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let top = lines.iter().map(|l| score(l)).max().unwrap_or(0);
    lines.into_iter().filter(|l| top == 0 || score(l) == top).collect()
}

/// The names of the tools that share the most with `step` (several when tied), or of all
/// tools when none shares anything: the tools a planner is offered for a step it copied
/// from the objective. A step naming a file the workspace holds, a table or column of the
/// database, or an arithmetic operation has a clear tool; a 135M model choosing among all of
/// them picks by position and habit instead.
///
/// A last-resort tool (`ask_human`) is offered only when it shares strictly more with the
/// step than every other tool (the step asks the person something), or when no tool shares
/// anything.
///
/// The step's first word, when a tool's name or description has it, counts as much as a file
/// name: a clause copied from an objective opens with what to do (`add the seed budget to
/// the tool budget`), and the nouns after it say what to do it with (the budgets are in
/// `budget.txt`, but adding them is arithmetic).
pub fn best_for(step: &str, tools: &[ToolSpec]) -> Vec<String> {
    let mut scores = scores(step, tools);
    let first = step.split_whitespace().next().unwrap_or("");
    if let Some(verb) = terms(first).into_iter().next().filter(|t| !t.contains('.')) {
        for (t, s) in tools.iter().zip(scores.iter_mut()) {
            if terms(&format!("{} {}", t.name.replace('_', " "), t.description)).contains(&verb) {
                *s += weight(".") - weight(&verb);
            }
        }
    }
    let top_of = |last_resort: bool| {
        tools.iter().zip(&scores).filter(|(t, _)| t.last_resort == last_resort).map(|(_, &s)| s).max().unwrap_or(0)
    };
    let (top, top_last) = (top_of(false), top_of(true));
    let offered = |t: &ToolSpec, s: usize| match (top, t.last_resort) {
        (0, _) if top_last == 0 => true,
        (_, false) => top_last <= top && s == top,
        (_, true) => top_last > top && s == top_last,
    };
    tools.iter().zip(&scores).filter(|(t, &s)| offered(t, s)).map(|(t, _)| t.name.clone()).collect()
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
        assert_eq!(first("multiply that by 25"), "calculator", "`multiplies` meets `multiply`");
    }

    #[test]
    fn words_that_named_the_file_do_not_choose_its_lines() {
        let ini = "; Willow Lane Community Garden settings\n[garden]\nplots = 24\nwater_days = 3\n";
        let step = "according to the garden settings file, how many plots does the garden have?";
        assert_eq!(best_lines(step, ini), ["; Willow Lane Community Garden settings"]);
        assert_eq!(best_lines_beyond(step, ini, "settings/garden.ini"), ["plots = 24"]);
        let budget = "# 2024 purchase budget (euros)\nseed_budget = 380\ntool_budget = 215.50\n";
        assert_eq!(best_lines_beyond("the seed budget", budget, "budget.txt"), ["seed_budget = 380"]);
    }

    #[test]
    fn the_person_is_a_last_resort() {
        let tools = vec![
            tool("ask_human", "Asks the person at the terminal a question and returns the answer.").as_last_resort(),
            tool("calculator", "Computes arithmetic: + - * / ^."),
            tool("read_file", "Reads a text file. Files: notes.txt, config.ini."),
        ];
        let names = |v: Vec<ToolSpec>| v.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(rank("ask the person what 12 * 12 is", &tools)).last().unwrap(), "ask_human");
        assert_eq!(best_for("calculate 12 * 12", &tools), ["calculator"]);
        assert_eq!(best_for("ask the person which city they live in", &tools), ["ask_human"]);
        assert_eq!(best_for("hello there", &tools), ["ask_human", "calculator", "read_file"]);
    }

    #[test]
    fn a_step_quotes_its_best_lines() {
        let config = "[server]\nhost = 127.0.0.1\nport = 8080\nworkers = 4\n";
        assert_eq!(best_lines("find the port in config.ini", config), ["port = 8080"]);
        assert_eq!(best_lines("how many workers does config.ini set", config), ["workers = 4"]);
        assert_eq!(best_lines("what is the first line", "Buy milk\nCall Alice"), ["Buy milk", "Call Alice"], "nothing shared: every line");
    }

    #[test]
    fn a_step_is_offered_its_best_tools() {
        let tools = vec![
            tool("calculator", "Computes arithmetic: multiplies and divides numbers."),
            tool("read_file", "Reads a text file. Files: notes.txt, config.ini."),
            tool("sql_query", "Runs SQL. Tables: users(id, name, city, age)."),
        ];
        assert_eq!(best_for("divide the result by 5", &tools), ["calculator"]);
        assert_eq!(best_for("find the port in config.ini", &tools), ["read_file"]);
        assert_eq!(best_for("in which city does that customer live?", &tools), ["sql_query"]);
        assert_eq!(best_for("how many users are older than 30?", &tools), ["sql_query"], "a digit says least");
        assert_eq!(best_for("config.ini names the city", &tools), ["read_file"], "a file name says most");
        assert_eq!(best_for("what do the notes say?", &tools), ["read_file"], "the words of a file's name");
        assert_eq!(best_for("hello there", &tools), ["calculator", "read_file", "sql_query"], "no overlap: every tool");
        assert_eq!(best_for("multiply the notes total by the notes count", &tools), ["calculator"], "the verb says what to do");
        assert_eq!(best_for("read notes.txt", &tools), ["read_file"]);
    }
}
