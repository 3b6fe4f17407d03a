//! `POST /v1/responses` (stateless): OpenAI's Responses body, translated into the platform's
//! chat body (messages, tools, tool choice, response format), checked there as the other
//! dialects are. Nothing is stored, so a request that points at stored state is a 400.

use serde_json::{json, Map, Value};

use super::chat_request::reasoning_effort;
use crate::error::ApiError;
use crate::platform::request::ReasoningBody;
use crate::web;

/// Fields read here.
const KNOWN: [&str; 12] = [
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "max_output_tokens",
    "reasoning",
    "text",
    "stream",
    "parallel_tool_calls",
];

/// Accepted and not acted on: labels, and asking to store what is never stored.
const IGNORED: [&str; 8] =
    ["store", "metadata", "user", "safety_identifier", "prompt_cache_key", "truncation", "include", "service_tier"];

/// Fields that need state or features the platform does not have.
const UNSUPPORTED: [&str; 6] =
    ["previous_response_id", "conversation", "background", "prompt", "top_logprobs", "max_tool_calls"];

/// How the client wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponsesOptions {
    pub stream: bool,
}

fn invalid<T>(param: &str, message: String) -> Result<T, ApiError> {
    Err(ApiError::param(param, message))
}

/// A Responses body as the platform's chat body, and how to answer it.
pub fn translate(
    parts: &http::request::Parts,
    bytes: &[u8],
) -> Result<(Map<String, Value>, ResponsesOptions), ApiError> {
    let mut body = web::parse_object(parts, bytes)?;
    for (name, value) in &body {
        let name = name.as_str();
        if UNSUPPORTED.contains(&name) && !matches!(value, Value::Null | Value::Bool(false)) {
            let why = match name {
                "previous_response_id" | "conversation" => {
                    "the platform keeps no state: send the whole conversation in `input`"
                }
                _ => "not supported by this platform",
            };
            return invalid(name, format!("`{name}`: {why}"));
        }
        if !KNOWN.contains(&name) && !IGNORED.contains(&name) && !UNSUPPORTED.contains(&name) {
            let name: String = name.chars().take(64).collect();
            return invalid(&name, format!("Unknown parameter: '{name}'."));
        }
    }
    let Some(Value::String(model)) = body.remove("model") else {
        return invalid("model", "`model` is required: a model name or `opencode/chat`".into());
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut messages = Vec::new();
    if let Some(instructions) = body.remove("instructions").filter(|v| !v.is_null()) {
        let Value::String(text) = instructions else {
            return invalid("instructions", "`instructions` must be a string".into());
        };
        messages.push(json!({ "role": "system", "content": text }));
    }
    match body.remove("input") {
        Some(Value::String(text)) => messages.push(json!({ "role": "user", "content": text })),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                translate_item(item, i, &mut messages)?;
            }
        }
        _ => return invalid("input", "`input` is required: a string or a list of items".into()),
    }
    let mut chat = Map::new();
    chat.insert("messages".into(), Value::Array(messages));
    chat.insert("model".into(), json!(model));
    for (from, to) in [("temperature", "temperature"), ("top_p", "top_p"), ("max_output_tokens", "max_tokens")] {
        if let Some(value) = body.remove(from).filter(|v| !v.is_null()) {
            chat.insert(to.into(), value);
        }
    }
    if let Some(tools) = body.remove("tools").filter(|v| !v.is_null()) {
        chat.insert("tools".into(), translate_tools(tools)?);
    }
    if let Some(choice) = body.remove("tool_choice").filter(|v| !v.is_null()) {
        chat.insert("tool_choice".into(), translate_tool_choice(choice)?);
    }
    if let Some(format) = body.remove("text").and_then(|mut text| text.get_mut("format").map(Value::take)) {
        chat.insert("response_format".into(), translate_format(format)?);
    }
    let effort = match body.remove("reasoning") {
        None | Some(Value::Null) => None,
        Some(reasoning) => reasoning_effort(reasoning.get("effort").cloned()).map_err(|_| {
            ApiError::param(
                "reasoning.effort",
                "`reasoning.effort` must be one of none, minimal, low, medium, high, xhigh".into(),
            )
        })?,
    };
    if !matches!(body.remove("parallel_tool_calls"), None | Some(Value::Null | Value::Bool(_))) {
        return invalid("parallel_tool_calls", "`parallel_tool_calls` must be a boolean".into());
    }
    if let Some(effort) = effort {
        chat.insert("reasoning".into(), ReasoningBody::effort_value(effort));
    }
    chat.insert("stream".into(), Value::Bool(stream));
    Ok((chat, ResponsesOptions { stream }))
}

