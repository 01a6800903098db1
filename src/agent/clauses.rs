//! An objective cut into clauses, the steps of a plan copied from it.
//!
//! A 135M planner asked for steps in its own words writes generic ones ("Use calculator to
//! find the answer"), stops after the first operation, or pads the plan with one step per
//! tool; asked to copy, it copies well. So the numbered planner's plan is the objective's own
//! clauses, in order, one step each, and the model chooses the tool of each step, having
//! read it. A plan then has as many steps as the objective has parts, never filler.
//!
//! A clause ends where speech begins a new action: at `then`, and at the end of a sentence,
//! `and` or a comma when what follows works on the result so far (`… and add 1 to it`,
//! `…? Multiply that by 25`; see [`references::refer_back`](super::references::refer_back)),
//! and before arithmetic on a quantity named in words (`Carol's age | multiplied by 2`).
//! `Add 345 and 655` and `Bob's age, or …` stay whole.

use serde::Serialize;

/// Most clauses an objective is cut into (the grammar has a rule per clause and step).
pub const MAX_CLAUSES: usize = 8;

/// One clause of an objective.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clause {
    /// The words that joined it to the clause before (`, then `), empty for the first.
    pub joiner: String,
    /// The clause itself.
    pub text: String,
    /// The clause as a step that begins with it reads (`Use calculator to ` + this): its
    /// first letter in lower case unless the first word is a name or an acronym.
    pub opening: String,
    /// The clause as it continues the step before: `joiner` + `text`.
    pub continued: String,
}

/// Where a clause always ends, longest first so that `, and then ` wins over `, then `.
const ENDS: &[&str] = &[", and then ", " and then ", ", then ", " then "];
/// Where a clause ends when what follows refers back to the result so far. A sentence that
/// does not (`What do you get?`, `It should be in the notes.`) restates or hints; it stays
/// with the step it belongs to.
const JOINS: &[&str] = &["; ", ". ", "? ", "! ", ", and ", " and ", ", "];
/// The joiners of [`JOINS`] that end a sentence.
const SENTENCE_ENDS: &[&str] = &[". ", "? ", "! ", "; "];

/// Words of a question that only asks for the result (`What's the total?`, `What do you
/// get?`, `What is the final answer?`): such a sentence restates its clause, it asks nothing new.
const RESTATING: &[&str] = &[
    "what", "what's", "whats", "is", "was", "the", "a", "do", "does", "you", "we", "i", "get", "have", "then", "now", "so", "that",
    "this", "it", "total", "result", "answer", "sum", "final", "value", "overall", "altogether", "together", "in", "all",
];

/// Verbs of arithmetic that begin a new clause after `and` or a comma when a quantity in
/// words follows (`Read budget.txt and add the seed budget to the tool budget`): the
/// quantities are found first, then combined. With numbers after them (`add 2 and 3`,
/// `… and divide by 3`) they are arithmetic of the clause itself.
const OPERATION_VERBS: &[&str] = &["add", "subtract", "multiply", "divide"];

/// Whether `sentence` only asks for the result (its words are all [`RESTATING`]).
fn restates(sentence: &str) -> bool {
    sentence
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .all(|w| RESTATING.contains(&w.to_lowercase().as_str()))
}

/// Whether `sentence` tells where to look rather than what to do: a pronoun, a form of
/// `be`, then a place (`It should be in the season notes.`, `They are listed in
/// seeds.txt.`). Its `it` is the thing asked for, not a result to work on.
fn hints(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).collect();
    let Some((first, rest)) = words.split_first() else { return false };
    let be = |w: &str| matches!(w, "is" | "are" | "be" | "was" | "were" | "being");
    let (pronoun, rest) = match *first {
        "it's" | "that's" | "they're" => (true, rest),
        "it" | "this" | "that" | "they" | "these" | "those" => match rest.iter().take(3).position(|w| be(w)) {
            Some(i) => (true, &rest[i + 1..]),
            None => (false, rest),
        },
        _ => (false, rest),
    };
    let place = rest.iter().take(4).any(|w| matches!(*w, "in" | "on" | "under" | "inside" | "within"));
    pronoun && place && !sentence.chars().any(|c| c.is_ascii_digit())
}

/// Whether `piece` begins with one of [`OPERATION_VERBS`] followed by a word, not a number
/// (in digits or in words: `add fifty-six` is arithmetic of its own clause).
fn operates_on_named(piece: &str) -> bool {
    let piece = super::tools::spell_out(piece);
    let mut words = piece.split_whitespace();
    let verb = words.next().unwrap_or("").to_lowercase();
    let next = words.next().unwrap_or("");
    OPERATION_VERBS.contains(&verb.as_str()) && next.starts_with(|c: char| c.is_alphabetic()) && !matches!(next, "by" | "and" | "to" | "from")
}

/// Arithmetic that a clause may begin with (its left operand being the result so far):
/// `Carol's age | multiplied by 2` is a lookup, then arithmetic on what it found.
pub const OPERATIONS: &[&str] = &["multiplied by ", "divided by ", "plus ", "minus ", "times ", "take away "];

