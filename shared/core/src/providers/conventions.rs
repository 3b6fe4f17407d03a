//! The conventions the platform applies the same way to every vendor: which model and key a
//! request goes with, output limits that make room for reasoning, lenient reading of vendor
//! bodies, tool-call arguments and results, and the instruction that asks for JSON where a
//! vendor has no JSON mode.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::{ProviderConfig, ProviderError};
use crate::model::{ChatRequest, ResponseFormat, Role, ToolCall};

/// Answer tokens Anthropic gets when the request sets no limit (the vendor requires one).
pub(super) const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The model to ask for: the request's when it names one, else the configured one.
pub(super) fn model<'a>(config: &'a ProviderConfig, request: &'a ChatRequest) -> Result<&'a str, ProviderError> {
    let model = request.model.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or(config.model.as_str());
    if model.trim().is_empty() {
        return Err(ProviderError::Config(format!("provider {} has no model", config.name)));
    }
    Ok(model)
}

/// The configured key, if any (an empty string counts as none).
pub(super) fn api_key(config: &ProviderConfig) -> Option<&str> {
    config.api_key.as_deref().filter(|key| !key.is_empty())
}

/// The configured key, or a configuration error for vendors that always need one.
pub(super) fn required_key(config: &ProviderConfig) -> Result<&str, ProviderError> {
    api_key(config).ok_or_else(|| ProviderError::Config(format!("provider {} has no api key", config.name)))
}

/// Output tokens to ask for. Every vendor counts reasoning against its output limit, so when
/// reasoning is on the budget is added: the caller's `max_tokens` stays the room left for the
/// answer itself.
pub(super) fn output_limit(answer: Option<u32>, reasoning_budget: Option<u32>) -> Option<u32> {
    match (answer, reasoning_budget) {
        (Some(answer), Some(budget)) => Some(answer.saturating_add(budget)),
        (answer, _) => answer,
    }
}

/// Parses a vendor body, mapping any mismatch with the documented shape to `Malformed`.
pub(super) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Malformed(format!("invalid json: {e}")))
}

/// `kind: message`, or just the message when the vendor gave no kind.
pub(super) fn describe(kind: Option<&str>, message: &str) -> String {
    match kind.filter(|k| !k.is_empty()) {
        Some(kind) if !message.is_empty() => format!("{kind}: {message}"),
        Some(kind) => kind.to_owned(),
        None => message.to_owned(),
    }
}

/// Deserializes a field that should be a string but that some OpenAI-compatible servers send
/// as another type or `null`: anything but a string becomes `None` instead of failing the body.
pub(super) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// A call's arguments as the JSON object the vendors that take structured input (Anthropic's
/// `input`, Gemini's `args`) need. Empty text means no arguments (`{}`); anything that is not a
/// JSON object cannot be sent there.
pub(super) fn arguments_object(call: &ToolCall) -> Result<serde_json::Value, ProviderError> {
    if call.arguments.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<serde_json::Value>(&call.arguments) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        _ => Err(ProviderError::InvalidRequest(format!(
            "the arguments of tool call `{}` ({}) are not a JSON object",
            call.id, call.name
        ))),
    }
}

/// The name of the call each tool message answers, in message order, for vendors that match
/// results by name (Gemini). A tool message answering no earlier call is refused.
pub(super) fn tool_result_names(request: &ChatRequest) -> Result<Vec<Option<&str>>, ProviderError> {
    let mut calls: Vec<&ToolCall> = Vec::new();
    let mut names = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        calls.extend(message.tool_calls.iter());
        if message.role != Role::Tool {
            names.push(None);
            continue;
        }
        let id = message.tool_call_id.as_deref().unwrap_or_default();
        let call = calls.iter().rev().find(|c| c.id == id).ok_or_else(|| {
            ProviderError::InvalidRequest(format!("the tool result for `{id}` answers no earlier tool call"))
        })?;
        names.push(Some(call.name.as_str()));
    }
    Ok(names)
}

/// The instruction that asks for JSON on vendors without a JSON mode (Anthropic): the answer
/// must be only the JSON, matching the schema when there is one.
pub(super) fn json_instruction(format: Option<&ResponseFormat>) -> Option<String> {
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => {
            Some("Answer with a single JSON object and nothing else: no prose, no code fences.".to_owned())
        }
        ResponseFormat::JsonSchema { name, schema, .. } => Some(format!(
            "Answer with a single JSON object and nothing else: no prose, no code fences. \
             It must match this JSON Schema (named `{name}`):\n{schema}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_limit_adds_the_reasoning_budget_only_when_both_are_set() {
        assert_eq!(output_limit(None, None), None);
        assert_eq!(output_limit(Some(100), None), Some(100));
        assert_eq!(output_limit(None, Some(4096)), None);
        assert_eq!(output_limit(Some(100), Some(4096)), Some(4196));
        assert_eq!(output_limit(Some(u32::MAX), Some(4096)), Some(u32::MAX));
    }
}
