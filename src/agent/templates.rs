//! The agent's prompt and grammar templates: built in, overridable file by file.
//!
//! Every template is checked when loaded: a variable it uses that its documentation (in
//! `templates/README.md`) does not list is an error before any model call, and rendering is
//! strict, so a typo never becomes an empty string in a prompt.

use std::collections::BTreeSet;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::Error;

/// A built-in template: its name, text, and the variables it may use.
struct Builtin {
    name: &'static str,
    text: &'static str,
    variables: &'static [&'static str],
}

const PROMPT_VARS: &[&str] = &[
    "objective",
    "tools",
    "plan",
    "step",
    "step_number",
    "past_steps",
    "persona",
    "feedback",
    "failure",
    "max_steps",
    "max_iterations",
    "candidates",
    "remaining",
    "evidence",
];
const GRAMMAR_VARS: &[&str] = &[
    "tools",
    "max_steps",
    "max_step_chars",
    "max_thought_chars",
    "max_answer_chars",
    "max_written_answer_words",
    "answer_choices",
    "answer_words",
    "can_continue",
    "candidates",
    "step",
    "has_observation",
    "objective",
    "clauses",
];

const BUILTINS: &[Builtin] = &[
    Builtin { name: "system.jinja", text: include_str!("../../templates/system.jinja"), variables: PROMPT_VARS },
    Builtin { name: "planner.jinja", text: include_str!("../../templates/planner.jinja"), variables: PROMPT_VARS },
    Builtin { name: "executor.jinja", text: include_str!("../../templates/executor.jinja"), variables: PROMPT_VARS },
    Builtin { name: "replanner.jinja", text: include_str!("../../templates/replanner.jinja"), variables: PROMPT_VARS },
    Builtin { name: "rewoo.jinja", text: include_str!("../../templates/rewoo.jinja"), variables: PROMPT_VARS },
    Builtin { name: "solver.jinja", text: include_str!("../../templates/solver.jinja"), variables: PROMPT_VARS },
    Builtin { name: "judge.jinja", text: include_str!("../../templates/judge.jinja"), variables: PROMPT_VARS },
    Builtin { name: "grammars/judge.lark.j2", text: include_str!("../../templates/grammars/judge.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/plan.lark.j2", text: include_str!("../../templates/grammars/plan.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/plan_rules.lark.j2", text: include_str!("../../templates/grammars/plan_rules.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/plan.schema.json.j2", text: include_str!("../../templates/grammars/plan.schema.json.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/executor.lark.j2", text: include_str!("../../templates/grammars/executor.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/answer_rules.lark.j2", text: include_str!("../../templates/grammars/answer_rules.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/replan.lark.j2", text: include_str!("../../templates/grammars/replan.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/rewoo.lark.j2", text: include_str!("../../templates/grammars/rewoo.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/solver.lark.j2", text: include_str!("../../templates/grammars/solver.lark.j2"), variables: GRAMMAR_VARS },
    Builtin { name: "grammars/direct.lark.j2", text: include_str!("../../templates/grammars/direct.lark.j2"), variables: GRAMMAR_VARS },
];

/// Names the templates may use besides their variables: minijinja's and ours.
const GLOBALS: &[&str] = &["range", "loop", "namespace", "dict", "debug", "raise_exception"];

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
    /// Which files came from an override directory.
    overridden: Vec<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("overridden", &self.overridden).finish()
    }
}

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Result<Self, Error> {
        Self::build(None)
    }

    /// The built-ins, with any file of the same name under `dir` (e.g. `planner.jinja`,
    /// `grammars/executor.lark.j2`) used instead.
    pub fn with_overrides(dir: &Path) -> Result<Self, Error> {
        if !dir.is_dir() {
            return Err(Error::Template(format!("`{}` is not a directory", dir.display())));
        }
        Self::build(Some(dir))
    }

    /// [`with_overrides`](Self::with_overrides) when `overrides` names a folder, else
    /// [`builtin`](Self::builtin): what an optional `--templates DIR` asks for.
    pub fn load(overrides: Option<&Path>) -> Result<Self, Error> {
        match overrides {
            Some(dir) => Self::with_overrides(dir),
            None => Self::builtin(),
        }
    }

    fn build(dir: Option<&Path>) -> Result<Self, Error> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", crate::model::py_json::tojson_filter);
        crate::model::template_limits::limit(&mut env);
        let mut overridden = Vec::new();
        for b in BUILTINS {
            let text = match dir.map(|d| d.join(b.name)).filter(|p| p.is_file()) {
                Some(path) => {
                    overridden.push(b.name.to_string());
                    std::fs::read_to_string(&path)
                        .map_err(|e| Error::Template(format!("reading `{}`: {e}", path.display())))?
                }
                None => b.text.to_string(),
            };
            env.add_template_owned(b.name, text)
                .map_err(|e| Error::Template(format!("{}: {}", b.name, describe(&e))))?;
        }
        let this = Self { env, overridden };
        this.check()?;
        Ok(this)
    }

    /// Fails if a template uses a variable its documentation does not list.
    fn check(&self) -> Result<(), Error> {
        for b in BUILTINS {
            let t = self
                .env
                .get_template(b.name)
                .map_err(|e| Error::Template(format!("{}: {}", b.name, describe(&e))))?;
            let unknown: BTreeSet<String> = t
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !b.variables.contains(&v.as_str()) && !GLOBALS.contains(&v.as_str()))
                .collect();
            if !unknown.is_empty() {
                return Err(Error::Template(format!(
                    "{} uses unknown variable(s) {}; available: {}",
                    b.name,
                    unknown.into_iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "),
                    b.variables.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Renders template `name` with `ctx`.
    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, Error> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| Error::Template(format!("{name}: {}", describe(&e))))?;
        crate::model::template_limits::render(&t, ctx, MAX_RENDER_BYTES)
            .map_err(|e| Error::Template(format!("{name}: {}", describe(&e))))
    }

    /// Templates replaced from an override directory.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }
}

/// Longest text an agent template may render: prompts and grammars are far shorter.
const MAX_RENDER_BYTES: usize = 1 << 20;

fn describe(e: &minijinja::Error) -> String {
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        msg = format!("line {line}: {msg}");
    }
    msg
}
