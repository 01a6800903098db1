//! The plan-and-execute loop.
//!
//! 1. The planner writes a numbered plan (by grammar), having seen the tools.
//! 2. The executor carries out the current step with tools (retrying failures).
//! 3. The step, its actions and observations go to the replanner, which continues, replaces
//!    the remaining plan, or answers.
//! 4. Until answered, rejected, or a budget runs out.
//!
//! Which plan the loop starts from is chosen in [`plan_choice`]; the settings it runs with
//! and the report it returns are defined in `run_config` and `report` and re-exported here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::budget::Budgets;
use super::calls::{Caller, Halt, PrefixReuse, Usage};
use super::events::{Budget, Event, Observer, PlanSource, RunStatus, Silent, StepStatus};
use super::executor::{self, AttemptRecord, StepEnv, StepRecord};
use super::llm::{Llm, Purpose};
use super::parse::Decision;
use super::plan_choice;
use super::planner::{Planner, PlannerKind};
use super::prompt::{Evidence, PromptContext};
use super::replanner;
use super::rewoo;
use super::supervisor::Supervisor;
use super::templates::Templates;
use super::tools::Registry;
use super::Error;

pub use super::report::{RunReport, Timings};
pub use super::run_config::{AgentConfig, Review};

/// Counts the tokens of a text (for cutting long observations).
pub type TokenCounter = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// A plan-and-execute agent. Build one with [`Agent::builder`].
pub struct Agent {
    planners: Vec<Arc<dyn Llm>>,
    executor: Arc<dyn Llm>,
    registry: Arc<Registry>,
    templates: Arc<Templates>,
    config: AgentConfig,
    supervisor: Option<Arc<dyn Supervisor>>,
    observer: Arc<dyn Observer>,
    count_tokens: TokenCounter,
    interrupt: super::Interrupt,
}

/// Builds an [`Agent`]; `build` checks that the pieces fit.
pub struct AgentBuilder {
    planners: Vec<Arc<dyn Llm>>,
    executor: Option<Arc<dyn Llm>>,
    registry: Option<Arc<Registry>>,
    templates: Option<Arc<Templates>>,
    config: AgentConfig,
    supervisor: Option<Arc<dyn Supervisor>>,
    observer: Arc<dyn Observer>,
    count_tokens: Option<TokenCounter>,
    interrupt: super::Interrupt,
}

impl Agent {
    /// Starts building an agent (an executor model and tools are required).
    pub fn builder() -> AgentBuilder {
        AgentBuilder {
            planners: Vec::new(),
            executor: None,
            registry: None,
            templates: None,
            config: AgentConfig::default(),
            supervisor: None,
            observer: Arc::new(Silent),
            count_tokens: None,
            interrupt: super::Interrupt::new(),
        }
    }

    /// The settings this agent runs with.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The tools this agent may call.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl AgentBuilder {
    /// One model for both roles.
    pub fn model(mut self, llm: Arc<dyn Llm>) -> Self {
        self.planners = vec![llm.clone()];
        self.executor = Some(llm);
        self
    }

    /// Adds a planner model (several: each proposes plans, one is chosen).
    pub fn planner(mut self, llm: Arc<dyn Llm>) -> Self {
        self.planners.push(llm);
        self
    }

    /// The model that carries out steps (and writes plans too when no planner is added).
    pub fn executor(mut self, llm: Arc<dyn Llm>) -> Self {
        self.executor = Some(llm);
        self
    }

