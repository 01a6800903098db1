//! `bench --agent`: one fixed task run by the agent end to end (plan, tool steps, answer), so
//! that what a user waits for is measured, not only the kernels: model calls, prompt tokens
//! computed against those served from the prefix cache, and each call's latency.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pae_local::agent::events::{Event, Observer, RunStatus};
use pae_local::agent::llm::{CallStats, LocalLlm, Purpose};
use pae_local::agent::runner::TokenCounter;
use pae_local::agent::tools::Registry;
use pae_local::agent::workload::AGENT_TASK;
use pae_local::agent::Agent;
use pae_local::decode::Engine;
use pae_local::model::Model;

/// One model call of the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Call {
    pub purpose: Purpose,
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    pub secs: f64,
}

/// Keeps the model calls of a run.
#[derive(Default)]
struct Calls(Mutex<Vec<Call>>);

impl Observer for Calls {
    fn on_event(&self, event: &Event) {
        if let Event::LlmCall { purpose, stats, .. } = event {
            let CallStats {
                prompt_tokens,
                reused_tokens,
                generated_tokens,
                total_secs,
                ..
            } = *stats;
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(Call {
                purpose: *purpose,
                prompt_tokens,
                reused_tokens,
                generated_tokens,
                secs: total_secs,
            });
        }
    }
}

/// The task's runs on one model.
pub struct AgentRun {
    /// How the last run ended.
    pub status: RunStatus,
    pub answer: Option<String>,
    /// The model calls of the last run (greedy decoding: every run makes the same ones).
    pub calls: Vec<Call>,
    /// Seconds of each run, from the objective to the report.
    pub run_secs: Vec<f64>,
    /// Share of prompt tokens served from the cache, from the run's second call on.
    pub reuse_ratio: f64,
}

impl AgentRun {
    pub fn prompt_tokens(&self) -> usize {
        self.calls.iter().map(|c| c.prompt_tokens).sum()
    }

    pub fn reused_tokens(&self) -> usize {
        self.calls.iter().map(|c| c.reused_tokens).sum()
    }

    pub fn generated_tokens(&self) -> usize {
        self.calls.iter().map(|c| c.generated_tokens).sum()
    }
}

/// Runs [`AGENT_TASK`] `repetitions` times with the library's default settings, greedy, each
/// run on a fresh engine so that nothing is cached from the one before.
pub fn measure(model: &Arc<Model>, tools: impl Fn() -> anyhow::Result<Registry>, repetitions: usize) -> anyhow::Result<AgentRun> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build()?;
    let tokenizer = model.tokenizer_arc();
    let count: TokenCounter = Arc::new(move |s: &str| tokenizer.encode(s, false, false).map_or(s.len() / 4, |v| v.len()));
    let mut out = None;
    let mut run_secs = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let engine = Arc::new(Engine::new(model.clone()));
        let calls = Arc::new(Calls::default());
        let agent = Agent::builder()
            .executor(Arc::new(LocalLlm::new(engine.clone())))
            .planner(Arc::new(LocalLlm::new(engine)))
            .tools(tools()?)
            .token_counter(count.clone())
            .observer(calls.clone())
            .build()?;
        let t = Instant::now();
        let report = runtime.block_on(agent.run(AGENT_TASK));
        run_secs.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            report.status != RunStatus::Error,
            "the agent task failed: {}",
            report.error.as_deref().unwrap_or("unknown error")
        );
        let calls = std::mem::take(&mut *calls.0.lock().unwrap_or_else(|e| e.into_inner()));
        out = Some((report, calls));
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    let (report, calls) = out.ok_or_else(|| anyhow::anyhow!("--repetitions must be at least 1"))?;
    Ok(AgentRun {
        status: report.status,
        answer: report.final_answer,
        calls,
        run_secs,
        reuse_ratio: report.prefix_reuse.ratio,
    })
}
