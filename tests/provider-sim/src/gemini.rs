//! Gemini `models/{model}:generateContent` and `:streamGenerateContent` (`?alt=sse`: one
//! `data:` event per `GenerateContentResponse`, framed with CRLF as Google does; without
//! `alt=sse`: one JSON array of them).
//!
//! Reasoning, with `sim:think` or `generationConfig.thinkingConfig` (a `thinkingBudget` other
//! than 0, or `includeThoughts`), counts in `usageMetadata.thoughtsTokenCount`; its text comes
//! back as parts with `"thought": true` only when `includeThoughts` is true (or `sim:think`).
//! A `thinkingBudget` outside the model's range is a 400, as Google answers it.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, Value};

use crate::reply::{Answer, Conversation};
use crate::tools::{self, ToolUse};
use crate::wire::{self, ErrorReply, Meta, SseScript};

pub(crate) fn error(status: u16, canonical: &str, message: &str) -> ErrorReply {
    ErrorReply { status, body: json!({"error": {"code": status, "message": message, "status": canonical}}) }
}

/// The error Google answers with for `status` (canonical `google.rpc.Code` names).
pub(crate) fn status_error(status: u16) -> ErrorReply {
    let (canonical, message) = match status {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
        403 => ("PERMISSION_DENIED", "The caller does not have permission."),
        404 => ("NOT_FOUND", "Requested entity was not found."),
        409 => ("ABORTED", "The operation was aborted."),
        429 => ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        499 => ("CANCELLED", "The operation was cancelled."),
        501 => ("UNIMPLEMENTED", "Operation is not implemented."),
        503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        s if s >= 500 => ("INTERNAL", "An internal error has occurred. Please retry."),
        _ => ("FAILED_PRECONDITION", "Precondition check failed."),
    };
    error(status, canonical, message)
}

/// The API key from `x-goog-api-key` or `?key=`.
fn api_key<'a>(headers: &'a HeaderMap, query: &'a str) -> &'a str {
    let header = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
    if !header.is_empty() {
        return header;
    }
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "key")
        .map_or("", |(_, value)| value)
}

/// No key: 403 `PERMISSION_DENIED`; a key starting with `invalid`: 400 `API_KEY_INVALID`.
pub(crate) fn check_auth(headers: &HeaderMap, query: &str) -> Result<(), ErrorReply> {
    let key = api_key(headers, query);
    if key.is_empty() {
        return Err(error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        ));
    }
    if key.starts_with("invalid") {
        let mut e = error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.");
        if let Some(inner) = e.body.get_mut("error") {
            wire::set(
                inner,
                "details",
                json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]),
            );
        }
        return Err(e);
    }
    Ok(())
}

/// Reads `contents` and `systemInstruction`; `model` comes from the path.
pub(crate) fn conversation(body: &Value, model: &str, stream: bool) -> Result<Conversation, ErrorReply> {
    let contents = match body.get("contents").and_then(Value::as_array) {
        Some(c) if !c.is_empty() => c,
        _ => {
            return Err(error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"))
        }
    };
    let mut conv = Conversation { model: model.to_owned(), stream, ..Conversation::default() };
    let system = body.get("systemInstruction").or_else(|| body.get("system_instruction"));
    if let Some(parts) = system.and_then(|s| s.get("parts")) {
        conv.inputs.push(wire::content_text(parts));
    }
    thinking(body, model, &mut conv)?;
    for c in contents {
        let text = c.get("parts").map(wire::content_text).unwrap_or_default();
        let results = function_responses(c)?;
        // `role` may be left out on single-turn requests; it then means the user. A turn of
        // function responses answers calls; the question is still the last one asked.
        if c.get("role").and_then(Value::as_str).is_none_or(|r| r == "user") && results.is_empty() {
            conv.last_user.clone_from(&text);
        }
        conv.inputs.push(text);
        conv.inputs.extend(results);
    }
    conv.tool_use = tool_use(body, contents)?;
    Ok(conv)
}

/// The `functionResponse` parts of a content, as text: `response.output` when it is a string
/// (how the platform wraps a plain result), else the response's JSON.
fn function_responses(content: &Value) -> Result<Vec<String>, ErrorReply> {
    let mut out = Vec::new();
    for part in content.get("parts").and_then(Value::as_array).into_iter().flatten() {
        let Some(response) = part.get("functionResponse") else { continue };
        if response.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(error(
                400,
                "INVALID_ARGUMENT",
                "* GenerateContentRequest.contents[].parts[].function_response.name: Name cannot be empty.",
            ));
        }
        let value = response.get("response").unwrap_or(&Value::Null);
        out.push(match value.get("output") {
            Some(Value::String(text)) => text.clone(),
            _ => value.to_string(),
        });
    }
    Ok(out)
}

/// `tools[].functionDeclarations`, `toolConfig`, the function responses the conversation ends
/// with, and `responseMimeType`.
fn tool_use(body: &Value, contents: &[Value]) -> Result<ToolUse, ErrorReply> {
    let mut uses = ToolUse::default();
    let declarations = body.get("tools").and_then(Value::as_array).into_iter().flatten();
    for d in declarations.filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array)).flatten() {
        let Some(name) = d.get("name").and_then(Value::as_str) else {
            return Err(error(
                400,
                "INVALID_ARGUMENT",
                "* GenerateContentRequest.tools[0].function_declarations[0].name: Name cannot be empty.",
            ));
        };
        uses.tools.push(tools::tool(name, d.get("parametersJsonSchema").or_else(|| d.get("parameters"))));
    }
    if let Some(config) = body.pointer("/toolConfig/functionCallingConfig") {
        match config.get("mode").and_then(Value::as_str) {
            Some("NONE") => uses.off = true,
            Some("ANY" | "VALIDATED") => {
                let allowed = config.get("allowedFunctionNames").and_then(Value::as_array);
                if let Some([Value::String(name)]) = allowed.map(Vec::as_slice) {
                    uses.forced = Some(name.clone());
                }
            }
            _ => {}
        }
    }
    uses.results = match contents.last() {
        Some(last) => function_responses(last)?,
        None => Vec::new(),
    };
    uses.json = body.pointer("/generationConfig/responseMimeType").and_then(Value::as_str) == Some("application/json");
    Ok(uses)
}

