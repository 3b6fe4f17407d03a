//! Anthropic Messages (`POST /v1/messages`): the `message` object and its typed SSE stream.
//!
//! Reasoning, with `sim:think` or extended thinking (`"thinking": {"type": "enabled",
//! "budget_tokens": N}`), comes as a `thinking` content block (with a `signature`) before the
//! text block, streamed with `thinking_delta` and `signature_delta`. Extended thinking is
//! checked as Anthropic checks it: `budget_tokens` at least 1024 and below `max_tokens`, no
//! `temperature` but 1, `top_p` only from 0.95, no `top_k`; anything else is a 400.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, Value};

use crate::reply::{Answer, Conversation};
use crate::tools::{self, ToolUse};
use crate::wire::{self, ErrorReply, Meta, SseScript};

const SIGNATURE: &str = "c2ltLXNpZ25hdHVyZQ==";

fn error(status: u16, kind: &str, message: &str) -> ErrorReply {
    ErrorReply {
        status,
        body: json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_sim"}),
    }
}

/// The error Anthropic answers with for `status` (per its errors page).
pub(crate) fn status_error(status: u16) -> ErrorReply {
    let (kind, message) = match status {
        401 => ("authentication_error", "invalid x-api-key"),
        403 => ("permission_error", "Your API key does not have permission to use the specified resource."),
        404 => ("not_found_error", "The requested resource could not be found."),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429 => ("rate_limit_error", "Number of requests has exceeded your rate limit (simulated)."),
        529 | 503 => ("overloaded_error", "Overloaded"),
        s if s >= 500 => ("api_error", "Internal server error"),
        _ => ("invalid_request_error", "Invalid request (simulated)."),
    };
    error(status, kind, message)
}

/// Requires a non-empty `x-api-key` and an `anthropic-version`.
pub(crate) fn check_auth(headers: &HeaderMap) -> Result<(), ErrorReply> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
    let key = header("x-api-key");
    if key.is_empty() {
        return Err(error(401, "authentication_error", "x-api-key header is required"));
    }
    if key.starts_with("invalid") {
        return Err(status_error(401));
    }
    if header("anthropic-version").is_empty() {
        return Err(error(400, "invalid_request_error", "anthropic-version: header is required"));
    }
    Ok(())
}

/// Reads model, system, messages, `max_tokens`, stream; rejects what Anthropic rejects.
pub(crate) fn conversation(body: &Value) -> Result<Conversation, ErrorReply> {
    let Some(obj) = body.as_object() else {
        return Err(error(400, "invalid_request_error", "The request body is not valid JSON."));
    };
    let model = obj.get("model").and_then(Value::as_str).unwrap_or_default();
    if model.is_empty() {
        return Err(error(400, "invalid_request_error", "model: Field required"));
    }
    if !obj.get("max_tokens").is_some_and(Value::is_u64) {
        return Err(error(400, "invalid_request_error", "max_tokens: Field required"));
    }
    let messages = match obj.get("messages").and_then(Value::as_array) {
        Some(m) if !m.is_empty() => m,
        _ => return Err(error(400, "invalid_request_error", "messages: Field required")),
    };
    let mut conv = Conversation { model: model.to_owned(), reasoning: thinking(obj)?, ..Conversation::default() };
    if conv.reasoning {
        signed_reasoning_leads_the_last_tool_turn(messages)?;
    }
    if let Some(system) = obj.get("system") {
        conv.inputs.push(wire::content_text(system));
    }
    for m in messages {
        let content = m.get("content").unwrap_or(&Value::Null);
        let results = tool_results(content);
        let text = wire::content_text(content);
        // A turn of tool results answers calls; the question is still the last one asked.
        if m.get("role").and_then(Value::as_str) == Some("user") && results.is_empty() {
            conv.last_user.clone_from(&text);
        }
        conv.inputs.push(text);
        conv.inputs.extend(results);
    }
    conv.tool_use = tool_use(obj, messages)?;
    conv.stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    Ok(conv)
}

/// The `tool_result` blocks' contents of a message's content.
fn tool_results(content: &Value) -> Vec<String> {
    content
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| b.get("content").map(tools::result_text).unwrap_or_default())
        .collect()
}

