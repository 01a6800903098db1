//! `calculator`: exact arithmetic on an expression, parsed, never evaluated as code.
//!
//! Numbers are exact rationals (big integers), so `0.1 + 0.2` is `0.3` and `2^100` is exact.
//! The parser is a small recursive descent over `+ - * / % ^ **`, parentheses and unary signs;
//! no crate offers exact rational evaluation of such expressions.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use serde_json::{json, Value};

use super::{blocking, str_field, Tool, ToolError, ToolFuture, ToolSpec};

/// Largest exponent accepted, and most digits in any intermediate result: bounds time and
/// memory whatever the expression.
const MAX_EXPONENT: i64 = 4096;
const MAX_DIGITS: u64 = 4096;
/// Deepest nesting of parentheses, signs and powers: the parser recurses once per level.
const MAX_DEPTH: usize = 64;

/// `calculator`: exact arithmetic on an expression in symbols or words.
pub struct Calculator {
    spec: ToolSpec,
}

impl Default for Calculator {
    fn default() -> Self {
        Self {
            spec: ToolSpec::new(
                "calculator",
                "Computes arithmetic on numbers exactly: adds, subtracts, multiplies, divides, squares and raises to powers (plus, minus, times, divided by, squared), written with + - * / ^ and parentheses or in words.",
                json!({
                    "type": "object",
                    // Only what an expression can hold (symbols, lower-case operator words, and
                    // `#E1`-style references to earlier results), so that a constrained model
                    // cannot wander into code, comments or `=` results.
                    "properties": {"expression": {
                        "type": "string",
                        "maxLength": 200,
                        "pattern": "^(#E[1-9][0-9]*|[-(0-9a-zA-Z])([-+*/^%(). 0-9a-zA-Z,?']|#E[1-9][0-9]*)*$"
                    }},
                    "required": ["expression"],
                    "additionalProperties": false
                }),
                json!({"expression": "(12 + 3) * 4"}),
            )
            .with_words_field("expression"),
        }
    }
}

impl Tool for Calculator {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        Box::pin(async move {
            let expr = str_field(&input, "expression")?.to_string();
            // Off the async threads: big-number work is bounded but not instant, and the
            // registry's timeout can only fire while this future waits.
            blocking(move |_| evaluate_words(&expr).map(|v| format_number(&v)).map_err(ToolError::Failed)).await
        })
    }
}

/// Evaluates `text`, or else its first sentence: a request in words may end with a remark
/// or a question about the result (`divide 200 by 8. What do you get?`). The error is the
/// whole text's.
fn evaluate_words(text: &str) -> Result<BigRational, String> {
    evaluate(text).or_else(|e| {
        match [". ", "? ", "! ", "; "].iter().filter_map(|end| text.find(end)).min() {
            Some(i) => evaluate(&text[..i]).map_err(|_| e),
            None => Err(e),
        }
    })
}

/// Operators people (and models) spell out, and their symbols. Longest first.
const WORDS: &[(&str, &str)] = &[
    ("to the power of", "^"),
    ("raised to", "^"),
    ("multiplied by", "*"),
    ("take away", "-"),
    ("divided by", "/"),
    ("squared", "^2"),
    ("cubed", "^3"),
    ("times", "*"),
    ("plus", "+"),
    ("minus", "-"),
    ("over", "/"),
    ("mod", "%"),
];

/// Operations people (and models copying an objective) write as a verb before both operands:
/// `add 2 and 3`, `subtract 250 from 1000`, `multiply 17 by 23`, `divide 10 by 4`, `the sum of
/// 2 and 3`. Each becomes a parenthesised symbol expression; `{a}` and `{b}` are operands (a
/// number or a parenthesised group).
const VERBS: &[(&str, &str)] = &[
    (r"(?:the )?sum of {a} and {b}", "({a} + {b})"),
    (r"(?:the )?product of {a} and {b}", "({a} * {b})"),
    (r"(?:the )?difference (?:between|of) {a} and {b}", "({a} - {b})"),
    (r"add {a} (?:and|to) {b}", "({a} + {b})"),
    (r"subtract {a} from {b}", "({b} - {a})"),
    (r"multiply {a} (?:by|and|with) {b}", "({a} * {b})"),
    (r"divide {a} by {b}", "({a} / {b})"),
];

