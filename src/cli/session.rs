//! The interactive session (`pae-local`, or `pae-local run` without an objective): an
//! objective per line, or a command.
//!
//! Commands: `/tools` shows the tools as the model sees them, `/plan OBJECTIVE` plans without
//! running, `/trace FILE` writes the events of the runs that follow to FILE (`/trace off`
//! stops), `/help`, `/exit`. Ctrl-C during a run stops that run (its report says
//! `interrupted`) and the session goes on; Ctrl-C at the prompt clears the line; Ctrl-D
//! ends the session.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use pae_local::agent::events::{Event, Observer};
use pae_local::agent::trace::TraceWriter;

use super::console::Console;
use super::input::{Kind, Reply};
use super::printer;
use super::run::{AgentFactory, RunArgs};

const HELP: &str = "\
Type an objective and press Enter; end a line with \\ to continue it on the next.
  /tools             the tools and their input schemas, as the model sees them
  /plan OBJECTIVE    the plan for OBJECTIVE, without running it
  /trace FILE        write the events of the runs that follow to FILE (/trace off stops)
  /help              this text
  /exit              end the session (or Ctrl-D)
Ctrl-C stops a run; at the prompt it clears the line.";

/// A trace shared by the session's runs (one file for all of them).
struct SharedTrace(Arc<TraceWriter>);

impl Observer for SharedTrace {
    fn on_event(&self, event: &Event) {
        self.0.on_event(event);
    }
}

pub fn run(args: &RunArgs, factory: &AgentFactory) -> anyhow::Result<()> {
    let input = factory.input().clone();
    let tty = input.is_terminal();
    if tty {
        eprintln!("pae-local: type an objective and press Enter (/help for commands, Ctrl-D to quit).");
    }
    let mut trace = match &args.trace {
        Some(path) => Some(open_trace(path)?),
        None => None,
    };
    let prompt = if tty { "objective> " } else { "" };
    loop {
        let line = match input.read(prompt, Kind::Objective) {
            Reply::Line(l) => l,
            Reply::NotUtf8 => {
                eprintln!("pae-local: that line is not valid UTF-8; it was skipped");
                continue;
            }
            // Ctrl-C at the prompt: the line is gone, the session is not.
            Reply::Interrupted | Reply::Cancelled => continue,
            Reply::Closed => break,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "exit" || line == "quit" {
            break;
        }
        if let Some(command) = line.strip_prefix('/') {
            let (name, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
            let rest = rest.trim();
            let done = match name {
                "exit" | "quit" => break,
                "help" => printer::line(HELP).map_err(Into::into),
                "tools" => show_tools(args, factory),
                "plan" if !rest.is_empty() => plan(args, factory, rest),
                "plan" => Err(anyhow::anyhow!("/plan needs an objective: /plan OBJECTIVE")),
                "trace" if rest == "off" => {
                    trace = None;
                    Ok(())
                }
                "trace" if !rest.is_empty() => open_trace(Path::new(rest)).map(|t| {
                    eprintln!("pae-local: the runs that follow are traced to {rest}");
                    trace = Some(t);
                }),
                "trace" => Err(anyhow::anyhow!("/trace needs a file: /trace FILE (or /trace off)")),
                _ => Err(anyhow::anyhow!("no command /{name}; /help lists them")),
            };
            if let Err(e) = done {
                if printer::is_broken_pipe(&e) {
                    return Err(e);
                }
                printer::error(&e);
            }
            continue;
        }
        let mut observers: Vec<Box<dyn Observer>> = vec![Box::new(Console::new(args.json))];
        if let Some(t) = &trace {
            observers.push(Box::new(SharedTrace(t.clone())));
        }
        let report = factory.run(line, factory.registry(&args.agent.tools)?, observers)?;
        if args.json {
            printer::line(&serde_json::to_string(&report)?)?;
        }
    }
    Ok(())
}

fn open_trace(path: &Path) -> anyhow::Result<Arc<TraceWriter>> {
    let writer = TraceWriter::create(path).with_context(|| format!("creating the trace `{}`", path.display()))?;
    Ok(Arc::new(writer))
}

/// Every tool a run would offer, with what the model is told of it.
fn show_tools(args: &RunArgs, factory: &AgentFactory) -> anyhow::Result<()> {
    let registry = factory.registry(&args.agent.tools)?;
    if args.json {
        return printer::json(&serde_json::to_value(registry.specs())?).map_err(Into::into);
    }
    for spec in registry.specs() {
        printer::line(&format!("{}: {}", spec.name, spec.description))?;
        printer::line(&format!("  input: {}", serde_json::to_string(&spec.input_schema)?))?;
    }
    Ok(())
}

/// The plan for `objective`, streamed as the planner writes it, nothing run.
fn plan(args: &RunArgs, factory: &AgentFactory, objective: &str) -> anyhow::Result<()> {
    let observers: Vec<Box<dyn Observer>> = vec![Box::new(Console::new(args.json))];
    let steps = factory.plan_only(objective, factory.registry(&args.agent.tools)?, observers)?;
    if args.json {
        return printer::json(&serde_json::json!({ "objective": objective, "steps": steps })).map_err(Into::into);
    }
    printer::line("\nSteps as they would run:")?;
    for (i, step) in steps.iter().enumerate() {
        printer::line(&format!("{}. {step}", i + 1))?;
    }
    Ok(())
}
