//! Test fixtures every dialect's tests share: a conversation that used tools, and SSE texts
//! split, decoded and added up the way the executor reads them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::{ProviderError, ProviderKind, SseEvent, StreamDecoder};
use crate::model::{ChatRequest, ToolCall};

/// A PNG as base64 (a 1x1 pixel) and the URL of a JPEG: one user message showing both.
pub const PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

pub fn image_conversation() -> ChatRequest {
    use crate::model::{Image, ImageSource, Message};
    let mut asks = Message::user("What is in these?");
    asks.images = vec![
        Image { source: ImageSource::Base64 { media_type: "image/png".into(), data: PIXEL_PNG.into() }, detail: None },
        Image { source: ImageSource::Url { url: "https://img.example/cat.jpg".into() }, detail: Some("low".into()) },
    ];
    ChatRequest { messages: vec![Message::system("Be brief."), asks], ..ChatRequest::default() }
}

/// A conversation that used tools, for every dialect's tests: two calls in one assistant turn,
/// both answered, then a new question.
pub fn tool_conversation() -> ChatRequest {
    use crate::model::{Message, Tool, ToolChoice};
    let calls = vec![
        ToolCall::new("call_1", "get_weather", r#"{"location":"Paris"}"#),
        ToolCall::new("call_2", "get_time", ""),
    ];
    ChatRequest {
        messages: vec![
            Message::system("Be brief."),
            Message::user("Weather in Paris?"),
            Message { tool_calls: calls, ..Message::assistant("") },
            Message::tool_result("call_1", r#"{"temp_c": 18}"#),
            Message::tool_result("call_2", "10:00"),
            Message::user("And tomorrow?"),
        ],
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: "Current weather for a place".into(),
                parameters: serde_json::json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
                strict: true,
            },
            Tool {
                name: "get_time".into(),
                description: String::new(),
                parameters: serde_json::json!({"type": "object", "properties": {}}),
                strict: false,
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        ..ChatRequest::default()
    }
}

/// Splits an SSE text into events the way the executor's reader does (test fixtures only).
pub fn sse_events(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut current = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                current.data = data.join("\n");
                events.push(std::mem::take(&mut current));
            }
            data.clear();
            current = SseEvent::default();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        } else if let Some(value) = line.strip_prefix("event:") {
            current.event = value.trim().to_owned();
        }
    }
    events
}

/// Decodes every event of a fixture, then calls `finish`; stops at the first error.
pub fn decode_all(kind: ProviderKind, text: &str) -> Result<Vec<crate::model::StreamEvent>, ProviderError> {
    let mut decoder = StreamDecoder::new(kind);
    let mut out = Vec::new();
    for event in sse_events(text) {
        out.extend(decoder.decode(&event)?);
    }
    out.extend(decoder.finish()?);
    Ok(out)
}

/// What a stream adds up to, for checking a whole fixture at once.
#[derive(Debug, Default, PartialEq)]
pub struct Collected {
    pub text: String,
    pub thinking: String,
    pub models: Vec<String>,
    pub usage: crate::model::Usage,
    pub finishes: Vec<crate::model::FinishReason>,
    pub done: usize,
    pub tool_calls: Vec<crate::model::ToolCall>,
}

pub fn collect(events: &[crate::model::StreamEvent]) -> Collected {
    use crate::model::StreamEvent;
    let mut c = Collected::default();
    for event in events {
        match event {
            StreamEvent::Delta(t) => c.text.push_str(t),
            StreamEvent::Thinking(t) => c.thinking.push_str(t),
            StreamEvent::ThinkingSignature(_) => {}
            StreamEvent::Model(m) => c.models.push(m.clone()),
            StreamEvent::Usage(u) => c.usage.merge(*u),
            StreamEvent::Finish(f) => c.finishes.push(f.clone()),
            StreamEvent::Done => c.done += 1,
            StreamEvent::ToolCall(piece) => crate::model::add_tool_call_piece(&mut c.tool_calls, piece),
        }
    }
    c
}

#[test]
fn sse_splitter_joins_data_lines_and_keeps_event_names() {
    let events = sse_events("event: a\ndata: 1\ndata: 2\n\n: comment\n\ndata:3\n");
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].event.as_str(), events[0].data.as_str()), ("a", "1\n2"));
    assert_eq!((events[1].event.as_str(), events[1].data.as_str()), ("", "3"));
}
