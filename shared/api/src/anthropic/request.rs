//! `POST /v1/messages`: Anthropic's Messages body, translated into the platform's chat body
//! (OpenAI-shaped messages, tools and tool choice), so both dialects pass the same checks into
//! the same request. Errors name the field.

use serde_json::{json, Map, Value};

use opencode_core::model::Effort;

use crate::error::ApiError;
use crate::platform::request::ReasoningBody;
use crate::web;

/// Fields of Anthropic's body the platform reads.
const KNOWN: [&str; 14] = [
    "model",
    "max_tokens",
    "system",
    "messages",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "thinking",
    "metadata",
    "stream",
    "service_tier",
];

/// Fields it cannot honour yet: refused by name unless they ask for nothing.
const UNSUPPORTED: [&str; 2] = ["container", "mcp_servers"];

/// How the client wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessagesOptions {
    pub stream: bool,
}

fn invalid<T>(field: &str, message: String) -> Result<T, ApiError> {
    Err(ApiError::param(field, message))
}

/// A Messages body as the platform's chat body, and how to answer it.
pub fn translate(
    parts: &http::request::Parts,
    bytes: &[u8],
) -> Result<(Map<String, Value>, MessagesOptions), ApiError> {
    translate_object(web::parse_object(parts, bytes)?)
}

/// [`translate`] of a body already parsed.
pub fn translate_object(mut body: Map<String, Value>) -> Result<(Map<String, Value>, MessagesOptions), ApiError> {
    for (name, value) in &body {
        if UNSUPPORTED.contains(&name.as_str()) && !value.is_null() {
            return invalid(name, format!("{name}: not supported by this platform"));
        }
        if !KNOWN.contains(&name.as_str()) && !UNSUPPORTED.contains(&name.as_str()) {
            let name: String = name.chars().take(64).collect();
            return invalid(&name, format!("{name}: Extra inputs are not permitted"));
        }
    }
    let Some(Value::String(model)) = body.remove("model") else {
        return invalid("model", "model: Field required (a model name or `opencode/chat`)".into());
    };
    let max_tokens = match body.remove("max_tokens").as_ref().and_then(Value::as_u64) {
        Some(n @ 1..) => u32::try_from(n).unwrap_or(u32::MAX),
        _ => return invalid("max_tokens", "max_tokens: Field required, a whole number of at least 1".into()),
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut messages = Vec::new();
    if let Some(system) = body.remove("system") {
        messages.push(json!({ "role": "system", "content": text_of("system", system)? }));
    }
    let Some(Value::Array(turns)) = body.remove("messages") else {
        return invalid("messages", "messages: Field required, a list".into());
    };
    for (i, turn) in turns.into_iter().enumerate() {
        translate_turn(turn, i, &mut messages)?;
    }
    let mut chat = Map::new();
    chat.insert("messages".into(), Value::Array(messages));
    chat.insert("model".into(), json!(model));
    chat.insert("max_tokens".into(), json!(max_tokens));
    for (from, to) in
        [("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"), ("stop_sequences", "stop")]
    {
        if let Some(value) = body.remove(from).filter(|v| !v.is_null()) {
            chat.insert(to.into(), value);
        }
    }
    if let Some(tools) = body.remove("tools").filter(|v| !v.is_null()) {
        chat.insert("tools".into(), translate_tools(tools)?);
    }
    if let Some(choice) = body.remove("tool_choice").filter(|v| !v.is_null()) {
        let choice = translate_tool_choice(choice)?;
        // Without tools, `none` asks for what no choice means.
        if chat.contains_key("tools") || choice != "none" {
            chat.insert("tool_choice".into(), choice);
        }
    }
    if let Some(reasoning) = thinking(body.remove("thinking"), max_tokens)? {
        chat.insert("reasoning".into(), reasoning);
    }
    chat.insert("stream".into(), Value::Bool(stream));
    Ok((chat, MessagesOptions { stream }))
}

/// `thinking`: `enabled` with a budget (at least 1024 tokens and under `max_tokens`, as
/// Anthropic requires), `adaptive` (a medium budget), or `disabled`.
fn thinking(value: Option<Value>, max_tokens: u32) -> Result<Option<Value>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    match value.get("type").and_then(Value::as_str) {
        Some("disabled") => Ok(None),
        Some("adaptive") => Ok(Some(ReasoningBody::effort_value(Effort::Medium))),
        Some("enabled") => match value.get("budget_tokens").and_then(Value::as_u64).and_then(|b| u32::try_from(b).ok())
        {
            Some(budget) if budget >= 1024 && budget < max_tokens => Ok(Some(json!({ "budget_tokens": budget }))),
            _ => invalid(
                "thinking.budget_tokens",
                "thinking.budget_tokens: must be at least 1024 and less than max_tokens".into(),
            ),
        },
        _ => invalid("thinking.type", "thinking.type: must be `enabled`, `adaptive` or `disabled`".into()),
    }
}

