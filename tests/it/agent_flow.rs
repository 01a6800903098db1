//! The agent's control flow, with scripted models: retries, replans, budgets, humans,
//! several planners, tool failures, truncation, sandboxes and traces.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pae_local::agent::events::{Budget, Event, Observer, RunStatus, StepStatus};
use pae_local::agent::executor::{ExecutorConfig, ExecutorKind};
use pae_local::agent::llm::{CallStats, Llm, LlmRequest, LlmResponse, Purpose};
use pae_local::agent::supervisor::{PlanReview, Supervisor};
use pae_local::agent::tools::{AskHuman, Cancel, Human, Registry, Tool, ToolError, ToolFuture, ToolSpec};
use pae_local::agent::trace::TraceWriter;
use pae_local::agent::{Agent, AgentConfig, Review, RunReport};
use serde_json::json;

use crate::fixture;

/// A model that replies from a script, checking each request is for the expected part of
/// the agent, and keeps every request for inspection.
pub struct Scripted {
    name: String,
    replies: Mutex<VecDeque<(Purpose, String)>>,
    pub requests: Mutex<Vec<LlmRequest>>,
    tokens_per_reply: usize,
}

impl Scripted {
    pub fn new(name: &str, replies: &[(Purpose, &str)]) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            replies: Mutex::new(replies.iter().map(|(p, s)| (*p, s.to_string())).collect()),
            requests: Mutex::new(Vec::new()),
            tokens_per_reply: 10,
        })
    }

    fn left(&self) -> usize {
        self.replies.lock().unwrap().len()
    }

    fn prompts(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.messages.iter().map(|m| m.content.clone()).collect::<Vec<_>>().join("\n") + &r.assistant_prefix)
            .collect()
    }
}

impl Llm for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete(&self, req: &LlmRequest, on_text: &mut dyn FnMut(&str)) -> Result<LlmResponse, pae_local::agent::Error> {
        self.requests.lock().unwrap().push(req.clone());
        let (purpose, text) = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| panic!("{}: no scripted reply left for a {:?} call", self.name, req.purpose));
        assert_eq!(purpose, req.purpose, "{}: scripted a {purpose:?} reply, got a {:?} call", self.name, req.purpose);
        assert!(req.grammar.is_some(), "every agent call is constrained");
        on_text(&text);
        Ok(LlmResponse {
            text,
            stats: CallStats {
                prompt_tokens: 100,
                generated_tokens: self.tokens_per_reply,
                stop_reason: pae_local::agent::llm::CallStop::GrammarComplete,
                ..Default::default()
            },
        })
    }
}

/// Collects events.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn on_event(&self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

impl Recorder {
    fn kinds(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(|e| e.kind()).collect()
    }

    fn count(&self, kind: &str) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }
}

pub const PLAN_CALC: &str = "1. Use calculator on 2 + 3.\n";
pub const CALL_CALC: &str = "Thought: I add.\nAction: calculator\nAction Input: {\"expression\": \"2 + 3\"}\n";
pub const FINAL_5: &str = "Thought: I have it.\nFinal Answer: 5";
const ANSWER_5: &str = "Decision: answer\nFinal Answer: 5";

/// The classic loop, the replanner deciding after every step: most of these tests script
/// its decisions. (The default, which asks it only after failures, has its own tests.)
fn config() -> AgentConfig {
    AgentConfig {
        executor: ExecutorConfig {
            retries: 2,
            ..ExecutorConfig::default()
        },
        review: Review::EveryStep,
        ..AgentConfig::default()
    }
}

struct Setup {
    _fixture: fixture::Fixture,
    registry: Option<Registry>,
    recorder: Arc<Recorder>,
}

fn setup() -> Setup {
    let f = fixture::create();
    let registry = fixture::any_path_registry(&f);
    Setup {
        _fixture: f,
        registry: Some(registry),
        recorder: Arc::new(Recorder::default()),
    }
}

fn agent(s: &mut Setup, model: Arc<Scripted>, config: AgentConfig) -> Agent {
    Agent::builder()
        .model(model)
        .tools(s.registry.take().unwrap())
        .config(config)
        .observer(s.recorder.clone())
        .build()
        .unwrap()
}

fn run(a: &Agent, objective: &str) -> RunReport {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(a.run(objective))
}

