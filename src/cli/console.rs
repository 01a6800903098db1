//! The run as the person at the terminal sees it: plan, steps, Thought/Action/Observation as
//! they stream, replans and the answer; coloured on a terminal, plain otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use pae_local::agent::events::{Event, Observer, PlanSource, RunStatus, StepStatus};
use pae_local::agent::llm::Purpose;

/// Prints events to stdout or stderr.
pub struct Console {
    to_stderr: bool,
    color: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Purpose of the text being streamed, to start a new block when it changes.
    streaming: Option<Purpose>,
    at_line_start: bool,
}

const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const CYAN: &str = "\x1b[36m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

impl Console {
    pub fn new(to_stderr: bool) -> Self {
        let tty = if to_stderr { std::io::stderr().is_terminal() } else { std::io::stdout().is_terminal() };
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        Self {
            to_stderr,
            color,
            state: Mutex::new(State {
                streaming: None,
                at_line_start: true,
            }),
        }
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn write(&self, s: &str) {
        // A closed terminal must not stop the run.
        if self.to_stderr {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(s.as_bytes());
            let _ = e.flush();
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }

    /// Writes a whole line, first ending any streamed text.
    fn line(&self, state: &mut State, s: &str) {
        if !state.at_line_start {
            self.write("\n");
        }
        state.streaming = None;
        self.write(s);
        self.write("\n");
        state.at_line_start = true;
    }
}

impl Observer for Console {
    fn on_event(&self, event: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::RunStart { objective, tools, .. } => {
                self.line(&mut st, &format!("{} {objective}", self.paint(BOLD, "Objective:")));
                self.line(&mut st, &self.paint(DIM, &format!("tools: {}", tools.join(", "))));
            }
            Event::Text { purpose, text } => {
                if st.streaming != Some(*purpose) {
                    let header = match purpose {
                        Purpose::Plan => "── plan",
                        Purpose::Execute => "",
                        Purpose::Replan => "── decision",
                        Purpose::Judge => "── judge",
                        Purpose::Solve => "── answer",
                    };
                    if !header.is_empty() {
                        self.line(&mut st, &self.paint(CYAN, header));
                    } else if !st.at_line_start {
                        self.write("\n");
                        st.at_line_start = true;
                    }
                    st.streaming = Some(*purpose);
                }
                self.write(text);
                st.at_line_start = text.ends_with('\n');
            }
            Event::Plan { steps, source, candidates, chosen } => {
                if !candidates.is_empty() {
                    let mut s = format!("{} candidate plans:", candidates.len());
                    for (i, c) in candidates.iter().enumerate() {
                        let mark = if Some(i) == *chosen { "→" } else { " " };
                        let what = match &c.rejected {
                            Some(r) => format!("rejected: {r}"),
                            None => c.steps.join(" / "),
                        };
                        s.push_str(&format!("\n {mark} {} (seed {}): {what}", c.model, c.seed));
                    }
                    self.line(&mut st, &self.paint(DIM, &s));
                } else if *source != PlanSource::Planner {
                    let mut s = String::from("Plan:");
                    for (i, step) in steps.iter().enumerate() {
                        s.push_str(&format!("\n{}. {step}", i + 1));
                    }
                    self.line(&mut st, &s);
                }
            }
            Event::StepStart { index, step, attempt } => {
                let again = if *attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
                self.line(&mut st, &self.paint(CYAN, &format!("── step {index}{again}: {step}")));
            }
            Event::Observation { text, error, .. } => {
                let style = if *error { RED } else { GREEN };
                self.line(&mut st, &format!("{} {text}", self.paint(style, "Observation:")));
            }
            Event::StepEnd { index, status, result } if *status == StepStatus::Failed => {
                self.line(&mut st, &self.paint(RED, &format!("step {index} failed: {result}")));
            }
            Event::Retry { index, attempt, reason } => {
                self.line(&mut st, &self.paint(YELLOW, &format!("retrying step {index} (attempt {attempt}): {reason}")));
            }
            Event::Replan { reason, .. } => {
                self.line(&mut st, &self.paint(YELLOW, &format!("replanning: {reason}")));
            }
            Event::Human { kind, text } => {
                let t = if text.is_empty() { String::new() } else { format!(": {text}") };
                self.line(&mut st, &self.paint(DIM, &format!("[{kind}{t}]")));
            }
            Event::RunEnd {
                status,
                budget,
                final_answer,
                secs,
                ..
            } => {
                let answer = final_answer.as_deref().unwrap_or("-");
                let (style, what) = match status {
                    RunStatus::Answered => (GREEN, "Answer".to_string()),
                    RunStatus::BudgetExhausted => (
                        YELLOW,
                        format!(
                            "Budget exhausted ({}); best so far",
                            budget.map(|b| format!("{b:?}").to_lowercase()).unwrap_or_default()
                        ),
                    ),
                    RunStatus::Rejected => (YELLOW, "Plan rejected".to_string()),
                    RunStatus::Interrupted => (YELLOW, "Interrupted; best so far".to_string()),
                    RunStatus::Error => (RED, "Error; best so far".to_string()),
                };
                self.line(&mut st, &format!("{} {answer} {}", self.paint(&format!("{BOLD}{style}"), &format!("{what}:")), self.paint(DIM, &format!("({secs:.1} s)"))));
            }
            _ => {}
        }
    }
}

/// Sends every event to several observers.
pub struct Fanout(pub Vec<Box<dyn Observer>>);

impl Observer for Fanout {
    fn on_event(&self, event: &Event) {
        for o in &self.0 {
            o.on_event(event);
        }
    }
}
