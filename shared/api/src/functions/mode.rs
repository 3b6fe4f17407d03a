//! What every mode function shares: its request body (the chat body plus the mode's own
//! fields), the tier the gateway asked for, the common fields of the JSON answer, and SSE
//! streams that carry progress events while the mode works.
//!
//! Stream shape: `start` ({id, mode, tier}), the mode's progress events, `delta`/`thinking`
//! as the model writes, `usage`, then `done` carrying every field of the JSON answer except
//! the message text. `error` is terminal.

use std::future::Future;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::stream::{self, LocalBoxStream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::chat::{finish_name, usage_json, ChatBody};
use crate::error::ApiError;
use crate::{sse, web};
use opencode_core::model::{add_tool_call_piece, ChatRequest, ChatResponse, FinishReason, Role, StreamEvent, Usage};
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::executor::{Answered, EventStream, StreamFailure};

/// The header the gateway sets when `/v1/process` forwards a request: the tier it decided.
pub const TIER_HEADER: &str = "x-opencode-tier";

/// Splits a mode's body into the chat body and the mode's own fields, those named in
/// `fields` (deserialized as `E`). Unknown fields are still refused, by name.
pub fn parse_mode_body<E: DeserializeOwned>(
    parts: &http::request::Parts,
    bytes: &[u8],
    fields: &[&str],
) -> Result<(ChatBody, E), ApiError> {
    let mut value: Value = web::parse_json(parts, bytes)?;
    let object = value.as_object_mut().ok_or_else(|| ApiError::Validation("the body must be a JSON object".into()))?;
    let own: Map<String, Value> =
        fields.iter().filter_map(|name| object.remove(*name).map(|v| ((*name).to_string(), v))).collect();
    let own = serde_json::from_value(Value::Object(own)).map_err(|err| ApiError::Validation(err.to_string()))?;
    let chat = serde_json::from_value(value).map_err(|err| ApiError::Validation(err.to_string()))?;
    Ok((chat, own))
}

/// Tool calling is a chat feature: the other modes run their own pipeline (sources, a sandbox,
/// a plan) and cannot hand calls back to the caller, so `tools`, `tool_choice` and tool
/// messages are refused by name rather than ignored. `response_format` is refused too unless
/// the mode passes it to the model unchanged (`format_ok`: thinking).
pub fn refuse_tools(request: &ChatRequest, mode: Mode, format_ok: bool) -> Result<(), ApiError> {
    let refuse = |what: &str| Err(ApiError::Validation(format!("the {mode} mode does not take {what}; use /v1/chat")));
    if !request.tools.is_empty() {
        return refuse("`tools`");
    }
    if request.tool_choice.is_some() {
        return refuse("`tool_choice`");
    }
    if request.messages.iter().any(|m| m.role == Role::Tool || !m.tool_calls.is_empty()) {
        return refuse("tool calls or tool messages in `messages`");
    }
    if request.response_format.is_some() && !format_ok {
        return refuse("`response_format`");
    }
    Ok(())
}

/// A count field of a body (`max_results`, `top_k`, ...): a whole number from 1 to `max`,
/// `default` when absent or null.
pub fn count(name: &str, value: Option<&Value>, default: usize, max: usize) -> Result<usize, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::Validation(format!("`{name}` must be a whole number from 1 to {max}"))),
    }
}

/// The tier the gateway decided for this request, if it came through `/v1/process`.
pub fn requested_tier(headers: &http::HeaderMap) -> Option<Tier> {
    match headers.get(TIER_HEADER)?.to_str().ok()?.trim() {
        "system1" => Some(Tier::System1),
        "system2" => Some(Tier::System2),
        _ => None,
    }
}