#[test]
fn plan_execute_answer() {
    let mut s = setup();
    let m = Scripted::new("m", &[(Purpose::Plan, PLAN_CALC), (Purpose::Execute, CALL_CALC), (Purpose::Execute, FINAL_5), (Purpose::Replan, ANSWER_5)]);
    let r = run(&agent(&mut s, m.clone(), config()), "What is 2 + 3?");
    assert_eq!(r.status, RunStatus::Answered);
    assert_eq!(r.final_answer.as_deref(), Some("5"));
    assert_eq!(r.plan, vec!["Use calculator on 2 + 3."]);
    let a = r.steps[0].actions().next().unwrap();
    assert_eq!((a.tool.as_str(), a.observation.as_str(), a.error), ("calculator", "5", false));
    // The observation was appended to the scratchpad the executor continued from.
    let prompts = m.prompts();
    assert!(prompts[2].ends_with("Observation: 5\n"), "{}", prompts[2]);
    // The replanner saw the step's result.
    assert!(prompts[3].contains("- #E1 = 5 (Use calculator on 2 + 3.)\n"), "{}", prompts[3]);
    assert_eq!(m.left(), 0);
    let kinds = s.recorder.kinds();
    for k in ["run_start", "plan", "step_start", "llm_call", "action", "observation", "step_end", "final", "run_end"] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    assert_eq!(r.tokens.values().map(|u| u.generated_tokens).sum::<usize>(), 40);
}

#[test]
fn tool_errors_retry_then_replan_with_the_reason() {
    let mut s = setup();
    let bad = "Thought: read it.\nAction: read_file\nAction Input: {\"path\": \"missing.txt\"}\n";
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. Use read_file on missing.txt.\n"),
            (Purpose::Execute, bad),
            (Purpose::Execute, bad),
            (Purpose::Execute, bad),
            (Purpose::Replan, "Decision: replan\n1. Use calculator on 2 + 3.\n"),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
            (Purpose::Replan, ANSWER_5),
        ],
    );
    let r = run(&agent(&mut s, m.clone(), config()), "What is 2 + 3?");
    assert_eq!(r.status, RunStatus::Answered, "{r:?}");
    assert_eq!(r.steps[0].status, StepStatus::Failed);
    assert_eq!(r.steps[0].attempts.len(), 3);
    assert!(r.steps[0].result.contains("does not exist"), "{}", r.steps[0].result);
    assert_eq!(s.recorder.count("retry"), 2);
    assert_eq!(s.recorder.count("replan"), 1);
    assert_eq!(r.replans, 1);
    let prompts = m.prompts();
    // Retries carry the failure; the replanner sees why the step failed.
    assert!(prompts[2].contains("The last try failed") && prompts[2].contains("missing.txt"));
    assert!(prompts[4].contains("The last step failed"), "{}", prompts[4]);
    // After a failure the replanner cannot simply continue.
    let req = &m.requests.lock().unwrap()[4];
    match &req.grammar {
        Some(pae_local::decode::Grammar::Lark(g)) => assert!(!g.contains("go_on"), "{g}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn iteration_cap_fails_the_step() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[(Purpose::Plan, PLAN_CALC), (Purpose::Execute, CALL_CALC), (Purpose::Execute, CALL_CALC), (Purpose::Replan, ANSWER_5)],
    );
    let mut c = config();
    c.executor.max_iterations = 2;
    c.executor.retries = 0;
    let r = run(&agent(&mut s, m, c), "What is 2 + 3?");
    assert_eq!(r.steps[0].status, StepStatus::Failed);
    assert!(r.steps[0].result.contains("no final answer after 2"), "{}", r.steps[0].result);
    assert_eq!(r.status, RunStatus::Answered);
}

#[test]
fn step_budget_ends_the_run_with_the_best_answer_so_far() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. Use calculator on 2 + 3.\n2. Use calculator on 5 * 2.\n"),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
            (Purpose::Replan, "Decision: continue\n"),
        ],
    );
    let mut c = config();
    c.budgets.max_steps = 1;
    let r = run(&agent(&mut s, m, c), "Compute.");
    assert_eq!((r.status, r.budget), (RunStatus::BudgetExhausted, Some(Budget::Steps)));
    assert_eq!(r.final_answer.as_deref(), Some("5"));
}

#[test]
fn replan_budget_ends_the_run() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[(Purpose::Plan, PLAN_CALC), (Purpose::Execute, CALL_CALC), (Purpose::Execute, FINAL_5), (Purpose::Replan, "Decision: replan\n1. Do it again.\n")],
    );
    let mut c = config();
    c.budgets.max_replans = 0;
    let r = run(&agent(&mut s, m, c), "Compute.");
    assert_eq!((r.status, r.budget), (RunStatus::BudgetExhausted, Some(Budget::Replans)));
    assert_eq!(r.final_answer.as_deref(), Some("5"));
}

