#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::super::fixtures::{collect, decode_all, sse_events};
use super::super::{parse_error, ProviderConfig, ProviderError, ProviderKind, SseEvent};
use super::*;
use crate::model::{Message, Reasoning};

const MESSAGE: &str = include_str!("../../../tests/fixtures/anthropic/message.json");
const MESSAGE_THINKING: &str = include_str!("../../../tests/fixtures/anthropic/message_thinking.json");
const STREAM: &str = include_str!("../../../tests/fixtures/anthropic/stream.sse");
const STREAM_THINKING: &str = include_str!("../../../tests/fixtures/anthropic/stream_thinking.sse");
const STREAM_ERROR: &str = include_str!("../../../tests/fixtures/anthropic/stream_error.sse");
const ERROR_INVALID: &str = include_str!("../../../tests/fixtures/anthropic/error_invalid_request.json");

fn config() -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Anthropic,
        name: "anthropic".into(),
        base_url: "https://api.anthropic.com".into(),
        api_key: Some("sk-ant-test".into()),
        model: "claude-sonnet-4-20250514".into(),
        price: None,
    }
}

fn msg(role: Role, content: &str) -> Message {
    Message::new(role, content)
}

fn body(request: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(request.body()).unwrap()
}

fn event(name: &str, data: &str) -> SseEvent {
    SseEvent { event: name.into(), data: data.into() }
}

#[test]
fn request_body_lifts_system_and_maps_every_field() {
    let request = ChatRequest {
        messages: vec![
            msg(Role::System, "Be brief."),
            msg(Role::User, "Hi"),
            msg(Role::Assistant, "Hello."),
            msg(Role::System, "Answer in English."),
            msg(Role::User, "How are you?"),
        ],
        model: None,
        temperature: Some(0.5),
        top_p: Some(0.9),
        max_tokens: Some(256),
        stop: vec!["END".into()],
        seed: Some(42),
        reasoning: None,
        ..Default::default()
    };
    let built = build_request(&config(), &request, true).unwrap();
    assert_eq!(
        body(&built),
        json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 256,
            "system": "Be brief.\n\nAnswer in English.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "How are you?"}
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "stream": true
        })
    );
}

#[test]
fn minimal_request_gets_the_default_max_tokens_and_nothing_else() {
    let request = ChatRequest {
        messages: vec![msg(Role::User, "Hi")],
        model: Some("claude-3-5-haiku-latest".into()),
        ..Default::default()
    };
    let built = build_request(&config(), &request, false).unwrap();
    assert_eq!(
        body(&built),
        json!({
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Hi"}]
        })
    );
}

#[test]
fn consecutive_messages_of_one_role_are_merged() {
    let request = ChatRequest {
        messages: vec![
            msg(Role::User, "First."),
            msg(Role::User, "Second."),
            msg(Role::Assistant, "A."),
            msg(Role::System, "ignored here"),
            msg(Role::Assistant, "B."),
            msg(Role::User, "Third."),
        ],
        ..Default::default()
    };
    let built = body(&build_request(&config(), &request, false).unwrap());
    assert_eq!(
        built["messages"],
        json!([
            {"role": "user", "content": "First.\n\nSecond."},
            {"role": "assistant", "content": "A.\n\nB."},
            {"role": "user", "content": "Third."}
        ])
    );
}

