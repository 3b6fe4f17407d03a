//! OpenAI's Chat Completions answer (`chat.completion`) and stream (`chat.completion.chunk`
//! lines, then `[DONE]`), written from a runtime [`Reply`] and nothing else.
//!
//! What OpenAI's shape has no field for (the provider, the attempts, the tier, the cost, the
//! mode's sources and steps) goes in one extension field, `opencode`: the platform's own answer
//! without its message, and in the same `x-*` headers as the platform's dialect.

use serde_json::{json, Map, Value};

use opencode_core::model::{FinishReason, ToolCallPiece, Usage};
use opencode_runtime::answer::{Answer, Citation, Event, Reply, ShowThinking};
use opencode_runtime::Body;

use super::error;
use crate::platform::render::{self, PlatformDetails};
use crate::platform::tool_fields::tool_calls_json;

/// The extension field that carries the platform's details.
pub const EXTENSION: &str = "opencode";

/// How the client asked for the answer to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// `created`: the request's time, in seconds since the Unix epoch.
    pub created: u64,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

/// The response for a reply.
pub fn reply<D: PlatformDetails>(request_id: &str, format: Format, reply: Reply<D>) -> http::Response<Body> {
    match reply {
        Reply::Whole(answer) => render::json_reply(&completion(request_id, format.created, &answer), &answer),
        Reply::Stream(streamed) => {
            let model = streamed.head.model_name();
            let mut chunks = Chunks {
                id: completion_id(request_id),
                request_id: request_id.to_owned(),
                format,
                model,
                opened: false,
            };
            render::sse_reply(streamed, move |event, out| chunks.write(event, out))
        }
    }
}

/// The answer's id: the request's, prefixed as OpenAI's are.
fn completion_id(request_id: &str) -> String {
    format!("chatcmpl-{request_id}")
}

/// A whole answer: a `chat.completion` with one choice.
pub fn completion<D: PlatformDetails>(request_id: &str, created: u64, answer: &Answer<D>) -> Value {
    let response = &answer.response;
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    // With calls and no text, `content` is null, as OpenAI writes it.
    let content = (!response.text.is_empty() || response.tool_calls.is_empty()).then_some(response.text.as_str());
    message.insert("content".into(), json!(content));
    message.insert("refusal".into(), Value::Null);
    if !response.tool_calls.is_empty() {
        message.insert("tool_calls".into(), tool_calls_json(&response.tool_calls));
    }
    message.insert("annotations".into(), Value::Array(annotations(&response.text, &answer.citations)));
    match (answer.show_thinking, &response.thinking) {
        (ShowThinking::Always, thinking) | (ShowThinking::IfAny, thinking @ Some(_)) => {
            message.insert("reasoning_content".into(), json!(thinking));
        }
        _ => {}
    }
    json!({
        "id": completion_id(request_id),
        "object": "chat.completion",
        "created": created,
        "model": answer.model(),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(&answer.finish_reason()),
        }],
        "usage": usage(&response.usage),
        "system_fingerprint": null,
        EXTENSION: render::answer_json(request_id, answer, false),
    })
}

/// OpenAI's finish reasons; a vendor's other reasons read as `stop` (the original stays in the
/// extension's `finish_reason`).
fn finish_reason(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Other(_) => "stop",
        known => known.as_str(),
    }
}

/// `usage` with OpenAI's names.
pub fn usage(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens(),
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
        "prompt_tokens_details": { "cached_tokens": usage.cached_tokens },
    })
}

/// Web sources as `url_citation` annotations, one per `[n]` marker in the text, as OpenAI's
/// search models answer; the indexes count characters.
fn annotations(text: &str, citations: &[Citation]) -> Vec<Value> {
    let mut found: Vec<(usize, Value)> = Vec::new();
    for citation in citations {
        let Citation::Web { index, url, title } = citation else { continue };
        let marker = format!("[{index}]");
        for (byte, _) in text.match_indices(&marker) {
            let start = text.get(..byte).map_or(0, |before| before.chars().count());
            let end = start.saturating_add(marker.chars().count());
            let annotation = json!({
                "type": "url_citation",
                "url_citation": { "url": url, "title": title, "start_index": start, "end_index": end },
            });
            found.push((start, annotation));
        }
    }
    found.sort_by_key(|(start, _)| *start);
    found.into_iter().map(|(_, annotation)| annotation).collect()
}

/// The state of one stream's chunks.
struct Chunks {
    id: String,
    request_id: String,
    format: Format,
    /// The answering model, once known.
    model: String,
    /// Whether the first chunk (the one with the role) has gone.
    opened: bool,
}