fn has_block(messages: &[Value], kind: &str) -> bool {
    messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .any(|b| b.get("type").and_then(Value::as_str) == Some(kind))
}

/// `tools`, `tool_choice`, the tool results the conversation ends with, and the platform's JSON
/// instruction in `system`; refuses what Anthropic refuses.
fn tool_use(obj: &serde_json::Map<String, Value>, messages: &[Value]) -> Result<ToolUse, ErrorReply> {
    let invalid = |message: &str| Err(error(400, "invalid_request_error", message));
    let mut uses = ToolUse::default();
    for t in obj.get("tools").and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(schema)) = (t.get("name").and_then(Value::as_str), t.get("input_schema")) else {
            return invalid("tools.0.input_schema: Field required");
        };
        uses.tools.push(tools::tool(name, Some(schema)));
    }
    if uses.tools.is_empty() && (has_block(messages, "tool_use") || has_block(messages, "tool_result")) {
        return invalid("Requests which include `tool_use` or `tool_result` blocks must define tools.");
    }
    if let Some(choice) = obj.get("tool_choice") {
        if uses.tools.is_empty() {
            return invalid("tool_choice may only be specified while providing tools.");
        }
        match choice.get("type").and_then(Value::as_str) {
            Some("none") => uses.off = true,
            Some("auto" | "any") => {}
            Some("tool") => match choice.get("name").and_then(Value::as_str) {
                Some(name) if uses.tools.iter().any(|t| t.name == name) => uses.forced = Some(name.to_owned()),
                _ => return invalid("tool_choice.tool.name: the named tool is not in tools"),
            },
            _ => return invalid(
                "tool_choice.type: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
            ),
        }
    }
    let last = messages.last().filter(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    uses.results = last.and_then(|m| m.get("content")).map(tool_results).unwrap_or_default();
    uses.json = obj.get("system").map(wire::content_text).is_some_and(|s| s.contains(tools::JSON_MARKER));
    Ok(uses)
}

fn tool_use_id(meta: &Meta) -> String {
    format!("toolu_sim{:06}", meta.seq)
}

/// Whether extended thinking is on, refusing what Anthropic refuses with it.
/// With thinking on, Anthropic refuses a tool loop whose last assistant turn (the one with the
/// calls) does not start with its thinking block, signed as it was given.
fn signed_reasoning_leads_the_last_tool_turn(messages: &[Value]) -> Result<(), ErrorReply> {
    let Some((i, last)) =
        messages.iter().enumerate().rev().find(|(_, m)| m.get("role").and_then(Value::as_str) == Some("assistant"))
    else {
        return Ok(());
    };
    let blocks = last.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if !blocks.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_use")) {
        return Ok(());
    }
    let first = blocks.first().and_then(|b| b.get("type")).and_then(Value::as_str).unwrap_or("text");
    let signed = blocks.first().and_then(|b| b.get("signature")).and_then(Value::as_str) == Some(SIGNATURE);
    match first {
        "redacted_thinking" => Ok(()),
        "thinking" if signed => Ok(()),
        "thinking" => Err(error(
            400,
            "invalid_request_error",
            &format!("messages.{i}.content.0: Invalid `signature` in `thinking` block"),
        )),
        other => Err(error(
            400,
            "invalid_request_error",
            &format!(
                "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{other}`. When \
                 `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the \
                 lastmost set of `tool_use` and `tool_result` blocks)."
            ),
        )),
    }
}

fn thinking(obj: &serde_json::Map<String, Value>) -> Result<bool, ErrorReply> {
    let invalid = |message: String| Err(error(400, "invalid_request_error", &message));
    let Some(thinking) = obj.get("thinking") else {
        return Ok(false);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {}
        Some("disabled") => return Ok(false),
        _ => return invalid("thinking.type: Input should be 'enabled' or 'disabled'".into()),
    }
    let Some(budget) = thinking.get("budget_tokens").and_then(Value::as_u64) else {
        return invalid("thinking.enabled.budget_tokens: Field required".into());
    };
    if budget < 1024 {
        return invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".into());
    }
    let max_tokens = obj.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    if max_tokens <= budget {
        return invalid("`max_tokens` must be greater than `thinking.budget_tokens`".into());
    }
    if obj.get("temperature").and_then(Value::as_f64).is_some_and(|t| t != 1.0) {
        return invalid("`temperature` may only be set to 1 when thinking is enabled".into());
    }
    if obj.get("top_p").and_then(Value::as_f64).is_some_and(|p| p < 0.95) {
        return invalid("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled".into());
    }
    if obj.contains_key("top_k") {
        return invalid("`top_k` must be unset when thinking is enabled".into());
    }
    Ok(true)
}

