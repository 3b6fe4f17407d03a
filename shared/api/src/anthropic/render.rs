//! Anthropic's Messages answer (`message`) and stream (`message_start`, content blocks and
//! their deltas, `message_delta`, `message_stop`, or `error`), written from a runtime
//! [`Reply`] and nothing else. The platform's details go in the `opencode` field, as in
//! OpenAI's dialect.

use serde_json::{json, Value};

use opencode_core::model::{FinishReason, ToolCallPiece, Usage};
use opencode_runtime::answer::{Answer, Event, Reply, ShowThinking};
use opencode_runtime::Body;

use super::error;
use crate::platform::render::{self, PlatformDetails};
use crate::sse;

/// The extension field that carries the platform's details.
const EXTENSION: &str = "opencode";

/// The response for a reply.
pub fn reply<D: PlatformDetails>(request_id: &str, reply: Reply<D>) -> http::Response<Body> {
    match reply {
        Reply::Whole(answer) => render::json_reply(&message(request_id, &answer), &answer),
        Reply::Stream(streamed) => {
            let model = streamed.head.model_name();
            let mut blocks = Blocks { request_id: request_id.to_owned(), model, started: false, open: None, count: 0 };
            render::sse_reply(streamed, move |event, out| blocks.write(event, out))
        }
    }
}

/// The message's id: the request's, prefixed as Anthropic's are.
fn message_id(request_id: &str) -> String {
    format!("msg_{request_id}")
}

/// A whole answer: a `message` whose content is the reasoning (when shown), the text and the
/// calls, in that order.
pub fn message<D: PlatformDetails>(request_id: &str, answer: &Answer<D>) -> Value {
    let response = &answer.response;
    let mut content = Vec::new();
    if let (ShowThinking::Always | ShowThinking::IfAny, Some(thinking)) = (answer.show_thinking, &response.thinking) {
        // Anthropic's signature proves the text came from its model; other vendors give none.
        let signature = response.thinking_signature.as_deref().unwrap_or_default();
        content.push(json!({ "type": "thinking", "thinking": thinking, "signature": signature }));
    }
    if !response.text.is_empty() || response.tool_calls.is_empty() {
        content.push(json!({ "type": "text", "text": response.text }));
    }
    for call in &response.tool_calls {
        content.push(json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input(&call.arguments) }));
    }
    json!({
        "id": message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": answer.model(),
        "content": content,
        "stop_reason": stop_reason(&answer.finish_reason()),
        "stop_sequence": null,
        "usage": usage(&response.usage),
        EXTENSION: render::answer_json(request_id, answer, false),
    })
}

/// A call's arguments as the `input` object Anthropic's clients read.
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        // Not an object (a vendor's malformed arguments): kept as text rather than lost.
        _ => json!({ "arguments": arguments }),
    }
}

fn stop_reason(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
        FinishReason::Other(other) if matches!(other.as_str(), "stop_sequence" | "pause_turn" | "refusal") => other,
        FinishReason::Stop | FinishReason::Other(_) => "end_turn",
    }
}

/// Anthropic's `input_tokens` leaves out what was read from its cache, which it counts apart
/// (and what was written to it, which the platform does not count: 0).
fn usage(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens.saturating_sub(usage.cached_tokens),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    })
}

/// The content block open on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its index in the answer's calls.
    Tool(usize),
}

/// The state of one stream's events.
struct Blocks {
    request_id: String,
    model: String,
    started: bool,
    open: Option<Open>,
    /// Content blocks opened so far (the next one's index).
    count: usize,
}

