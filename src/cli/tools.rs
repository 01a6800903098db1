//! Tool flags shared by `plan` and `run`, and the registry they build.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use pae_local::agent::tools::{
    AskHuman, Calculator, HttpRequest, Human, ListDir, ReadFile, Registry, SearchFiles, Shell, SqlQuery, Workspace,
    WriteFile,
};

#[derive(Debug, Clone, Args)]
pub struct ToolArgs {
    /// Folder the file tools are confined to [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Let the agent write files in the workspace (adds `write_file`).
    #[arg(long)]
    pub allow_write: bool,
    /// SQLite database for `sql_query` (read-only unless --allow-sql-write).
    #[arg(long, value_name = "FILE")]
    pub sqlite: Option<PathBuf>,
    /// Let `sql_query` change the database.
    #[arg(long, requires = "sqlite")]
    pub allow_sql_write: bool,
    /// Base URL `http_request` may reach (repeatable; none by default).
    #[arg(long = "allow-http", value_name = "URL")]
    pub allow_http: Vec<String>,
    /// Command `shell` may run (repeatable; none by default).
    #[arg(long = "allow-shell", value_name = "CMD")]
    pub allow_shell: Vec<String>,
    /// Offer `ask_human`: the agent may put questions to you (on stdin when it is not a
    /// terminal). Off by default: a small planner asks the person what a tool computes.
    #[arg(long)]
    pub human: bool,
    /// Seconds `ask_human` waits for an answer [default: no limit].
    #[arg(long, value_name = "SECS", requires = "human")]
    pub human_timeout: Option<f64>,
    /// Seconds before a tool call is abandoned.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub tool_timeout: f64,
}

impl ToolArgs {
    pub fn workspace(&self) -> anyhow::Result<Arc<Workspace>> {
        let dir = match &self.workspace {
            Some(d) => d.clone(),
            None => std::env::current_dir()?,
        };
        Ok(Arc::new(
            Workspace::new(&dir).with_context(|| format!("workspace `{}`", dir.display()))?,
        ))
    }

    /// The registry these flags ask for; `human` answers `ask_human` when `--human` is given
    /// (without one, the flags are only checked).
    pub fn registry(&self, human: Option<Arc<dyn Human>>) -> anyhow::Result<Registry> {
        let timeout = super::run::seconds("--tool-timeout", self.tool_timeout)?;
        let human_timeout = self.human_timeout.map(|t| super::run::seconds("--human-timeout", t)).transpose()?;
        let ws = self.workspace()?;
        let mut r = Registry::new(timeout);
        let add = |r: &mut Registry, t: Arc<dyn pae_local::agent::tools::Tool>| r.add(t).map(|_| ()).map_err(anyhow::Error::msg);
        add(&mut r, Arc::new(Calculator::default()))?;
        add(&mut r, Arc::new(ListDir::new(ws.clone())))?;
        // With writes allowed, files may appear during the run: any path may be read then.
        let read = if self.allow_write { ReadFile::any_path(ws.clone()) } else { ReadFile::new(ws.clone()) };
        add(&mut r, Arc::new(read))?;
        add(&mut r, Arc::new(SearchFiles::new(ws.clone())))?;
        if self.allow_write {
            add(&mut r, Arc::new(WriteFile::new(ws.clone())))?;
        }
        if let Some(db) = &self.sqlite {
            add(&mut r, Arc::new(SqlQuery::new(db, self.allow_sql_write).map_err(anyhow::Error::msg)?))?;
        }
        if !self.allow_http.is_empty() {
            add(&mut r, Arc::new(HttpRequest::new(self.allow_http.clone(), timeout).map_err(anyhow::Error::msg)?))?;
        }
        if !self.allow_shell.is_empty() {
            add(&mut r, Arc::new(Shell::new(self.allow_shell.clone(), ws.clone())))?;
        }
        if let (true, Some(human)) = (self.human, human) {
            add(&mut r, Arc::new(AskHuman::new(human).with_timeout(human_timeout)))?;
        }
        Ok(r)
    }
}