#[test]
fn thinking_raises_max_tokens_above_the_budget_and_drops_sampling_it_refuses() {
    let request = ChatRequest {
        messages: vec![msg(Role::User, "Prove it.")],
        temperature: Some(0.2),
        top_p: Some(0.5),
        max_tokens: Some(2000),
        reasoning: Some(Reasoning { budget_tokens: 4000 }),
        ..Default::default()
    };
    let built = body(&build_request(&config(), &request, false).unwrap());
    assert_eq!(
        built,
        json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 6000,
            "messages": [{"role": "user", "content": "Prove it."}],
            "thinking": {"type": "enabled", "budget_tokens": 4000}
        })
    );

    // Budgets under the vendor's minimum are raised to it; a high top_p is kept.
    let request = ChatRequest {
        messages: vec![msg(Role::User, "Hm.")],
        top_p: Some(0.95),
        reasoning: Some(Reasoning { budget_tokens: 100 }),
        ..Default::default()
    };
    let built = body(&build_request(&config(), &request, false).unwrap());
    assert_eq!(built["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
    assert_eq!(built["max_tokens"], 2048);
    assert!(built["max_tokens"].as_u64().unwrap() > 1024);
    assert_eq!(built["top_p"], json!(0.95));
}

#[test]
fn request_line_and_headers() {
    let request = ChatRequest { messages: vec![msg(Role::User, "Hi")], ..Default::default() };
    let mut cfg = config();
    cfg.base_url = "https://api.anthropic.com/".into();
    let built = build_request(&cfg, &request, false).unwrap();
    assert_eq!(built.method(), http::Method::POST);
    assert_eq!(built.uri(), "https://api.anthropic.com/v1/messages");
    let headers = built.headers();
    assert_eq!(headers["x-api-key"], "sk-ant-test");
    assert!(headers["x-api-key"].is_sensitive());
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("authorization").is_none());
}

#[test]
fn configuration_errors() {
    let request = ChatRequest { messages: vec![msg(Role::User, "Hi")], ..Default::default() };
    let mut no_key = config();
    no_key.api_key = None;
    assert!(matches!(build_request(&no_key, &request, false), Err(ProviderError::Config(_))));
    let mut bad_url = config();
    bad_url.base_url = "::".into();
    assert!(matches!(build_request(&bad_url, &request, false), Err(ProviderError::Config(_))));
}

#[test]
fn parses_a_documented_message() {
    assert_eq!(
        parse_response(MESSAGE.as_bytes()).unwrap(),
        ChatResponse {
            text: "Hi! My name is Claude.".into(),
            thinking: None,
            thinking_signature: None,
            model: "claude-sonnet-4-20250514".into(),
            finish_reason: FinishReason::Stop,
            usage: Usage { input_tokens: 2095, output_tokens: 503, reasoning_tokens: 0, cached_tokens: 0 },
            tool_calls: vec![],
        }
    );
}

#[test]
fn parses_thinking_blocks_with_their_signature_and_skips_redacted_ones() {
    let response = parse_response(MESSAGE_THINKING.as_bytes()).unwrap();
    assert_eq!(response.text, "The greatest common divisor of 1071 and 462 is **21**.");
    assert!(response.thinking.as_deref().unwrap().starts_with("To find the GCD of 1071 and 462"));
    assert_eq!(
        response.thinking_signature.as_deref(),
        Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...")
    );
    assert_eq!(response.finish_reason, FinishReason::Length);
    // Cache reads are prompt tokens too, and counted apart as cached.
    assert_eq!(
        response.usage,
        Usage { input_tokens: 2048, output_tokens: 311, reasoning_tokens: 0, cached_tokens: 2000 }
    );
}

#[test]
fn maps_stop_reasons() {
    let with = |reason: &str| {
        let body = json!({"type": "message", "model": "m", "content": [], "stop_reason": reason});
        parse_response(body.to_string().as_bytes()).unwrap().finish_reason
    };
    assert_eq!(with("end_turn"), FinishReason::Stop);
    assert_eq!(with("stop_sequence"), FinishReason::Stop);
    assert_eq!(with("max_tokens"), FinishReason::Length);
    assert_eq!(with("tool_use"), FinishReason::ToolCalls);
    assert_eq!(with("refusal"), FinishReason::ContentFilter);
    assert_eq!(with("pause_turn"), FinishReason::Other("pause_turn".into()));
}

#[test]
fn rejects_bodies_that_are_not_a_message() {
    let cases = [
        "not json",
        r#"{"type":"message","model":"m"}"#,
        r#"{"type":"completion","content":[]}"#,
        r#"{"type":"message","content":[{"type":"text"}]}"#,
        r#"{"content":[]}"#,
        ERROR_INVALID,
    ];
    for body in cases {
        let result = parse_response(body.as_bytes());
        assert!(matches!(result, Err(ProviderError::Malformed(_))), "{body} gave {result:?}");
    }
}