/// One input item as platform messages. Consecutive `function_call` items join the assistant
/// turn before them, as one message with several calls.
fn translate_item(item: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let at = format!("input[{i}]");
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
    match kind {
        "message" => {
            let role = match item.get("role").and_then(Value::as_str) {
                Some("developer" | "system") => "system",
                Some(role @ ("user" | "assistant")) => role,
                _ => {
                    return invalid(
                        &format!("{at}.role"),
                        format!("`{at}.role` must be user, assistant, system or developer"),
                    )
                }
            };
            let content = match item.get("content") {
                Some(Value::String(text)) => Value::String(text.clone()),
                Some(Value::Array(parts)) => content_of_parts(parts, &at)?,
                _ => {
                    return invalid(
                        &format!("{at}.content"),
                        format!("`{at}.content` must be a string or a list of parts"),
                    )
                }
            };
            out.push(json!({ "role": role, "content": content }));
        }
        "function_call" => {
            let (Some(call_id), Some(name)) =
                (item.get("call_id").and_then(Value::as_str), item.get("name").and_then(Value::as_str))
            else {
                return invalid(&at, format!("`{at}`: a function_call needs `call_id` and `name`"));
            };
            let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("{}");
            let call =
                json!({ "id": call_id, "type": "function", "function": { "name": name, "arguments": arguments } });
            let joins = out.last().is_some_and(|last| last.get("role").and_then(Value::as_str) == Some("assistant"));
            match out.last_mut().and_then(Value::as_object_mut).filter(|_| joins) {
                Some(last) => match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                    Some(calls) => calls.push(call),
                    None => {
                        last.insert("tool_calls".into(), json!([call]));
                    }
                },
                None => out.push(json!({ "role": "assistant", "content": null, "tool_calls": [call] })),
            }
        }
        "function_call_output" => {
            let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
                return invalid(&format!("{at}.call_id"), format!("`{at}.call_id` is required"));
            };
            let output = match item.get("output") {
                Some(Value::String(text)) => Value::String(text.clone()),
                Some(Value::Array(parts)) => content_of_parts(parts, &at)?,
                _ => return invalid(&format!("{at}.output"), format!("`{at}.output` must be a string")),
            };
            out.push(json!({ "role": "tool", "tool_call_id": call_id, "content": output }));
        }
        // Reasoning a client sends back carries nothing a vendor here reads.
        "reasoning" => {}
        other => {
            let other: String = other.chars().take(32).collect();
            return invalid(&format!("{at}.type"), format!("`{at}.type` `{other}` is not supported"));
        }
    }
    Ok(())
}

/// The content of `input_text` / `output_text` and `input_image` parts: the text alone, or with
/// images the platform's parts (`text`, `image_url`).
fn content_of_parts(parts: &[Value], at: &str) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let param = format!("{at}.content[{j}]");
        match (part.get("type").and_then(Value::as_str), part.get("text").and_then(Value::as_str)) {
            (Some("input_text" | "output_text" | "text"), Some(text)) => {
                out.push(json!({ "type": "text", "text": text }))
            }
            (Some("input_image"), _) => {
                let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                    return invalid(
                        &param,
                        format!(
                            "`{param}.image_url` is required: an https or `data:` URL (file ids are not supported)"
                        ),
                    );
                };
                let mut image = Map::new();
                image.insert("url".into(), Value::String(url.to_owned()));
                if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                    image.insert("detail".into(), detail.clone());
                }
                out.push(json!({ "type": "image_url", "image_url": image }));
            }
            _ => return invalid(&param, format!("`{param}`: only text and image parts are supported")),
        }
    }
    if out.iter().any(|part| part["type"] == "image_url") {
        return Ok(Value::Array(out));
    }
    let texts: Vec<&str> = out.iter().filter_map(|part| part["text"].as_str()).collect();
    Ok(Value::String(texts.join("\n")))
}

/// Function tools (`{"type":"function","name","description","parameters","strict"}`) in the
/// chat body's shape; built-in tools are refused.
fn translate_tools(tools: Value) -> Result<Value, ApiError> {
    let Value::Array(tools) = tools else { return invalid("tools", "`tools` must be a list".into()) };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return invalid(
                &format!("tools[{i}].type"),
                format!("`tools[{i}].type` must be `function`; built-in tools are not supported"),
            );
        }
        let mut function = Map::new();
        for key in ["name", "description", "parameters", "strict"] {
            if let Some(value) = tool.get(key).filter(|v| !v.is_null()) {
                function.insert(key.into(), value.clone());
            }
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(Value::Array(out))
}

fn translate_tool_choice(choice: Value) -> Result<Value, ApiError> {
    match &choice {
        Value::String(_) => Ok(choice),
        Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("function") => Ok(
            json!({ "type": "function", "function": { "name": object.get("name").cloned().unwrap_or(Value::Null) } }),
        ),
        _ => invalid(
            "tool_choice",
            "`tool_choice` must be auto, none, required or {\"type\":\"function\",\"name\"}".into(),
        ),
    }
}

/// `text.format` as the chat body's `response_format`.
fn translate_format(format: Value) -> Result<Value, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text" | "json_object") => Ok(format),
        Some("json_schema") => {
            let mut schema = Map::new();
            // `description` guides OpenAI's own models only; the vendors here take none.
            for key in ["name", "schema", "strict"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), value.clone());
                }
            }
            Ok(json!({ "type": "json_schema", "json_schema": schema }))
        }
        _ => invalid("text.format.type", "`text.format.type` must be text, json_object or json_schema".into()),
    }
}
