//! Grammar-constrained decoding on the real models: every output parses, whatever the seed
//! and temperature; forced tokens, end tokens and limits behave.

use pae_local::agent::grammars::{self, Limits};
use pae_local::agent::{parse, references, rewoo};
use pae_local::agent::prompt::PromptContext;
use pae_local::agent::templates::Templates;
use pae_local::agent::tools::ToolSpec;
use pae_local::decode::{Engine, GenerateRequest, Grammar, SamplingParams, StopReason};
use pae_local::model::{Logits, Model};

use crate::common::{model, GEMMA, SMOLLM};
use crate::fixture;

/// Runs per (model, grammar): a fixed sample of 12 seeds (every temperature from 0.7 to 1.5,
/// three of them twice) by default; `PAE_PROPERTY_RUNS=100` for the full sweep.
fn runs() -> u64 {
    std::env::var("PAE_PROPERTY_RUNS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(12)
}

const LIMITS: Limits = Limits {
    max_steps: 3,
    max_step_chars: 48,
    max_thought_chars: 48,
    max_answer_chars: 48,
    max_written_answer_words: 6,
};

/// Temperatures 0.7 to 1.5 over the seeds, nothing cut from the distribution: the grammar
/// alone keeps outputs valid.
fn sampling(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 0.7 + (seed % 9) as f32 * 0.1,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        seed,
    }
}

fn prompt(m: &Model, user: &str) -> Vec<u32> {
    let text = m.render_chat(&[pae_local::model::Message::user(user)], true).unwrap();
    m.encode_prompt(&text).unwrap()
}

/// Generates once per seed (no retries) and hands each output to `check`.
fn property(file: &str, grammar: Grammar, user: &str, max_tokens: usize, check: impl Fn(&str) -> Result<(), String>) {
    property_with(file, &|_| grammar.clone(), user, max_tokens, check);
}

/// Like [`property`], with the grammar of each seed.
fn property_with(
    file: &str,
    grammar_for: &dyn Fn(u64) -> Grammar,
    user: &str,
    max_tokens: usize,
    check: impl Fn(&str) -> Result<(), String>,
) {
    let m = model(file);
    let engine = Engine::new(m.clone());
    let mut session = engine.session();
    let ids = prompt(&m, user);
    let mut failures = Vec::new();
    let mut forced = 0;
    let mut total = 0;
    let runs = runs();
    for seed in 0..runs {
        let req = GenerateRequest {
            max_tokens,
            sampling: sampling(seed),
            stop_strings: Vec::new(),
            grammar: Some(grammar_for(seed)),
        };
        let g = engine.generate(&mut session, &ids, &req, &mut |_| {}).unwrap();
        forced += g.stats.forced_tokens;
        total += g.tokens.len();
        if !g.stop_reason.is_natural() {
            failures.push(format!("seed {seed}: stopped by {:?}: {:?}", g.stop_reason, g.text));
        } else if let Err(e) = check(&g.text) {
            failures.push(format!("seed {seed}: {e}: {:?}", g.text));
        }
    }
    eprintln!("{file}: {runs} runs, {total} tokens, {forced} forced");
    assert!(failures.is_empty(), "{} of {runs} outputs failed:\n{}", failures.len(), failures.join("\n"));
}

fn tools() -> (fixture::Fixture, Vec<ToolSpec>) {
    let f = fixture::create();
    let specs = fixture::wide_registry(&f).specs();
    (f, specs)
}

/// `copy_clauses`: the numbered planner's plans of the objective's clauses (each step one
/// clause, in order, with a tool offered for it), else the free-text plans replans use.
fn plan_property(file: &str, copy_clauses: bool) {
    let t = Templates::builtin().unwrap();
    let (_f, specs) = tools();
    let ctx = PromptContext {
        objective: "Find how many users live in Paris and add 10 to that number.".into(),
        tools: specs,
        max_steps: LIMITS.max_steps,
        ..Default::default()
    };
    let user = t.render("planner.jinja", &ctx).unwrap();
    let clauses = ["Find how many users live in Paris", "add 10 to that number."];
    let names: Vec<String> = ctx.tools.iter().map(|t| t.name.clone()).collect();
    property(file, grammars::plan(&t, &ctx.tools, &LIMITS, &ctx.objective, copy_clauses).unwrap(), &user, 400, |text| {
        let steps = parse::plan(text, LIMITS.max_steps).map_err(|e| e.to_string())?;
        if copy_clauses {
            // "Use <tool> to <clause>": the objective's clauses, in order, each with a tool.
            if steps.len() != clauses.len() {
                return Err(format!("{} steps for {} clauses: {steps:?}", steps.len(), clauses.len()));
            }
            for (step, clause) in steps.iter().zip(clauses) {
                let ok = names.iter().any(|n| step.strip_prefix(&format!("Use {n} to ")).is_some_and(|rest| rest.eq_ignore_ascii_case(clause)));
                if !ok {
                    return Err(format!("step {step:?} is not `Use <tool> to {clause}`"));
                }
            }
            return Ok(());
        }
        // "Use <tool> to " + at most max_step_chars, or the objective quoted whole.
        let bound = "Use search_files to answer: ".len() + LIMITS.max_step_chars.max(ctx.objective.len());
        match steps.iter().find(|s| s.chars().count() > bound || !s.starts_with("Use ")) {
            Some(s) => Err(format!("step not of the form `Use <tool> to …` within {bound} characters: {s:?}")),
            None => Ok(()),
        }
    });
}