#[test]
fn token_budget_ends_the_run() {
    let mut s = setup();
    let m = Scripted::new("m", &[(Purpose::Plan, PLAN_CALC), (Purpose::Execute, CALL_CALC), (Purpose::Execute, FINAL_5)]);
    let mut c = config();
    c.budgets.max_tokens = Some(20);
    let r = run(&agent(&mut s, m, c), "Compute.");
    assert_eq!((r.status, r.budget), (RunStatus::BudgetExhausted, Some(Budget::Tokens)));
    assert_eq!(r.final_answer.as_deref(), Some("5"), "the observation is the best so far");
}

/// A tool that takes `secs` to answer.
pub struct Slow {
    spec: ToolSpec,
    secs: f64,
}

impl Slow {
    pub fn new(secs: f64) -> Arc<Self> {
        Arc::new(Self {
            spec: ToolSpec::new("slow", "Waits.", json!({"type": "object", "properties": {}, "additionalProperties": false}), json!({})),
            secs,
        })
    }
}

impl Tool for Slow {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, _: serde_json::Value) -> ToolFuture<'_> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs_f64(self.secs)).await;
            Ok::<_, ToolError>("done".into())
        })
    }
}

pub const CALL_SLOW: &str = "Thought: wait.\nAction: slow\nAction Input: {}\n";

#[test]
fn time_budget_ends_the_run() {
    let mut s = setup();
    let mut reg = Registry::new(Duration::from_secs(30));
    reg.add(Slow::new(5.0)).unwrap();
    s.registry = Some(reg);
    let m = Scripted::new("m", &[(Purpose::Plan, "1. Use slow.\n"), (Purpose::Execute, CALL_SLOW)]);
    let mut c = config();
    c.budgets.timeout = Some(Duration::from_millis(300));
    let t = std::time::Instant::now();
    let r = run(&agent(&mut s, m, c), "Wait.");
    assert_eq!((r.status, r.budget), (RunStatus::BudgetExhausted, Some(Budget::Time)));
    assert!(t.elapsed() < Duration::from_secs(3), "the tool was not cut off: {:?}", t.elapsed());
}

#[test]
fn tool_timeouts_are_error_observations() {
    let mut s = setup();
    let mut reg = Registry::new(Duration::from_millis(100));
    reg.add(Slow::new(2.0)).unwrap();
    s.registry = Some(reg);
    let m = Scripted::new(
        "m",
        &[(Purpose::Plan, "1. Use slow.\n"), (Purpose::Execute, CALL_SLOW), (Purpose::Replan, "Decision: answer\nFinal Answer: gave up")],
    );
    let mut c = config();
    c.executor.retries = 0;
    let r = run(&agent(&mut s, m, c), "Wait.");
    let a = r.steps[0].actions().next().unwrap();
    assert!(a.error && a.observation.contains("timed out"), "{a:?}");
    assert_eq!(r.status, RunStatus::Answered);
}

#[test]
fn long_observations_are_truncated_with_a_note() {
    let mut s = setup();
    std::fs::write(s._fixture.root().join("long.txt"), "word ".repeat(2000)).unwrap();
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. Use read_file on long.txt.\n"),
            (Purpose::Execute, "Thought: read.\nAction: read_file\nAction Input: {\"path\": \"long.txt\"}\n"),
            (Purpose::Execute, "Thought: ok.\nFinal Answer: many words"),
            (Purpose::Replan, "Decision: answer\nFinal Answer: many words"),
        ],
    );
    let mut c = config();
    c.executor.observation_tokens = 20;
    let r = run(&agent(&mut s, m, c), "Read long.txt.");
    let a = r.steps[0].actions().next().unwrap();
    assert!(a.truncated && a.observation.contains("[observation truncated: 20 of "), "{}", a.observation);
    assert!(a.observation.len() < 200);
}

/// A supervisor that answers from a script.
struct ScriptedSupervisor {
    reviews: Mutex<VecDeque<PlanReview>>,
    remarks: Mutex<VecDeque<String>>,
}

impl Supervisor for ScriptedSupervisor {
    fn review_plan(&self, _: &[String]) -> PlanReview {
        self.reviews.lock().unwrap().pop_front().unwrap_or(PlanReview::Accept)
    }

    fn feedback(&self, _: usize, _: &str, _: &str) -> Option<String> {
        self.remarks.lock().unwrap().pop_front()
    }
}

fn supervised(s: &mut Setup, m: Arc<Scripted>, reviews: Vec<PlanReview>, remarks: Vec<&str>, feedback: bool) -> Agent {
    let sup = Arc::new(ScriptedSupervisor {
        reviews: Mutex::new(reviews.into()),
        remarks: Mutex::new(remarks.into_iter().map(String::from).collect()),
    });
    Agent::builder()
        .model(m)
        .tools(s.registry.take().unwrap())
        .config(AgentConfig {
            approve_plan: true,
            feedback,
            ..config()
        })
        .supervisor(sup)
        .observer(s.recorder.clone())
        .build()
        .unwrap()
}