/// `objective` (on one line) cut into at most `max` clauses (the last takes what is left).
pub fn split(objective: &str, max: usize) -> Vec<Clause> {
    let max = max.clamp(1, MAX_CLAUSES);
    let text = objective.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = text.to_ascii_lowercase();
    // Candidate cuts: (offset, joiner length), in order, never overlapping.
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    // The end of a sentence that began a clause by referring back: its commas and `and`s are
    // its own (`Over a 26-week season, how many days is that?` is one clause).
    let mut quiet_until = 0;
    while at < lower.len() {
        let found = ENDS
            .iter()
            .map(|j| (j, true))
            .chain(JOINS.iter().map(|j| (j, false)))
            .filter(|(j, _)| lower[at..].starts_with(**j))
            .max_by_key(|(j, _)| j.len());
        match found {
            Some((j, always)) if at > 0 && (always || at >= quiet_until) => {
                let rest = &text[at + j.len()..];
                let lower_rest = &lower[at + j.len()..];
                // A sentence is judged whole; a piece of one only up to the next joiner
                // (`and 655, then … the sum` is no cut).
                let sentence = SENTENCE_ENDS.contains(j);
                // Where the next sentence begins its joiner.
                let sentence_end = SENTENCE_ENDS.iter().filter_map(|j| lower_rest.find(j)).min().unwrap_or(rest.len());
                let piece_end = if sentence {
                    (sentence_end + 1).min(rest.len())
                } else {
                    ENDS.iter().chain(JOINS).filter_map(|j| lower_rest.find(j)).min().unwrap_or(rest.len())
                };
                let piece = &rest[..piece_end];
                let before = &text[..at];
                // (Arithmetic a piece begins with counts only after a quantity in words.)
                let operation = OPERATIONS.iter().any(|op| piece.to_ascii_lowercase().starts_with(op));
                let refers_back = if operation {
                    operation_cut(&lower, at + j.len() - 1).is_some()
                } else if sentence && (restates(piece) || hints(piece)) {
                    false
                } else {
                    super::references::refer_back(piece, 1, before) != piece
                };
                let new_operation = !sentence && operates_on_named(piece);
                if (always || refers_back || new_operation) && has_word(rest) {
                    cuts.push((at, j.len()));
                    if sentence {
                        quiet_until = at + j.len() + sentence_end;
                    }
                    at += j.len();
                    continue;
                }
                at += 1;
            }
            Some(_) if at > 0 => at += 1,
            _ => {
                if let Some(len) = operation_cut(&lower, at) {
                    cuts.push((at, 1));
                    at += len;
                    continue;
                }
                at += 1;
            }
        }
        while !text.is_char_boundary(at) {
            at += 1;
        }
    }
    cuts.truncate(max - 1);
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    let mut joiner = String::new();
    for (i, len) in cuts.into_iter().chain(std::iter::once((text.len(), 0))) {
        let piece = text[start..i].to_string();
        if !piece.is_empty() {
            out.push(Clause {
                opening: opening(&piece),
                continued: format!("{joiner}{piece}"),
                joiner: joiner.clone(),
                text: piece,
            });
        }
        joiner = text[i..i + len].to_string();
        start = i + len;
    }
    out
}

/// Whether a clause begins at the space at `at` of `lower`: one of [`OPERATIONS`] follows,
/// then a number, and the word before is no number (nor `squared` or `cubed`): `Carol's age
/// multiplied by 2`, not `12 * 3 plus 4` or `12 squared minus 44`, which are arithmetic
/// already. Returns how far to skip.
fn operation_cut(lower: &str, at: usize) -> Option<usize> {
    let rest = lower[at..].strip_prefix(' ')?;
    let op = OPERATIONS.iter().find(|op| rest.starts_with(**op))?;
    let operand = rest[op.len()..].trim_start_matches(['$', '(']);
    let before = lower[..at].split_whitespace().last()?;
    let before = before.trim_end_matches([',', ')']);
    let arithmetic = before.chars().any(|c| c.is_ascii_digit()) || matches!(before, "squared" | "cubed") || before.is_empty();
    (operand.starts_with(|c: char| c.is_ascii_digit()) && !arithmetic).then_some(1 + op.len())
}

/// Whether `text` holds a word of two letters or more (not only numbers and signs).
fn has_word(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|w| w.chars().count() >= 2)
}

/// `text` as a step begins with it: `What is 2 + 2?` → `what is 2 + 2?`, but
/// `SQL`, `Bob's` and `README.md` keep their case (a capital followed by a capital or not
/// followed by a lower-case letter is a name or an acronym, not sentence case).
fn opening(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() && !is_name(text) => {
            let mut out: String = a.to_lowercase().collect();
            out.push_str(&text[a.len_utf8()..]);
            out
        }
        _ => text.to_string(),
    }
}

