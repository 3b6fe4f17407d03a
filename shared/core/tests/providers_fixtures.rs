//! Every vendor's recorded fixtures through the public provider interface (the dispatch the
//! executor uses): a whole answer, a whole stream, an error body. The per-field checks live in
//! the unit tests of each provider module; this proves the enum dispatch wires them up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use opencode_core::model::{ChatRequest, FinishReason, Message, Role, StreamEvent, Usage};
use opencode_core::providers::{
    build_request, parse_error, parse_response, ProviderConfig, ProviderError, ProviderKind, SseEvent, StreamDecoder,
};

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A minimal SSE reader: blank lines end events, `data:` lines join with `\n`.
fn sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut event = SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines().chain([""]) {
        if line.is_empty() {
            if !data.is_empty() {
                event.data = data.join("\n");
                events.push(std::mem::take(&mut event));
            }
            data.clear();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.trim_start());
        } else if let Some(v) = line.strip_prefix("event:") {
            event.event = v.trim().to_owned();
        }
    }
    events
}

struct Streamed {
    text: String,
    usage: Usage,
    finish: Option<FinishReason>,
    done: bool,
}

fn stream(kind: ProviderKind, text: &str) -> Result<Streamed, ProviderError> {
    let mut decoder = StreamDecoder::new(kind);
    let mut events = Vec::new();
    for event in sse(text) {
        events.extend(decoder.decode(&event)?);
    }
    events.extend(decoder.finish()?);
    let mut out = Streamed { text: String::new(), usage: Usage::default(), finish: None, done: false };
    for event in events {
        match event {
            StreamEvent::Delta(t) => out.text.push_str(&t),
            StreamEvent::Usage(u) => out.usage.merge(u),
            StreamEvent::Finish(f) => out.finish = Some(f),
            StreamEvent::Done => out.done = true,
            StreamEvent::Thinking(_)
            | StreamEvent::ThinkingSignature(_)
            | StreamEvent::Model(_)
            | StreamEvent::ToolCall(_) => {}
        }
    }
    Ok(out)
}

fn config(kind: ProviderKind, base_url: &str, model: &str) -> ProviderConfig {
    ProviderConfig {
        kind,
        name: format!("{kind:?}").to_lowercase(),
        base_url: base_url.into(),
        api_key: Some("test-key".into()),
        model: model.into(),
        price: None,
    }
}

#[test]
fn every_dialect_builds_a_post_to_its_endpoint() {
    let request = ChatRequest { messages: vec![Message::new(Role::User, "Hi")], ..Default::default() };
    let cases = [
        (ProviderKind::OpenAi, "https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        (ProviderKind::Compat, "http://localhost:8000/v1", "http://localhost:8000/v1/chat/completions"),
        (ProviderKind::Anthropic, "https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        (
            ProviderKind::Gemini,
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta/models/m-1:generateContent",
        ),
    ];
    for (kind, base, expected) in cases {
        let built = build_request(&config(kind, base, "m-1"), &request, false).unwrap();
        assert_eq!(built.method(), http::Method::POST, "{kind:?}");
        assert_eq!(built.uri(), expected, "{kind:?}");
        assert!(!built.uri().to_string().contains("test-key"), "{kind:?}");
    }
}

#[test]
fn every_dialect_reads_its_documented_answer() {
    let cases = [
        (ProviderKind::OpenAi, "openai/chat_completion.json", "Hello! How can I assist you today?", 19, 10),
        (ProviderKind::Anthropic, "anthropic/message.json", "Hi! My name is Claude.", 2095, 503),
        (
            ProviderKind::Gemini,
            "gemini/generate_content.json",
            "AI learns patterns from data to make predictions or decisions.",
            8,
            12,
        ),
    ];
    for (kind, path, text, input, output) in cases {
        let response = parse_response(kind, fixture(path).as_bytes()).unwrap();
        assert_eq!(response.text, text, "{kind:?}");
        assert_eq!(response.finish_reason, FinishReason::Stop, "{kind:?}");
        assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (input, output), "{kind:?}");
    }
}

#[test]
fn every_dialect_streams_its_documented_answer_with_usage_and_an_end() {
    let cases = [
        (ProviderKind::OpenAi, "openai/stream.sse", "Hello! How can I help?", 9, 7),
        (ProviderKind::Compat, "openai/stream_reasoning.sse", "9.11 is smaller.", 17, 25),
        (ProviderKind::Anthropic, "anthropic/stream.sse", "Hello!", 25, 15),
        (ProviderKind::Gemini, "gemini/stream.sse", "Hello! How can I help you today?", 6, 99),
    ];
    for (kind, path, text, input, output) in cases {
        let streamed = stream(kind, &fixture(path)).unwrap();
        assert_eq!(streamed.text, text, "{kind:?}");
        assert_eq!((streamed.usage.input_tokens, streamed.usage.output_tokens), (input, output), "{kind:?}");
        assert_eq!(streamed.finish, Some(FinishReason::Stop), "{kind:?}");
        assert!(streamed.done, "{kind:?}");
    }
}

#[test]
fn a_stream_cut_short_is_an_error_not_a_silent_end() {
    for (kind, path) in [
        (ProviderKind::OpenAi, "openai/stream.sse"),
        (ProviderKind::Anthropic, "anthropic/stream.sse"),
        (ProviderKind::Gemini, "gemini/stream.sse"),
    ] {
        let full = fixture(path);
        let events = sse(&full);
        let mut decoder = StreamDecoder::new(kind);
        for event in events.iter().take(events.len() - 1) {
            decoder.decode(event).unwrap();
        }
        let err = decoder.finish().unwrap_err();
        assert!(matches!(err, ProviderError::Malformed(_)), "{kind:?}: {err:?}");
    }
    let err = stream(ProviderKind::Anthropic, &fixture("anthropic/stream_error.sse")).err();
    assert_eq!(err, Some(ProviderError::StreamError { message: "overloaded_error: Overloaded".into() }));
}

#[test]
fn every_dialect_reads_its_error_body() {
    let cases = [
        (ProviderKind::OpenAi, "openai/error_invalid_api_key.json", "invalid_api_key: Incorrect API key"),
        (ProviderKind::Anthropic, "anthropic/error_invalid_request.json", "invalid_request_error: max_tokens"),
        (ProviderKind::Gemini, "gemini/error_invalid_api_key.json", "INVALID_ARGUMENT: API key not valid"),
    ];
    for (kind, path, prefix) in cases {
        match parse_error(kind, 400, fixture(path).as_bytes()) {
            ProviderError::Status { status: 400, message } => {
                assert!(message.starts_with(prefix), "{kind:?}: {message}")
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}
