//! The person at the terminal, as the agent meets them: plan review and step remarks
//! (`--approve-plan`, `--feedback`) and answers to `ask_human`. Every read goes through the
//! session's one [`Input`], so no answer is lost to an abandoned question.

use std::sync::Arc;

use pae_local::agent::supervisor::{PlanReview, Supervisor};
use pae_local::agent::tools::{Cancel, Human};
use pae_local::agent::Interrupt;

use super::input::{Input, Kind, Reply};

/// Asks on the terminal; edits in `$EDITOR` when it is set, line by line otherwise. Ctrl-C
/// at any of its questions stops the run.
pub struct TerminalSupervisor {
    pub approve: bool,
    pub feedback: bool,
    pub input: Arc<Input>,
    pub interrupt: Interrupt,
}

/// A line typed in answer; `None` for none (closed input, or Ctrl-C, which also stops the run).
/// A line of invalid UTF-8 is asked again (taken as empty, it would accept a plan).
fn answer(input: &Input, interrupt: &Interrupt, question: &str, prompt: &str, initial: &str, cancel: Option<&Cancel>) -> Option<String> {
    let mut question = question;
    loop {
        match input.read_with(question, prompt, initial, Kind::Answer, cancel) {
            Reply::Line(l) => return Some(l.trim_end().to_string()),
            Reply::NotUtf8 => question = "That line is not valid UTF-8; type it again.",
            Reply::Interrupted => {
                interrupt.trigger();
                return None;
            }
            Reply::Closed | Reply::Cancelled => return None,
        }
    }
}

fn edit_in_editor(plan: &[String]) -> Option<Vec<String>> {
    let editor = std::env::var("VISUAL").or_else(|_| std::env::var("EDITOR")).ok()?;
    let dir = std::env::temp_dir().join(format!("pae-local-plan-{}", std::process::id()));
    let path = dir.with_extension("txt");
    let text: String = plan.iter().map(|s| format!("{s}\n")).collect();
    std::fs::write(&path, format!("{text}# One step per line. Lines starting with # are ignored.\n")).ok()?;
    let status = std::process::Command::new(&editor).arg(&path).status().ok()?;
    let edited = std::fs::read_to_string(&path).ok();
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        return None;
    }
    Some(steps_from(&edited?))
}

/// Steps from edited text: one per line, numbering optional, comments and blanks dropped.
pub fn steps_from(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let rest = l.trim_start_matches(|c: char| c.is_ascii_digit());
            match rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
                Some(r) if rest.len() < l.len() => r.trim().to_string(),
                _ => l.to_string(),
            }
        })
        .collect()
}

impl TerminalSupervisor {
    fn ask(&self, prompt: &str, initial: &str) -> Option<String> {
        answer(&self.input, &self.interrupt, "", prompt, initial, None)
    }

    /// Each step offered for editing in turn (Enter keeps it, an empty line drops it), then
    /// new steps until an empty line.
    fn edit_line_by_line(&self, plan: &[String]) -> Vec<String> {
        self.input.notice("Edit each step (Enter keeps it; clear the line to drop it), then add steps; an empty line ends.");
        let mut steps = Vec::new();
        for step in plan {
            match self.ask(&format!("{}. ", steps.len() + 1), step) {
                Some(l) if !l.trim().is_empty() => steps.push(l.trim().to_string()),
                Some(_) => {}
                None => return steps,
            }
        }
        while let Some(l) = self.ask(&format!("{}. ", steps.len() + 1), "").filter(|l| !l.trim().is_empty()) {
            steps.push(l.trim().to_string());
        }
        steps
    }
}

impl Supervisor for TerminalSupervisor {
    fn review_plan(&self, plan: &[String]) -> PlanReview {
        if !self.approve {
            return PlanReview::Accept;
        }
        let mut shown = String::from("\nProposed plan:");
        for (i, s) in plan.iter().enumerate() {
            shown.push_str(&format!("\n  {}. {s}", i + 1));
        }
        self.input.notice(&shown);
        loop {
            match self.ask("[a]ccept, [e]dit or [r]eject? ", "").as_deref().map(str::to_lowercase).as_deref() {
                Some("a") | Some("accept") | Some("") | Some("y") | Some("yes") => return PlanReview::Accept,
                Some("r") | Some("reject") | None => return PlanReview::Reject,
                Some("e") | Some("edit") => {
                    let edited = edit_in_editor(plan).unwrap_or_else(|| self.edit_line_by_line(plan));
                    if self.interrupt.is_triggered() {
                        return PlanReview::Reject;
                    }
                    if edited.is_empty() {
                        self.input.notice("An empty plan cannot run; choose again.");
                        continue;
                    }
                    return PlanReview::Edit(edited);
                }
                Some(_) => continue,
            }
        }
    }

    fn feedback(&self, index: usize, _step: &str, result: &str) -> Option<String> {
        if !self.feedback {
            return None;
        }
        self.input.notice(&format!("\nStep {index} gave: {result}"));
        let r = self.ask("Remark for the next step (empty for none): ", "")?;
        (!r.trim().is_empty()).then(|| r.trim().to_string())
    }
}

/// The person at the terminal, answering `ask_human`.
pub struct Terminal {
    pub input: Arc<Input>,
    pub interrupt: Interrupt,
}

impl Human for Terminal {
    fn ask(&self, question: &str, cancel: &Cancel) -> Option<String> {
        answer(&self.input, &self.interrupt, &format!("\n? {question}"), "> ", "", Some(cancel))
    }
}
