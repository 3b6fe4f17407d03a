//! OpenAI Chat Completions (`/v1/chat/completions`, `/v1/models`), also served under a
//! prefix (`/ollama`, `/vllm`, ...) to play an OpenAI-compatible server.
//!
//! Only the label `openai` demands a key. Reasoning, with `sim:think` or `reasoning_effort`:
//! the real OpenAI API never returns reasoning text, only
//! `usage.completion_tokens_details.reasoning_tokens`; the compatible servers (vLLM, DeepSeek
//! style) send it as `reasoning_content`. Under the label `openai` the model decides what is
//! accepted, as on the real API: `reasoning_effort` only on reasoning models (`o1`, `o3`,
//! `o4-mini`, `gpt-5*`), which in turn refuse `max_tokens` and a changed `temperature` or
//! `top_p`.

use http::HeaderMap;
use serde_json::{json, Value};

use crate::reply::{Answer, Conversation};
use crate::tools::{self, ToolUse};
use crate::wire::{self, ErrorReply, Meta, SseScript};

const LABEL: &str = "openai";

pub(crate) fn error(status: u16, message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> ErrorReply {
    ErrorReply { status, body: json!({"error": {"message": message, "type": kind, "param": param, "code": code}}) }
}

/// The error OpenAI answers with for `status`.
pub(crate) fn status_error(status: u16) -> ErrorReply {
    match status {
        401 => error(
            status,
            "Incorrect API key provided (simulated).",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        403 => error(
            status,
            "You are not allowed to sample from this model (simulated).",
            "invalid_request_error",
            None,
            None,
        ),
        404 => error(
            status,
            "The model does not exist or you do not have access to it (simulated).",
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ),
        429 => {
            error(status, "Rate limit reached for requests (simulated).", "requests", None, Some("rate_limit_exceeded"))
        }
        503 => error(
            status,
            "The engine is currently overloaded, please try again later (simulated).",
            "server_error",
            None,
            None,
        ),
        s if s >= 500 => error(
            status,
            "The server had an error while processing your request. Sorry about that! (simulated)",
            "server_error",
            None,
            None,
        ),
        _ => error(status, "Invalid request (simulated).", "invalid_request_error", None, None),
    }
}

/// `Authorization: Bearer <key>` for the real OpenAI; compatible servers take anything.
pub(crate) fn check_auth(label: &str, headers: &HeaderMap) -> Result<(), ErrorReply> {
    if label != LABEL {
        return Ok(());
    }
    let value = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, key)| key.trim());
    if key.is_empty() {
        return Err(error(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            None,
        ));
    }
    if key.starts_with("invalid") {
        return Err(status_error(401));
    }
    Ok(())
}

/// OpenAI's reasoning models: the o-series and GPT-5.
fn is_reasoning_model(model: &str) -> bool {
    let o_series = model.strip_prefix('o').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    o_series || model.starts_with("gpt-5")
}

/// Whether the request asks for reasoning; on the real API (label `openai`), refuses what
/// the model refuses.
fn reasoning(label: &str, model: &str, obj: &serde_json::Map<String, Value>) -> Result<bool, ErrorReply> {
    let effort = obj.get("reasoning_effort");
    if let Some(value) = effort {
        let known = ["none", "minimal", "low", "medium", "high", "xhigh"];
        if !value.as_str().is_some_and(|e| known.contains(&e)) {
            return Err(error(
                400,
                &format!("Invalid value: {value}. Supported values are: 'low', 'medium', and 'high'."),
                "invalid_request_error",
                Some("reasoning_effort"),
                Some("invalid_value"),
            ));
        }
    }
    if label == LABEL {
        let unsupported = |param: &str, message: String| {
            Err(error(400, &message, "invalid_request_error", Some(param), Some("unsupported_parameter")))
        };
        if !is_reasoning_model(model) {
            if effort.is_some() {
                return unsupported(
                    "reasoning_effort",
                    "Unrecognized request argument supplied: reasoning_effort is not supported with this model.".into(),
                );
            }
        } else {
            if obj.contains_key("max_tokens") {
                return unsupported(
                    "max_tokens",
                    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.".into(),
                );
            }
            for param in ["temperature", "top_p"] {
                if let Some(v) = obj.get(param).and_then(Value::as_f64).filter(|v| *v != 1.0) {
                    return unsupported(
                        param,
                        format!("Unsupported value: '{param}' does not support {v} with this model. Only the default (1) value is supported."),
                    );
                }
            }
        }
    }
    Ok(effort.and_then(Value::as_str).is_some_and(|e| e != "none"))
}

