//! The seed's chat answer (`{"result","mode","trace_id","tokens_used","time_ms","events"}`) and
//! stream (`start`, the mode's progress as `progress`, the text as `message`, reasoning as
//! `info`, then `result` or `error`, and always `end` last), written from a runtime [`Reply`].

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use opencode_runtime::answer::{Answer, Event, Failure, Reply, Streamed};
use opencode_runtime::Body;

use super::mode_name;
use crate::error::ApiError;
use crate::platform::render::{self, PlatformDetails};
use crate::{sse, web};

/// The response for a reply; `elapsed_ms` is how long the request has taken so far.
pub fn reply<D: PlatformDetails>(request_id: &str, elapsed_ms: u64, reply: Reply<D>) -> http::Response<Body> {
    match reply {
        Reply::Whole(answer) => {
            let mut response = web::json(http::StatusCode::OK, &whole(request_id, elapsed_ms, &answer));
            render::answer_headers(&mut response, &answer);
            response
        }
        Reply::Stream(Streamed { head, events }) => {
            let request_id = request_id.to_owned();
            let mut text = String::new();
            let frames = stream::once(async { sse::encode("start", &json!({ "status": "connected" })) })
                .chain(events.ready_chunks(32).map(move |events| {
                    let mut out = Vec::new();
                    for event in &events {
                        write(&request_id, event, &mut text, &mut out);
                    }
                    Bytes::from(out)
                }))
                .chain(stream::once(async { sse::encode("end", &json!({ "status": "complete" })) }))
                .boxed_local();
            let mut response = web::sse(frames);
            render::head_headers(&mut response, &head);
            response
        }
    }
}

/// A whole answer: the text as `result`; the provider attempts as `events`; the platform's
/// details in `opencode`.
fn whole<D: PlatformDetails>(request_id: &str, elapsed_ms: u64, answer: &Answer<D>) -> Value {
    let attempts = answer.answered.as_ref().map_or(&[][..], |a| a.attempts.as_slice());
    let events: Vec<Value> = attempts.iter().map(|attempt| json!({ "type": "attempt", "data": attempt })).collect();
    json!({
        "result": answer.response.text,
        "mode": mode_name(answer.mode),
        "trace_id": request_id,
        "tokens_used": answer.response.usage.total_tokens(),
        "time_ms": elapsed_ms,
        "events": events,
        "opencode": render::answer_json(request_id, answer, false),
    })
}

/// One event's frames; `text` keeps the answer so far for `result`.
fn write<D: PlatformDetails>(request_id: &str, event: &Event<D>, text: &mut String, out: &mut Vec<u8>) {
    let mut push = |name: &str, data: Value| out.extend_from_slice(&sse::encode(name, &data));
    match event {
        Event::Start(start) => push("info", json!({ "mode": mode_name(start.mode), "trace_id": request_id })),
        Event::Progress(progress) => {
            let (name, data) = D::progress(progress, request_id);
            push("progress", json!({ "stage": name, "data": data }));
        }
        Event::Delta(delta) => {
            text.push_str(delta);
            push("message", json!({ "content": delta }));
        }
        Event::Thinking(thinking) => push("info", json!({ "thinking": thinking })),
        // The seed's API has no tool calls (its chat takes a query, not tools).
        Event::ToolCall(_) => {}
        Event::Done(answer) => {
            // A replayed or whole answer may come without deltas.
            let response = if text.is_empty() { answer.response.text.as_str() } else { text.as_str() };
            push("result", json!({ "response": response, "trace_id": request_id }));
        }
        Event::Failed(failure) => push("error", json!({ "message": message(failure) })),
    }
}

fn message(failure: &Failure) -> String {
    match failure {
        Failure::Interrupted(broken) => broken.message.clone(),
        Failure::Failed(err) => ApiError::from(err.clone()).to_string(),
    }
}