fn id(meta: &Meta) -> String {
    format!("msg_sim{:06}", meta.seq)
}

/// The `message` object.
pub(crate) fn message(a: &Answer, meta: &Meta) -> Value {
    let mut content = Vec::new();
    if let Some(r) = &a.reasoning {
        content.push(json!({"type": "thinking", "thinking": r, "signature": SIGNATURE}));
    }
    let stop_reason = match &a.call {
        Some(call) => {
            content
                .push(json!({"type": "tool_use", "id": tool_use_id(meta), "name": call.name, "input": call.arguments}));
            "tool_use"
        }
        None => {
            content.push(json!({"type": "text", "text": a.text}));
            "end_turn"
        }
    };
    json!({
        "id": id(meta),
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": a.prompt_tokens,
            "output_tokens": a.completion_tokens(),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    })
}

fn event(value: &Value) -> Bytes {
    let name = value.get("type").and_then(Value::as_str).unwrap_or("message");
    wire::sse_event(name, value)
}

fn block_delta(index: usize, delta: Value) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": delta})
}

/// The typed event stream: `message_start`, blocks, `message_delta`, `message_stop`.
pub(crate) fn stream(a: &Answer, meta: &Meta) -> SseScript {
    let start = json!({
        "type": "message_start",
        "message": {
            "id": id(meta), "type": "message", "role": "assistant", "content": [], "model": a.model,
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": a.prompt_tokens, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        },
    });
    let ping = json!({"type": "ping"});
    let mut preamble = vec![event(&start)];
    let mut index = 0;
    if a.reasoning.is_some() {
        preamble.push(event(
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ));
        preamble.push(event(&ping));
        for piece in a.reasoning_pieces() {
            preamble.push(event(&block_delta(0, json!({"type": "thinking_delta", "thinking": piece}))));
        }
        preamble.push(event(&block_delta(0, json!({"type": "signature_delta", "signature": SIGNATURE}))));
        preamble.push(event(&json!({"type": "content_block_stop", "index": 0})));
        index = 1;
    }
    let block = match &a.call {
        Some(call) => json!({"type": "tool_use", "id": tool_use_id(meta), "name": call.name, "input": {}}),
        None => json!({"type": "text", "text": ""}),
    };
    preamble.push(event(&json!({"type": "content_block_start", "index": index, "content_block": block})));
    if a.reasoning.is_none() {
        preamble.push(event(&ping));
    }
    let deltas: Vec<Value> = match &a.call {
        Some(_) => a
            .argument_pieces()
            .into_iter()
            .map(|p| block_delta(index, json!({"type": "input_json_delta", "partial_json": p})))
            .collect(),
        None => {
            a.text_pieces().into_iter().map(|p| block_delta(index, json!({"type": "text_delta", "text": p}))).collect()
        }
    };
    let stop_reason = if a.call.is_some() { "tool_use" } else { "end_turn" };
    let malformed = deltas
        .first()
        .map_or_else(|| "{\"type\":\"content_block_delta\",".to_owned(), |d| wire::truncated(&d.to_string()));
    let terminal = vec![
        event(&json!({"type": "content_block_stop", "index": index})),
        event(&json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": a.completion_tokens()},
        })),
        event(&json!({"type": "message_stop"})),
    ];
    let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    SseScript {
        content_type: "text/event-stream; charset=utf-8",
        preamble,
        content: deltas.iter().map(event).collect(),
        terminal,
        error_event: event(&error),
        malformed: Bytes::from(format!("event: content_block_delta\ndata: {malformed}\n\n")),
    }
}