#[test]
fn rejected_plans_run_nothing() {
    let mut s = setup();
    let m = Scripted::new("m", &[(Purpose::Plan, PLAN_CALC)]);
    let r = run(&supervised(&mut s, m.clone(), vec![PlanReview::Reject], vec![], false), "What is 2 + 3?");
    assert_eq!(r.status, RunStatus::Rejected);
    assert!(r.steps.is_empty());
    assert_eq!(m.requests.lock().unwrap().len(), 1);
}

#[test]
fn edited_plans_run_as_edited_and_remarks_reach_the_next_prompt() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. Guess.\n"),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
            (Purpose::Replan, ANSWER_5),
        ],
    );
    let edit = PlanReview::Edit(vec!["Use calculator on 2 + 3.".into()]);
    let r = run(&supervised(&mut s, m.clone(), vec![edit], vec!["double-check it"], true), "What is 2 + 3?");
    assert_eq!(r.status, RunStatus::Answered);
    assert_eq!(r.steps[0].step, "Use calculator on 2 + 3.");
    let prompts = m.prompts();
    assert!(prompts[1].contains("Step: Use calculator on 2 + 3."), "{}", prompts[1]);
    assert!(prompts[3].contains("Note from the user: double-check it"), "{}", prompts[3]);
    assert!(s.recorder.count("human") >= 2);
}

#[test]
fn several_planners_propose_and_the_rule_chooses() {
    let mut s = setup();
    let p1 = Scripted::new("p1", &[(Purpose::Plan, "1. Think hard.\n2. Use calculator on 2 + 3.\n"), (Purpose::Plan, "1. Use calculator on 2 + 3.\n2. Check it with calculator.\n")]);
    let p2 = Scripted::new("p2", &[(Purpose::Plan, PLAN_CALC), (Purpose::Plan, "1. Ask.\n")]);
    let exec = Scripted::new("exec", &[(Purpose::Execute, CALL_CALC), (Purpose::Execute, FINAL_5)]);
    // The first planner also replans.
    p1.replies.lock().unwrap().push_back((Purpose::Replan, ANSWER_5.into()));
    let a = Agent::builder()
        .planner(p1.clone())
        .planner(p2.clone())
        .executor(exec)
        .tools(s.registry.take().unwrap())
        .config(AgentConfig { plan_samples: 2, ..config() })
        .observer(s.recorder.clone())
        .build()
        .unwrap();
    let r = run(&a, "What is 2 + 3?");
    assert_eq!(r.plan, vec!["Use calculator on 2 + 3."]);
    let events = s.recorder.0.lock().unwrap();
    let (cands, chosen) = events
        .iter()
        .find_map(|e| match e {
            Event::Plan { candidates, chosen, .. } if !candidates.is_empty() => Some((candidates.clone(), *chosen)),
            _ => None,
        })
        .expect("a plan event with candidates");
    assert_eq!(cands.len(), 4);
    assert_eq!(chosen, Some(2));
    // Later samples of a greedy planner use other seeds and some temperature.
    let seeds: Vec<u64> = cands.iter().map(|c| c.seed).collect();
    assert_eq!(seeds, vec![0, 1, 0, 1]);
}

#[test]
fn a_judge_can_choose_instead() {
    let mut s = setup();
    let p = Scripted::new(
        "p",
        &[
            (Purpose::Plan, PLAN_CALC),
            (Purpose::Plan, "1. Use calculator on 3 + 2.\n"),
            (Purpose::Judge, "Best plan: 2\n"),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
            (Purpose::Replan, ANSWER_5),
        ],
    );
    let a = Agent::builder()
        .model(p)
        .tools(s.registry.take().unwrap())
        .config(AgentConfig { plan_samples: 2, plan_judge: true, ..config() })
        .observer(s.recorder.clone())
        .build()
        .unwrap();
    let r = run(&a, "What is 2 + 3?");
    assert_eq!(r.plan, vec!["Use calculator on 3 + 2."]);
}

#[test]
fn the_direct_executor_makes_one_call_per_step() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, PLAN_CALC),
            (Purpose::Execute, "{\"tool\": \"calculator\", \"input\": {\"expression\": \"2 + 3\"}}"),
            (Purpose::Replan, ANSWER_5),
        ],
    );
    let mut c = config();
    c.executor.kind = ExecutorKind::Direct;
    let r = run(&agent(&mut s, m, c), "What is 2 + 3?");
    assert_eq!(r.steps[0].result, "5");
    assert_eq!(r.final_answer.as_deref(), Some("5"));
}