/// Reads model, messages and stream options; rejects what OpenAI rejects.
pub(crate) fn conversation(label: &str, body: &Value) -> Result<Conversation, ErrorReply> {
    let Some(obj) = body.as_object() else {
        return Err(error(
            400,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
            None,
        ));
    };
    let model = obj.get("model").and_then(Value::as_str).unwrap_or_default();
    if model.is_empty() {
        return Err(error(400, "you must provide a model parameter", "invalid_request_error", None, None));
    }
    let messages = match obj.get("messages").and_then(Value::as_array) {
        Some(m) if !m.is_empty() => m,
        _ => {
            return Err(error(
                400,
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                Some("messages"),
                Some("missing_required_parameter"),
            ));
        }
    };
    let mut conv = Conversation { model: model.to_owned(), ..Conversation::default() };
    for m in messages {
        let text = m.get("content").map(wire::content_text).unwrap_or_default();
        if m.get("role").and_then(Value::as_str) == Some("user") {
            conv.last_user.clone_from(&text);
        }
        conv.inputs.push(text);
    }
    conv.tool_use = tool_use(obj, messages)?;
    conv.reasoning = reasoning(label, model, obj)?;
    conv.stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    conv.include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    Ok(conv)
}

/// `tools`, `tool_choice`, `response_format` and the tool results the conversation ends with.
fn tool_use(obj: &serde_json::Map<String, Value>, messages: &[Value]) -> Result<ToolUse, ErrorReply> {
    let invalid = |message: &str, param: &str| Err(error(400, message, "invalid_request_error", Some(param), None));
    let mut uses = ToolUse::default();
    for t in obj.get("tools").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = t.pointer("/function/name").and_then(Value::as_str) else {
            return invalid("Missing required parameter: 'tools[0].function.name'.", "tools");
        };
        uses.tools.push(tools::tool(name, t.pointer("/function/parameters")));
    }
    match obj.get("tool_choice") {
        None => {}
        Some(_) if uses.tools.is_empty() => {
            return invalid(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        }
        Some(Value::String(c)) if c == "none" => uses.off = true,
        Some(Value::String(c)) if c == "auto" || c == "required" => {}
        Some(c) => match c.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if uses.tools.iter().any(|t| t.name == name) => uses.forced = Some(name.to_owned()),
            _ => return invalid("Invalid value for 'tool_choice'.", "tool_choice"),
        },
    }
    for m in messages {
        if m.get("role").and_then(Value::as_str) == Some("tool")
            && m.get("tool_call_id").and_then(Value::as_str).is_none()
        {
            return invalid(
                "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
                "messages",
            );
        }
    }
    uses.results = messages
        .iter()
        .rev()
        .take_while(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
        .map(|m| m.get("content").map(tools::result_text).unwrap_or_default())
        .collect();
    uses.results.reverse();
    uses.json = matches!(
        obj.get("response_format").and_then(|f| f.get("type")).and_then(Value::as_str),
        Some("json_object" | "json_schema")
    );
    Ok(uses)
}

fn call_id(meta: &Meta) -> String {
    format!("call_sim{:06}", meta.seq)
}