/// A call with its thought signature beside it, as Gemini 3 sends them (the first call of a
/// turn carries one; the simulator makes one call a turn). Opaque, but the same for the same
/// call, so tests can see it come back.
fn call_part(a: &Answer) -> Option<Value> {
    a.call.as_ref().map(|call| {
        json!({
            "functionCall": {"name": call.name, "args": call.arguments},
            "thoughtSignature": format!("sim-thought-signature/{}", call.name),
        })
    })
}

/// Reads `generationConfig.thinkingConfig`. Budgets per Google's thinking guide: 2.5 Pro
/// 128–32768 (cannot turn thinking off), the other 2.5 models 0–24576; -1 means dynamic.
fn thinking(body: &Value, model: &str, conv: &mut Conversation) -> Result<(), ErrorReply> {
    let Some(config) = body.pointer("/generationConfig/thinkingConfig") else {
        return Ok(());
    };
    let (low, high) = if model.contains("pro") { (128, 32_768) } else { (0, 24_576) };
    let budget = match config.get("thinkingBudget") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(b) if b == -1 || (low..=high).contains(&b) => Some(b),
            _ => {
                return Err(error(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("The thinking budget {v} is invalid. Please choose a value between {low} and {high}."),
                ))
            }
        },
    };
    let include = config.get("includeThoughts").and_then(Value::as_bool).unwrap_or(false);
    conv.reasoning = budget != Some(0);
    conv.reasoning_hidden = !include;
    Ok(())
}

fn usage(a: &Answer, text_tokens: u64, thoughts: u64) -> Value {
    let mut u = json!({
        "promptTokenCount": a.prompt_tokens,
        "candidatesTokenCount": text_tokens,
        "totalTokenCount": a.prompt_tokens + text_tokens + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": a.prompt_tokens}],
    });
    if thoughts > 0 {
        wire::set(&mut u, "thoughtsTokenCount", json!(thoughts));
    }
    u
}

fn response(a: &Answer, meta: &Meta, parts: Value, finish: bool, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if finish {
        wire::set(&mut candidate, "finishReason", json!("STOP"));
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": a.model,
        "responseId": format!("sim{:06}", meta.seq),
    })
}

/// The `GenerateContentResponse`.
pub(crate) fn generate(a: &Answer, meta: &Meta) -> Value {
    let mut parts = Vec::new();
    if let Some(r) = a.visible_reasoning() {
        parts.push(json!({"text": r, "thought": true}));
    }
    parts.push(call_part(a).unwrap_or_else(|| json!({"text": a.text})));
    response(a, meta, json!(parts), true, usage(a, a.text_tokens, a.reasoning_tokens))
}

/// The streamed responses: thoughts, one per word, then an empty part with `STOP` and the
/// final usage. Every chunk carries the usage so far, as Gemini does.
fn chunks(a: &Answer, meta: &Meta) -> (Vec<Value>, Vec<Value>, Value) {
    let thoughts: Vec<Value> = a
        .reasoning_pieces()
        .into_iter()
        .scan(0u64, |n, p| {
            *n += 1;
            Some(response(a, meta, json!([{"text": p, "thought": true}]), false, usage(a, 0, *n)))
        })
        .collect();
    // A call arrives whole, in one chunk, as Gemini streams them.
    if let Some(part) = call_part(a) {
        let call = response(a, meta, json!([part]), false, usage(a, a.text_tokens, a.reasoning_tokens));
        let last = response(a, meta, json!([{"text": ""}]), true, usage(a, a.text_tokens, a.reasoning_tokens));
        return (thoughts, vec![call], last);
    }
    let words: Vec<Value> = a
        .text_pieces()
        .into_iter()
        .scan(0u64, |n, p| {
            *n += 1;
            Some(response(a, meta, json!([{"text": p}]), false, usage(a, *n, a.reasoning_tokens)))
        })
        .collect();
    let last = response(a, meta, json!([{"text": ""}]), true, usage(a, a.text_tokens, a.reasoning_tokens));
    (thoughts, words, last)
}

/// `streamGenerateContent` without `alt=sse`: a JSON array of the chunks.
pub(crate) fn json_array(a: &Answer, meta: &Meta) -> Value {
    let (thoughts, words, last) = chunks(a, meta);
    let mut all = thoughts;
    all.extend(words);
    all.push(last);
    Value::Array(all)
}

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\r\n\r\n"))
}

/// `streamGenerateContent?alt=sse`.
pub(crate) fn stream(a: &Answer, meta: &Meta) -> SseScript {
    let (thoughts, words, last) = chunks(a, meta);
    let malformed = words.first().map_or_else(|| "{\"candidates\":[".to_owned(), |w| wire::truncated(&w.to_string()));
    SseScript {
        content_type: "text/event-stream",
        preamble: thoughts.iter().map(data).collect(),
        content: words.iter().map(data).collect(),
        terminal: vec![data(&last)],
        error_event: data(&status_error(503).body),
        malformed: Bytes::from(format!("data: {malformed}\r\n\r\n")),
    }
}