impl Chunks {
    /// Writes one event's lines.
    fn write<D: PlatformDetails>(&mut self, event: &Event<D>, out: &mut Vec<u8>) {
        match event {
            Event::Start(start) => {
                if let Some(model) = start.model_name() {
                    model.clone_into(&mut self.model);
                }
                self.open(out);
            }
            // Progress has no place in OpenAI's stream; a comment line keeps the connection
            // alive while the mode works, and every client skips it.
            Event::Progress(progress) => {
                let (name, _) = D::progress(progress, &self.request_id);
                out.extend_from_slice(format!(": {name}\n\n").as_bytes());
            }
            Event::Delta(text) => self.delta(out, json!({ "content": text })),
            Event::Thinking(text) => self.delta(out, json!({ "reasoning_content": text })),
            // OpenAI's shape has no place for a vendor's signature.
            Event::ThinkingSignature(_) => {}
            Event::ToolCall(piece) => self.delta(out, json!({ "tool_calls": [piece_json(piece)] })),
            Event::Done(answer) => {
                answer.model().clone_into(&mut self.model);
                self.open(out);
                let mut last = self.chunk(json!({}), Some(finish_reason(&answer.finish_reason())));
                if let Some(map) = last.as_object_mut() {
                    map.insert(EXTENSION.into(), Value::Object(render::answer_json(&self.request_id, answer, false)));
                }
                data(out, &last);
                if self.format.include_usage {
                    let mut usage_chunk = self.chunk(Value::Null, None);
                    if let Some(map) = usage_chunk.as_object_mut() {
                        map.insert("choices".into(), json!([]));
                        map.insert("usage".into(), usage(&answer.response.usage));
                    }
                    data(out, &usage_chunk);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            // The SDKs raise on a `data:` line carrying `error`: a failure after the stream
            // opened never reads as a quiet, complete answer.
            Event::Failed(failure) => data(out, &json!({ "error": error::failure(failure) })),
        }
    }

    /// The first chunk, with the role, unless it has gone.
    fn open(&mut self, out: &mut Vec<u8>) {
        if !self.opened {
            self.opened = true;
            data(out, &self.chunk(json!({ "role": "assistant", "content": "", "refusal": null }), None));
        }
    }

    fn delta(&mut self, out: &mut Vec<u8>, delta: Value) {
        self.open(out);
        data(out, &self.chunk(delta, None));
    }

    /// A chunk with one choice whose delta is `delta`.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.format.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        });
        // With `include_usage`, every chunk but the last says `usage: null`, as OpenAI's do.
        if let (true, Some(map)) = (self.format.include_usage, chunk.as_object_mut()) {
            map.insert("usage".into(), Value::Null);
        }
        chunk
    }
}

/// One piece of a call: `index` always; `id`, `type` and the name on the call's first piece.
fn piece_json(piece: &ToolCallPiece) -> Value {
    let mut function = Map::new();
    if let Some(name) = &piece.name {
        function.insert("name".into(), json!(name));
    }
    function.insert("arguments".into(), json!(piece.arguments));
    let mut call = Map::new();
    call.insert("index".into(), json!(piece.index));
    if let Some(id) = &piece.id {
        call.insert("id".into(), json!(id));
        call.insert("type".into(), json!("function"));
    }
    call.insert("function".into(), Value::Object(function));
    if let Some(signature) = &piece.signature {
        call.insert("signature".into(), json!(signature));
    }
    Value::Object(call)
}

/// One `data:` line.
fn data(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(value.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn web(index: usize, url: &str) -> Citation {
        Citation::Web { index, url: url.into(), title: format!("page {index}") }
    }

    #[test]
    fn each_marker_is_one_url_citation_counted_in_characters() {
        let text = "Écoute [2], then [1] and [2].";
        let found = annotations(text, &[web(1, "https://a.example"), web(2, "https://b.example"), web(3, "https://c")]);
        let spans: Vec<(u64, u64, &str)> = found
            .iter()
            .map(|a| {
                let c = &a["url_citation"];
                (c["start_index"].as_u64().unwrap(), c["end_index"].as_u64().unwrap(), c["url"].as_str().unwrap())
            })
            .collect();
        assert_eq!(spans, [(7, 10, "https://b.example"), (17, 20, "https://a.example"), (25, 28, "https://b.example")]);
        assert_eq!(found[0]["type"], "url_citation");
        assert_eq!(found[0]["url_citation"]["title"], "page 2");
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars[7..10].iter().collect::<String>(), "[2]");
    }

    #[test]
    fn a_piece_names_its_call_only_on_the_first_piece() {
        let first = ToolCallPiece {
            index: 1,
            id: Some("call_9".into()),
            name: Some("now".into()),
            arguments: String::new(),
            signature: None,
        };
        assert_eq!(
            piece_json(&first),
            json!({"index": 1, "id": "call_9", "type": "function", "function": {"name": "now", "arguments": ""}})
        );
        let next = ToolCallPiece { index: 1, arguments: "{}".into(), ..ToolCallPiece::default() };
        assert_eq!(piece_json(&next), json!({"index": 1, "function": {"arguments": "{}"}}));
    }

    #[test]
    fn vendor_specific_finish_reasons_read_as_stop() {
        assert_eq!(finish_reason(&FinishReason::Other("pause_turn".into())), "stop");
        assert_eq!(finish_reason(&FinishReason::Length), "length");
        assert_eq!(finish_reason(&FinishReason::ToolCalls), "tool_calls");
    }
}
