//! The person's input for a whole session: one reader of the terminal, shared by the
//! objective prompt, plan review, remarks and `ask_human`.
//!
//! Why one reader: a read of the terminal cannot be called off once it blocks. When each
//! question read stdin itself, a question abandoned by its caller (a time limit, a stopped
//! run) left a reader behind that swallowed the answer meant for the next question. Here a
//! single thread owns the terminal and hands each line to whoever is waiting for one *when
//! the line is complete*; a caller that gave up is skipped, and a line nobody waits for is
//! dropped with a notice.
//!
//! On a terminal the reader is a line editor (rustyline): arrow keys, history kept in the
//! user's data folder with Ctrl-R search, a trailing `\` to continue on the next line.
//! Otherwise lines are read from stdin as they come (pipes, tests).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use pae_local::agent::tools::Cancel;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Editor};

/// What a read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Line(String),
    /// A line that is not valid UTF-8 (only from a pipe: the editor rejects such input).
    NotUtf8,
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D, or the end of the input.
    Closed,
    /// The caller's [`Cancel`] fired before a line came.
    Cancelled,
}

/// What a line is for: objectives go into the history and may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Objective,
    Answer,
}

struct Request {
    /// Shown by the reader just before it reads, so the prompt always follows the question
    /// (empty: nothing to show, or the caller showed it already).
    question: String,
    prompt: String,
    /// Text already in the line, to be edited (a plan step under review).
    initial: String,
    kind: Kind,
    reply: mpsc::Sender<Reply>,
    /// The caller's cancellation, seen by the reader the moment it fires (the caller itself
    /// notices only at its next look).
    cancel: Option<Cancel>,
}

impl Request {
    fn is_wanted(&self) -> bool {
        !self.cancel.as_ref().is_some_and(Cancel::is_cancelled)
    }
}

/// The session's input. Cheap to share (`Arc`); every read goes through the one reader.
pub struct Input {
    requests: mpsc::Sender<Request>,
    /// Whether the reader is waiting on the terminal right now (for someone, maybe gone).
    reading: Arc<AtomicBool>,
    tty: bool,
}

/// How long a waiting caller sleeps between looks at its [`Cancel`].
const POLL: Duration = Duration::from_millis(50);

impl Input {
    /// Starts the reader: a line editor with history at `history` when stdin is a terminal,
    /// plain lines otherwise.
    pub fn start(history: Option<PathBuf>) -> Arc<Self> {
        let tty = std::io::stdin().is_terminal();
        let (tx, rx) = mpsc::channel::<Request>();
        let reading = Arc::new(AtomicBool::new(false));
        let reading2 = reading.clone();
        std::thread::Builder::new()
            .name("input".into())
            .spawn(move || {
                // History is saved after each objective: the thread may not outlive the session.
                reader(&mut Source::open(tty, history), &rx, &reading2);
            })
            .expect("a thread for the terminal");
        Arc::new(Self {
            requests: tx,
            reading,
            tty,
        })
    }

    /// Whether a person is typing (stdin is a terminal).
    pub fn is_terminal(&self) -> bool {
        self.tty
    }

    /// Reads one line after showing `prompt`.
    pub fn read(&self, prompt: &str, kind: Kind) -> Reply {
        self.read_with("", prompt, "", kind, None)
    }