/// Whether the first word of `text` reads as a name: followed by `'s`.
fn is_name(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    first.ends_with("'s") || first.ends_with("’s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(objective: &str) -> Vec<String> {
        split(objective, MAX_CLAUSES).into_iter().map(|c| c.text).collect()
    }

    #[test]
    fn clauses_end_where_a_new_action_begins() {
        assert_eq!(texts("Multiply 17 by 23, then divide the result by 5."), ["Multiply 17 by 23", "divide the result by 5."]);
        assert_eq!(texts("Add 345 and 655, then multiply the sum by 3."), ["Add 345 and 655", "multiply the sum by 3."]);
        assert_eq!(texts("Find the port in config.ini and add 1 to it."), ["Find the port in config.ini", "add 1 to it."]);
        assert_eq!(texts("Count the users, multiply that by 10."), ["Count the users", "multiply that by 10."]);
        assert_eq!(
            texts("budget.txt gives the monthly budget and the rent. How much is left after paying the rent?"),
            ["budget.txt gives the monthly budget and the rent. How much is left after paying the rent?"]
        );
        assert_eq!(texts("How many workers does config.ini set? Multiply that by 25."), ["How many workers does config.ini set", "Multiply that by 25."]);
        assert_eq!(texts("What is 7 * 6? What do you get?"), ["What is 7 * 6? What do you get?"], "a sentence that does not refer back");
        assert_eq!(texts("Which is larger, Bob's age or the team size?"), ["Which is larger, Bob's age or the team size?"]);
        assert_eq!(texts("What is 48 divided by 4, plus 7?"), ["What is 48 divided by 4, plus 7?"]);
        assert_eq!(texts("What is Carol's age multiplied by 2?"), ["What is Carol's age", "multiplied by 2?"]);
        assert_eq!(texts("What is 12 squared minus 44?"), ["What is 12 squared minus 44?"]);
        assert_eq!(texts("the rent plus the budget"), ["the rent plus the budget"], "no number after the operation");
        assert_eq!(texts("What is 17 * 23 + 4?"), ["What is 17 * 23 + 4?"]);
        assert_eq!(texts("Pay 1,200 now and then 3.5 later"), ["Pay 1,200 now", "3.5 later"]);
        assert_eq!(texts("Go on with it. 1. 2."), ["Go on with it. 1. 2."], "a piece without a word is no clause");
        assert_eq!(texts("Read the brand file"), ["Read the brand file"]);
        assert_eq!(
            texts("The settings file says how many days a week (water_days). Over a 26-week season, how many days is that?"),
            ["The settings file says how many days a week (water_days)", "Over a 26-week season, how many days is that?"],
            "a sentence that refers back is one clause, commas and all"
        );
        assert_eq!(
            texts("Read budget.txt and add the seed budget to the tool budget. What's the total?"),
            ["Read budget.txt", "add the seed budget to the tool budget. What's the total?"],
            "quantities found, then combined; a question that restates stays"
        );
        assert_eq!(texts("Add 345 and 655. What is the result?"), ["Add 345 and 655. What is the result?"]);
        assert_eq!(
            texts("When is the planting day? It should be in the season notes."),
            ["When is the planting day? It should be in the season notes."],
            "a hint of where to look stays"
        );
        assert_eq!(texts("Which city is it? They're listed in cities.txt"), ["Which city is it? They're listed in cities.txt"]);
        assert_eq!(texts("Find the rate. It is in rates.txt. Multiply it by 3."), ["Find the rate. It is in rates.txt", "Multiply it by 3."]);
        assert_eq!(texts("Subtract 250 from 1000 and divide by 3"), ["Subtract 250 from 1000 and divide by 3"]);
        assert_eq!(texts("Find the rate and multiply it by 3"), ["Find the rate", "multiply it by 3"]);
        assert_eq!(texts("Start with one hundred forty-four, add fifty-six, then halve it"), ["Start with one hundred forty-four, add fifty-six", "halve it"]);
    }

    #[test]
    fn the_clauses_rebuild_the_objective() {
        for o in ["Subtract 250 from 1000, then divide the result by 3.", "Aa then Bb then Cc then Dd then Ee then Ff then Gg then Hh then Ii then Jj", "Héllo wörld then ünïcode"] {
            for max in [1, 2, 5, 100] {
                let cs = split(o, max);
                assert!(cs.len() <= max.min(MAX_CLAUSES));
                assert_eq!(cs.iter().map(|c| c.continued.as_str()).collect::<String>(), o);
                assert_eq!(cs[0].joiner, "");
            }
        }
    }

    #[test]
    fn a_step_opens_in_lower_case_unless_a_name_or_acronym() {
        let o = |t: &str| split(t, 1)[0].opening.clone();
        assert_eq!(o("What is 2 + 2?"), "what is 2 + 2?");
        assert_eq!(o("SQL: count the users"), "SQL: count the users");
        assert_eq!(o("Bob's age times 2"), "Bob's age times 2");
        assert_eq!(o("docs/readme.md says"), "docs/readme.md says");
    }
}
