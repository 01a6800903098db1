//! Tokens → printable text: whole UTF-8 characters only, stop strings held back until decided.

/// Turns a stream of token bytes into valid UTF-8 text.
///
/// A token may end in the middle of a multi-byte character (byte-level BPE splits emoji and
/// CJK across tokens); the incomplete tail waits for the next token. Invalid sequences become
/// U+FFFD, as `String::from_utf8_lossy` would make them.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes and returns the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete character at the end: keep it for later.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream; an incomplete character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

/// Finds stop strings in streamed text without ever showing part of one.
///
/// Text that could be the start of a stop string is held back until the next piece decides.
#[derive(Debug, Clone)]
pub struct StopStrings {
    stops: Vec<String>,
    held: String,
}

/// What [`StopStrings::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub struct StopCheck {
    /// Text safe to show now.
    pub emit: String,
    /// The stop string that was found (the text before it is in `emit`).
    pub stopped: Option<String>,
}

impl StopStrings {
    /// Watches for `stops`; empty strings are ignored.
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    /// Adds the next piece of text: what can be shown now, and the stop string if one
    /// completed.
    pub fn push(&mut self, text: &str) -> StopCheck {
        self.held.push_str(text);
        // The earliest complete stop string ends generation.
        let found = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, s)) = found {
            let emit = self.held[..at].to_string();
            let stop = s.clone();
            self.held.clear();
            return StopCheck {
                emit,
                stopped: Some(stop),
            };
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        let mut keep_from = self.held.len();
        for (i, _) in self.held.char_indices() {
            let tail = &self.held[i..];
            if self.stops.iter().any(|s| s.starts_with(tail)) {
                keep_from = i;
                break;
            }
        }
        let emit = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        StopCheck {
            emit,
            stopped: None,
        }
    }

    /// Ends the stream: held text was not a stop string after all.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_tokens_waits_for_the_rest() {
        let rocket = "🚀".as_bytes();
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(b"go "), "go ");
        assert_eq!(s.push(&rocket[..2]), "");
        assert_eq!(s.push(&rocket[2..]), "🚀");
        assert_eq!(s.push(&[0xff, b'a']), "\u{FFFD}a");
        assert_eq!(s.push(&rocket[..1]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_strings_are_never_shown() {
        let mut s = StopStrings::new(vec!["\nUser:".into()]);
        assert_eq!(s.push("Hello").emit, "Hello");
        let c = s.push(" there\nUs");
        assert_eq!(c.emit, " there");
        let c = s.push("er: hi");
        assert_eq!(c, StopCheck { emit: String::new(), stopped: Some("\nUser:".into()) });
    }

    #[test]
    fn held_text_that_was_not_a_stop_is_released() {
        let mut s = StopStrings::new(vec!["STOP".into()]);
        assert_eq!(s.push("a ST").emit, "a ");
        assert_eq!(s.push("ART").emit, "START");
        assert_eq!(s.push("ST").emit, "");
        assert_eq!(s.finish(), "ST");
    }
}