    /// The tools the agent may call (required, and not empty).
    pub fn tools(mut self, registry: Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Prompt and grammar templates [default: the built-in ones].
    pub fn templates(mut self, templates: Templates) -> Self {
        self.templates = Some(Arc::new(templates));
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: AgentConfig) -> Self {
        self.config = config;
        self
    }

    /// Who reviews plans and remarks on steps; needed for `approve_plan` and `feedback`.
    pub fn supervisor(mut self, s: Arc<dyn Supervisor>) -> Self {
        self.supervisor = Some(s);
        self
    }

    /// Receives every event of each run [default: none].
    pub fn observer(mut self, o: Arc<dyn Observer>) -> Self {
        self.observer = o;
        self
    }

    /// A handle that stops the agent's runs early when triggered (status `interrupted`).
    pub fn interrupt(mut self, i: super::Interrupt) -> Self {
        self.interrupt = i;
        self
    }

    /// Counts tokens for observation truncation [default: ~4 bytes a token].
    pub fn token_counter(mut self, f: TokenCounter) -> Self {
        self.count_tokens = Some(f);
        self
    }

    /// The agent, or [`Error::Config`] when a piece is missing or the settings do not fit
    /// together.
    pub fn build(self) -> Result<Agent, Error> {
        let executor = self.executor.ok_or_else(|| Error::Config("the agent needs an executor model".into()))?;
        let planners = if self.planners.is_empty() { vec![executor.clone()] } else { self.planners };
        let registry = self.registry.ok_or_else(|| Error::Config("the agent needs a tool registry".into()))?;
        if registry.is_empty() {
            return Err(Error::Config("the tool registry is empty".into()));
        }
        let c = &self.config;
        if c.limits.max_steps == 0 || c.plan_samples == 0 || c.executor.max_iterations == 0 || c.budgets.max_steps == 0 {
            return Err(Error::Config("steps, plan samples and iterations must be at least 1".into()));
        }
        if c.planner_kind == PlannerKind::Rewoo && (c.plan_samples > 1 || c.plan_judge || planners.len() > 1) {
            return Err(Error::Config("the ReWOO planner writes one program with one model: several plan samples or planner models and the plan judge apply to the numbered and JSON planners".into()));
        }
        if (c.approve_plan || c.feedback) && self.supervisor.is_none() {
            return Err(Error::Config("plan approval and feedback need a supervisor".into()));
        }
        let templates = match self.templates {
            Some(t) => t,
            None => Arc::new(Templates::builtin()?),
        };
        Ok(Agent {
            planners,
            executor,
            registry,
            templates,
            config: self.config,
            supervisor: self.supervisor,
            observer: self.observer,
            count_tokens: self.count_tokens.unwrap_or_else(|| Arc::new(|s: &str| s.len().div_ceil(4))),
            interrupt: self.interrupt,
        })
    }
}

/// The state of one run.
struct Run<'a> {
    agent: &'a Agent,
    caller: Caller,
    ctx: PromptContext,
    steps: Vec<StepRecord>,
    plan: Vec<String>,
    start: Instant,
}

impl Agent {
    /// The prompt context a run of `objective` starts from.
    fn context(&self, objective: &str) -> PromptContext {
        PromptContext {
            objective: objective.to_string(),
            tools: super::relevance::rank(objective, &self.registry.specs()),
            persona: self.config.persona.clone(),
            max_steps: self.config.limits.max_steps,
            max_iterations: self.config.executor.max_iterations,
            ..Default::default()
        }
    }

    /// The plan the first planner would start `objective` with, and nothing run: what the
    /// session's `/plan` shows. The plan's text streams to the observer as it is written.
    /// (With several candidate plans or a judge, a run may pick another.)
    pub fn plan_only(&self, objective: &str) -> Result<Vec<String>, Error> {
        let c = &self.config;
        let planner = Planner::new(c.planner_kind, c.limits);
        let observer = self.observer.clone();
        let out = planner.plan(&*self.planners[0], &self.templates, &self.context(objective), &c.planner_sampling, &mut |t| {
            observer.on_event(&Event::Text {
                purpose: Purpose::Plan,
                text: t.to_string(),
            });
        })?;
        Ok(out.steps)
    }

    /// Runs the loop for `objective`. Never fails: problems end the run with status `error`
    /// (or `budget_exhausted`, `rejected`) and a report.
    pub async fn run(&self, objective: &str) -> RunReport {
        let caller = Caller {
            observer: self.observer.clone(),
            budgets: Arc::new(Mutex::new(Budgets::new(self.config.budgets.clone()))),
            usage: Arc::new(Mutex::new(Usage::new())),
            reuse: Arc::new(Mutex::new(PrefixReuse::default())),
            last_observation: Arc::new(Mutex::new(None)),
            interrupt: self.interrupt.clone(),
        };
        let ctx = self.context(objective);
        caller.emit(Event::RunStart {
            objective: objective.to_string(),
            planner_models: self.planners.iter().map(|p| p.name().to_string()).collect(),
            executor_model: self.executor.name().to_string(),
            tools: ctx.tools.iter().map(|t| t.name.clone()).collect(),
            config: serde_json::to_value(&self.config).unwrap_or_default(),
        });
        let mut run = Run {
            agent: self,
            caller,
            ctx,
            steps: Vec::new(),
            plan: Vec::new(),
            start: Instant::now(),
        };
        let outcome = run.drive().await;
        run.finish(outcome)
    }
}

