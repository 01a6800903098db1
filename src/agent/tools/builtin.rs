//! The built-in tool set, assembled from settings: what `pae-local run` offers, available to
//! embedding programs, examples and tests so that each does not repeat the assembly (and the
//! rules in it, such as `read_file` taking any path once writes are allowed).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{AskHuman, Calculator, HttpRequest, Human, ListDir, ReadFile, Registry, SearchFiles, Shell, SqlQuery, Workspace, WriteFile};

/// Which built-in tools a [`Registry::builtin`] holds, and their limits. The calculator and
/// the read-only file tools are always there; every other tool is off until a field asks
/// for it, so that an agent can only do what it was given leave to.
#[derive(Clone)]
pub struct BuiltinTools {
    /// Folder the file tools (and `shell`) are confined to; `None`: the current directory, as
    /// a command run in a folder expects.
    pub workspace: Option<PathBuf>,
    /// Adds `write_file`. Files may then appear during a run, so `read_file` accepts any
    /// path in the workspace instead of only the files present at the start.
    pub allow_write: bool,
    /// SQLite database for `sql_query`; without one the tool is absent.
    pub sqlite: Option<PathBuf>,
    /// Lets `sql_query` change the database; read-only otherwise.
    pub allow_sql_write: bool,
    /// Base URLs `http_request` may reach; the tool is absent when there are none.
    pub allow_http: Vec<String>,
    /// Commands `shell` may run; the tool is absent when there are none.
    pub allow_shell: Vec<String>,
    /// Who answers `ask_human`; the tool is absent without one, since a small planner would
    /// otherwise ask the person what a tool computes.
    pub human: Option<Arc<dyn Human>>,
    /// How long `ask_human` waits for an answer (`None`: as long as the person takes). A
    /// person is not held to [`timeout`](Self::timeout).
    pub human_timeout: Option<Duration>,
    /// How long a tool call may take before it is abandoned; `http_request` also bounds
    /// each request by it.
    pub timeout: Duration,
}

impl Default for BuiltinTools {
    /// The command line's defaults: the safe tools over the current directory, 30 seconds a
    /// call.
    fn default() -> Self {
        Self {
            workspace: None,
            allow_write: false,
            sqlite: None,
            allow_sql_write: false,
            allow_http: Vec::new(),
            allow_shell: Vec::new(),
            human: None,
            human_timeout: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for BuiltinTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinTools")
            .field("workspace", &self.workspace)
            .field("allow_write", &self.allow_write)
            .field("sqlite", &self.sqlite)
            .field("allow_sql_write", &self.allow_sql_write)
            .field("allow_http", &self.allow_http)
            .field("allow_shell", &self.allow_shell)
            .field("human", &self.human.is_some())
            .field("human_timeout", &self.human_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the built-in tools could not be assembled: settings that name something missing or
/// malformed, found before any run starts.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    /// No workspace was given and the current directory cannot be read.
    #[error(transparent)]
    CurrentDir(std::io::Error),
    /// The workspace folder does not exist or is not a folder.
    #[error("workspace `{}`", path.display())]
    Workspace {
        /// The folder as given.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// A tool refused its settings (a database that does not open, a base URL that is not
    /// one); the message says which.
    #[error("{0}")]
    Tool(String),
}

impl Registry {
    /// The built-in tools `settings` ask for, as `pae-local run` assembles them from the same
    /// flags: a program embedding the agent gets the command line's tools, in the same order
    /// (the order of [`specs`](Self::specs), which prompts show).
    pub fn builtin(settings: &BuiltinTools) -> Result<Self, BuiltinError> {
        let dir = match &settings.workspace {
            Some(d) => d.clone(),
            None => std::env::current_dir().map_err(BuiltinError::CurrentDir)?,
        };
        let ws = Arc::new(Workspace::new(&dir).map_err(|source| BuiltinError::Workspace { path: dir, source })?);
        let mut r = Registry::new(settings.timeout);
        let add = |r: &mut Registry, t: Arc<dyn super::Tool>| r.add(t).map(|_| ()).map_err(BuiltinError::Tool);
        add(&mut r, Arc::new(Calculator::default()))?;
        add(&mut r, Arc::new(ListDir::new(ws.clone())))?;
        let read = if settings.allow_write { ReadFile::any_path(ws.clone()) } else { ReadFile::new(ws.clone()) };
        add(&mut r, Arc::new(read))?;
        add(&mut r, Arc::new(SearchFiles::new(ws.clone())))?;
        if settings.allow_write {
            add(&mut r, Arc::new(WriteFile::new(ws.clone())))?;
        }
        if let Some(db) = &settings.sqlite {
            add(&mut r, Arc::new(SqlQuery::new(db, settings.allow_sql_write).map_err(BuiltinError::Tool)?))?;
        }
        if !settings.allow_http.is_empty() {
            let http = HttpRequest::new(settings.allow_http.clone(), settings.timeout).map_err(BuiltinError::Tool)?;
            add(&mut r, Arc::new(http))?;
        }
        if !settings.allow_shell.is_empty() {
            add(&mut r, Arc::new(Shell::new(settings.allow_shell.clone(), ws.clone())))?;
        }
        if let Some(human) = &settings.human {
            add(&mut r, Arc::new(AskHuman::new(human.clone()).with_timeout(settings.human_timeout)))?;
        }
        Ok(r)
    }
}
