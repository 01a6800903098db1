//! pae-local: an offline plan-and-execute agent runtime.
//!
//! A planner model writes a numbered plan; an executor model carries out each step with
//! tools (Thought / Action / Action Input / Observation); observations flow back, and the
//! plan goes on, is replaced, or ends in an answer. Both models are quantized GGUF files run
//! in-process, and a grammar constrains every reply the agent parses, so plans and actions
//! always parse.
//!
//! The modules follow the data:
//!
//! - [`model`]: GGUF files, weights, the tokenizer, chat templates and the KV cache
//!   ([`Model`]);
//! - [`decode`]: generation, sampling and the grammar constraint ([`Engine`]);
//! - [`agent`]: planner, executor, replanner, tools, events and traces ([`Agent`]);
//! - [`eval`]: task files with checks, and their scores (`pae-local eval`).
//!
//! # Embedding an agent
//!
//! Load a model, give the agent tools, run an objective:
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use pae_local::agent::tools::Calculator;
//! use pae_local::{Agent, Engine, LoadOptions, LocalLlm, Model, Registry};
//!
//! let model = Model::load(Path::new("models/SmolLM2-135M-Instruct.Q4_1.gguf"), LoadOptions::default())?;
//! let llm = Arc::new(LocalLlm::new(Arc::new(Engine::new(Arc::new(model)))));
//! let mut tools = Registry::new(Duration::from_secs(30));
//! tools.add(Arc::new(Calculator::default()))?;
//! let agent = Agent::builder().model(llm).tools(tools).build()?;
//! let report = tokio::runtime::Runtime::new()?.block_on(agent.run("What is 17 * 23 + 4?"));
//! println!("{:?}: {:?}", report.status, report.final_answer);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same with the model's outputs replayed instead of generated
//! ([`agent::replay::Replay`], what `--replay` does), so that it runs anywhere:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use pae_local::agent::replay::Replay;
//! use pae_local::agent::tools::Calculator;
//! use pae_local::{Agent, Registry};
//!
//! let plan = r#"{"event": "llm_call", "purpose": "plan", "output": "1. multiply 17 by 23 (tool: calculator)\n2. divide the result by 5. (tool: calculator)\n"}"#;
//! let llm = Arc::new(Replay::from_lines("example", plan)?);
//! let mut tools = Registry::new(Duration::from_secs(30));
//! tools.add(Arc::new(Calculator::default()))?;
//! let agent = Agent::builder().model(llm).tools(tools).build()?;
//! let report = tokio::runtime::Runtime::new()?.block_on(agent.run("Multiply 17 by 23, then divide the result by 5."));
//! // The calculator read each step's own words; the last one-line result is the answer.
//! assert_eq!(report.final_answer.as_deref(), Some("78.2"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A tool of your own implements [`Tool`]: a [`ToolSpec`] (name, description, input
//! schema) and an async call; `examples/agent.rs` adds one.

pub mod agent;
pub mod decode;
pub mod eval;
pub mod model;
pub mod source;

pub use agent::llm::{Llm, LocalLlm};
pub use agent::tools::{Registry, Tool, ToolSpec};
pub use agent::{Agent, AgentConfig, RunReport};
pub use decode::Engine;
pub use model::{LoadOptions, Model};