#[test]
fn reads_error_messages() {
    assert_eq!(error_message(ERROR_INVALID.as_bytes()).unwrap(), "invalid_request_error: max_tokens: Field required");
    assert_eq!(error_message(b"upstream connect error"), None);
    let err = parse_error(
        ProviderKind::Anthropic,
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(err, ProviderError::Status { status: 529, message: "overloaded_error: Overloaded".into() });
    let err = parse_error(ProviderKind::Anthropic, 502, b"<html>");
    assert_eq!(err, ProviderError::Status { status: 502, message: "http status 502".into() });
}

#[test]
fn decodes_a_documented_stream_event_by_event() {
    let mut state = StreamState::default();
    let events: Vec<Vec<StreamEvent>> = sse_events(STREAM).iter().map(|e| state.decode(e).unwrap()).collect();
    assert_eq!(
        events,
        vec![
            vec![
                StreamEvent::Model("claude-sonnet-4-20250514".into()),
                StreamEvent::Usage(Usage { input_tokens: 25, output_tokens: 1, reasoning_tokens: 0, cached_tokens: 0 }),
            ],
            vec![],
            vec![],
            vec![StreamEvent::Delta("Hello".into())],
            vec![StreamEvent::Delta("!".into())],
            vec![],
            vec![
                StreamEvent::Finish(FinishReason::Stop),
                StreamEvent::Usage(Usage { input_tokens: 0, output_tokens: 15, reasoning_tokens: 0, cached_tokens: 0 }),
            ],
            vec![StreamEvent::Done],
        ]
    );
    assert_eq!(state.finish().unwrap(), vec![]);

    let collected = collect(&decode_all(ProviderKind::Anthropic, STREAM).unwrap());
    assert_eq!(collected.usage, Usage { input_tokens: 25, output_tokens: 15, reasoning_tokens: 0, cached_tokens: 0 });
}

#[test]
fn decodes_thinking_and_its_signature() {
    let events = decode_all(ProviderKind::Anthropic, STREAM_THINKING).unwrap();
    let collected = collect(&events);
    assert_eq!(
        collected.thinking,
        "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n1071 = 2 × 462 + 147\
         \n462 = 3 × 147 + 21\n147 = 7 × 21 + 0\n\nSo GCD(1071, 462) = 21"
    );
    assert_eq!(collected.text, "The greatest common divisor of 1071 and 462 is **21**.");
    assert_eq!(collected.models, vec!["claude-sonnet-4-5-20250929".to_owned()]);
    assert_eq!(collected.usage, Usage { input_tokens: 48, output_tokens: 132, reasoning_tokens: 0, cached_tokens: 0 });
    assert_eq!(collected.finishes, vec![FinishReason::Stop]);
    assert_eq!(collected.done, 1);
    assert!(!events
        .iter()
        .any(|e| matches!(e, StreamEvent::Delta(t) | StreamEvent::Thinking(t) if t.starts_with("EqQB"))));
    let signatures: Vec<&StreamEvent> =
        events.iter().filter(|e| matches!(e, StreamEvent::ThinkingSignature(_))).collect();
    assert_eq!(
        signatures,
        [&StreamEvent::ThinkingSignature("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...".into())]
    );
}

#[test]
fn error_event_is_a_stream_error_after_the_text_so_far() {
    let mut state = StreamState::default();
    let mut text = String::new();
    let mut result = Ok(());
    for e in sse_events(STREAM_ERROR) {
        match state.decode(&e) {
            Ok(events) => text.extend(events.into_iter().filter_map(|e| match e {
                StreamEvent::Delta(t) => Some(t),
                _ => None,
            })),
            Err(err) => {
                result = Err(err);
                break;
            }
        }
    }
    assert_eq!(text, "Once upon");
    assert_eq!(result, Err(ProviderError::StreamError { message: "overloaded_error: Overloaded".into() }));

    let err = state.decode(&event("error", "not json")).unwrap_err();
    assert!(matches!(err, ProviderError::StreamError { .. }));
}

#[test]
fn unknown_events_and_deltas_are_ignored() {
    let mut state = StreamState::default();
    let unknown = [
        r#"{"type": "brand_new_event", "payload": {"x": 1}}"#,
        r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"a"}}"#,
        r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}}"#,
        r#"{"type": "content_block_start", "index": 1, "content_block": {"type": "server_tool_use", "id": "t", "name": "web_search", "input": {}}}"#,
        r#"{"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q"}}"#,
    ];
    for data in unknown {
        assert_eq!(state.decode(&event("", data)).unwrap(), vec![], "{data}");
    }
}