impl Run<'_> {
    fn config(&self) -> &AgentConfig {
        &self.agent.config
    }

    /// What running a step or a tool call needs from this run.
    fn step_env(&self) -> StepEnv<'_> {
        StepEnv {
            caller: &self.caller,
            llm: &self.agent.executor,
            templates: &self.agent.templates,
            registry: &self.agent.registry,
            config: &self.agent.config.executor,
            count_tokens: &*self.agent.count_tokens,
        }
    }

    async fn drive(&mut self) -> Result<String, Halt> {
        if self.config().planner_kind == PlannerKind::Rewoo {
            return self.drive_rewoo().await;
        }
        let first = plan_choice::sample_and_choose(&self.caller, &self.agent.planners, &self.agent.templates, &self.ctx, &self.agent.config).await?;
        let Some(mut remaining) = self.adopt(first, PlanSource::Planner).await else {
            return Err(Halt::Rejected);
        };
        loop {
            let Some(step) = remaining.pop_front() else {
                // Nothing left to do: only an answer or a new plan can follow.
                self.ctx.remaining.clear();

                match self.decide(false, true).await? {
                    Decision::Answer(a) => return Ok(a),
                    Decision::Replan(p) => match self.replan(p, "the plan ran out of steps").await? {
                        Some(r) => remaining = r,
                        None => return Err(Halt::Rejected),
                    },
                    // The grammar offers no `continue` here; a model that ignores grammars
                    // (a user's `Llm`, a user's templates) can still write it.
                    Decision::Continue => {
                        return Err(Halt::Error(Error::Parse("the model chose `continue` with no steps left".into())))
                    }
                }
                continue;
            };
            self.caller.check_interrupt()?;
            {
                let mut b = self.caller.budgets();
                if !b.step_allowed() {
                    return Err(Halt::Budget(Budget::Steps));
                }
                b.steps += 1;
            }
            let index = self.steps.len() + 1;
            // A step that says "it" or "the result" means the last result: name it exactly.
            let step = match self.steps.iter().rev().find(|s| s.status == StepStatus::Done) {
                Some(done) => super::references::refer_back(&step, done.index, &done.step),
                None => step,
            };
            self.ctx.step_number = index;
            let env = self.step_env();
            let record = executor::execute_step(&env, &self.ctx, index, &step).await?;
            self.caller.emit(Event::StepEnd {
                index,
                status: record.status,
                result: record.result.clone(),
            });
            let failed = record.status == StepStatus::Failed;
            self.ctx.past_steps.push(executor::past_step(&record));
            self.ctx.failure = if failed { record.result.clone() } else { String::new() };
            self.steps.push(record);
            self.ctx.feedback = self.remark(index, &step).await;
            self.ctx.remaining = remaining.iter().cloned().collect();
            // The plan's remaining steps are the rest of the objective: after a step that
            // worked, they run without a decision (answering now would answer with an
            // intermediate result). The replanner decides after a failure, after a remark
            // from the supervisor, and when the plan is done.
            let every_step = self.config().review == Review::EveryStep;
            if !every_step && !failed && !remaining.is_empty() && self.ctx.feedback.is_empty() {
                continue;
            }
            // The last step carried out the objective's last part: a one-line result of it
            // is the answer (a 135M replanner choosing among every result so far often
            // quotes an earlier one); a longer one goes to the replanner.
            if !every_step && !failed && remaining.is_empty() {
                if let Some(answer) = self.last_result_as_answer() {
                    return Ok(answer);
                }
            }
            // A remaining step that uses a result (`#E1`) needs this one: no answer yet.
            let chained = remaining.iter().any(|s| !super::references::indices_in(s).is_empty());
            let can_answer = failed || remaining.is_empty() || (every_step && !chained);
            let decision = self.decide(!failed && !remaining.is_empty(), can_answer).await?;
            match decision {
                Decision::Continue => {}
                Decision::Answer(a) => return Ok(a),
                Decision::Replan(p) => {
                    let why = if failed { format!("step {index} failed") } else { "the replanner changed the plan".into() };
                    match self.replan(p, &why).await? {
                        Some(r) => remaining = r,
                        None => return Err(Halt::Rejected),
                    }
                }
            }
        }
    }

    /// ReWOO: a program, run whole; on a failed call a new program told the failure (within
    /// the replan budget); then the solver's answer from the evidence.
    async fn drive_rewoo(&mut self) -> Result<String, Halt> {
        let mut why = String::new();
        let mut attempt = 0usize;
        loop {
            if attempt > 0 && !self.caller.budgets().replan_allowed() {
                return Err(Halt::Budget(Budget::Replans));
            }
            let c = self.config().clone();
            // A greedy retry told only the failure may write the same program: later ones sample.
            let sampling = c.planner_sampling.nth_sample(attempt, 0.7);
            let req = rewoo::plan_request(&self.agent.templates, &self.ctx, &c.limits, &sampling)?;
            let llm = self.agent.planners[0].clone();
            let resp = self.caller.call(&llm, "planner", req).await?;
            let lines = rewoo::parse_program(&resp.text, c.limits.max_steps)?;
            let adopted = if attempt == 0 {
                self.adopt(lines, PlanSource::Planner).await
            } else {
                self.replan(lines, &why).await?
            };
            let Some(lines) = adopted else {
                return Err(Halt::Rejected);
            };
            match self.run_program(lines.into()).await? {
                Some(failure) => {
                    why = failure;
                    self.ctx.failure = why.clone();
                }
                None => {
                    let req = rewoo::solve_request(&self.agent.templates, &self.ctx, &c.limits, &c.planner_sampling)?;
                    let resp = self.caller.call(&llm, "planner", req).await?;
                    return Ok(rewoo::parse_answer(&resp.text)?);
                }
            }
            attempt += 1;
        }
    }

    /// Runs a ReWOO program; `Some(why)` when a call failed (the program stops there).
    async fn run_program(&mut self, lines: Vec<String>) -> Result<Option<String>, Halt> {
        let mut evidence: Vec<Evidence> = Vec::new();
        self.ctx.evidence.clear();
        for (i, line) in lines.iter().enumerate() {
            self.caller.check_interrupt()?;
            {
                let mut b = self.caller.budgets();
                if !b.step_allowed() {
                    return Err(Halt::Budget(Budget::Steps));
                }
                b.steps += 1;
            }
            let index = self.steps.len() + 1;
            self.caller.emit(Event::StepStart {
                index,
                step: line.clone(),
                attempt: 1,
            });
            let env = self.step_env();
            // Only a plan edited by a person can fail to parse here: the grammar wrote the rest.
            let (call, action, observation, error) = match rewoo::parse_call(line, i + 1) {
                Ok(call) => {
                    let results: Vec<String> = evidence.iter().map(|e| e.observation.clone()).collect();
                    let a = executor::run_tool(&env, index, &self.ctx.objective, String::new(), call.tool.clone(), call.input.clone(), &results).await?;
                    let (obs, err) = (a.observation.clone(), a.error);
                    (call, Some(a), obs, err)
                }
                Err(e) => {
                    let call = rewoo::Call {
                        name: super::references::name(i + 1),
                        tool: String::new(),
                        input: serde_json::Value::Null,
                    };
                    (call, None, format!("Error: {e}"), true)
                }
            };
            let e = Evidence {
                name: call.name,
                tool: call.tool,
                input: call.input,
                observation: observation.clone(),
                error,
            };
            let record = StepRecord {
                index,
                step: line.clone(),
                status: if error { StepStatus::Failed } else { StepStatus::Done },
                result: observation.clone(),
                attempts: vec![AttemptRecord {
                    actions: action.into_iter().collect(),
                    failure: error.then(|| observation.clone()),
                }],
            };
            self.caller.emit(Event::StepEnd {
                index,
                status: record.status,
                result: observation,
            });
            self.ctx.past_steps.push(executor::past_step(&record));
            self.steps.push(record);
            evidence.push(e.clone());
            self.ctx.evidence = evidence.clone();
            if error {
                return Ok(Some(rewoo::failure(&e)));
            }
        }
        Ok(None)
    }

    /// Shows the plan for review if asked to, then makes it current. `None`: rejected.
    async fn adopt(&mut self, steps: Vec<String>, source: PlanSource) -> Option<VecDeque<String>> {
        let (steps, source) = match (self.config().approve_plan, self.agent.supervisor.clone()) {
            (true, Some(sup)) => plan_choice::review(&self.caller, sup, steps, source).await?,
            _ => (steps, source),
        };
        self.caller.emit(Event::Plan {
            steps: steps.clone(),
            source,
            candidates: Vec::new(),
            chosen: None,
        });
        self.plan = steps.clone();
        self.ctx.plan = steps.clone();
        Some(steps.into())
    }

    /// The last step's result, when it worked, is one line short enough to quote, and no
    /// remark of the supervisor asks for more.
    fn last_result_as_answer(&self) -> Option<String> {
        let last = self.steps.last()?;
        let result = last.result.trim();
        let fits = !result.is_empty() && !result.contains('\n') && result.chars().count() <= self.config().limits.max_answer_chars;
        (last.status == StepStatus::Done && fits && self.ctx.feedback.is_empty()).then(|| result.to_string())
    }

    async fn decide(&mut self, can_continue: bool, can_answer: bool) -> Result<Decision, Halt> {
        let c = self.config().clone();
        let llm = self.agent.planners[0].clone();
        replanner::decide(&self.caller, &llm, &self.agent.templates, &c.limits, &c.planner_sampling, &self.ctx, can_continue, can_answer)
            .await
    }

    /// Adopts a replacement plan, within the replan budget.
    async fn replan(&mut self, steps: Vec<String>, why: &str) -> Result<Option<VecDeque<String>>, Halt> {
        {
            let mut b = self.caller.budgets();
            if !b.replan_allowed() {
                return Err(Halt::Budget(Budget::Replans));
            }
            b.replans += 1;
        }
        self.caller.emit(Event::Replan {
            reason: why.to_string(),
            steps: steps.clone(),
        });
        Ok(self.adopt(steps, PlanSource::Replanner).await)
    }

    async fn remark(&mut self, index: usize, step: &str) -> String {
        if !self.config().feedback {
            return String::new();
        }
        let Some(sup) = self.agent.supervisor.clone() else {
            return String::new();
        };
        let result = self.steps.last().map(|s| s.result.clone()).unwrap_or_default();
        let step = step.to_string();
        let remark = tokio::task::spawn_blocking(move || sup.feedback(index, &step, &result))
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if !remark.is_empty() {
            self.caller.emit(Event::Human {
                kind: "feedback".into(),
                text: remark.clone(),
            });
        }
        remark
    }

    /// The best answer so far: the last result of a finished step, else the last
    /// observation that was not an error.
    fn best_so_far(&self) -> Option<String> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.status == StepStatus::Done)
            .map(|s| s.result.clone())
            .or_else(|| self.caller.last_observation.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn finish(self, outcome: Result<String, Halt>) -> RunReport {
        let (status, budget, final_answer, error) = match outcome {
            Ok(a) => {
                self.caller.emit(Event::Final { answer: a.clone() });
                (RunStatus::Answered, None, Some(a), None)
            }
            Err(Halt::Rejected) => (RunStatus::Rejected, None, None, None),
            Err(Halt::Budget(b)) => (RunStatus::BudgetExhausted, Some(b), self.best_so_far(), None),
            Err(Halt::Interrupted) => (RunStatus::Interrupted, None, self.best_so_far(), None),
            Err(Halt::Error(e)) => (RunStatus::Error, None, self.best_so_far(), Some(e.to_string())),
        };
        let secs = self.start.elapsed().as_secs_f64();
        let prefix_reuse = *self.caller.reuse.lock().unwrap_or_else(|e| e.into_inner());
        self.caller.emit(Event::RunEnd {
            status,
            budget,
            final_answer: final_answer.clone(),
            secs,
            prefix_reuse,
        });
        let tokens = self.caller.usage.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let budgets = self.caller.budgets();
        let model_secs = tokens.values().map(|u| u.secs).sum();
        let tool_secs = self.steps.iter().flat_map(|s| s.actions()).map(|a| a.elapsed_secs).sum();
        let replans = budgets.replans;
        drop(budgets);
        RunReport {
            objective: self.ctx.objective.clone(),
            status,
            budget,
            final_answer,
            plan: self.plan.clone(),
            steps: self.steps,
            replans,
            tokens,
            prefix_reuse,
            timings: Timings {
                total_secs: secs,
                model_secs,
                tool_secs,
            },
            error,
        }
    }
}