//! The plan-and-execute agent: planner, executor, replanner, tools and traces.
//!
//! [`Agent`] runs the loop; it talks to models through the [`llm::Llm`] trait (a GGUF model
//! in-process, or a scripted fake in tests) and to tools through [`tools::Registry`].

pub mod budget;
pub mod clauses;
mod calls;
pub mod events;
pub mod executor;
pub mod facts;
pub mod grammars;
pub mod interrupt;
pub mod llm;
mod named_values;
pub mod parse;
pub mod plan_choice;
pub mod planner;
pub mod prompt;
pub mod references;
pub mod relevance;
pub mod replay;
mod replanner;
mod report;
pub mod rewoo;
mod run_config;
pub mod runner;
pub mod supervisor;
pub mod templates;
pub mod tools;
pub mod trace;
pub mod workload;

pub use calls::{ModelUsage, PrefixReuse, Usage};
pub use interrupt::Interrupt;
pub use runner::{Agent, AgentBuilder, AgentConfig, Review, RunReport};

/// Errors of the agent layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A prompt or grammar template could not be loaded or rendered.
    #[error("template {0}")]
    Template(String),
    /// A model reply that does not parse as what it should be (a plan, an action, a decision).
    #[error("unparseable model output: {0}")]
    Parse(String),
    /// A model call failed (the model thread, or a replayed run with no matching output).
    #[error("model call: {0}")]
    Llm(String),
    /// The agent, its tools or a replay file are set up wrongly.
    #[error("{0}")]
    Config(String),
    /// Generation failed.
    #[error(transparent)]
    Decode(#[from] crate::decode::Error),
    /// The model failed to load or run.
    #[error(transparent)]
    Model(#[from] crate::model::Error),
}
