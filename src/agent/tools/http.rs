//! `http_request`: GET or POST to the base URLs the user allowed, nothing else.

use std::io::Read;
use std::time::Duration;

use serde_json::{json, Value};

use super::{blocking, str_field, Tool, ToolError, ToolFuture, ToolSpec};

/// Most bytes of a response body returned.
const MAX_BODY: u64 = 16 * 1024;

pub struct HttpRequest {
    allowed: Vec<String>,
    timeout: Duration,
    spec: ToolSpec,
}

impl HttpRequest {
    /// Requests may go only to URLs that start with one of `allowed` (each a base URL such as
    /// `http://127.0.0.1:8080/api/`).
    pub fn new(allowed: Vec<String>, timeout: Duration) -> Self {
        let example = allowed.first().cloned().unwrap_or_else(|| "http://localhost/".into());
        Self {
            spec: ToolSpec::new(
                "http_request",
                format!("Sends an HTTP GET or POST request to one of: {}.", allowed.join(", ")),
                json!({
                    "type": "object",
                    "properties": {
                        "method": {"enum": ["GET", "POST"]},
                        "url": {"type": "string", "minLength": 1, "maxLength": 300},
                        "body": {"type": "string", "maxLength": 2000}
                    },
                    "required": ["method", "url"],
                    "additionalProperties": false
                }),
                json!({"method": "GET", "url": example}),
            ),
            allowed,
            timeout,
        }
    }

    fn is_allowed(&self, url: &str) -> bool {
        self.allowed.iter().any(|base| {
            url.starts_with(base.as_str())
                // `http://host` allows `http://host/…` but not `http://host.evil/`.
                && (base.ends_with('/') || url.len() == base.len() || matches!(url.as_bytes()[base.len()], b'/' | b'?' | b'#'))
        })
    }
}

impl Tool for HttpRequest {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, input: Value) -> ToolFuture<'_> {
        Box::pin(async move {
            let url = str_field(&input, "url")?.to_string();
            let method = str_field(&input, "method")?.to_string();
            let body = input.get("body").and_then(Value::as_str).map(str::to_string);
            if url.contains("..") || !self.is_allowed(&url) {
                return Err(ToolError::Refused(format!(
                    "`{url}` is not under an allowed base URL ({})",
                    if self.allowed.is_empty() { "none: pass --allow-http URL".into() } else { self.allowed.join(", ") }
                )));
            }
            let timeout = self.timeout;
            blocking(move || {
                let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(0).build();
                let req = agent.request(&method, &url);
                let resp = match body {
                    Some(b) => req.send_string(&b),
                    None => req.call(),
                };
                let (status, resp) = match resp {
                    Ok(r) => (r.status(), r),
                    Err(ureq::Error::Status(code, r)) => (code, r),
                    Err(e) => return Err(ToolError::Failed(format!("request failed: {e}"))),
                };
                let mut buf = Vec::new();
                resp.into_reader()
                    .take(MAX_BODY + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| ToolError::Failed(format!("reading the response: {e}")))?;
                let cut = buf.len() as u64 > MAX_BODY;
                buf.truncate(MAX_BODY as usize);
                let mut text = format!("HTTP {status}\n{}", String::from_utf8_lossy(&buf));
                if cut {
                    text.push_str(&format!("\n[body cut at {MAX_BODY} bytes]"));
                }
                Ok(text)
            })
            .await
        })
    }
}