fn call(reg: &Registry, tool: &str, input: serde_json::Value) -> (String, bool) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let o = rt.block_on(reg.call(tool, &input));
    (o.text, o.error)
}

#[test]
fn sandboxes_refuse_with_error_observations() {
    let f = fixture::create();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), f.root().join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), f.root().join("linkdir")).unwrap();
    let reg = fixture::widen(&f, fixture::any_path_registry(&f));
    for (tool, input, needle) in [
        ("read_file", json!({"path": "../etc/passwd"}), "`..`"),
        ("read_file", json!({"path": "/etc/passwd"}), "absolute"),
        ("read_file", json!({"path": "link.txt"}), "outside the workspace"),
        ("list_dir", json!({"path": "linkdir"}), "outside the workspace"),
        ("list_dir", json!({"path": "docs/../.."}), "`..`"),
        ("sql_query", json!({"query": "DELETE FROM users"}), "read-only"),
        ("sql_query", json!({"query": "DROP TABLE users"}), "read-only"),
        ("shell", json!({"command": "rm", "args": ["-rf", "/"]}), "invalid input"),
        ("http_request", json!({"method": "GET", "url": "http://example.com/"}), "not under an allowed base URL"),
        ("http_request", json!({"method": "GET", "url": "http://127.0.0.1:9.evil.com/"}), "not under an allowed base URL"),
        ("nope", json!({}), "no tool"),
        ("calculator", json!({"expr": "1"}), "invalid input"),
    ] {
        let (text, error) = call(&reg, tool, input.clone());
        assert!(error, "{tool} {input}: not an error: {text}");
        assert!(text.contains(needle), "{tool} {input}: `{needle}` not in {text:?}");
    }
    // The file outside is untouched, and nothing new appeared beside it.
    assert_eq!(std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(), "secret");
    let outside_files: Vec<_> = std::fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside_files, ["secret.txt"]);
    // Without --allow-write, read_file names the workspace's files and takes no other path.
    let listed = fixture::registry(&f);
    let (text, error) = call(&listed, "read_file", json!({"path": "../etc/passwd"}));
    assert!(error && text.contains("is not one of"), "{text}");
    assert_eq!(call(&listed, "read_file", json!({"path": "todo.txt"})), ("- water the plants\n- pay rent\n".into(), false));
    // The files tools do work inside.
    assert!(!call(&reg, "read_file", json!({"path": "docs/readme.md"})).1);
    let (out, err) = call(&reg, "search_files", json!({"pattern": "water"}));
    assert!(!err && out.contains("todo.txt:1: - water the plants"), "{out}");
    let (out, err) = call(&reg, "sql_query", json!({"query": "SELECT name FROM users WHERE city = 'Paris' ORDER BY name"}));
    assert_eq!((out.as_str(), err), ("name: Alice\nname: Carol", false));
    let (out, err) = call(&reg, "shell", json!({"command": "echo", "args": ["hi; rm -rf /"]}));
    assert_eq!((out.as_str(), err), ("hi; rm -rf /", false), "arguments are not interpreted by a shell");
    let (out, _) = call(&reg, "list_dir", json!({"path": "."}));
    assert!(out.contains("docs/") && out.contains("notes.txt ("), "{out}");
}

#[test]
fn writes_and_sql_writes_only_when_allowed() {
    use pae_local::agent::tools::{SqlQuery, Workspace, WriteFile};
    let f = fixture::create();
    let ws = Arc::new(Workspace::new(f.root()).unwrap());
    let mut reg = Registry::new(Duration::from_secs(5));
    reg.add(Arc::new(WriteFile::new(ws))).unwrap();
    reg.add(Arc::new(SqlQuery::new(&f.db, true).unwrap())).unwrap();
    let (_, err) = call(&reg, "write_file", json!({"path": "out/new.txt", "content": "x"}));
    assert!(err, "the folder does not exist");
    let (_, err) = call(&reg, "write_file", json!({"path": "../escape.txt", "content": "x"}));
    assert!(err);
    let (out, err) = call(&reg, "write_file", json!({"path": "new.txt", "content": "hello"}));
    assert!(!err, "{out}");
    assert_eq!(std::fs::read_to_string(f.root().join("new.txt")).unwrap(), "hello");
    let (out, err) = call(&reg, "sql_query", json!({"query": "DELETE FROM users WHERE name = 'Dave'"}));
    assert_eq!((out.as_str(), err), ("ok, 1 row(s) changed", false));
}

