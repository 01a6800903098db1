//! Tools the executor can call: a [`Tool`] trait, a [`Registry`] that runs calls with a
//! timeout and turns every failure into an error observation, and the built-in tools.
//!
//! Tools know nothing of models; sandbox checks live inside each tool (the file tools share
//! theirs, in `sandbox`).

mod builtin;
mod calculator;
mod human;
mod http;
mod list_dir;
mod mcp;
mod number_words;
mod pack;
mod read_file;
mod sandbox;
mod search_files;
mod shell;
mod spec;
mod sql;
mod write_file;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

pub use builtin::{BuiltinError, BuiltinTools};
pub use calculator::{evaluate, format_number, Calculator};
pub use human::{AskHuman, Human};
pub use pack::{ParamDef, ToolDef, ToolKind, ToolsFile, ToolsFileError};
pub use list_dir::ListDir;
pub use mcp::{McpError, McpServer, McpTool};
pub(crate) use number_words::spell_out;
pub use http::HttpRequest;
pub use read_file::ReadFile;
pub use sandbox::Workspace;
pub use search_files::SearchFiles;
pub use shell::Shell;
pub use spec::ToolSpec;
pub use sql::SqlQuery;
pub use write_file::WriteFile;

/// What a tool call returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<String, ToolError>> + Send + 'a>>;

/// Why a tool call failed. The agent shows it to the model as an error observation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The call is malformed: no such tool, input invalid against the schema, or input the
    /// tool cannot use (a bad pattern).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A sandbox or permission check said no.
    #[error("refused: {0}")]
    Refused(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
    /// The call took longer than the limit it was given.
    #[error("timed out after {0:.1?}")]
    Timeout(Duration),
}

/// A tool: a name, a description and an input schema the model sees, and an async call.
pub trait Tool: Send + Sync {
    /// What the model sees of the tool: name, description, input schema.
    fn spec(&self) -> &ToolSpec;

    /// Runs the tool on an input already validated against its schema.
    fn call(&self, input: Value) -> ToolFuture<'_>;

    /// A narrower input schema for serving `request` (a plan step in words), or `None` for the
    /// spec's own. Whatever it allows, the spec's schema must allow too: inputs are checked
    /// against the spec. The SQL tool offers only the values and numbers a request names.
    fn input_schema_for(&self, _request: &str) -> Option<Value> {
        None
    }

    /// How long a call may take, given the registry's limit for tools (`None`: no limit).
    /// Tools that compute use the registry's; a person answering (`ask_human`) is not bound
    /// by it, since nobody types an answer to order in 30 seconds.
    fn time_limit(&self, tools_limit: Duration) -> Option<Duration> {
        Some(tools_limit)
    }
}

/// The result of one call, as the agent records it.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// What the tool returned, or `Error: …` with the reason it failed.
    pub text: String,
    /// Whether the call failed (the text then says why).
    pub error: bool,
    /// Wall-clock seconds the call took, failures and timeouts included.
    pub elapsed_secs: f64,
}

/// The tools of one run.
pub struct Registry {
    tools: Vec<Arc<dyn Tool>>,
    timeout: Duration,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tools.iter().map(|t| t.spec().name.as_str()).collect();
        f.debug_struct("Registry").field("tools", &names).field("timeout", &self.timeout).finish()
    }
}

impl Registry {
    /// An empty registry whose calls time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            tools: Vec::new(),
            timeout,
        }
    }

    /// Adds a tool; names must be unique identifiers (they appear verbatim in grammars).
    pub fn add(&mut self, tool: Arc<dyn Tool>) -> Result<&mut Self, String> {
        let name = &tool.spec().name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("tool name `{name}` must be letters, digits, `_` or `-`"));
        }
        if self.get(name).is_some() {
            return Err(format!("two tools are named `{name}`"));
        }
        jsonschema::validator_for(&tool.spec().input_schema)
            .map_err(|e| format!("the input schema of `{name}` is invalid: {e}"))?;
        self.tools.push(tool);
        Ok(self)
    }

    /// The tool named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    /// Whether no tool has been added.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// How long a call may take, for tools that accept the registry's limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The specs of every tool, in registration order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec().clone()).collect()
    }

    /// Calls `name` on `input`. Unknown tools, invalid input, failures and timeouts all come
    /// back as error observations, never as panics or errors of the run.
    pub async fn call(&self, name: &str, input: &Value) -> Observation {
        let start = Instant::now();
        let result = match self.get(name) {
            None => Err(ToolError::InvalidInput(format!("there is no tool `{name}`"))),
            Some(tool) => match tool.spec().validate(input) {
                Err(e) => Err(ToolError::InvalidInput(e)),
                Ok(()) => match tool.time_limit(self.timeout) {
                    Some(limit) => match tokio::time::timeout(limit, tool.call(input.clone())).await {
                        Ok(r) => r,
                        Err(_) => Err(ToolError::Timeout(limit)),
                    },
                    None => tool.call(input.clone()).await,
                },
            },
        };
        let elapsed_secs = start.elapsed().as_secs_f64();
        match result {
            Ok(text) => Observation {
                text,
                error: false,
                elapsed_secs,
            },
            Err(e) => Observation {
                text: format!("Error: {e}"),
                error: true,
                elapsed_secs,
            },
        }
    }
}

/// Tells blocking work that its call was abandoned (the registry's timeout fired, or the run
/// ended), so that loops over files, rows or digits stop at their next check instead of
/// running on after their answer is no longer wanted.
///
/// Why this exists: a `spawn_blocking` task cannot be aborted from outside, and a runtime
/// being dropped waits for every such task. Without a cooperative flag, one endless tool call
/// (a symlink loop, a recursive SQL query) keeps the process alive after the run has ended.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the call abandoned; every clone sees it.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the call was abandoned.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `Err(Timeout-like failure)` once cancelled: for `?` inside loops.
    pub fn check(&self) -> Result<(), ToolError> {
        if self.is_cancelled() {
            Err(ToolError::Failed("the call was cancelled".into()))
        } else {
            Ok(())
        }
    }
}

/// Cancels its token when dropped: held by the future that awaits blocking work, so that the
/// registry dropping that future on a timeout cancels the work too.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Runs blocking work (file system, SQLite, HTTP, big-number arithmetic) off the async
/// threads. The work gets a [`Cancel`] that fires when this future is dropped, which is what
/// the registry's timeout does; long loops must check it.
async fn blocking<F>(f: F) -> Result<String, ToolError>
where
    F: FnOnce(&Cancel) -> Result<String, ToolError> + Send + 'static,
{
    let cancel = Cancel::new();
    let _guard = CancelOnDrop(cancel.clone());
    tokio::task::spawn_blocking(move || f(&cancel))
        .await
        .unwrap_or_else(|e| Err(ToolError::Failed(format!("the tool crashed: {e}"))))
}

/// A string field of a validated input.
fn str_field<'a>(input: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    input
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::InvalidInput(format!("`{key}` must be a string")))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary
/// (`str::floor_char_boundary` is newer than this crate's minimum Rust).
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