    /// Shows `question` (if any) and reads one line, starting from `initial` already typed,
    /// until a line comes or `cancel` fires.
    ///
    /// The reader shows the question when it takes the request, just before the prompt: shown
    /// here, it could land after a prompt the reader had already drawn, and a person would see
    /// an empty prompt above the question it belongs to.
    pub fn read_with(&self, question: &str, prompt: &str, initial: &str, kind: Kind, cancel: Option<&Cancel>) -> Reply {
        // The reader may still be on the line of a question that was called off: the next
        // line typed comes here, under the old prompt, so the question is shown at once.
        let stale = self.reading.load(Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let request = Request {
            question: if stale { String::new() } else { question.to_string() },
            prompt: prompt.to_string(),
            initial: initial.to_string(),
            kind,
            reply: tx,
            cancel: cancel.cloned(),
        };
        if self.requests.send(request).is_err() {
            return Reply::Closed;
        }
        if stale {
            if !question.is_empty() {
                self.notice(question);
            }
            self.notice(&format!("(the question before was called off; the line you type now goes to `{}`)", prompt.trim()));
        }
        loop {
            match rx.recv_timeout(POLL) {
                Ok(r) => return r,
                Err(RecvTimeoutError::Disconnected) => return Reply::Closed,
                Err(RecvTimeoutError::Timeout) => {
                    if cancel.is_some_and(Cancel::is_cancelled) {
                        // A line sent between the last look and now is taken, not lost.
                        return rx.try_recv().unwrap_or(Reply::Cancelled);
                    }
                }
            }
        }
    }

    /// A line for the person. (Not through the editor's own printer: rustyline's holds one
    /// message while no line is being edited and blocks the next, so a question called off
    /// would block the one after it.)
    pub fn notice(&self, text: &str) {
        show(text);
    }
}

/// Writes a line for the person on stderr, at once.
fn show(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
    let _ = err.flush();
}

/// Serves requests until the session drops its [`Input`].
fn reader(source: &mut Source, requests: &mpsc::Receiver<Request>, reading: &AtomicBool) {
    let mut closed = false;
    while let Ok(request) = requests.recv() {
        if !request.is_wanted() {
            continue;
        }
        let reply = if closed {
            Reply::Closed
        } else {
            reading.store(true, Ordering::SeqCst);
            if !request.question.is_empty() {
                show(&request.question);
            }
            let r = source.read(&request.prompt, &request.initial, request.kind);
            reading.store(false, Ordering::SeqCst);
            r
        };
        closed |= reply == Reply::Closed;
        // The line goes to whoever waits now: this caller, or, if it gave up, the next one.
        let mut to = Some(request);
        while let Some(r) = to.take() {
            if r.is_wanted() && r.reply.send(reply.clone()).is_ok() {
                break;
            }
            to = requests.try_recv().ok();
            if to.is_none() && matches!(reply, Reply::Line(_)) {
                eprintln!("(no question was waiting; that line was dropped)");
            }
        }
    }
}

/// Where lines come from.
enum Source {
    Editor { editor: Box<Editor<Continuation, FileHistory>>, history: Option<PathBuf> },
    Plain(std::io::StdinLock<'static>),
}

impl Source {
    fn open(tty: bool, history: Option<PathBuf>) -> Self {
        if tty {
            // The terminal itself, not stdout: `--json` keeps stdout for results.
            let config = Config::builder().behavior(rustyline::Behavior::PreferTerm).auto_add_history(false).build();
            if let Ok(mut editor) = Editor::<Continuation, FileHistory>::with_config(config) {
                editor.set_helper(Some(Continuation));
                if let Some(path) = &history {
                    // A first session has no history file yet.
                    let _ = editor.load_history(path);
                }
                return Self::Editor { editor: Box::new(editor), history };
            }
        }
        Self::Plain(std::io::stdin().lock())
    }

    fn read(&mut self, prompt: &str, initial: &str, kind: Kind) -> Reply {
        match self {
            Self::Editor { editor, history } => {
                let line = if initial.is_empty() {
                    editor.readline(prompt)
                } else {
                    editor.readline_with_initial(prompt, (initial, ""))
                };
                match line {
                    Ok(line) => {
                        let line = joined(&line);
                        // Leaving is not worth recalling: Up after a session is its last objective.
                        let leaving = ["/exit", "/quit", "exit", "quit"].contains(&line.trim());
                        if kind == Kind::Objective && !line.trim().is_empty() && !leaving {
                            let _ = editor.add_history_entry(line.as_str());
                            if let Some(path) = history {
                                save(editor, path);
                            }
                        }
                        Reply::Line(line)
                    }
                    Err(ReadlineError::Interrupted) => Reply::Interrupted,
                    Err(ReadlineError::Eof) => Reply::Closed,
                    Err(e) => {
                        eprintln!("pae-local: reading the terminal failed: {e}");
                        Reply::Closed
                    }
                }
            }
            Self::Plain(stdin) => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "{prompt}");
                let _ = err.flush();
                let mut text = Vec::new();
                loop {
                    // Bytes, not `read_line`: a line of invalid UTF-8 is reported, not the end.
                    let mut bytes = Vec::new();
                    match stdin.read_until(b'\n', &mut bytes) {
                        Ok(0) | Err(_) if text.is_empty() => return Reply::Closed,
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let line = trim_newline(&bytes);
                    match line.strip_suffix(b"\\") {
                        Some(head) if kind == Kind::Objective => {
                            text.extend_from_slice(head);
                            text.push(b'\n');
                        }
                        _ => {
                            text.extend_from_slice(line);
                            break;
                        }
                    }
                }
                String::from_utf8(text).map_or(Reply::NotUtf8, Reply::Line)
            }
        }
    }
}

fn save(editor: &mut Editor<Continuation, FileHistory>, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.save_history(path) {
        tracing::warn!("cannot save the history to {}: {e}", path.display());
    }
}

fn trim_newline(bytes: &[u8]) -> &[u8] {
    let b = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Lines ended by `\` joined with newlines, the backslashes gone.
fn joined(text: &str) -> String {
    text.replace("\\\n", "\n")
}

/// Keeps the line open while it ends with `\` (multi-line input).
struct Continuation;

impl Validator for Continuation {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if ctx.input().ends_with('\\') { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

impl rustyline::completion::Completer for Continuation {
    type Candidate = String;
}
impl rustyline::hint::Hinter for Continuation {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Continuation {}
impl rustyline::Helper for Continuation {}

/// Where the session's history lives: `$XDG_DATA_HOME/pae-local/history.txt` (or the
/// platform's data folder); `None` when there is no such folder.
pub fn history_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("pae-local").join("history.txt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continued_lines_join() {
        assert_eq!(joined("add 2 and 3\\\nthen double it"), "add 2 and 3\nthen double it");
        assert_eq!(trim_newline(b"a\\\r\n"), b"a\\");
    }
}
