//! `http_request`: GET or POST to the base URLs the user allowed, nothing else.

use std::io::Read;
use std::time::Duration;

use serde_json::{json, Value};
use url::Url;

use super::{blocking, str_field, Tool, ToolError, ToolFuture, ToolSpec};

/// Most bytes of a response body returned.
pub(super) const MAX_BODY: u64 = 16 * 1024;

/// `http_request`: a GET or POST to a URL under one of the allowed base URLs.
pub struct HttpRequest {
    allowed: Vec<Url>,
    timeout: Duration,
    spec: ToolSpec,
}

impl HttpRequest {
    /// Requests may go only to URLs under one of `allowed` (each a base URL such as
    /// `http://127.0.0.1:8080/api/`): same scheme, host and port, and a path whose segments
    /// begin with the base's. A base that is not an http(s) URL is an error.
    pub fn new(allowed: Vec<String>, timeout: Duration) -> Result<Self, String> {
        let allowed: Vec<Url> = allowed
            .iter()
            .map(|b| {
                let u = Url::parse(b).map_err(|e| format!("--allow-http `{b}` is not a URL: {e}"))?;
                if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                    return Err(format!("--allow-http `{b}` must be an http:// or https:// URL with a host"));
                }
                Ok(u)
            })
            .collect::<Result<_, String>>()?;
        let shown: Vec<&str> = allowed.iter().map(Url::as_str).collect();
        let example = shown.first().map_or("http://localhost/".to_string(), |s| s.to_string());
        Ok(Self {
            spec: ToolSpec::new(
                "http_request",
                format!("Sends an HTTP GET or POST request to one of: {}.", shown.join(", ")),
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
        })
    }

    /// The URL as it will be sent, if it lies under an allowed base.
    ///
    /// Comparing raw strings is not enough: a client normalises `%2e%2e`, `.%2E`, tabs inside a
    /// segment and backslashes before it sends, so `…/api/%2e%2e/secret` would leave `/api/`.
    /// The URL is parsed the way clients parse it (WHATWG, the `url` crate), compared by
    /// scheme, host, port and path segments, and sent in that normalised form. Segments that
    /// still hide a separator or a dot segment once percent-decoded are refused, since a
    /// server may decode before it routes.
    pub fn check(&self, url: &str) -> Result<Url, ToolError> {
        let refuse = |why: &str| {
            let bases: Vec<&str> = self.allowed.iter().map(Url::as_str).collect();
            ToolError::Refused(format!(
                "`{url}` is not under an allowed base URL ({}){why}",
                if bases.is_empty() { "none: pass --allow-http URL".into() } else { bases.join(", ") }
            ))
        };
        let u = Url::parse(url).map_err(|e| refuse(&format!(": {e}")))?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err(refuse(": URLs with credentials are refused"));
        }
        let segments: Vec<&str> = u.path_segments().map(|s| s.collect()).unwrap_or_default();
        for seg in &segments {
            let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
            if decoded == "." || decoded == ".." || decoded.contains(['/', '\\']) || decoded.chars().any(char::is_control) {
                return Err(refuse(": a path segment hides a separator or a dot segment"));
            }
        }
        let under = |base: &Url| {
            let mut prefix: Vec<&str> = base.path_segments().map(|s| s.collect()).unwrap_or_default();
            if prefix.last() == Some(&"") {
                prefix.pop(); // `/api/` allows `/api/x`, and `/api` itself.
            }
            base.scheme() == u.scheme()
                && base.host() == u.host()
                && base.port_or_known_default() == u.port_or_known_default()
                && segments.len() >= prefix.len()
                && segments.iter().zip(&prefix).all(|(a, b)| a == b)
        };
        if self.allowed.iter().any(under) {
            Ok(u)
        } else {
            Err(refuse(""))
        }
    }
}

