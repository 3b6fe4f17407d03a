//! The chat body's tool fields, in the OpenAI shapes clients already send: `tools`,
//! `tool_choice`, `response_format`, an assistant message's `tool_calls`; and the tool calls
//! of an answer as the JSON the client gets (and sends back).
//!
//! These fields are read from raw JSON rather than through serde's derive so that every
//! problem is reported by the field's path (`tools[2].function.name`), not serde's wording.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use opencode_core::model::{Message, ResponseFormat, Role, Tool, ToolCall, ToolChoice};

/// OpenAI's limit on functions per request (Gemini's too).
pub const MAX_TOOLS: usize = 128;
/// Longest tool description, in chars.
pub const MAX_DESCRIPTION_CHARS: usize = 8_192;
/// Largest `parameters` (or `response_format` schema), as JSON text.
pub const MAX_SCHEMA_BYTES: usize = 32 * 1024;
/// Most calls one assistant message may carry.
pub const MAX_CALLS_PER_MESSAGE: usize = MAX_TOOLS;
/// Longest tool call id.
pub const MAX_CALL_ID_CHARS: usize = 256;

fn invalid<T>(message: String) -> Result<T, ApiError> {
    Err(ApiError::Validation(message))
}

/// `^[a-zA-Z0-9_-]{1,64}$`: what OpenAI, Anthropic and Gemini all accept as a function name.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A value's text for an error message, cut short.
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(32).collect()
}

/// Refuses keys of `object` outside `allowed`, naming the first one.
fn known_keys(object: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ApiError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => invalid(format!(
            "`{path}` has an unknown field `{}` (expected {})",
            key.chars().take(32).collect::<String>(),
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// A JSON Schema object within the size limit.
fn schema(value: Option<&Value>, path: &str) -> Result<Value, ApiError> {
    match value {
        None => Ok(json!({"type": "object", "properties": {}})),
        Some(value @ Value::Object(_)) => {
            if value.to_string().len() > MAX_SCHEMA_BYTES {
                return invalid(format!("`{path}` is larger than {MAX_SCHEMA_BYTES} bytes"));
            }
            Ok(value.clone())
        }
        Some(_) => invalid(format!("`{path}` must be a JSON Schema object")),
    }
}

/// `tools`: `[{"type":"function","function":{"name","description"?,"parameters"?,"strict"?}}]`.
pub fn parse_tools(value: Option<Value>) -> Result<Vec<Tool>, ApiError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return invalid("`tools` must be an array".into()),
    };
    if items.len() > MAX_TOOLS {
        return invalid(format!("`tools` has more than {MAX_TOOLS} tools"));
    }
    let mut tools: Vec<Tool> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("tools[{i}]");
        let Some(object) = item.as_object() else { return invalid(format!("`{path}` must be an object")) };
        known_keys(object, &["type", "function"], &path)?;
        match object.get("type") {
            Some(Value::String(kind)) if kind == "function" => {}
            Some(other) => return invalid(format!("`{path}.type` must be `function`, got `{}`", shown(other))),
            None => return invalid(format!("`{path}.type` is required (`function`)")),
        }
        let Some(function) = object.get("function").and_then(Value::as_object) else {
            return invalid(format!("`{path}.function` must be an object"));
        };
        known_keys(function, &["name", "description", "parameters", "strict"], &format!("{path}.function"))?;
        let name = match function.get("name") {
            Some(Value::String(name)) if valid_name(name) => name.clone(),
            Some(other) => {
                return invalid(format!(
                    "`{path}.function.name` `{}` must be 1 to 64 letters, digits, `_` or `-`",
                    shown(other)
                ))
            }
            None => return invalid(format!("`{path}.function.name` is required")),
        };
        if tools.iter().any(|t| t.name == name) {
            return invalid(format!("`{path}.function.name` `{name}` is already the name of another tool"));
        }
        let description = match function.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION_CHARS => d.clone(),
            Some(Value::String(_)) => {
                return invalid(format!(
                    "`{path}.function.description` is longer than {MAX_DESCRIPTION_CHARS} characters"
                ))
            }
            Some(_) => return invalid(format!("`{path}.function.description` must be a string")),
        };
        let parameters = schema(function.get("parameters"), &format!("{path}.function.parameters"))?;
        let strict = match function.get("strict") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(strict)) => *strict,
            Some(_) => return invalid(format!("`{path}.function.strict` must be a boolean")),
        };
        tools.push(Tool { name, description, parameters, strict });
    }
    Ok(tools)
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name"}}`
/// naming one of `tools`.
pub fn parse_tool_choice(value: Option<Value>, tools: &[Tool]) -> Result<Option<ToolChoice>, ApiError> {
    let value = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    if tools.is_empty() {
        return invalid("`tool_choice` needs `tools`".into());
    }
    let choice = match &value {
        Value::String(s) if s == "auto" => ToolChoice::Auto,
        Value::String(s) if s == "none" => ToolChoice::None,
        Value::String(s) if s == "required" => ToolChoice::Required,
        Value::Object(object) => {
            known_keys(object, &["type", "function"], "tool_choice")?;
            if object.get("type").and_then(Value::as_str) != Some("function") {
                return invalid("`tool_choice.type` must be `function`".into());
            }
            let Some(name) = object.get("function").and_then(|f| f.get("name")).and_then(Value::as_str) else {
                return invalid("`tool_choice.function.name` is required".into());
            };
            if !tools.iter().any(|t| t.name == name) {
                return invalid(format!(
                    "`tool_choice.function.name` `{}` is not one of `tools`",
                    name.chars().take(64).collect::<String>()
                ));
            }
            ToolChoice::Function(name.to_owned())
        }
        other => {
            return invalid(format!(
                "`tool_choice` must be `auto`, `none`, `required` or {{\"type\":\"function\",\"function\":{{\"name\":...}}}}, got `{}`",
                shown(other)
            ))
        }
    };
    Ok(Some(choice))
}

