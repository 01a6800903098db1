//! Plan review and step remarks at the terminal (`--approve-plan`, `--feedback`).

use std::io::{BufRead, Write};

use pae_local::agent::supervisor::{PlanReview, Supervisor};

/// Asks on stderr, reads stdin; edits in `$EDITOR` when it is set, line by line otherwise.
pub struct TerminalSupervisor {
    pub approve: bool,
    pub feedback: bool,
}

fn ask(prompt: &str) -> Option<String> {
    let mut e = std::io::stderr().lock();
    let _ = write!(e, "{prompt}");
    let _ = e.flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_string()),
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

impl Supervisor for TerminalSupervisor {
    fn review_plan(&self, plan: &[String]) -> PlanReview {
        if !self.approve {
            return PlanReview::Accept;
        }
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "\nProposed plan:");
        for (i, s) in plan.iter().enumerate() {
            let _ = writeln!(e, "  {}. {s}", i + 1);
        }
        drop(e);
        loop {
            match ask("[a]ccept, [e]dit or [r]eject? ").as_deref().map(str::to_lowercase).as_deref() {
                Some("a") | Some("accept") | Some("") | Some("y") | Some("yes") => return PlanReview::Accept,
                Some("r") | Some("reject") | None => return PlanReview::Reject,
                Some("e") | Some("edit") => {
                    let edited = edit_in_editor(plan).unwrap_or_else(|| {
                        eprintln!("Type the new plan, one step per line; an empty line ends it.");
                        let mut steps = Vec::new();
                        while let Some(l) = ask(&format!("{}. ", steps.len() + 1)).filter(|l| !l.trim().is_empty()) {
                            steps.push(l.trim().to_string());
                        }
                        steps
                    });
                    if edited.is_empty() {
                        eprintln!("An empty plan cannot run; choose again.");
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
        let r = ask(&format!("\nStep {index} gave: {result}\nRemark for the next step (empty for none): "))?;
        (!r.trim().is_empty()).then(|| r.trim().to_string())
    }
}