#[test]
fn traces_are_valid_jsonl_with_every_event_kind() {
    let mut s = setup();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let trace = Arc::new(TraceWriter::create(&path).unwrap());
    let bad = "Thought: read it.\nAction: read_file\nAction Input: {\"path\": \"missing.txt\"}\n";
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. Use read_file on missing.txt.\n"),
            (Purpose::Execute, bad),
            (Purpose::Execute, bad),
            (Purpose::Replan, "Decision: replan\n1. Use calculator on 2 + 3.\n"),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
            (Purpose::Replan, ANSWER_5),
        ],
    );
    let mut c = config();
    c.executor.retries = 1;
    let a = Agent::builder()
        .model(m)
        .tools(s.registry.take().unwrap())
        .config(c)
        .observer(trace)
        .build()
        .unwrap();
    let r = run(&a, "What is 2 + 3?");
    assert_eq!(r.status, RunStatus::Answered);
    let kinds = trace_kinds(&path);
    for k in ["run_start", "plan", "step_start", "llm_call", "action", "observation", "step_end", "retry", "replan", "final", "run_end"] {
        assert!(kinds.contains(&k.to_string()), "no {k} in {kinds:?}");
    }
    assert_eq!(kinds.first().map(String::as_str), Some("run_start"));
    assert_eq!(kinds.last().map(String::as_str), Some("run_end"));
}

/// Every line parses as a JSON object with an `event` and a time.
pub fn trace_kinds(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("bad trace line {l:?}: {e}"));
            assert!(v["t"].is_number(), "{l}");
            v["event"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn the_builder_refuses_incomplete_agents() {
    let f = fixture::create();
    let m = Scripted::new("m", &[]);
    assert!(Agent::builder().tools(fixture::registry(&f)).build().is_err());
    assert!(Agent::builder().model(m.clone()).build().is_err());
    let err = Agent::builder()
        .model(m)
        .tools(fixture::registry(&f))
        .config(AgentConfig { approve_plan: true, ..config() })
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("supervisor"), "{err}");
}

#[test]
fn templates_with_unknown_variables_fail_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("planner.jinja"), "Plan {{ objectiv }} with {{ tools | length }} tools").unwrap();
    let err = pae_local::agent::templates::Templates::with_overrides(dir.path()).unwrap_err().to_string();
    assert!(err.contains("planner.jinja") && err.contains("`objectiv`"), "{err}");
    std::fs::write(dir.path().join("planner.jinja"), "Plan {{ objective }} {% if %}").unwrap();
    let err = pae_local::agent::templates::Templates::with_overrides(dir.path()).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
    std::fs::write(dir.path().join("planner.jinja"), "Plan: {{ objective | upper }}").unwrap();
    let t = pae_local::agent::templates::Templates::with_overrides(dir.path()).unwrap();
    assert_eq!(t.overridden(), &["planner.jinja".to_string()]);
}

/// Step 2 names step 1's result: the runtime puts the exact value into the tool input, and
/// while step 2 remains the decision after step 1 cannot be an answer.
#[test]
fn results_flow_forward_by_name() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. Use calculator on 17 * 23\n2. Use calculator on #E1 divided by 5\n"),
            (Purpose::Execute, "Thought: I multiply.\nAction: calculator\nAction Input: {\"expression\": \"17 * 23\"}\n"),
            (Purpose::Execute, "Thought: I have it.\nFinal Answer: 391"),
            (Purpose::Replan, "Decision: continue\n"),
            (Purpose::Execute, "Thought: I divide.\nAction: calculator\nAction Input: {\"expression\": \"#E1 divided by 5\"}\n"),
            (Purpose::Execute, "Thought: I have it.\nFinal Answer: 78.2"),
            (Purpose::Replan, "Decision: answer\nFinal Answer: 78.2"),
        ],
    );
    let a = agent(&mut s, m.clone(), config());
    let r = run(&a, "Multiply 17 by 23, then divide the result by 5.");
    assert_eq!(r.status, RunStatus::Answered);
    assert_eq!(r.final_answer.as_deref(), Some("78.2"));
    let second = r.steps[1].actions().next().unwrap();
    assert_eq!(second.observation, "78.2");
    assert_eq!(second.input, json!({"expression": "#E1 divided by 5"}), "the input is kept as written");
    // The decision after step 1 offers no answer: step 2 uses #E1.
    let grammar = {
        let requests = m.requests.lock().unwrap();
        let first_decision = requests.iter().find(|r| r.purpose == Purpose::Replan).unwrap();
        format!("{:?}", first_decision.grammar)
    };
    assert!(!grammar.contains("Final Answer"), "{grammar}");
    // The executor of step 2 sees #E1 by name.
    let prompts = m.prompts();
    assert!(prompts[4].contains("#E1 = 391"), "{}", prompts[4]);
}

