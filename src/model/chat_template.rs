//! Chat templates: the model's own Jinja template rendered as Hugging Face transformers does.
//!
//! transformers renders with `trim_blocks` and `lstrip_blocks`, exposes `raise_exception` and
//! `strftime_now`, lets templates call Python string methods (`.strip()`, `.startswith()` …),
//! and overrides `tojson` with `json.dumps` (`", "`/`": "` separators, insertion order, no
//! ASCII escaping). Templates written for it render the same here.

use minijinja::value::Value;
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

use super::Error;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks: `system`, `user` or `assistant` (templates may know others).
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A system message (instructions for the whole conversation).
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    /// An assistant message (the model's own earlier reply).
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Where a template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` in the GGUF.
    Gguf,
    /// The plain built-in template, for models without one (base models).
    BuiltinPlain,
}

/// A plain "User:/Assistant:" layout for base models, which have no turn markers.
const PLAIN_TEMPLATE: &str = "{% for message in messages %}\
{% if message.role == 'system' %}{{ message.content }}\n\n\
{% elif message.role == 'user' %}User: {{ message.content }}\n\
{% else %}Assistant: {{ message.content }}\n{% endif %}\
{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}";

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source_text: String,
    source: TemplateSource,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("source", &self.source).finish()
    }
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error names its line.
    pub fn new(source: &str, origin: TemplateSource, bos_token: &str, eos_token: &str) -> Result<Self, Error> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        super::template_limits::limit(&mut env);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", super::py_json::tojson_filter);
        env.add_template_owned("chat", source.to_string())
            .map_err(template_error)?;
        Ok(Self {
            env,
            source_text: source.to_string(),
            source: origin,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The built-in plain template.
    pub fn plain(bos_token: &str, eos_token: &str) -> Self {
        Self::new(PLAIN_TEMPLATE, TemplateSource::BuiltinPlain, bos_token, eos_token)
            .expect("the built-in template compiles")
    }

    /// Where the template came from.
    pub fn source(&self) -> TemplateSource {
        self.source
    }

    /// The template text.
    pub fn text(&self) -> &str {
        &self.source_text
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant's
    /// reply begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, Error> {
        let tmpl = self.env.get_template("chat").map_err(template_error)?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            tools => Value::from(()),
        };
        super::template_limits::render(&tmpl, ctx, MAX_PROMPT_BYTES).map_err(template_error)
    }

    /// Strings that end an assistant turn in text (the plain template has no end token).
    pub fn stop_strings(&self) -> Vec<String> {
        match self.source {
            TemplateSource::BuiltinPlain => vec!["\nUser:".to_string()],
            TemplateSource::Gguf => Vec::new(),
        }
    }
}

fn template_error(e: minijinja::Error) -> Error {
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        msg = format!("line {line}: {msg}");
    }
    Error::Template(msg)
}

fn raise_exception(msg: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// A rendered prompt longer than this is an error: about a million tokens, more than any
/// context this runtime loads.
const MAX_PROMPT_BYTES: usize = 4 << 20;

/// Python's `strftime` on the current time. A format chrono cannot render (`%Q`) is a
/// template error, not a panic inside `to_string`.
fn strftime_now(format: String) -> Result<String, minijinja::Error> {
    use std::fmt::Write as _;
    let mut out = String::new();
    write!(out, "{}", chrono::Local::now().format(&format))
        .map_err(|_| minijinja::Error::new(ErrorKind::InvalidOperation, format!("strftime_now: bad format `{format}`")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, messages: &[Message]) -> Result<String, Error> {
        ChatTemplate::new(src, TemplateSource::Gguf, "<s>", "</s>")?.render(messages, true)
    }

    #[test]
    fn trims_blocks_like_transformers() {
        let src = "{% for m in messages %}\n  {{ m.role }}:{{ m.content }}\n{% endfor %}";
        let out = render(src, &[Message::user("hi"), Message::assistant("yo")]).unwrap();
        assert_eq!(out, "  user:hi\n  assistant:yo\n");
    }

    #[test]
    fn python_string_methods_work() {
        let src = "{{ messages[0].content.strip().upper() }}{% if messages[0].content.startswith(' a') %}!{% endif %}";
        assert_eq!(render(src, &[Message::user(" abc ")]).unwrap(), "ABC!");
    }

    #[test]
    fn tojson_matches_python_json_dumps() {
        let src = "{{ messages[0] | tojson }}|{{ messages | tojson(indent=2) }}";
        let out = render(src, &[Message::user("é \"q\"\n")]).unwrap();
        assert_eq!(
            out,
            "{\"role\": \"user\", \"content\": \"é \\\"q\\\"\\n\"}|[\n  {\n    \"role\": \"user\",\n    \"content\": \"é \\\"q\\\"\\n\"\n  }\n]"
        );
    }

    #[test]
    fn raise_exception_is_an_error_with_its_message() {
        let src = "{{ raise_exception('roles must alternate') }}";
        let err = render(src, &[Message::user("x")]).unwrap_err().to_string();
        assert!(err.contains("roles must alternate"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = ChatTemplate::new("ok\n{% if %}", TemplateSource::Gguf, "", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn plain_template_ends_with_the_assistant_cue() {
        let t = ChatTemplate::plain("", "");
        let out = t.render(&[Message::system("Be brief."), Message::user("Hi")], true).unwrap();
        assert_eq!(out, "Be brief.\n\nUser: Hi\nAssistant:");
    }
}
