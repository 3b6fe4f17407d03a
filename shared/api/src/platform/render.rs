//! The platform's own answer and stream: how its dialect writes a runtime [`Reply`].
//!
//! JSON answers carry the common fields (`id`, `object`, `mode`, `provider`, `model`,
//! `attempts`, `message`, `finish_reason`, `usage`, ...) and the mode's details flat beside
//! them. Streams are `text/event-stream`: `start`, the mode's progress events, `delta` /
//! `thinking` / `tool_call` as the model writes, then `usage` and `done` (every field of the
//! answer but the message), or a terminal `error`. Plain chat keeps its historic shapes: a
//! `chat.completion` with the attempt log, and a `done` that names who answered.

use bytes::Bytes;
use futures::stream::StreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};

use opencode_core::model::{ToolCallPiece, Usage};
use opencode_core::routing::Mode;
use opencode_runtime::answer::{
    Answer, CacheStatus, Citation, Details, Event, Failure, Head, Reply, ShowThinking, Start, Streamed,
};
use opencode_runtime::executor::{Answered, Attempt};
use opencode_runtime::Body;

use super::tool_fields::tool_calls_json;
use crate::error::ApiError;
use crate::{sse, web};

/// How the platform's dialect writes a mode's details and progress.
pub trait PlatformDetails: Details {
    /// Adds the mode's own fields to its JSON answer (and `done` event).
    fn fields(&self, request_id: &str, out: &mut Map<String, Value>);
    /// A progress event: its name on the stream, and its data.
    fn progress(progress: &Self::Progress, request_id: &str) -> (&'static str, Value);
    /// Headers a whole answer adds.
    fn headers(&self, _response: &mut http::Response<Body>) {}
}

/// The response for a reply.
pub fn reply<D: PlatformDetails>(request_id: &str, reply: Reply<D>) -> http::Response<Body> {
    match reply {
        Reply::Whole(answer) => whole(request_id, &answer),
        Reply::Stream(streamed) => stream(request_id, streamed),
    }
}

/// A whole answer as JSON, with the answering provider in `x-*` headers.
pub fn whole<D: PlatformDetails>(request_id: &str, answer: &Answer<D>) -> http::Response<Body> {
    let mut response = if D::PLAIN_CHAT {
        web::json(http::StatusCode::OK, &plain_json(request_id, answer))
    } else {
        web::json(http::StatusCode::OK, &Value::Object(answer_json(request_id, answer, true)))
    };
    answer_headers(&mut response, answer);
    response
}

/// The `x-*` headers of a whole answer: who answered, the cache, the mode's own.
pub(crate) fn answer_headers<D: PlatformDetails>(response: &mut http::Response<Body>, answer: &Answer<D>) {
    if let Some(answered) = &answer.answered {
        answered_headers(response, answered, answer.model());
    }
    cache_header(response, answer.cache);
    answer.details.headers(response);
}

/// A streamed reply as server-sent events, each as it happens; events ready together leave in
/// one chunk.
pub fn stream<D: PlatformDetails>(request_id: &str, streamed: Streamed<D>) -> http::Response<Body> {
    let id = request_id.to_owned();
    sse_reply(streamed, move |event, out| frames(&id, event, out))
}

/// A streamed reply as server-sent events in any dialect: `write` turns each event into its
/// frames (keeping whatever state the dialect needs), events ready together leave in one
/// chunk, and the `x-*` headers known when the stream opens are set.
pub(crate) fn sse_reply<D: Details>(
    streamed: Streamed<D>,
    mut write: impl FnMut(&Event<D>, &mut Vec<u8>) + 'static,
) -> http::Response<Body> {
    let Streamed { head, events } = streamed;
    let frames = events
        .ready_chunks(32)
        .map(move |events| {
            let mut out = Vec::new();
            for event in &events {
                write(event, &mut out);
            }
            Bytes::from(out)
        })
        .boxed_local();
    let mut response = web::sse(frames);
    head_headers(&mut response, &head);
    response
}

/// A whole answer as JSON in any dialect, with the answer's `x-*` headers.
pub(crate) fn json_reply<D: PlatformDetails>(body: &Value, answer: &Answer<D>) -> http::Response<Body> {
    let mut response = web::json(http::StatusCode::OK, body);
    answer_headers(&mut response, answer);
    response
}

/// The `x-*` headers a stream knows when it opens.
fn head_headers(response: &mut http::Response<Body>, head: &Head) {
    if let Some(answered) = &head.answered {
        answered_headers(response, answered, &answered.model);
    }
    cache_header(response, head.cache);
}

fn answered_headers(response: &mut http::Response<Body>, answered: &Answered, model: &str) {
    web::set_header(response, "x-provider", &answered.provider);
    web::set_header(response, "x-model", model);
    web::set_header(response, "x-attempts", &answered.attempts.len().to_string());
}

fn cache_header(response: &mut http::Response<Body>, cache: Option<CacheStatus>) {
    match cache {
        Some(CacheStatus::Hit) => web::set_header(response, "x-cache", "hit"),
        Some(CacheStatus::Miss) => web::set_header(response, "x-cache", "miss"),
        None => {}
    }
}

/// The frames of one event.
fn frames<D: PlatformDetails>(request_id: &str, event: &Event<D>, out: &mut Vec<u8>) {
    let mut push = |name: &str, data: &Value| out.extend_from_slice(&sse::encode(name, data));
    match event {
        Event::Start(start) => push("start", &start_json::<D>(request_id, start)),
        Event::Progress(progress) => {
            let (name, data) = D::progress(progress, request_id);
            push(name, &data);
        }
        Event::Delta(text) => push("delta", &json!({ "text": text })),
        Event::Thinking(text) => push("thinking", &json!({ "text": text })),
        Event::ThinkingSignature(signature) => push("thinking_signature", &json!({ "signature": signature })),
        Event::ToolCall(piece) => push("tool_call", &piece_json(piece)),
        Event::Done(answer) => {
            push("usage", &usage_json(&answer.response.usage, answer.cost_usd));
            push("done", &done_json(request_id, answer));
        }
        Event::Failed(failure) => push("error", &failure_json(request_id, failure)),
    }
}

fn start_json<D: PlatformDetails>(request_id: &str, start: &Start) -> Value {
    let answered = start.answered.as_ref();
    let model = start.model_name();
    if D::PLAIN_CHAT {
        return json!({
            "id": request_id,
            "provider": answered.map(|a| a.provider.as_str()),
            "model": model,
            "attempts": answered.map_or(0, |a| a.attempts.len()),
        });
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(request_id));
    out.insert("object".into(), json!(object(start.mode)));
    out.insert("mode".into(), json!(start.mode.as_str()));
    if let Some(tier) = start.tier {
        out.insert("tier".into(), json!(tier.as_str()));
    }
    if let Some(answered) = answered {
        out.insert("provider".into(), json!(answered.provider));
        out.insert("model".into(), json!(model));
        out.insert("attempts".into(), json!(answered.attempts.len()));
    }
    if let Some(query) = &start.query {
        out.insert("query".into(), json!(query));
    }
    if let Some(reasoning) = &start.reasoning {
        out.insert(
            "reasoning".into(),
            json!({"effort": reasoning.effort.as_str(), "budget_tokens": reasoning.budget_tokens}),
        );
    }
    if let Some(tools) = &start.tools {
        out.insert("tools".into(), json!(tools));
    }
    Value::Object(out)
}

/// A streamed piece of a call, as it comes: `id` and `name` on a call's first piece only,
/// `signature` on the piece that brought one.
fn piece_json(piece: &ToolCallPiece) -> Value {
    let mut out = json!({ "index": piece.index, "arguments": piece.arguments });
    if let Some(map) = out.as_object_mut() {
        for (key, value) in [("id", &piece.id), ("name", &piece.name), ("signature", &piece.signature)] {
            if let Some(value) = value {
                map.insert(key.into(), json!(value));
            }
        }
    }
    out
}

fn done_json<D: PlatformDetails>(request_id: &str, answer: &Answer<D>) -> Value {
    if D::PLAIN_CHAT {
        let mut done = json!({
            "finish_reason": answer.finish_reason().as_str().to_owned(),
            "provider": answer.answered.as_ref().map(|a| a.provider.as_str()),
            "model": answer.model(),
            "attempts": answer.answered.as_ref().map_or(0, |a| a.attempts.len()),
        });
        if let (false, Some(map)) = (answer.response.tool_calls.is_empty(), done.as_object_mut()) {
            map.insert("tool_calls".into(), tool_calls_json(&answer.response.tool_calls));
        }
        return done;
    }
    // Everything but the message (and the reasoning): the stream has delivered both.
    Value::Object(answer_json(request_id, answer, false))
}

/// The terminal `error` event's data.
pub fn failure_json(request_id: &str, failure: &Failure) -> Value {
    match failure {
        Failure::Interrupted(broken) => json!({
            "type": "upstream_error",
            "code": "stream_interrupted",
            "message": broken.message,
            "request_id": request_id,
        }),
        Failure::Failed(err) => ApiError::from(err.clone()).to_json(request_id),
    }
}

/// The `object` of a mode's answer.
fn object(mode: Mode) -> String {
    match mode {
        // The agent's answer is chat's, on System 2.
        Mode::Chat => "chat.completion".to_owned(),
        other => format!("{other}.answer"),
    }
}

/// Plain chat's JSON answer, typed rather than built as a `Value` map: it is written on every
/// non-streamed answer. Fields in alphabetical order, as they always came out.
#[derive(Serialize)]
struct PlainJson<'a> {
    attempt_log: &'a [Attempt],
    attempts: usize,
    finish_reason: String,
    id: &'a str,
    message: Value,
    model: &'a str,
    object: &'static str,
    provider: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_signature: Option<&'a str>,
    usage: Value,
}