impl Blocks {
    fn write<D: PlatformDetails>(&mut self, event: &Event<D>, out: &mut Vec<u8>) {
        let mut push = |name: &str, data: Value| out.extend_from_slice(&sse::encode(name, &data));
        match event {
            Event::Start(start) => {
                if let Some(model) = start.model_name() {
                    model.clone_into(&mut self.model);
                }
                self.start(&mut push);
            }
            // Progress has no place in Anthropic's stream: a `ping` keeps the connection alive.
            Event::Progress(_) => push("ping", json!({ "type": "ping" })),
            Event::Delta(text) => {
                self.start(&mut push);
                self.ensure(Open::Text, json!({ "type": "text", "text": "" }), &mut push);
                push("content_block_delta", self.delta(json!({ "type": "text_delta", "text": text })));
            }
            Event::Thinking(text) => {
                self.start(&mut push);
                self.ensure(Open::Thinking, json!({ "type": "thinking", "thinking": "", "signature": "" }), &mut push);
                push("content_block_delta", self.delta(json!({ "type": "thinking_delta", "thinking": text })));
            }
            Event::ThinkingSignature(signature) => {
                self.start(&mut push);
                self.ensure(Open::Thinking, json!({ "type": "thinking", "thinking": "", "signature": "" }), &mut push);
                push("content_block_delta", self.delta(json!({ "type": "signature_delta", "signature": signature })));
            }
            Event::ToolCall(piece) => {
                self.start(&mut push);
                self.tool_piece(piece, &mut push);
            }
            Event::Done(answer) => {
                answer.model().clone_into(&mut self.model);
                self.start(&mut push);
                self.close(&mut push);
                push(
                    "message_delta",
                    json!({
                        "type": "message_delta",
                        "delta": { "stop_reason": stop_reason(&answer.finish_reason()), "stop_sequence": null },
                        "usage": usage(&answer.response.usage),
                        EXTENSION: render::answer_json(&self.request_id, answer, false),
                    }),
                );
                push("message_stop", json!({ "type": "message_stop" }));
            }
            // The SDKs raise on an `error` event: a broken stream never reads as a whole answer.
            Event::Failed(failure) => push("error", json!({ "type": "error", "error": error::failure(failure) })),
        }
    }

    /// `message_start` (and a first `ping`), unless sent.
    fn start(&mut self, push: &mut impl FnMut(&str, Value)) {
        if self.started {
            return;
        }
        self.started = true;
        push(
            "message_start",
            json!({ "type": "message_start", "message": {
                "id": message_id(&self.request_id), "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": 0, "output_tokens": 0 },
            }}),
        );
        push("ping", json!({ "type": "ping" }));
    }

    /// Opens a block of kind `open` (closing the one open) unless it is the one open.
    fn ensure(&mut self, open: Open, block: Value, push: &mut impl FnMut(&str, Value)) {
        if self.open == Some(open) {
            return;
        }
        self.close(push);
        push(
            "content_block_start",
            json!({ "type": "content_block_start", "index": self.count, "content_block": block }),
        );
        self.open = Some(open);
        self.count = self.count.saturating_add(1);
    }

    /// A piece of a call: its first piece (the one with the id) opens a `tool_use` block, the
    /// arguments arrive as `input_json_delta`s.
    fn tool_piece(&mut self, piece: &ToolCallPiece, push: &mut impl FnMut(&str, Value)) {
        if piece.id.is_some() || self.open != Some(Open::Tool(piece.index)) {
            let block = json!({
                "type": "tool_use",
                "id": piece.id.as_deref().unwrap_or_default(),
                "name": piece.name.as_deref().unwrap_or_default(),
                "input": {},
            });
            self.close(push);
            self.ensure(Open::Tool(piece.index), block, push);
        }
        if !piece.arguments.is_empty() {
            push(
                "content_block_delta",
                self.delta(json!({ "type": "input_json_delta", "partial_json": piece.arguments })),
            );
        }
    }

    fn close(&mut self, push: &mut impl FnMut(&str, Value)) {
        if self.open.take().is_some() {
            let index = self.count.saturating_sub(1);
            push("content_block_stop", json!({ "type": "content_block_stop", "index": index }));
        }
    }

    /// A `content_block_delta` of the open block.
    fn delta(&self, delta: Value) -> Value {
        json!({ "type": "content_block_delta", "index": self.count.saturating_sub(1), "delta": delta })
    }
}