/// The text of a string or a list of `text` blocks (`system`, a tool result's `content`).
fn text_of(field: &str, value: Value) -> Result<String, ApiError> {
    match value {
        Value::String(text) => Ok(text),
        Value::Array(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                match (block.get("type").and_then(Value::as_str), block.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(text)) => texts.push(text),
                    _ => {
                        return invalid(
                            &format!("{field}.{j}"),
                            format!("{field}.{j}: only text blocks are supported here"),
                        )
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => invalid(field, format!("{field}: must be a string or a list of text blocks")),
    }
}

/// One Anthropic turn as platform messages: a user turn's `tool_result` blocks become `tool`
/// messages (before its text, which follows the results), an assistant turn's `tool_use` blocks
/// its calls and its thinking blocks its `thinking`, which goes back to Anthropic as it came.
fn translate_turn(turn: Value, i: usize, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let field = format!("messages.{i}");
    let role = match turn.get("role").and_then(Value::as_str) {
        Some(role @ ("user" | "assistant")) => role.to_owned(),
        _ => return invalid(&format!("{field}.role"), format!("{field}.role: must be `user` or `assistant`")),
    };
    let blocks = match turn.get("content") {
        Some(Value::String(text)) => {
            out.push(json!({ "role": role, "content": text }));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return invalid(
                &format!("{field}.content"),
                format!("{field}.content: must be a string or a list of blocks"),
            )
        }
    };
    let mut texts = Vec::new();
    let mut thinking = Vec::new();
    let mut images = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{field}.content.{j}");
        match (role.as_str(), block.get("type").and_then(Value::as_str)) {
            (_, Some("text")) => match block.get("text").and_then(Value::as_str) {
                Some(text) => texts.push(text.to_owned()),
                None => return invalid(&at, format!("{at}.text: must be a string")),
            },
            ("assistant", Some("tool_use")) => {
                let (Some(id), Some(name)) =
                    (block.get("id").and_then(Value::as_str), block.get("name").and_then(Value::as_str))
                else {
                    return invalid(&at, format!("{at}: a tool_use block needs `id` and `name`"));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({ "id": id, "type": "function", "function": { "name": name, "arguments": input.to_string() } }));
            }
            ("user", Some("tool_result")) => {
                let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else {
                    return invalid(&at, format!("{at}.tool_use_id: Field required"));
                };
                let content = match block.get("content").cloned() {
                    None | Some(Value::Null) => String::new(),
                    Some(content) => text_of(&format!("{at}.content"), content)?,
                };
                let failed = block.get("is_error").and_then(Value::as_bool) == Some(true);
                let content = if failed { format!("Error: {content}") } else { content };
                out.push(json!({ "role": "tool", "tool_call_id": id, "content": content }));
            }
            // Signed reasoning goes back to Anthropic as it came (the other vendors drop it).
            ("assistant", Some("thinking" | "redacted_thinking")) => thinking.push(block.clone()),
            ("user", Some("image")) => images.push(image_part(block, &at)?),
            (_, Some("document")) => {
                return invalid(&at, format!("{at}: document input is not supported yet"));
            }
            (_, kind) => {
                let kind: String = kind.unwrap_or("(none)").chars().take(32).collect();
                return invalid(&at, format!("{at}.type: `{kind}` is not supported in a {role} turn"));
            }
        }
    }
    if role == "assistant" {
        let content = (!texts.is_empty() || calls.is_empty()).then(|| texts.join("\n"));
        let mut message = Map::new();
        message.insert("role".into(), json!("assistant"));
        message.insert("content".into(), json!(content));
        if !calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        if !thinking.is_empty() {
            message.insert("thinking".into(), Value::Array(thinking));
        }
        out.push(Value::Object(message));
    } else if !images.is_empty() {
        images.extend(texts.into_iter().map(|text| json!({ "type": "text", "text": text })));
        out.push(json!({ "role": "user", "content": images }));
    } else if !texts.is_empty() {
        out.push(json!({ "role": "user", "content": texts.join("\n") }));
    }
    Ok(())
}

/// An `image` block (`source` of type `base64` or `url`) as the platform's `image_url` part.
fn image_part(block: &Value, at: &str) -> Result<Value, ApiError> {
    let source = block.get("source");
    let text = |key: &str| source.and_then(|s| s.get(key)).and_then(Value::as_str);
    let url = match text("type") {
        Some("base64") => match (text("media_type"), text("data")) {
            (Some(media_type), Some(data)) => format!("data:{media_type};base64,{data}"),
            _ => return invalid(&format!("{at}.source"), format!("{at}.source: needs `media_type` and `data`")),
        },
        Some("url") => match text("url") {
            Some(url) => url.to_owned(),
            None => return invalid(&format!("{at}.source.url"), format!("{at}.source.url: Field required")),
        },
        _ => return invalid(&format!("{at}.source.type"), format!("{at}.source.type: must be `base64` or `url`")),
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

/// Anthropic's tools (`name`, `description`, `input_schema`) in the platform's shape.
fn translate_tools(tools: Value) -> Result<Value, ApiError> {
    let Value::Array(tools) = tools else { return invalid("tools", "tools: must be a list".into()) };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        // Anthropic's server tools (web search, code execution, ...) carry a `type`.
        if let Some(kind) = tool.get("type").and_then(Value::as_str).filter(|t| *t != "custom") {
            let kind: String = kind.chars().take(64).collect();
            return invalid(&format!("tools.{i}.type"), format!("tools.{i}.type: `{kind}` tools are not supported"));
        }
        let mut function = Map::new();
        for (from, to) in [("name", "name"), ("description", "description"), ("input_schema", "parameters")] {
            if let Some(value) = tool.get(from) {
                function.insert(to.into(), value.clone());
            }
        }
        out.push(json!({ "type": "function", "function": function }));
    }
    Ok(Value::Array(out))
}

/// `tool_choice`: `auto`, `any` (a call is required), `tool` (that one), `none`.
fn translate_tool_choice(choice: Value) -> Result<Value, ApiError> {
    match choice.get("type").and_then(Value::as_str) {
        Some("auto") => Ok(json!("auto")),
        Some("any") => Ok(json!("required")),
        Some("none") => Ok(json!("none")),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => Ok(json!({ "type": "function", "function": { "name": name } })),
            None => invalid("tool_choice.name", "tool_choice.name: Field required".into()),
        },
        _ => invalid("tool_choice.type", "tool_choice.type: must be `auto`, `any`, `tool` or `none`".into()),
    }
}