fn usage(a: &Answer) -> Value {
    json!({
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens(),
        "total_tokens": a.prompt_tokens + a.completion_tokens(),
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": a.reasoning_tokens},
    })
}

fn id(meta: &Meta) -> String {
    format!("chatcmpl-sim{:06}", meta.seq)
}

/// The `chat.completion` object.
pub(crate) fn completion(a: &Answer, meta: &Meta) -> Value {
    let mut message = json!({"role": "assistant", "content": a.text, "refusal": null, "annotations": []});
    if let (Some(r), true) = (&a.reasoning, meta.label != LABEL) {
        wire::set(&mut message, "reasoning_content", json!(r));
    }
    let mut finish = "stop";
    if let Some(call) = &a.call {
        wire::set(&mut message, "content", Value::Null);
        wire::set(
            &mut message,
            "tool_calls",
            json!([{"id": call_id(meta), "type": "function", "function": {"name": call.name, "arguments": call.arguments_text()}}]),
        );
        finish = "tool_calls";
    }
    json!({
        "id": id(meta),
        "object": "chat.completion",
        "created": meta.created,
        "model": a.model,
        "system_fingerprint": "fp_sim",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage(a),
    })
}

/// The `chat.completion.chunk` stream, ending in `data: [DONE]`.
pub(crate) fn stream(a: &Answer, conv: &Conversation, meta: &Meta) -> SseScript {
    let chunk = |choices: Value| {
        let mut c = json!({
            "id": id(meta),
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": a.model,
            "system_fingerprint": "fp_sim",
            "choices": choices,
        });
        if conv.include_usage {
            wire::set(&mut c, "usage", Value::Null);
        }
        c
    };
    let delta = |delta: Value, finish: Option<&str>| {
        chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]))
    };

    let content = if a.call.is_some() { Value::Null } else { json!("") };
    let mut preamble =
        vec![wire::sse_data(&delta(json!({"role": "assistant", "content": content, "refusal": null}), None))];
    if meta.label != LABEL {
        for piece in a.reasoning_pieces() {
            preamble.push(wire::sse_data(&delta(json!({"reasoning_content": piece}), None)));
        }
    }
    let content_chunks: Vec<Value> = match &a.call {
        // A call: its id and name first, then its arguments in pieces.
        Some(call) => std::iter::once(delta(
            json!({"tool_calls": [{"index": 0, "id": call_id(meta), "type": "function", "function": {"name": call.name, "arguments": ""}}]}),
            None,
        ))
        .chain(a.argument_pieces().into_iter().map(|p| delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}), None)))
        .collect(),
        None => a.text_pieces().into_iter().map(|p| delta(json!({"content": p}), None)).collect(),
    };
    let finish = if a.call.is_some() { "tool_calls" } else { "stop" };
    let malformed = content_chunks
        .first()
        .map_or_else(|| "{\"choices\":[{\"delta\":".to_owned(), |c| wire::truncated(&c.to_string()));
    let mut terminal = vec![wire::sse_data(&delta(json!({}), Some(finish)))];
    if conv.include_usage {
        let mut last = chunk(json!([]));
        wire::set(&mut last, "usage", usage(a));
        terminal.push(wire::sse_data(&last));
    }
    terminal.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    SseScript {
        content_type: "text/event-stream; charset=utf-8",
        preamble,
        content: content_chunks.iter().map(wire::sse_data).collect(),
        terminal,
        error_event: wire::sse_data(&status_error(500).body),
        malformed: bytes::Bytes::from(format!("data: {malformed}\n\n")),
    }
}

/// `GET /v1/models`.
pub(crate) fn models(label: &str, created: u64) -> Value {
    let ids: &[&str] = if label == LABEL { &["gpt-4o-mini", "gpt-4o", "o3-mini"] } else { &["llama3.2", "qwen2.5"] };
    let data: Vec<Value> =
        ids.iter().map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": label})).collect();
    json!({"object": "list", "data": data})
}
