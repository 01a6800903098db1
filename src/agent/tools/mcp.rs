//! Tools from Model Context Protocol servers: a server started as a child process speaking
//! MCP over its stdin and stdout (through the `rmcp` SDK), each of its tools a [`Tool`].
//!
//! A server's tools go through the same checks as built-in ones: its input schema becomes the
//! tool's [`ToolSpec`], so the grammars constrain calls to it, and the registry's timeout and
//! the executor's observation cap apply. A server is outside this process and may misbehave;
//! whatever it does (answer an error, die, hang, flood) ends as an error observation of the
//! call, never as a failed or stuck run.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::{json, Map, Value};

use crate::decode::Grammar;

use super::{Registry, Tool, ToolError, ToolFuture, ToolSpec};

/// How long a server has to exit once its input is closed before its process group is
/// killed: a well-behaved server exits at once, a stuck one must not hold up the end of a run.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Why a server could not be started or its tools listed.
#[derive(Debug, thiserror::Error)]
#[error("MCP server `{name}`: {reason}")]
pub struct McpError {
    /// The server's name.
    pub name: String,
    /// What went wrong.
    pub reason: String,
}

/// A running MCP server and the tools it offers.
///
/// The child runs in its own process group with stderr discarded (a server's logs would
/// interleave with the console's output). [`shutdown`](Self::shutdown) ends it politely;
/// dropping it kills the process group, so a run that ends early leaves no server behind.
pub struct McpServer {
    name: String,
    service: Option<RunningService<RoleClient, ()>>,
    process_group: Option<i32>,
    tools: Vec<rmcp::model::Tool>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tools: Vec<&str> = self.tools.iter().map(|t| t.name.as_ref()).collect();
        f.debug_struct("McpServer").field("name", &self.name).field("tools", &tools).finish()
    }
}

impl McpServer {
    /// Starts `program` with `args` (no shell), runs MCP's `initialize` handshake and lists
    /// every page of its tools, all within `startup` (a server that never answers must not
    /// hang the command). `name` names the server in messages and prefixes its tools' names
    /// where they clash with others.
    pub async fn start(name: &str, program: &str, args: &[String], startup: Duration) -> Result<Self, McpError> {
        let fail = |reason: String| McpError {
            name: name.to_string(),
            reason,
        };
        let mut command = tokio::process::Command::new(program);
        command.args(args).process_group(0);
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("cannot start `{program}`: {e}")))?;
        let process_group = transport.id().and_then(|id| i32::try_from(id).ok());
        let mut server = Self {
            name: name.to_string(),
            service: None,
            process_group,
            tools: Vec::new(),
        };
        let handshake = async {
            let service = ().serve(transport).await.map_err(|e| fail(format!("the handshake failed: {e}")))?;
            let tools = service
                .list_all_tools()
                .await
                .map_err(|e| fail(format!("listing its tools failed: {e}")))?;
            Ok::<_, McpError>((service, tools))
        };
        let (service, tools) = tokio::time::timeout(startup, handshake)
            .await
            .map_err(|_| fail(format!("no answer to the handshake within {startup:?}")))??;
        server.service = Some(service);
        // Checked once here, not each time a registry is built (once per task in `eval`):
        // compiling a schema is the costly part, and one warning per odd tool is enough.
        server.tools = tools
            .into_iter()
            .filter(|tool| match Grammar::json_schema(Value::Object((*tool.input_schema).clone())).check() {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(server = %name, tool = %tool.name, "skipping the MCP tool: its input schema cannot be made a grammar: {e}");
                    false
                }
            })
            .collect();
        Ok(server)
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the connection to the server is still open.
    pub fn is_running(&self) -> bool {
        self.service.as_ref().is_some_and(|s| !s.is_closed() && !s.peer().is_transport_closed())
    }

    /// Adds the server's tools to `registry` and returns the names they got there. A name
    /// already taken is prefixed with `servername_`; characters a tool name may not hold
    /// become `_` (the server is still called by its own name). A tool whose input schema the
    /// registry refuses is left out with a warning (one the grammar compiler refuses was left
    /// out at start): one odd tool should not keep a server's others from a run.
    pub fn add_tools(&self, registry: &mut Registry) -> Vec<String> {
        let Some(service) = &self.service else {
            return Vec::new();
        };
        let mut added = Vec::new();
        for tool in &self.tools {
            let mut local = sanitize(&tool.name);
            if registry.get(&local).is_some() {
                local = format!("{}_{local}", sanitize(&self.name));
            }
            let schema = Value::Object((*tool.input_schema).clone());
            let description = tool
                .description
                .as_deref()
                .map(str::to_string)
                .or_else(|| tool.title.clone())
                .unwrap_or_else(|| tool.name.to_string());
            let spec = ToolSpec::new(local.clone(), description, schema.clone(), example(&schema));
            let mcp_tool = McpTool {
                server: self.name.clone(),
                remote_name: tool.name.to_string(),
                spec,
                peer: service.peer().clone(),
            };
            match registry.add(Arc::new(mcp_tool)) {
                Ok(_) => added.push(local),
                Err(e) => tracing::warn!(server = %self.name, tool = %tool.name, "skipping the MCP tool: {e}"),
            }
        }
        added
    }

    /// Ends the server: closes its input and waits up to two seconds for it to exit, then
    /// kills its process group (whatever it started goes too).
    pub async fn shutdown(mut self) {
        if let Some(mut service) = self.service.take() {
            // The close runs the transport's own shutdown (close stdin, wait, signal); it is
            // cut short here, and the kill below ends what is left.
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, service.close()).await;
        }
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(group) = self.process_group.take() {
            // SAFETY: killpg only sends a signal; a group that no longer exists gives ESRCH,
            // which is what an already finished server should give.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `name` with every character a registry name may not hold replaced by `_`.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// An input for the model to see as an example: MCP tools come without one, so it is made
/// from the schema (its own examples, defaults or first allowed values where it has them, a
/// plain value of the right type otherwise, required properties only).
fn example(schema: &Value) -> Value {
    if let Some(v) = schema.get("examples").and_then(|e| e.get(0)).or_else(|| schema.get("default")).or_else(|| schema.get("const")) {
        return v.clone();
    }
    if let Some(v) = schema.get("enum").and_then(|e| e.get(0)) {
        return v.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().find_map(Value::as_str).unwrap_or("object"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            let properties = schema.get("properties");
            for key in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                let property = properties.and_then(|p| p.get(key)).unwrap_or(&Value::Null);
                out.insert(key.to_string(), example(property));
            }
            Value::Object(out)
        }
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        "array" => json!([]),
        "null" => Value::Null,
        _ => json!("text"),
    }
}