/// A second operation on the running result, as a chained sentence says it (`…, then divide
/// the result by 5`, `… and add 7 to it`, `144, add 56`): the operator and its operand. The
/// running result `{p}` is everything before, in parentheses: `17 + 23, then divide the result
/// by 5` is `(17 + 23) / 5`, as the sentence means, not `17 + 23 / 5`.
///
/// `;` marks where the sentence paused (a comma or `then`); the short forms (`add 56`,
/// `divide by 8`, `plus 7`) continue the running result only there, so that `7 squared minus 9
/// divided by 3` keeps the usual precedence.
const CHAINED: &[(&str, &str)] = &[
    (r"(?: ;)? (?:and )?add {b} to (?:the result|the sum|the total|it|that|this)", "({p}) + {b}"),
    (r"(?: ;)? (?:and )?subtract {b} from (?:the result|the sum|the total|it|that|this)", "({p}) - {b}"),
    (r"(?: ;)? (?:and )?multiply (?:the result|the sum|the total|it|that|this) by {b}", "({p}) * {b}"),
    (r"(?: ;)? (?:and )?divide (?:the result|the sum|the total|it|that|this) by {b}", "({p}) / {b}"),
    (r" ; (?:and )?(?:add|plus) {b}", "({p}) + {b}"),
    (r" ; (?:and )?(?:subtract|minus|take away) {b}", "({p}) - {b}"),
    (r" ; (?:and )?(?:multiply by|multiplied by|times) {b}", "({p}) * {b}"),
    (r" ; (?:and )?(?:divide by|divided by) {b}", "({p}) / {b}"),
];

/// Words that frame a question rather than state arithmetic (`What is 2 + 2?`), dropped.
const FRAMING: &[&str] = &["what is", "what's", "how much is", "compute", "calculate", "evaluate", "the value of"];

/// Words that set up the running result (`start with 144, add 56`), dropped wherever they are.
const OPENERS: &[&str] = &[" start with ", " starting with ", " begin with "];

/// Where speech pauses between operations, marked `;` for [`CHAINED`]. Longest first.
const PAUSES: &[&str] = &[", and then ", " and then ", ", then ", " then ", ", "];

/// Rewrites [`VERBS`] and [`CHAINED`] phrases into symbols, innermost first, and drops
/// [`FRAMING`] and [`OPENERS`] words, a final `?` or `.`, and the pauses between operations,
/// which mean nothing to the parser once the operations are grouped.
fn rewrite_verbs(text: &str) -> String {
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let operand = r"(-?[0-9][0-9.,]*|\([^()]*\))";
        let chained = CHAINED.iter().map(|(pat, out)| (format!(r"^(?P<p>.*?[0-9)]){pat}"), *out));
        let verbs = VERBS.iter().map(|(pat, out)| (format!(r"\b{pat}"), *out));
        chained
            .chain(verbs)
            .map(|(pat, out)| {
                let pat = pat.replace("{a}", &operand.replace("(-?", "(?P<a>-?")).replace("{b}", &operand.replace("(-?", "(?P<b>-?"));
                (regex::Regex::new(&pat).expect("valid verb pattern"), out)
            })
            .collect()
    });
    let mut text = text.trim().trim_end_matches(['?', '.', '!']).to_string();
    for f in FRAMING {
        if let Some(rest) = text.strip_prefix(f) {
            text = rest.trim_start().to_string();
        }
    }
    let mut text = format!(" {text} ");
    for opener in OPENERS {
        text = text.replace(opener, " ");
    }
    for pause in PAUSES {
        text = text.replace(pause, " ; ");
    }
    // What commas are left sit inside numbers (`1,000`).
    let mut text = text.replace(',', "");
    // Each pass rewrites at least one phrase or stops; nesting is bounded by the length.
    for _ in 0..16 {
        let before = text.clone();
        for (re, out) in rules {
            text = re
                .replace(&text, |c: &regex::Captures<'_>| {
                    let group = |n: &str| c.name(n).map_or("", |m| m.as_str()).to_string();
                    out.replace("{p}", &group("p")).replace("{a}", &group("a")).replace("{b}", &group("b"))
                })
                .into_owned();
        }
        if text == before {
            break;
        }
    }
    text.replace(';', " ")
}