fn plain_json<'a, D>(request_id: &'a str, answer: &'a Answer<D>) -> PlainJson<'a> {
    let attempts = answer.answered.as_ref().map_or(&[][..], |a| a.attempts.as_slice());
    // With calls, an empty `content` is `null`, as OpenAI writes it.
    let message = if answer.response.tool_calls.is_empty() {
        json!({"role": "assistant", "content": answer.response.text})
    } else {
        let content = (!answer.response.text.is_empty()).then_some(answer.response.text.as_str());
        json!({"role": "assistant", "content": content, "tool_calls": tool_calls_json(&answer.response.tool_calls)})
    };
    PlainJson {
        attempt_log: attempts,
        attempts: attempts.len(),
        finish_reason: answer.finish_reason().as_str().to_owned(),
        id: request_id,
        message,
        model: answer.model(),
        object: "chat.completion",
        provider: answer.answered.as_ref().map_or("", |a| a.provider.as_str()),
        thinking: answer.response.thinking.as_deref(),
        thinking_signature: answer.response.thinking_signature.as_deref(),
        usage: usage_json(&answer.response.usage, answer.cost_usd),
    }
}

/// A mode's answer: the common fields, then the mode's own; with the message and reasoning
/// for a JSON answer, without them for a stream's `done`.
pub(crate) fn answer_json<D: PlatformDetails>(request_id: &str, answer: &Answer<D>, whole: bool) -> Map<String, Value> {
    let answered = answer.answered.as_ref();
    let mut out = Map::new();
    out.insert("id".into(), json!(request_id));
    out.insert("object".into(), json!(object(answer.mode)));
    out.insert("mode".into(), json!(answer.mode.as_str()));
    out.insert("provider".into(), json!(answered.map(|a| a.provider.as_str())));
    out.insert("model".into(), json!(answered.map(|_| answer.model())));
    out.insert("attempts".into(), json!(answered.map_or(0, |a| a.attempts.len())));
    if let Some(answered) = answered {
        out.insert("attempt_log".into(), json!(answered.attempts));
    }
    out.insert("finish_reason".into(), json!(answer.finish_reason().as_str().to_owned()));
    out.insert("usage".into(), usage_json(&answer.response.usage, answer.cost_usd));
    if let Some(tier) = answer.tier {
        out.insert("tier".into(), json!(tier.as_str()));
    }
    out.insert("citations".into(), Value::Array(answer.citations.iter().map(citation_json).collect()));
    if whole {
        out.insert("message".into(), json!({"role": "assistant", "content": answer.response.text}));
        match (answer.show_thinking, &answer.response.thinking) {
            (ShowThinking::Always, thinking) | (ShowThinking::IfAny, thinking @ Some(_)) => {
                out.insert("thinking".into(), json!(thinking));
            }
            _ => {}
        }
        if let Some(signature) = &answer.response.thinking_signature {
            out.insert("thinking_signature".into(), json!(signature));
        }
    }
    answer.details.fields(request_id, &mut out);
    out
}