/// `response_format`: `{"type":"text"}`, `{"type":"json_object"}` or
/// `{"type":"json_schema","json_schema":{"name","schema","strict"?}}`.
pub fn parse_response_format(value: Option<Value>) -> Result<Option<ResponseFormat>, ApiError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(_) => return invalid("`response_format` must be an object".into()),
    };
    let format = match object.get("type").and_then(Value::as_str) {
        Some("text") => {
            known_keys(&object, &["type"], "response_format")?;
            ResponseFormat::Text
        }
        Some("json_object") => {
            known_keys(&object, &["type"], "response_format")?;
            ResponseFormat::JsonObject
        }
        Some("json_schema") => {
            known_keys(&object, &["type", "json_schema"], "response_format")?;
            let Some(spec) = object.get("json_schema").and_then(Value::as_object) else {
                return invalid("`response_format.json_schema` must be an object".into());
            };
            known_keys(spec, &["name", "schema", "strict"], "response_format.json_schema")?;
            let name = match spec.get("name") {
                Some(Value::String(name)) if valid_name(name) => name.clone(),
                _ => {
                    return invalid(
                        "`response_format.json_schema.name` must be 1 to 64 letters, digits, `_` or `-`".into(),
                    )
                }
            };
            if spec.get("schema").is_none() {
                return invalid("`response_format.json_schema.schema` is required".into());
            }
            let schema = schema(spec.get("schema"), "response_format.json_schema.schema")?;
            let strict = match spec.get("strict") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(strict)) => *strict,
                Some(_) => return invalid("`response_format.json_schema.strict` must be a boolean".into()),
            };
            ResponseFormat::JsonSchema { name, schema, strict }
        }
        Some(other) => {
            return invalid(format!(
                "`response_format.type` `{}` is not one of text, json_object, json_schema",
                other.chars().take(32).collect::<String>()
            ))
        }
        None => return invalid("`response_format.type` is required".into()),
    };
    Ok(Some(format))
}