fn executor_property(file: &str) {
    let t = Templates::builtin().unwrap();
    let (_f, specs) = tools();
    let ctx = PromptContext {
        objective: "How many users live in Paris?".into(),
        tools: specs.clone(),
        step: "Use sql_query to count the users whose city is Paris.".into(),
        step_number: 1,
        max_steps: LIMITS.max_steps,
        max_iterations: 4,
        ..Default::default()
    };
    let user = t.render("executor.jinja", &ctx).unwrap();
    // Both rounds: before any observation (thought forced, then an action) and after one
    // (the result quoted, or another action), half the seeds each.
    let choices = vec!["COUNT(*)".to_string(), "2".to_string()];
    let first = grammars::executor(&t, &specs, &LIMITS, &[], &ctx.step, false, true).unwrap();
    let later = grammars::executor(&t, &specs, &LIMITS, &choices, &ctx.step, true, true).unwrap();
    let check = |text: &str| parse::react(text, &specs).map(|_| ()).map_err(|e| e.to_string());
    property_with(file, &|seed| if seed % 2 == 0 { first.clone() } else { later.clone() }, &user, 600, check);
}

fn rewoo_property(file: &str) {
    let t = Templates::builtin().unwrap();
    let (_f, specs) = tools();
    let ctx = PromptContext {
        objective: "What is Carol's age multiplied by 2?".into(),
        tools: specs.clone(),
        max_steps: LIMITS.max_steps,
        ..Default::default()
    };
    let user = t.render("rewoo.jinja", &ctx).unwrap();
    let grammar = grammars::rewoo(&t, &specs, &LIMITS).unwrap();
    // Half the seeds write programs, half answer from evidence (quoted or written).
    let choices = vec!["45".to_string(), "age: 45".to_string()];
    let solver = grammars::solver(&t, &LIMITS, &choices).unwrap();
    let grammar_for = |seed: u64| if seed.is_multiple_of(2) { grammar.clone() } else { solver.clone() };
    property_with(file, &grammar_for, &user, 500, |text| {
        if text.starts_with("Answer: ") {
            let a = rewoo::parse_answer(text).map_err(|e| e.to_string())?;
            let words = a.split(' ').count();
            return if choices.contains(&a) || words <= LIMITS.max_written_answer_words {
                Ok(())
            } else {
                Err(format!("{words} words, not a quoted choice"))
            };
        }
        let lines = rewoo::parse_program(text, LIMITS.max_steps).map_err(|e| e.to_string())?;
        for (i, line) in lines.iter().enumerate() {
            let call = rewoo::parse_call(line, i + 1).map_err(|e| e.to_string())?;
            let spec = specs.iter().find(|s| s.name == call.tool).ok_or(format!("unknown tool {}", call.tool))?;
            // References stand in for values; the schema holds once they are substituted.
            let n = references::indices_in(&call.input.to_string()).into_iter().max().unwrap_or(0);
            let resolved = references::substitute(&call.input, &vec!["1".to_string(); n]).map_err(|e| e.to_string())?;
            spec.validate(&resolved)?;
        }
        Ok(())
    });
}

const DATE_RE: &str = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])( at [0-9]{2}:[0-9]{2})?";

fn regex_property(file: &str) {
    let re = regex::Regex::new(&format!("^(?:{DATE_RE})$")).unwrap();
    property(file, Grammar::Regex(DATE_RE.into()), "When did the first person land on the Moon? Give the date.", 64, |text| {
        if re.is_match(text) {
            Ok(())
        } else {
            Err("does not match the regex".into())
        }
    });
}

fn json_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 24},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "city": {"enum": ["Paris", "Berlin", "Rome"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3}
        },
        "required": ["name", "age", "city"],
        "additionalProperties": false
    })
}

fn json_property(file: &str) {
    let schema = json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    property(file, Grammar::JsonSchema(schema.clone()), "Describe a customer as JSON.", 160, |text| {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    });
}

#[test]
fn smollm2_rewoo_programs_and_answers_always_parse() {
    rewoo_property(SMOLLM);
}

#[test]
fn gemma3_rewoo_programs_and_answers_always_parse() {
    rewoo_property(GEMMA);
}

#[test]
fn smollm2_plans_always_parse() {
    plan_property(SMOLLM, true);
}

#[test]
fn smollm2_executor_steps_always_parse() {
    executor_property(SMOLLM);
}

#[test]
fn smollm2_regex_outputs_always_match() {
    regex_property(SMOLLM);
}

#[test]
fn smollm2_json_outputs_always_validate() {
    json_property(SMOLLM);
}

#[test]
fn gemma3_plans_always_parse() {
    plan_property(GEMMA, false);
}

#[test]
fn gemma3_executor_steps_always_parse() {
    executor_property(GEMMA);
}

