//! The seed's chat answer (`{"result","mode","trace_id","tokens_used","time_ms","events"}`) and
//! stream (`start`, the mode's progress as `progress`, the text as `message`, reasoning as
//! `info`, then `result` or `error`, and always `end` last: every stream ends in one of the
//! two), written from a runtime [`Reply`].

use serde_json::{json, Value};

use opencode_runtime::answer::{Answer, Event, Failure, Reply};
use opencode_runtime::Body;

use super::mode_name;
use crate::error::ApiError;
use crate::platform::render::{self, PlatformDetails};
use crate::sse;

/// The response for a reply; `elapsed_ms` is how long the request has taken so far.
pub fn reply<D: PlatformDetails>(request_id: &str, elapsed_ms: u64, reply: Reply<D>) -> http::Response<Body> {
    match reply {
        Reply::Whole(answer) => render::json_reply(&whole(request_id, elapsed_ms, &answer), &answer),
        Reply::Stream(streamed) => {
            let request_id = request_id.to_owned();
            let (mut started, mut text) = (false, String::new());
            render::sse_reply(streamed, move |event, out| {
                if !std::mem::replace(&mut started, true) {
                    out.extend_from_slice(&sse::encode("start", &json!({ "status": "connected" })));
                }
                write(&request_id, event, &mut text, out);
            })
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
        Event::ThinkingSignature(_) => {}
        // The seed's API has no tool calls (its chat takes a query, not tools).
        Event::ToolCall(_) => {}
        Event::Done(answer) => {
            // A replayed or whole answer may come without deltas.
            let response = if text.is_empty() { answer.response.text.as_str() } else { text.as_str() };
            push("result", json!({ "response": response, "trace_id": request_id }));
            push("end", json!({ "status": "complete" }));
        }
        Event::Failed(failure) => {
            push("error", json!({ "message": message(failure) }));
            push("end", json!({ "status": "complete" }));
        }
    }
}

fn message(failure: &Failure) -> String {
    match failure {
        Failure::Interrupted(broken) => broken.message.clone(),
        Failure::Failed(err) => ApiError::from(err.clone()).to_string(),
    }
}