/// The default loop on a plan copied from the objective: steps run one after another without
/// a replanner call, a step saying "the result" gets the last result's name, the calculator
/// reads a step's own words without an executor call, and the last one-line result is the
/// answer. One model call in all.
#[test]
fn by_default_the_plan_runs_through_and_its_last_result_answers() {
    let mut s = setup();
    let m = Scripted::new("m", &[(Purpose::Plan, "1. multiply 17 by 23 (tool: calculator)\n2. divide the result by 5. (tool: calculator)\n")]);
    let r = run(&agent(&mut s, m.clone(), AgentConfig::default()), "Multiply 17 by 23, then divide the result by 5.");
    assert_eq!(r.status, RunStatus::Answered, "{r:?}");
    assert_eq!(r.final_answer.as_deref(), Some("78.2"));
    assert_eq!(r.plan, ["Use calculator to multiply 17 by 23", "Use calculator to divide the result by 5."]);
    assert_eq!(r.steps[1].step, "Use calculator to divide #E1 by 5.", "the back reference named");
    let inputs: Vec<_> = r.steps.iter().flat_map(|s| s.actions().map(|a| a.input.clone())).collect();
    assert_eq!(inputs, [json!({"expression": "multiply 17 by 23"}), json!({"expression": "divide #E1 by 5."})]);
    assert_eq!(m.left(), 0);
    assert_eq!(m.requests.lock().unwrap().len(), 1, "only the plan was a model call");
    // The plan grammar copied the objective's clauses and offered each its best tools.
    let grammar = format!("{:?}", m.requests.lock().unwrap()[0].grammar);
    assert!(grammar.contains("multiply 17 by 23") && grammar.contains("divide the result by 5."), "{grammar}");
}

/// By default a failed step still goes to the replanner, told why, and words a tool cannot
/// read fall back to the executor model.
#[test]
fn by_default_a_failure_goes_to_the_replanner() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. find the answer (tool: calculator)\n"),
            // The calculator cannot read "find the answer": the executor writes the input.
            (Purpose::Execute, "Thought: I divide.\nAction: calculator\nAction Input: {\"expression\": \"1 / 0\"}\n"),
            (Purpose::Execute, "Thought: I divide.\nAction: calculator\nAction Input: {\"expression\": \"2 / 0\"}\n"),
            (Purpose::Replan, "Decision: replan\n1. Use calculator on 2 + 3.\n"),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
        ],
    );
    let r = run(&agent(&mut s, m.clone(), AgentConfig::default()), "Find the answer.");
    assert_eq!(r.status, RunStatus::Answered, "{r:?}");
    assert_eq!(r.final_answer.as_deref(), Some("5"));
    assert_eq!(r.replans, 1);
    assert_eq!(r.steps[0].status, StepStatus::Failed);
    assert_eq!(r.steps[0].attempts.len(), 3, "the words, then two tries of the model");
    let replan_prompt = m.prompts()[3].clone();
    assert!(replan_prompt.contains("The last step failed"), "{replan_prompt}");
    assert_eq!(m.left(), 0);
}

#[test]
fn an_unknown_reference_is_an_error_observation() {
    let mut s = setup();
    let bad = "Thought: I divide.\nAction: calculator\nAction Input: {\"expression\": \"#E3 / 5\"}\n";
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, PLAN_CALC),
            (Purpose::Execute, bad),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
            (Purpose::Replan, ANSWER_5),
        ],
    );
    let a = agent(&mut s, m, config());
    let r = run(&a, "Add 2 and 3.");
    assert_eq!(r.final_answer.as_deref(), Some("5"));
    let first = r.steps[0].actions().next().unwrap();
    assert!(first.error);
    assert_eq!(first.observation, "Error: `#E3` names no result: there are no results yet");
}

fn rewoo_config() -> AgentConfig {
    AgentConfig {
        planner_kind: pae_local::agent::planner::PlannerKind::Rewoo,
        ..config()
    }
}

