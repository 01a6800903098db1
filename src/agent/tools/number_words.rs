//! Numbers written in words (`one hundred forty-four`, `fifty-six`, `two thousand and five`)
//! as digits, for the calculator.
//!
//! A plan copied from an objective carries the objective's own words, and a small model
//! copies them well but translates them badly (`one hundred forty-four, add fifty-six` came
//! back as `7 + 56`). Reading the words where they stand keeps the model out of it. Written
//! by hand: the crates that convert words to numbers parse one number per string, not
//! numbers inside a sentence, and would be a dependency for forty lines.

/// Words for 0–19, by value.
const UNITS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
];
/// Words for 20, 30, … 90, from `twenty`.
const TENS: &[&str] = &["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
/// Multipliers that close a group (`two thousand`, `three million`).
const SCALES: &[(&str, u64)] = &[("thousand", 1_000), ("million", 1_000_000), ("billion", 1_000_000_000)];

/// The value of one number word below a hundred (`forty`, `seven`, `forty-four`).
fn small(word: &str) -> Option<u64> {
    if let Some(i) = UNITS.iter().position(|u| *u == word) {
        return Some(i as u64);
    }
    if let Some(i) = TENS.iter().position(|t| *t == word) {
        return Some(20 + 10 * i as u64);
    }
    let (tens, unit) = word.split_once('-')?;
    let tens = TENS.iter().position(|t| *t == tens)?;
    let unit = UNITS.iter().position(|u| *u == unit).filter(|u| (1..10).contains(u))?;
    Some(20 + 10 * tens as u64 + unit as u64)
}

/// `text` with every run of number words replaced by its digits; everything else, spacing
/// and punctuation included, is kept. `and` inside a number (`one hundred and five`) belongs
/// to it; `and` between numbers (`add two and three`) does not.
pub fn spell_out(text: &str) -> String {
    // Tokens: words (letters and inner hyphens) and single other characters.
    let mut tokens: Vec<&str> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let in_word = c.is_ascii_alphabetic() || (c == '-' && start.is_some());
        match (in_word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                tokens.push(&text[s..i]);
                tokens.push(&text[i..i + c.len_utf8()]);
                start = None;
            }
            (false, None) => tokens.push(&text[i..i + c.len_utf8()]),
            (true, Some(_)) => {}
        }
    }
    if let Some(s) = start {
        tokens.push(&text[s..]);
    }

    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < tokens.len() {
        match read_number(&tokens[i..]) {
            Some((value, used)) => {
                out.push_str(&value.to_string());
                i += used;
            }
            None => {
                out.push_str(tokens[i]);
                i += 1;
            }
        }
    }
    out
}

/// The number that `tokens` begin with, and how many tokens it spans (spaces between its
/// words included, trailing ones not).
fn read_number(tokens: &[&str]) -> Option<(u64, usize)> {
    let lower = |t: &str| t.trim_end_matches('-').to_ascii_lowercase();
    let (mut total, mut group) = (0u64, 0u64);
    let mut used = 0;
    let mut seen_any = false;
    // Whether the group so far ends in `hundred` (so `and` may continue it).
    let mut after_hundred = false;
    let mut j = 0;
    while j < tokens.len() {
        let word = lower(tokens[j]);
        let step = if let Some(v) = small(&word) {
            // `forty four` is one number, `four four` is not.
            if seen_any && group % 100 != 0 && !(group % 10 == 0 && group % 100 >= 20 && v < 10) {
                break;
            }
            group += v;
            after_hundred = false;
            true
        } else if word == "hundred" && seen_any && group % 100 != 0 && group < 100 {
            group *= 100;
            after_hundred = true;
            true
        } else if let Some((_, scale)) = SCALES.iter().find(|(w, _)| *w == word).filter(|_| seen_any && group > 0) {
            total = total.checked_add(group.checked_mul(*scale)?)?;
            group = 0;
            after_hundred = true;
            true
        } else if word == "and" && after_hundred && tokens.get(j + 2).is_some_and(|t| small(&lower(t)).is_some_and(|v| v > 0)) {
            after_hundred = false;
            false
        } else {
            break;
        };
        if step {
            seen_any = true;
            used = j + 1;
        }
        // Words are joined by single spaces.
        if tokens.get(j + 1) != Some(&" ") {
            break;
        }
        j += 2;
    }
    seen_any.then_some((total + group, used))
}

#[cfg(test)]
mod tests {
    use super::spell_out;

    #[test]
    fn numbers_in_words_become_digits() {
        assert_eq!(spell_out("one hundred forty-four"), "144");
        assert_eq!(spell_out("Start with one hundred forty-four, add fifty-six, then divide by eight."), "Start with 144, add 56, then divide by 8.");
        assert_eq!(spell_out("two thousand and five"), "2005");
        assert_eq!(spell_out("one hundred and five plus twenty"), "105 plus 20");
        assert_eq!(spell_out("add two and three"), "add 2 and 3");
        assert_eq!(spell_out("three million two hundred thousand"), "3200000");
        assert_eq!(spell_out("Twelve squared"), "12 squared");
        assert_eq!(spell_out("four four"), "4 4");
        assert_eq!(spell_out("twenty one"), "21");
        assert_eq!(spell_out("zero"), "0");
    }

    #[test]
    fn other_words_stay() {
        assert_eq!(spell_out("someone tonight often"), "someone tonight often");
        assert_eq!(spell_out("#E1 divided by 3"), "#E1 divided by 3");
        assert_eq!(spell_out("hundred thousand and"), "hundred thousand and");
        assert_eq!(spell_out("forty-two-ish x"), "forty-two-ish x");
        assert_eq!(spell_out("naïve seven"), "naïve 7");
    }
}