#[test]
fn gemma3_regex_outputs_always_match() {
    regex_property(GEMMA);
}

#[test]
fn gemma3_json_outputs_always_validate() {
    json_property(GEMMA);
}

fn generate(engine: &Engine, user: &str, grammar: Option<Grammar>, max_tokens: usize) -> Result<pae_local::decode::Generation, pae_local::decode::Error> {
    let m = engine.model();
    let mut s = engine.session();
    let req = GenerateRequest {
        max_tokens,
        sampling: SamplingParams::greedy(),
        stop_strings: Vec::new(),
        grammar,
    };
    engine.generate(&mut s, &prompt(m, user), &req, &mut |_| {})
}

#[test]
fn forced_tokens_go_in_one_forward_with_the_same_logits() {
    let m = model(SMOLLM);
    let engine = Engine::new(m.clone());
    // A long literal: after the first token the grammar forces the rest.
    let g = Grammar::Lark("start: \"The quick brown fox jumps over the lazy dog, \" NUM \".\"\nNUM: /[0-9]{1,3}/".into());
    let out = generate(&engine, "Say the sentence.", Some(g), 64).unwrap();
    assert!(out.text.starts_with("The quick brown fox jumps over the lazy dog, "), "{:?}", out.text);
    assert!(out.stats.forced_tokens >= 8, "{:?}", out.stats);
    // One forward over the forced run equals one forward per token.
    let ids = m.tokenizer().encode("The quick brown fox jumps over the lazy dog", false, false).unwrap();
    let head = prompt(&m, "Say the sentence.");
    let mut a = m.new_cache();
    m.forward(&head, &mut a, Logits::Last).unwrap();
    let batched = m.forward(&ids, &mut a, Logits::All).unwrap();
    let mut b = m.new_cache();
    m.forward(&head, &mut b, Logits::Last).unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let one = m.forward(&[id], &mut b, Logits::Last).unwrap();
        let d = (batched.narrow(0, i, 1).unwrap() - one).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d <= 1e-4, "token {i}: max diff {d}");
    }
}

#[test]
fn end_tokens_only_when_the_grammar_accepts() {
    let engine = Engine::new(model(SMOLLM));
    // The model would stop at once; the grammar needs at least 12 letters first.
    let g = Grammar::Regex("[a-z ]{12,40}".into());
    let out = generate(&engine, "Say nothing at all.", Some(g), 64).unwrap();
    assert!(out.text.len() >= 12, "{:?}", out.text);
    assert!(out.stop_reason.is_natural(), "{:?}", out.stop_reason);
    // An end token ends the output and is not part of it.
    let out = generate(&engine, "Reply with one word.", Some(Grammar::Regex("[A-Za-z]+( [A-Za-z]+)*".into())), 64).unwrap();
    if let StopReason::EndToken(t) = out.stop_reason {
        assert!(!out.tokens.contains(&t));
    }
    assert!(!out.text.contains("<|im_end|>"));
}

#[test]
fn the_token_budget_bounds_constrained_output() {
    let engine = Engine::new(model(SMOLLM));
    let out = generate(&engine, "Count to one hundred.", Some(Grammar::Regex("[0-9 ]{1,400}".into())), 5).unwrap();
    assert_eq!(out.stop_reason, StopReason::MaxTokens);
    assert_eq!(out.tokens.len(), 5);
}

#[test]
fn a_grammar_that_admits_nothing_is_a_clean_error() {
    let engine = Engine::new(model(SMOLLM));
    let g = Grammar::Lark("start: X\nX: /a+/ & /b+/".into());
    let err = generate(&engine, "Anything.", Some(g), 16).unwrap_err().to_string();
    assert!(err.contains("grammar"), "{err}");
    let err = generate(&engine, "Anything.", Some(Grammar::Lark("start: foo".into())), 16).unwrap_err().to_string();
    assert!(err.contains("foo") && err.contains("1("), "{err}");
}

#[test]
fn direct_and_replan_grammars_parse() {
    let t = Templates::builtin().unwrap();
    let (_f, specs) = tools();
    let engine = Engine::new(model(SMOLLM));
    for seed in 0..10 {
        let mut s = engine.session();
        let m = engine.model();
        let req = GenerateRequest {
            max_tokens: 300,
            sampling: sampling(seed),
            stop_strings: Vec::new(),
            grammar: Some(grammars::direct(&t, &specs).unwrap()),
        };
        let g = engine.generate(&mut s, &prompt(m, "Count the users in Paris."), &req, &mut |_| {}).unwrap();
        parse::direct(&g.text, &specs).unwrap_or_else(|e| panic!("{e}: {:?}", g.text));
        let req = GenerateRequest {
            grammar: Some(grammars::replan(&t, &specs, &LIMITS, &["2".to_string()], seed % 2 == 0, "Count the users.").unwrap()),
            ..req
        };
        let g = engine.generate(&mut s, &prompt(m, "Decide."), &req, &mut |_| {}).unwrap();
        parse::decision(&g.text, LIMITS.max_steps).unwrap_or_else(|e| panic!("{e}: {:?}", g.text));
    }
}