/// ReWOO: one program, run with no model call per step, references substituted, one solver
/// call; the evidence is in the solver's prompt.
#[test]
fn rewoo_runs_the_program_then_solves() {
    let mut s = setup();
    let m = Scripted::new(
        "m",
        &[
            (
                Purpose::Plan,
                "#E1 = sql_query[{\"query\": \"SELECT age FROM users WHERE name = 'Carol'\"}]\n#E2 = calculator[{\"expression\": \"#E1 times 2\"}]\n",
            ),
            (Purpose::Solve, "Answer: 90"),
        ],
    );
    let a = agent(&mut s, m.clone(), rewoo_config());
    let r = run(&a, "What is Carol's age multiplied by 2?");
    assert_eq!(r.status, RunStatus::Answered, "{:?}", r.error);
    assert_eq!(r.final_answer.as_deref(), Some("90"));
    assert_eq!(r.steps.len(), 2);
    assert_eq!(r.steps[0].result, "age: 45");
    assert_eq!(r.steps[1].result, "90");
    let prompts = m.prompts();
    assert_eq!(prompts.len(), 2, "two model calls in all");
    assert!(prompts[1].contains("#E2 = calculator[{\"expression\": \"#E1 times 2\"}]\n90"), "{}", prompts[1]);
    let grammar = format!("{:?}", m.requests.lock().unwrap()[1].grammar);
    assert!(grammar.contains("\\\"90\\\""), "the solver may quote the result: {grammar}");
}

/// A failed call ends the program; the next program is told what failed; the replan budget
/// bounds how often.
#[test]
fn rewoo_replans_with_the_failure_then_stops_at_the_budget() {
    let mut s = setup();
    let bad = "#E1 = read_file[{\"path\": \"missing.txt\"}]\n";
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, bad),
            (Purpose::Plan, "#E1 = calculator[{\"expression\": \"2 + 3\"}]\n"),
            (Purpose::Solve, "Answer: 5"),
        ],
    );
    let a = agent(&mut s, m.clone(), rewoo_config());
    let r = run(&a, "Add 2 and 3.");
    assert_eq!(r.final_answer.as_deref(), Some("5"));
    assert_eq!(r.replans, 1);
    let prompts = m.prompts();
    assert!(prompts[1].contains("The last try failed: #E1 = read_file"), "{}", prompts[1]);
    assert_eq!(s.recorder.count("replan"), 1);

    let mut s = setup();
    let m = Scripted::new("m", &[(Purpose::Plan, bad), (Purpose::Plan, bad), (Purpose::Plan, bad)]);
    let a = agent(
        &mut s,
        m.clone(),
        AgentConfig {
            budgets: pae_local::agent::budget::BudgetLimits {
                max_replans: 2,
                ..Default::default()
            },
            ..rewoo_config()
        },
    );
    let r = run(&a, "Read missing.txt.");
    assert_eq!(r.status, RunStatus::BudgetExhausted);
    assert_eq!(r.budget, Some(Budget::Replans));
    assert_eq!(m.left(), 0);
}

#[test]
fn rewoo_refuses_several_planners() {
    let f = fixture::create();
    let m = Scripted::new("m", &[]);
    let built = Agent::builder()
        .model(m)
        .tools(fixture::registry(&f))
        .config(AgentConfig {
            plan_samples: 2,
            ..rewoo_config()
        })
        .build();
    let Err(e) = built else { panic!("several planners with ReWOO were accepted") };
    assert!(e.to_string().contains("ReWOO"), "{e}");
}

/// `ask_human` is a last resort: after a step's first action the executor is offered every
/// tool but the person, unless the step names the person.
#[test]
fn the_person_is_offered_only_to_a_step_that_names_them() {
    struct Answers;
    impl Human for Answers {
        fn ask(&self, _: &str, _: &Cancel) -> Option<String> {
            Some("blue".into())
        }
    }
    let mut s = setup();
    let mut registry = s.registry.take().unwrap();
    registry.add(Arc::new(AskHuman::new(Arc::new(Answers)))).unwrap();
    s.registry = Some(registry);
    let ask = "Thought: I ask.\nAction: ask_human\nAction Input: {\"question\": \"Which colour?\"}\n";
    let m = Scripted::new(
        "m",
        &[
            (Purpose::Plan, "1. Use calculator on 2 + 3.\n2. Use ask_human to ask for a colour.\n"),
            (Purpose::Execute, CALL_CALC),
            (Purpose::Execute, FINAL_5),
            (Purpose::Replan, "Decision: continue\n"),
            (Purpose::Execute, ask),
            (Purpose::Execute, "Thought: I have it.\nFinal Answer: blue"),
            (Purpose::Replan, "Decision: answer\nFinal Answer: blue"),
        ],
    );
    let r = run(&agent(&mut s, m.clone(), config()), "What is 2 + 3, and which colour do I like?");
    assert_eq!(r.final_answer.as_deref(), Some("blue"), "{r:?}");
    let grammars: Vec<String> = m
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.purpose == Purpose::Execute)
        .map(|r| format!("{:?}", r.grammar))
        .collect();
    assert!(!grammars[1].contains("ask_human"), "a calculator step's later action cannot ask the person: {}", grammars[1]);
    assert!(grammars[3].contains("ask_human"), "a step that names the person keeps it: {}", grammars[3]);
}