/// One tool of an MCP server, called over the server's connection.
pub struct McpTool {
    server: String,
    remote_name: String,
    spec: ToolSpec,
    peer: Peer<RoleClient>,
}

impl McpTool {
    fn not_running(&self, why: impl std::fmt::Display) -> ToolError {
        ToolError::Failed(format!("MCP server `{}` is not running: {why}", self.server))
    }
}

impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        Box::pin(async move {
            if self.peer.is_transport_closed() {
                return Err(self.not_running("its connection is closed"));
            }
            let arguments = match input {
                Value::Object(m) => m,
                other => {
                    return Err(ToolError::InvalidInput(format!("MCP tools take an object, not {other}")));
                }
            };
            let params = CallToolRequestParams::new(self.remote_name.clone()).with_arguments(arguments);
            match self.peer.call_tool(params).await {
                Ok(result) => observation(result),
                Err(e) if self.peer.is_transport_closed() => Err(self.not_running(e)),
                Err(e) => Err(ToolError::Failed(format!("MCP server `{}`: {e}", self.server))),
            }
        })
    }
}

/// The observation a result makes: text blocks as they are, one per line; other content
/// named by what it is, since the model reads text only. `isError` makes it a failure.
fn observation(result: CallToolResult) -> Result<String, ToolError> {
    let mut parts: Vec<String> = result
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::Image(i) => format!("[image: {}]", i.mime_type),
            ContentBlock::Audio(a) => format!("[audio: {}]", a.mime_type),
            ContentBlock::Resource(r) => format!("[resource: {}]", resource_uri(&r.resource)),
            ContentBlock::ResourceLink(r) => format!("[resource: {}]", r.uri),
            _ => "[content of a kind this client does not read]".to_string(),
        })
        .collect();
    if parts.is_empty() {
        if let Some(structured) = &result.structured_content {
            parts.push(structured.to_string());
        }
    }
    let text = parts.join("\n");
    if result.is_error == Some(true) {
        Err(ToolError::Failed(if text.is_empty() { "the tool reported an error".into() } else { text }))
    } else {
        Ok(text)
    }
}

fn resource_uri(r: &ResourceContents) -> &str {
    match r {
        ResourceContents::TextResourceContents { uri, .. } | ResourceContents::BlobResourceContents { uri, .. } => uri,
        #[allow(unreachable_patterns)]
        _ => "?",
    }
}