#[test]
fn malformed_events_and_early_ends_are_errors() {
    let mut state = StreamState::default();
    let err = state.decode(&event("message_start", r#"{"type": "message_start", "message": "#)).unwrap_err();
    assert!(matches!(err, ProviderError::Malformed(_)));
    let err = state.decode(&event("content_block_delta", r#"{"index": 0}"#)).unwrap_err();
    assert!(matches!(err, ProviderError::Malformed(_)), "an event without a type");

    let mut state = StreamState::default();
    for e in sse_events(STREAM).iter().take(5) {
        state.decode(e).unwrap();
    }
    assert_eq!(state.finish().unwrap_err(), ProviderError::Malformed("stream ended before message_stop".into()));
}

/// Anthropic's image blocks: base64 or URL sources before the text; a type it cannot read is an
/// invalid request for it (the chain moves on).
#[test]
fn images_are_image_blocks_and_unreadable_types_are_refused() {
    let request = super::super::fixtures::image_conversation();
    let built = body(&build_request(&config(), &request, false).unwrap());
    assert_eq!(
        built["messages"][0]["content"],
        json!([
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": super::super::fixtures::PIXEL_PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://img.example/cat.jpg"}},
            {"type": "text", "text": "What is in these?"},
        ])
    );
    let mut tiff = request;
    tiff.messages[1].images[0].source =
        crate::model::ImageSource::Base64 { media_type: "image/tiff".into(), data: "AAAA".into() };
    let refused = build_request(&config(), &tiff, false).unwrap_err();
    assert!(matches!(&refused, ProviderError::InvalidRequest(m) if m.contains("image/tiff")), "{refused:?}");
}

/// With thinking on, an assistant turn's reasoning goes back first, as it came (Anthropic
/// refuses a tool loop otherwise); with thinking off it stays behind.
#[test]
fn thinking_blocks_go_back_first_when_thinking_is_on() {
    use crate::model::ThinkingBlock;
    let mut request = super::super::fixtures::tool_conversation();
    let turn = request.messages.iter_mut().find(|m| !m.tool_calls.is_empty()).unwrap();
    turn.thinking = vec![
        ThinkingBlock::Thinking { thinking: "Look it up.".into(), signature: "sig-1".into() },
        ThinkingBlock::RedactedThinking { data: "opaque".into() },
    ];
    request.reasoning = Some(Reasoning { budget_tokens: 2048 });
    let built = body(&build_request(&config(), &request, false).unwrap());
    let assistant = built["messages"].as_array().unwrap().iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["content"][0], json!({"type": "thinking", "thinking": "Look it up.", "signature": "sig-1"}));
    assert_eq!(assistant["content"][1], json!({"type": "redacted_thinking", "data": "opaque"}));
    assert_eq!(assistant["content"][2]["type"], "tool_use");
    request.reasoning = None;
    let built = body(&build_request(&config(), &request, false).unwrap());
    let assistant = built["messages"].as_array().unwrap().iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["content"][0]["type"], "tool_use", "{assistant}");
}

/// `top_k` reaches Anthropic, except with thinking on, which refuses a changed one.
#[test]
fn top_k_is_sent_unless_thinking_is_on() {
    let mut request = ChatRequest { messages: vec![Message::user("Hi")], top_k: Some(5), ..Default::default() };
    assert_eq!(body(&build_request(&config(), &request, false).unwrap())["top_k"], 5);
    request.reasoning = Some(Reasoning { budget_tokens: 2048 });
    assert!(body(&build_request(&config(), &request, false).unwrap()).get("top_k").is_none());
}