pub fn citation_json(citation: &Citation) -> Value {
    match citation {
        Citation::Web { index, url, title } => json!({ "index": index, "url": url, "title": title }),
        Citation::Passage { index, document_id, chunk, score } => {
            json!({ "index": index, "document_id": document_id, "chunk": chunk, "score": score })
        }
    }
}

/// `usage`: `reasoning_tokens` (part of `output_tokens`) appears only when the provider counted
/// some, `cost_usd` when every model's price is known (pricing.rs).
pub fn usage_json(usage: &Usage, cost_usd: Option<f64>) -> Value {
    let mut value = json!({
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens(),
    });
    if let Some(map) = value.as_object_mut() {
        if usage.reasoning_tokens > 0 {
            map.insert("reasoning_tokens".into(), json!(usage.reasoning_tokens));
        }
        if let Some(cost) = cost_usd {
            // Billionths of a dollar: exact for single tokens, without float noise in the JSON.
            map.insert("cost_usd".into(), json!((cost * 1e9).round() / 1e9));
        }
    }
    value
}

/// Plain chat: no details, no progress.
impl PlatformDetails for () {
    fn fields(&self, _: &str, _: &mut Map<String, Value>) {}

    fn progress(progress: &Self::Progress, _: &str) -> (&'static str, Value) {
        match *progress {}
    }
}
