//! Playing the model for tool calling and JSON answers, deterministically.
//!
//! Rule: a request that offers tools, does not turn them off (`tool_choice` none), and whose
//! last message is not a tool result gets one call: of the tool `tool_choice` names, else the
//! first tool. Its arguments are `{"<param>": "<last user text>"}`, where `<param>` is the first
//! string property listed in the schema's `required`, else the alphabetically first string
//! property; a schema without one gets `{}`. A request whose last message(s) are tool results
//! gets text quoting them (`Hello from {label} ({model}). Tool results: r1 | r2`), so tests can
//! prove the results reached the model. A request asking for JSON (`response_format`, Gemini's
//! `responseMimeType`, or the platform's JSON instruction to Anthropic) gets a JSON object.

use serde_json::{json, Map, Value};

/// The phrase of the platform's JSON instruction to vendors without a JSON mode (shared/core
/// providers/common.rs `json_instruction`).
pub(crate) const JSON_MARKER: &str = "Answer with a single JSON object and nothing else";

/// A tool the request offers: its name and the argument the simulator fills in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SimTool {
    pub name: String,
    pub text_param: Option<String>,
}

/// The call the simulator makes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SimCall {
    pub name: String,
    pub arguments: Value,
}

impl SimCall {
    pub fn arguments_text(&self) -> String {
        self.arguments.to_string()
    }
}

/// A tool from its name and JSON Schema.
pub(crate) fn tool(name: &str, schema: Option<&Value>) -> SimTool {
    let properties = schema.and_then(|s| s.get("properties")).and_then(Value::as_object);
    let is_text = |key: &str| {
        properties
            .and_then(|p| p.get(key))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("string"))
    };
    let required = schema.and_then(|s| s.get("required")).and_then(Value::as_array);
    let from_required = required.into_iter().flatten().filter_map(Value::as_str).find(|k| is_text(k));
    let mut keys: Vec<&String> = properties.map(|p| p.keys().collect()).unwrap_or_default();
    keys.sort();
    let text_param = from_required.or_else(|| keys.into_iter().map(String::as_str).find(|k| is_text(k)));
    SimTool { name: name.to_owned(), text_param: text_param.map(str::to_owned) }
}

/// What the request says about tools, in vendor-neutral terms.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolUse {
    pub tools: Vec<SimTool>,
    /// The tool `tool_choice` names.
    pub forced: Option<String>,
    /// `tool_choice` turns calls off.
    pub off: bool,
    /// The texts of the tool results the conversation ends with.
    pub results: Vec<String>,
    /// The answer must be a JSON object.
    pub json: bool,
}

impl ToolUse {
    /// The call to make, if the rule says one.
    pub fn call(&self, user_text: &str) -> Option<SimCall> {
        if self.off || !self.results.is_empty() {
            return None;
        }
        let tool = match &self.forced {
            Some(name) => self.tools.iter().find(|t| &t.name == name)?,
            None => self.tools.first()?,
        };
        let mut arguments = Map::new();
        if let Some(param) = &tool.text_param {
            arguments.insert(param.clone(), json!(user_text));
        }
        Some(SimCall { name: tool.name.clone(), arguments: Value::Object(arguments) })
    }
}

/// A tool result's content as text: a string as is, text blocks joined, anything else as JSON.
pub(crate) fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(_) => crate::wire::content_text(content),
        other => other.to_string(),
    }
}

/// The answer quoting tool results.
pub(crate) fn quote_results(label: &str, model: &str, results: &[String]) -> String {
    format!("Hello from {label} ({model}). Tool results: {}", results.join(" | "))
}

/// The JSON answer.
pub(crate) fn json_answer(label: &str, model: &str, text: &str) -> String {
    json!({"provider": label, "model": model, "echo": text}).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_argument_is_the_first_required_string_else_the_first_string_by_name() {
        let schema = json!({"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "integer"}, "c": {"type": "string"}}, "required": ["a", "c"]});
        assert_eq!(tool("t", Some(&schema)).text_param.as_deref(), Some("c"));
        let schema = json!({"type": "object", "properties": {"z": {"type": "string"}, "y": {"type": "STRING"}}});
        assert_eq!(tool("t", Some(&schema)).text_param.as_deref(), Some("y"));
        assert_eq!(tool("t", None).text_param, None);
    }

    #[test]
    fn a_call_names_the_forced_tool_and_none_comes_after_results_or_when_off() {
        let uses = ToolUse {
            tools: vec![tool("a", None), SimTool { name: "b".into(), text_param: Some("q".into()) }],
            ..ToolUse::default()
        };
        assert_eq!(uses.call("hi").unwrap(), SimCall { name: "a".into(), arguments: json!({}) });
        let forced = ToolUse { forced: Some("b".into()), ..uses.clone() };
        assert_eq!(forced.call("hi").unwrap().arguments, json!({"q": "hi"}));
        assert!(ToolUse { off: true, ..uses.clone() }.call("hi").is_none());
        assert!(ToolUse { results: vec!["r".into()], ..uses }.call("hi").is_none());
    }
}
