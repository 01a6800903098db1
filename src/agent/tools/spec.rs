//! What a model is told about a tool: name, description, input schema and an example input.

use serde::Serialize;
use serde_json::Value;

/// The description of a tool that prompts and grammars are built from.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// The name the model writes to call the tool: letters, digits, `_` or `-`, unique in a
    /// registry.
    pub name: String,
    /// What the tool does, in a sentence or two the model reads to choose it.
    pub description: String,
    /// JSON schema of the input object.
    pub input_schema: Value,
    /// A valid input, shown to the model as an example.
    pub example: Value,
    /// The string field of the input that takes a request in plain words (the calculator's
    /// `expression` reads `divide 391 by 5`). A plan step that names this tool is first
    /// run with its own words in that field, without a model call: copying beats retyping
    /// for a small model. The executor's model writes the input only if that fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words_field: Option<String>,
    /// Offered only when no other tool fits (`ask_human`): ranked last, and left out of a
    /// step's choices when another tool shares more with it. A 135M planner otherwise hands
    /// "What is 12 * 12?" to the person instead of the calculator.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub last_resort: bool,
}

impl ToolSpec {
    /// A spec from its parts, with no words field and not a last resort.
    pub fn new(name: impl Into<String>, description: impl Into<String>, input_schema: Value, example: Value) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            input_schema,
            example,
            words_field: None,
            last_resort: false,
        }
    }

    /// Marks the tool as one to use only when no other fits (see `last_resort`).
    pub fn as_last_resort(mut self) -> Self {
        self.last_resort = true;
        self
    }

    /// Marks `field` (a string property of the input) as one that takes a request in words.
    pub fn with_words_field(mut self, field: impl Into<String>) -> Self {
        self.words_field = Some(field.into());
        self
    }

    /// Checks `input` against the schema; the error lists what is wrong.
    pub fn validate(&self, input: &Value) -> Result<(), String> {
        let validator = jsonschema::validator_for(&self.input_schema)
            .map_err(|e| format!("the input schema of `{}` is invalid: {e}", self.name))?;
        let errors: Vec<String> = validator.iter_errors(input).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("invalid input for `{}`: {}", self.name, errors.join("; ")))
        }
    }
}