/// Sends one request (no redirects: a redirect could leave the allowed base) and reads at most
/// [`MAX_BODY`] bytes of the answer: the status, the body, and whether it was cut. Blocking.
/// Also the engine of the HTTP tools defined in a tools file.
pub(super) fn fetch(url: &Url, method: &str, body: Option<&str>, timeout: Duration) -> Result<(u16, Vec<u8>, bool), ToolError> {
    let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(0).build();
    let req = agent.request_url(method, url);
    let resp = match body {
        Some(b) => req.send_string(b),
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
    Ok((status, buf, cut))
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
            let url = self.check(&url)?;
            let timeout = self.timeout;
            blocking(move |_| {
                let (status, buf, cut) = fetch(&url, &method, body.as_deref(), timeout)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(bases: &[&str]) -> HttpRequest {
        HttpRequest::new(bases.iter().map(|b| b.to_string()).collect(), Duration::from_secs(1)).unwrap()
    }

    /// `Some(sent)`: allowed and sent as `sent`; `None`: refused.
    fn table(bases: &[&str], cases: &[(&str, Option<&str>)]) {
        let t = tool(bases);
        let mut failures = Vec::new();
        for &(url, want) in cases {
            match (t.check(url), want) {
                (Ok(u), Some(w)) if u.as_str() == w => {}
                (Err(ToolError::Refused(msg)), None) if msg.contains(&format!("`{url}` is not under an allowed base URL")) => {}
                (got, _) => failures.push(format!("{url}: expected {want:?}, got {got:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn base_with_trailing_slash() {
        table(
            &["http://allowed.example.com/api/"],
            &[
                ("http://allowed.example.com/api/", Some("http://allowed.example.com/api/")),
                ("http://allowed.example.com/api", Some("http://allowed.example.com/api")),
                ("http://allowed.example.com/api/x/y?q=1", Some("http://allowed.example.com/api/x/y?q=1")),
                ("HTTP://ALLOWED.example.COM/api/x", Some("http://allowed.example.com/api/x")),
                ("http://allowed.example.com:80/api/x", Some("http://allowed.example.com/api/x")),
                ("http://allowed.example.com/api/a/../b", Some("http://allowed.example.com/api/b")),
                ("http://allowed.example.com/api/#frag", Some("http://allowed.example.com/api/#frag")),
                // Path prefix boundaries.
                ("http://allowed.example.com/apiary", None),
                ("http://allowed.example.com/api.json", None),
                ("http://allowed.example.com/", None),
                ("http://allowed.example.com/API/x", None),
                ("http://allowed.example.com/api/../secret", None),
                ("http://allowed.example.com/api/%2e%2e/secret", None),
                ("http://allowed.example.com/api/.%2E/secret", None),
                ("http://allowed.example.com/api\\..\\secret", None),
                ("http://allowed.example.com/api/a%2fb", None),
                ("http://allowed.example.com/api/a%5Cb", None),
                ("http://allowed.example.com/api/%2e", Some("http://allowed.example.com/api/")),
                ("http://allowed.example.com/api/a%00b", None),
                ("http://allowed.example.com/api/a%0Ab", None),
                // Scheme, host and port.
                ("https://allowed.example.com/api/x", None),
                ("ftp://allowed.example.com/api/x", None),
                ("file:///api/x", None),
                ("http://allowed.example.com.evil.com/api/x", None),
                ("http://evil.com/allowed.example.com/api/x", None),
                ("http://sub.allowed.example.com/api/x", None),
                ("http://example.com/api/x", None),
                ("http://allowed.example.com:8080/api/x", None),
                ("http://allowed.example.com:443/api/x", None),
                // Credentials, even for the allowed host.
                ("http://allowed.example.com@evil.com/api/x", None),
                ("http://user@allowed.example.com/api/x", None),
                ("http://user:pw@allowed.example.com/api/x", None),
                ("http://:pw@allowed.example.com/api/x", None),
                // Not URLs.
                ("/api/x", None),
                ("allowed.example.com/api/x", None),
                ("", None),
                ("http://", None),
            ],
        );
    }

    #[test]
    fn base_without_trailing_slash_and_ip_literals() {
        table(
            &["http://127.0.0.1:8080/api", "https://[::1]/v1/"],
            &[
                ("http://127.0.0.1:8080/api", Some("http://127.0.0.1:8080/api")),
                ("http://127.0.0.1:8080/api/", Some("http://127.0.0.1:8080/api/")),
                ("http://127.0.0.1:8080/api/x", Some("http://127.0.0.1:8080/api/x")),
                ("http://127.0.0.1:8080/apiary", None),
                ("http://127.0.0.1:8081/api/x", None),
                ("http://127.0.0.1/api/x", None),
                ("http://localhost:8080/api/x", None),
                ("http://127.0.0.2:8080/api/x", None),
                // Other spellings of 127.0.0.1 are normalised by the parser, as clients do.
                ("http://2130706433:8080/api/x", Some("http://127.0.0.1:8080/api/x")),
                ("http://0x7f.0.0.1:8080/api/x", Some("http://127.0.0.1:8080/api/x")),
                ("http://[::ffff:127.0.0.1]:8080/api/x", None),
                ("https://[::1]/v1/x", Some("https://[::1]/v1/x")),
                ("https://[::1]:443/v1/x", Some("https://[::1]/v1/x")),
                ("https://[0:0:0:0:0:0:0:1]/v1/x", Some("https://[::1]/v1/x")),
                ("http://[::1]/v1/x", None),
                ("https://[::2]/v1/x", None),
                ("https://[::1]/v2/x", None),
            ],
        );
    }

    #[test]
    fn root_base_allows_the_whole_origin() {
        table(
            &["https://h.test/"],
            &[
                ("https://h.test/", Some("https://h.test/")),
                ("https://h.test", Some("https://h.test/")),
                ("https://h.test/anything/at/all", Some("https://h.test/anything/at/all")),
                ("https://h.test.evil/", None),
                ("https://h.test:444/", None),
            ],
        );
    }

    #[test]
    fn no_base_refuses_everything_and_says_how_to_allow() {
        let err = tool(&[]).check("http://localhost/").unwrap_err();
        assert!(matches!(&err, ToolError::Refused(m) if m.contains("none: pass --allow-http URL")), "{err:?}");
    }

    #[test]
    fn refusals_say_why() {
        let t = tool(&["http://a.test/api/"]);
        let why = |url: &str| match t.check(url) {
            Err(ToolError::Refused(m)) => m,
            other => panic!("{url}: {other:?}"),
        };
        assert!(why("http://u@a.test/api/").ends_with(": URLs with credentials are refused"));
        assert!(why("http://a.test/api/a%2Fb").ends_with(": a path segment hides a separator or a dot segment"));
        assert!(why("not a url").contains("(http://a.test/api/): relative URL without a base"));
        assert!(why("http://b.test/api/").ends_with("(http://a.test/api/)"));
    }

    #[test]
    fn bad_bases_are_errors() {
        let new = |b: &str| HttpRequest::new(vec![b.to_string()], Duration::from_secs(1)).err();
        assert!(new("not a url").unwrap().contains("is not a URL"));
        assert!(new("ftp://a.test/").unwrap().contains("must be an http:// or https:// URL with a host"));
        assert!(new("file:///etc/").unwrap().contains("must be an http:// or https:// URL with a host"));
        assert!(new("http://a.test/").is_none());
    }
}