/// Checks the calls of `messages[index]`, as clients send them back:
/// `[{"id","type":"function","function":{"name","arguments"}}]` (`signature` when the answer
/// had one): unique ids, valid names, arguments the JSON text of an object (an object is taken
/// too).
pub fn validate_calls(value: Value, index: usize) -> Result<Vec<ToolCall>, ApiError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return invalid(format!("`messages[{index}].tool_calls` must be an array")),
    };
    if items.len() > MAX_CALLS_PER_MESSAGE {
        return invalid(format!("`messages[{index}].tool_calls` has more than {MAX_CALLS_PER_MESSAGE} calls"));
    }
    let mut calls: Vec<ToolCall> = Vec::with_capacity(items.len());
    for (j, item) in items.into_iter().enumerate() {
        let path = format!("messages[{index}].tool_calls[{j}]");
        let Value::Object(mut object) = item else { return invalid(format!("`{path}` must be an object")) };
        known_keys(&object, &["id", "type", "function", "signature"], &path)?;
        if object.get("type").and_then(Value::as_str) != Some("function") {
            return invalid(format!("`{path}.type` must be `function`"));
        }
        let id = match object.remove("id") {
            Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_CALL_ID_CHARS => id,
            _ => return invalid(format!("`{path}.id` must be a string of 1 to {MAX_CALL_ID_CHARS} characters")),
        };
        if calls.iter().any(|c| c.id == id) {
            return invalid(format!("`{path}.id` repeats the id of another call in this message"));
        }
        let signature = match object.remove("signature") {
            None | Some(Value::Null) => None,
            Some(Value::String(signature)) => Some(signature),
            Some(_) => return invalid(format!("`{path}.signature` must be a string")),
        };
        let Some(Value::Object(mut function)) = object.remove("function") else {
            return invalid(format!("`{path}.function` must be an object"));
        };
        known_keys(&function, &["name", "arguments"], &format!("{path}.function"))?;
        let name = match function.remove("name") {
            Some(Value::String(name)) if valid_name(&name) => name,
            _ => return invalid(format!("`{path}.function.name` must be 1 to 64 letters, digits, `_` or `-`")),
        };
        let arguments = match function.remove("arguments") {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(Value::String(text)) if text.trim().is_empty() => "{}".to_owned(),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(_)) => text,
                _ => return invalid(format!("`{path}.function.arguments` must be the JSON text of an object")),
            },
            Some(object @ Value::Object(_)) => object.to_string(),
            Some(_) => return invalid(format!("`{path}.function.arguments` must be the JSON text of an object")),
        };
        calls.push(ToolCall { signature, ..ToolCall::new(id, name, arguments) });
    }
    Ok(calls)
}

/// Every vendor wants each call answered right after the assistant message that made it, and
/// every result to answer a call: the `tool` messages after an assistant message with calls
/// answer exactly those calls.
pub fn check_tool_turns(messages: &[Message]) -> Result<(), ApiError> {
    let invalid = |msg: String| Err(ApiError::Validation(msg));
    let mut open: Vec<&ToolCall> = Vec::new();
    let mut asked_at = 0;
    for (i, message) in messages.iter().enumerate() {
        if message.role == Role::Tool {
            let id = message.tool_call_id.as_deref().unwrap_or_default();
            match open.iter().position(|c| c.id == id) {
                Some(at) => {
                    open.remove(at);
                }
                None => {
                    return invalid(format!(
                        "`messages[{i}].tool_call_id` `{}` answers no tool call of the assistant message before it",
                        id.chars().take(64).collect::<String>()
                    ))
                }
            }
            continue;
        }
        if let Some(call) = open.first() {
            return invalid(format!(
                "`messages[{asked_at}]` calls `{}` (id `{}`) but no tool message answers it",
                call.name, call.id
            ));
        }
        if !message.tool_calls.is_empty() {
            open = message.tool_calls.iter().collect();
            asked_at = i;
        }
    }
    match open.first() {
        Some(call) => invalid(format!(
            "`messages[{asked_at}]` calls `{}` (id `{}`) but no tool message answers it",
            call.name, call.id
        )),
        None => Ok(()),
    }
}

/// An answer's calls as the client gets them (and sends them back).
pub fn tool_calls_json(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|call| {
                let mut value = json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                });
                if let (Some(signature), Some(map)) = (&call.signature, value.as_object_mut()) {
                    map.insert("signature".into(), json!(signature));
                }
                value
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn names_follow_the_rule_every_vendor_accepts() {
        for good in ["a", "get_weather", "web-search", "X9", &"n".repeat(64)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "has space", "dot.name", "ünï", &"n".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn missing_parameters_mean_an_empty_object_schema() {
        let tools = parse_tools(Some(json!([{"type": "function", "function": {"name": "now"}}]))).unwrap();
        assert_eq!(tools[0].parameters, json!({"type": "object", "properties": {}}));
    }
}