/// Evaluates `expr` exactly.
pub fn evaluate(expr: &str) -> Result<BigRational, String> {
    let mut text = rewrite_verbs(&super::number_words::spell_out(&expr.to_lowercase()));
    for (word, symbol) in WORDS {
        text = text.replace(word, &format!(" {symbol} "));
    }
    let mut p = Parser {
        chars: text.chars().filter(|c| !c.is_whitespace() && *c != ',' && *c != '_').collect(),
        pos: 0,
        depth: 0,
    };
    // Thousands separators (`1,000`) and `_` are dropped above; `×`, `÷` and `x` between
    // numbers are accepted as the operators people type.
    if p.chars.is_empty() {
        return Err("the expression is empty".into());
    }
    let v = p.expr()?;
    if p.pos < p.chars.len() {
        return Err(format!("unexpected `{}` at position {}", p.chars[p.pos], p.pos + 1));
    }
    Ok(v)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    /// Runs `f` one level deeper, refusing expressions nested past [`MAX_DEPTH`].
    fn nested(&mut self, f: impl FnOnce(&mut Self) -> Result<BigRational, String>) -> Result<BigRational, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("the expression is nested more than {MAX_DEPTH} levels deep"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<BigRational, String> {
        let mut v = self.term()?;
        loop {
            if self.eat('+') {
                v += self.term()?;
            } else if self.eat('-') || self.eat('−') {
                v -= self.term()?;
            } else {
                return Ok(v);
            }
            check_size(&v)?;
        }
    }

    fn term(&mut self) -> Result<BigRational, String> {
        let mut v = self.power()?;
        loop {
            let op = match self.peek() {
                Some('*') if self.chars.get(self.pos + 1) != Some(&'*') => '*',
                Some('×') | Some('x') => '*',
                Some('/') | Some('÷') => '/',
                Some('%') => '%',
                _ => return Ok(v),
            };
            self.pos += 1;
            let rhs = self.power()?;
            v = match op {
                '*' => v * rhs,
                _ if rhs.is_zero() => return Err("division by zero".into()),
                '/' => v / rhs,
                _ => {
                    // Remainder with the sign of the dividend, as in most languages.
                    let q = (&v / &rhs).trunc();
                    v - q * rhs
                }
            };
            check_size(&v)?;
        }
    }

    fn power(&mut self) -> Result<BigRational, String> {
        let base = self.unary()?;
        let is_pow = if self.eat('^') {
            true
        } else if self.peek() == Some('*') && self.chars.get(self.pos + 1) == Some(&'*') {
            self.pos += 2;
            true
        } else {
            false
        };
        if !is_pow {
            return Ok(base);
        }
        // Right-associative: 2^3^2 = 2^9.
        let exp = self.nested(Self::power)?;
        if !exp.is_integer() {
            return Err("only whole-number exponents are exact".into());
        }
        let e = exp
            .to_integer()
            .to_i64()
            .filter(|e| e.abs() <= MAX_EXPONENT)
            .ok_or_else(|| format!("exponents are limited to ±{MAX_EXPONENT}"))?;
        if base.is_zero() && e < 0 {
            return Err("division by zero".into());
        }
        // The size is checked before the power is computed: `(15^4096)^4096` would otherwise
        // take seconds to build a number that is then refused.
        let bits = base.numer().bits().max(base.denom().bits());
        if bits > 1 && (bits - 1).saturating_mul(e.unsigned_abs()) > MAX_DIGITS * 4 {
            return Err("the result is too large".into());
        }
        let v = num_traits::pow::Pow::pow(base, e as i32);
        check_size(&v)?;
        Ok(v)
    }

    fn unary(&mut self) -> Result<BigRational, String> {
        if self.eat('-') || self.eat('−') {
            return Ok(-self.nested(Self::unary)?);
        }
        if self.eat('+') {
            return self.nested(Self::unary);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<BigRational, String> {
        if self.eat('(') {
            let v = self.nested(Self::expr)?;
            if !self.eat(')') {
                return Err("missing `)`".into());
            }
            return Ok(v);
        }
        self.number()
    }

    fn number(&mut self) -> Result<BigRational, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let int_end = self.pos;
        let mut frac = String::new();
        if self.eat('.') {
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                frac.push(c);
                self.pos += 1;
            }
        }
        if int_end == start && frac.is_empty() {
            return Err(match self.peek() {
                Some(c) => format!("expected a number at position {}, found `{c}`", start + 1),
                None => "the expression ends too early".into(),
            });
        }
        if (int_end - start + frac.len()) as u64 > MAX_DIGITS {
            return Err(format!("numbers are limited to {MAX_DIGITS} digits"));
        }
        let digits: String = self.chars[start..int_end].iter().collect::<String>() + &frac;
        let mut v = BigRational::new(
            digits.parse::<BigInt>().map_err(|e| e.to_string())?,
            BigInt::from(10u32).pow(frac.len() as u32),
        );
        // Scientific notation: 1e-9, 2.5E3.
        if matches!(self.peek(), Some('e') | Some('E')) {
            let save = self.pos;
            self.pos += 1;
            let neg = self.eat('-');
            if !neg {
                self.eat('+');
            }
            let es = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            if es == self.pos {
                self.pos = save;
            } else {
                let e: i64 = self.chars[es..self.pos]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .ok()
                    .filter(|e: &i64| *e <= MAX_EXPONENT)
                    .ok_or_else(|| format!("exponents are limited to ±{MAX_EXPONENT}"))?;
                let scale = BigRational::from_integer(BigInt::from(10u32).pow(e as u32));
                v = if neg { v / scale } else { v * scale };
            }
        }
        Ok(v)
    }
}

fn check_size(v: &BigRational) -> Result<(), String> {
    if v.numer().bits() > MAX_DIGITS * 4 || v.denom().bits() > MAX_DIGITS * 4 {
        return Err("the result is too large".into());
    }
    Ok(())
}

/// Integers as integers, terminating fractions as exact decimals, others as a fraction with
/// a 12-digit approximation.
pub fn format_number(v: &BigRational) -> String {
    if v.is_integer() {
        return v.to_integer().to_string();
    }
    let mut d = v.denom().clone();
    let (two, five) = (BigInt::from(2), BigInt::from(5));
    let mut places = 0u32;
    let (mut twos, mut fives) = (0u32, 0u32);
    while (&d % &two).is_zero() {
        d /= &two;
        twos += 1;
    }
    while (&d % &five).is_zero() {
        d /= &five;
        fives += 1;
    }
    if d.is_one() {
        places = twos.max(fives);
    }
    if places > 0 && places <= 40 {
        let scaled = (v * BigRational::from_integer(BigInt::from(10).pow(places))).to_integer();
        return decimal(&scaled, places);
    }
    let approx = (v * BigRational::from_integer(BigInt::from(10).pow(12))).round().to_integer();
    format!("{} (≈ {})", v, decimal(&approx, 12).trim_end_matches('0'))
}

fn decimal(scaled: &BigInt, places: u32) -> String {
    let neg = scaled.is_negative();
    let digits = scaled.abs().to_string();
    let digits = format!("{:0>width$}", digits, width = places as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - places as usize);
    format!("{}{int}.{frac}", if neg { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(e: &str) -> String {
        evaluate(e).map(|v| format_number(&v)).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn exact_arithmetic() {
        assert_eq!(calc("17 * 23 + 4"), "395");
        assert_eq!(calc("0.1 + 0.2"), "0.3");
        assert_eq!(calc("2^100"), "1267650600228229401496703205376");
        assert_eq!(calc("2**3**2"), "512");
        assert_eq!(calc("-(3 - 5) * 2"), "4");
        assert_eq!(calc("7 / 4"), "1.75");
        assert_eq!(calc("1 / 3"), "1/3 (≈ 0.333333333333)");
        assert_eq!(calc("10 % 3"), "1");
        assert_eq!(calc("1,000 × 3"), "3000");
        assert_eq!(calc("2.5e3 / 2"), "1250");
        assert_eq!(calc("12 ÷ 4 - 1"), "2");
        assert_eq!(calc("2 to the power of 10"), "1024");
        assert_eq!(calc("345 plus 655"), "1000");
        assert_eq!(calc("7 squared minus 9 divided by 3"), "46");
    }

    #[test]
    fn operations_written_as_verbs() {
        assert_eq!(calc("add 345 and 655"), "1000");
        assert_eq!(calc("Subtract 250 from 1000"), "750");
        assert_eq!(calc("multiply 17 by 23, then divided by 5"), "78.2");
        assert_eq!(calc("divide 10 by 4"), "2.5");
        assert_eq!(calc("the sum of 2 and 3 times 4"), "20");
        assert_eq!(calc("add 1 to (2 * 3)"), "7");
        assert_eq!(calc("subtract 2 from add 3 and 4"), "5");
        assert!(calc("add the numbers").starts_with("error"));
        assert_eq!(calc("Multiply 17 by 23, then divide the result by 5."), "78.2");
        assert_eq!(calc("Add 345 and 655, then multiply the sum by 3."), "3000");
        assert_eq!(calc("Subtract 250 from 1000, then divide the result by 3."), "250");
        assert_eq!(calc("What is 48 divided by 4, plus 7?"), "19");
        assert_eq!(calc("What is 12 squared minus 44?"), "100");
        assert_eq!(calc("Compute 15 squared minus 11 squared."), "104");
        assert_eq!(calc("395 and add 1 to it"), "396");
        assert_eq!(calc("1620 take away 299"), "1321");
        assert_eq!(calc("17 + 23, then divide the result by 5"), "8", "the running result, not 23 / 5");
        assert_eq!(calc("Start with one hundred forty-four, add fifty-six, then divide the result by eight."), "25");
        assert_eq!(calc("144, add 56, then divide by 8"), "25");
        assert_eq!(calc("ten times three, minus four"), "26");
        assert_eq!(calc("7 squared minus 9 divided by 3"), "46", "no pause: the usual precedence");
        assert_eq!(calc("Multiply twelve by three and then take away 6"), "30");
        let words = |t: &str| evaluate_words(t).map(|v| format_number(&v)).unwrap_or_else(|e| format!("error: {e}"));
        assert_eq!(words("divide 200 by 8. What do you get?"), "25");
        assert!(words("What do you get? 200 / 8").starts_with("error"), "only the first sentence, and the whole text's error");
    }

    #[test]
    fn bad_expressions_are_errors() {
        assert!(calc("1 / 0").starts_with("error: division by zero"));
        assert!(calc("2 ^ 0.5").contains("whole-number"));
        assert!(calc("2 ^ 99999").contains("limited"));
        assert!(calc("(1 + 2").contains("missing"));
        assert!(calc("import os").starts_with("error"));
        assert!(calc("").starts_with("error"));
        assert!(calc("9 ^ 4096 ^ 2").starts_with("error"));
    }
}