/// The fields every mode's JSON answer starts with; the mode adds its own (`citations`, ...).
pub fn answer_json(request_id: &str, mode: Mode, answer: &ChatResponse, answered: &Answered) -> Map<String, Value> {
    let model = if answer.model.is_empty() { answered.model.clone() } else { answer.model.clone() };
    let value = json!({
        "id": request_id,
        "object": format!("{mode}.answer"),
        "mode": mode.as_str(),
        "provider": answered.provider,
        "model": model,
        "attempts": answered.attempts.len(),
        "message": {"role": "assistant", "content": answer.text},
        "finish_reason": finish_name(&answer.finish_reason),
        "usage": usage_json(&answer.usage, answered.cost_usd(&answer.usage)),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The `done` event's data for a JSON answer: everything but the message text, which the
/// stream has already delivered as deltas.
pub fn done_json(mut answer: Map<String, Value>) -> Value {
    answer.remove("message");
    Value::Object(answer)
}

/// Sends SSE frames into the stream a mode's response is reading. Sending never fails: a
/// client that went away just stops reading.
pub struct Emitter {
    tx: mpsc::UnboundedSender<Bytes>,
    request_id: String,
}

impl Emitter {
    /// One event.
    pub fn send(&self, event: &str, data: &Value) {
        let _ = self.tx.unbounded_send(sse::encode(event, data));
    }

    /// The terminal `error` event for `err`.
    pub fn error(&self, err: &ApiError) {
        self.send("error", &err.to_json(&self.request_id));
    }

    /// The terminal `error` event for a model stream that broke after it started.
    pub fn stream_failed(&self, failure: &StreamFailure) {
        self.send(
            "error",
            &json!({
                "type": "upstream_error",
                "code": "stream_interrupted",
                "message": failure.message,
                "request_id": self.request_id,
            }),
        );
    }

    /// The request id this stream answers.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

/// A `text/event-stream` response whose frames `task` emits as it works. The task runs while
/// the client reads; the stream ends when the task has finished and every frame is out.
pub fn event_stream<Fut>(request_id: &str, task: impl FnOnce(Emitter) -> Fut) -> http::Response<opencode_runtime::Body>
where
    Fut: Future<Output = ()> + 'static,
{
    let (tx, rx) = mpsc::unbounded();
    let work = task(Emitter { tx, request_id: request_id.to_string() });
    // The task drops its Emitter when it finishes, which ends `rx` once drained.
    let driver = stream::once(work).filter_map(|()| async { None });
    let frames: LocalBoxStream<'static, Bytes> = stream::select(rx, driver).boxed_local();
    web::sse(frames)
}

/// Relays a committed model stream as `delta` and `thinking` events and returns the whole
/// answer. On a broken stream it returns the failure; the caller ends the stream with it.
pub async fn relay(
    emitter: &Emitter,
    mut events: EventStream,
    answered: &Answered,
) -> Result<ChatResponse, StreamFailure> {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut model = None;
    let mut usage = Usage::default();
    let mut finish = FinishReason::Stop;
    let mut tool_calls = Vec::new();
    while let Some(event) = events.next().await {
        match event? {
            StreamEvent::Delta(piece) => {
                emitter.send("delta", &json!({ "text": piece }));
                text.push_str(&piece);
            }
            StreamEvent::Thinking(piece) => {
                emitter.send("thinking", &json!({ "text": piece }));
                thinking.push_str(&piece);
            }
            StreamEvent::Model(name) => model = Some(name),
            StreamEvent::Usage(more) => usage.merge(more),
            StreamEvent::Finish(reason) => finish = reason,
            // Modes send no tools, so no calls come; kept whole should a model call anyway.
            StreamEvent::ToolCall { index, id, name, arguments, signature } => add_tool_call_piece(
                &mut tool_calls,
                index,
                id.as_deref(),
                name.as_deref(),
                &arguments,
                signature.as_deref(),
            ),
            StreamEvent::Done => break,
        }
    }
    Ok(ChatResponse {
        text,
        thinking: (!thinking.is_empty()).then_some(thinking),
        model: model.unwrap_or_else(|| answered.model.clone()),
        finish_reason: finish,
        usage,
        tool_calls,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn parts() -> http::request::Parts {
        http::Request::post("/v1/x").header("content-type", "application/json").body(()).unwrap().into_parts().0
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Own {
        top_k: Option<u32>,
    }

    #[test]
    fn a_mode_body_splits_its_own_fields_from_the_chat_body() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],"top_k":3,"stream":true}"#;
        let (chat, own) = parse_mode_body::<Own>(&parts(), body, &["top_k"]).unwrap();
        assert_eq!(own.top_k, Some(3));
        assert!(chat.stream);

        let body = br#"{"messages":[{"role":"user","content":"hi"}],"top_kk":3}"#;
        let err = parse_mode_body::<Own>(&parts(), body, &["top_k"]).unwrap_err();
        assert!(matches!(&err, ApiError::Validation(m) if m.contains("top_kk")), "{err:?}");

        let err = parse_mode_body::<Own>(
            &parts(),
            br#"{"messages":[{"role":"user","content":"hi"}],"top_k":"x"}"#,
            &["top_k"],
        )
        .unwrap_err();
        assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn frames_arrive_in_order_and_the_stream_ends_with_the_task() {
        let response = event_stream("req_1", |emitter| async move {
            emitter.send("plan", &json!({"n": 1}));
            futures::future::ready(()).await;
            emitter.send("done", &json!({}));
        });
        let opencode_runtime::Body::Stream(body) = response.into_body() else { panic!("not a stream") };
        let frames: Vec<_> = futures::executor::block_on(body.map(Result::unwrap).collect());
        let text: String = frames.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        assert_eq!(text, "event: plan\ndata: {\"n\":1}\n\nevent: done\ndata: {}\n\n");
    }

    #[test]
    fn the_tier_header_is_read_strictly() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(requested_tier(&headers), None);
        headers.insert(TIER_HEADER, http::HeaderValue::from_static("system2"));
        assert_eq!(requested_tier(&headers), Some(Tier::System2));
        headers.insert(TIER_HEADER, http::HeaderValue::from_static("fast"));
        assert_eq!(requested_tier(&headers), None);
    }
}
