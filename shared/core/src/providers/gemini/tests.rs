#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::super::fixtures::{collect, decode_all, sse_events};
use super::super::{parse_error, ProviderConfig, ProviderError, ProviderKind, SseEvent};
use super::*;
use crate::model::{Message, Reasoning};

const RESPONSE: &str = include_str!("../../../tests/fixtures/gemini/generate_content.json");
const RESPONSE_THINKING: &str = include_str!("../../../tests/fixtures/gemini/generate_content_thinking.json");
const RESPONSE_BLOCKED: &str = include_str!("../../../tests/fixtures/gemini/generate_content_prompt_blocked.json");
const STREAM: &str = include_str!("../../../tests/fixtures/gemini/stream.sse");
const ERROR_KEY: &str = include_str!("../../../tests/fixtures/gemini/error_invalid_api_key.json");

const KEY: &str = "AIzaSyTESTKEY";

fn config() -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Gemini,
        name: "gemini".into(),
        base_url: "https://generativelanguage.googleapis.com".into(),
        api_key: Some(KEY.into()),
        model: "gemini-2.5-flash".into(),
        price: None,
    }
}

fn msg(role: Role, content: &str) -> Message {
    Message::new(role, content)
}

fn body(request: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(request.body()).unwrap()
}

fn data(data: &str) -> SseEvent {
    SseEvent { event: String::new(), data: data.into() }
}

#[test]
fn request_body_maps_roles_system_and_generation_config() {
    let request = ChatRequest {
        messages: vec![
            msg(Role::System, "Be brief."),
            msg(Role::User, "Hi"),
            msg(Role::Assistant, "Hello."),
            msg(Role::User, "How are you?"),
            msg(Role::User, "And the weather?"),
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
    let built = build_request(&config(), &request, false).unwrap();
    assert_eq!(
        body(&built),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello."}]},
                {"role": "user", "parts": [{"text": "How are you?"}, {"text": "And the weather?"}]}
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {
                "temperature": 0.5,
                "topP": 0.9,
                "maxOutputTokens": 256,
                "stopSequences": ["END"],
                "seed": 42
            }
        })
    );
}

#[test]
fn penalties_go_in_the_generation_config_and_logit_bias_is_not_sent() {
    let request = ChatRequest {
        messages: vec![msg(Role::User, "Hi")],
        frequency_penalty: Some(0.5),
        presence_penalty: Some(-1.0),
        logit_bias: [(50256, -100.0)].into_iter().collect(),
        ..Default::default()
    };
    let sent = body(&build_request(&config(), &request, false).unwrap());
    assert_eq!(sent["generationConfig"], json!({"frequencyPenalty": 0.5, "presencePenalty": -1.0}));
    assert!(!sent.to_string().contains("50256"), "Gemini has no logit bias: {sent}");
}

#[test]
fn minimal_request_has_only_contents() {
    let request = ChatRequest { messages: vec![msg(Role::User, "Hi")], ..Default::default() };
    let built = build_request(&config(), &request, false).unwrap();
    assert_eq!(body(&built), json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}));
}

#[test]
fn reasoning_asks_for_thoughts_and_leaves_room_for_the_answer() {
    let request = ChatRequest {
        messages: vec![msg(Role::User, "Think")],
        max_tokens: Some(500),
        reasoning: Some(Reasoning { budget_tokens: 2048 }),
        ..Default::default()
    };
    let built = body(&build_request(&config(), &request, false).unwrap());
    assert_eq!(
        built["generationConfig"],
        json!({
            "maxOutputTokens": 2548,
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}
        })
    );
}

#[test]
fn urls_and_the_key_header() {
    let request = ChatRequest {
        messages: vec![msg(Role::User, "Hi")],
        model: Some("gemini-2.0-flash".into()),
        ..Default::default()
    };
    let built = build_request(&config(), &request, false).unwrap();
    assert_eq!(built.method(), http::Method::POST);
    assert_eq!(built.uri(), "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent");
    let streamed = build_request(&config(), &request, true).unwrap();
    assert_eq!(
        streamed.uri(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    for built in [&built, &streamed] {
        assert_eq!(built.headers()["x-goog-api-key"], KEY);
        assert!(built.headers()["x-goog-api-key"].is_sensitive());
        assert_eq!(built.headers()["content-type"], "application/json");
        assert!(!built.uri().to_string().contains(KEY), "the key never goes in the URL");
        assert!(!format!("{built:?}").contains(KEY));
    }
    // A `models/` prefix is accepted as given.
    let mut prefixed = config();
    prefixed.model = "models/gemini-2.5-pro".into();
    let built = build_request(&prefixed, &ChatRequest::default(), false).unwrap();
    assert_eq!(built.uri().path(), "/v1beta/models/gemini-2.5-pro:generateContent");
}

#[test]
fn seeds_are_folded_into_int32() {
    assert_eq!(seed(42), 42);
    assert_eq!(seed(u64::from(u32::MAX)), i32::MAX);
    assert_eq!(seed(1 << 31), 0);
    assert!(seed(u64::MAX) >= 0);
}

#[test]
fn configuration_errors() {
    let request = ChatRequest { messages: vec![msg(Role::User, "Hi")], ..Default::default() };
    for model in ["", "gemini/../../v1/x", "gemini-2.5-flash:generateContent?key=x", "a b", "files/x", "models/"] {
        let mut cfg = config();
        cfg.model = model.into();
        let result = build_request(&cfg, &request, false);
        assert!(matches!(result, Err(ProviderError::Config(_))), "model {model:?} gave {result:?}");
    }
    let mut no_key = config();
    no_key.api_key = None;
    assert!(matches!(build_request(&no_key, &request, false), Err(ProviderError::Config(_))));
    let mut bad_url = config();
    bad_url.base_url = "generativelanguage.googleapis.com".into();
    assert!(matches!(build_request(&bad_url, &request, false), Err(ProviderError::Config(_))));
}

#[test]
fn parses_a_documented_response() {
    assert_eq!(
        parse_response(RESPONSE.as_bytes()).unwrap(),
        ChatResponse {
            text: "AI learns patterns from data to make predictions or decisions.".into(),
            thinking: None,
            thinking_signature: None,
            model: "gemini-2.0-flash".into(),
            finish_reason: FinishReason::Stop,
            usage: Usage { input_tokens: 8, output_tokens: 12, reasoning_tokens: 0, cached_tokens: 0 },
            tool_calls: vec![],
        }
    );
}

#[test]
fn cached_content_tokens_are_counted_apart() {
    let body = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 5, "totalTokenCount": 1205,
            "cachedContentTokenCount": 1024}, "modelVersion": "gemini-2.5-flash"});
    let response = parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        response.usage,
        Usage { input_tokens: 1200, output_tokens: 5, reasoning_tokens: 0, cached_tokens: 1024 }
    );
}

#[test]
fn parses_thoughts_apart_and_counts_them_as_output() {
    let response = parse_response(RESPONSE_THINKING.as_bytes()).unwrap();
    assert_eq!(response.text, "There are three r's in \"strawberry\".");
    assert!(response.thinking.as_deref().unwrap().starts_with("**Counting the letters**"));
    assert_eq!(response.finish_reason, FinishReason::Length);
    assert_eq!(
        response.usage,
        Usage { input_tokens: 11, output_tokens: 9 + 432, reasoning_tokens: 432, cached_tokens: 0 }
    );
}

#[test]
fn a_blocked_prompt_is_a_content_filter_finish() {
    let response = parse_response(RESPONSE_BLOCKED.as_bytes()).unwrap();
    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, FinishReason::ContentFilter);
    assert_eq!(response.usage, Usage { input_tokens: 14, output_tokens: 0, reasoning_tokens: 0, cached_tokens: 0 });
}

#[test]
fn maps_finish_reasons() {
    let with = |reason: &str| {
        let body = json!({"candidates": [{"finishReason": reason}], "modelVersion": "m"});
        parse_response(body.to_string().as_bytes()).unwrap().finish_reason
    };
    assert_eq!(with("STOP"), FinishReason::Stop);
    assert_eq!(with("MAX_TOKENS"), FinishReason::Length);
    assert_eq!(with("SAFETY"), FinishReason::ContentFilter);
    assert_eq!(with("RECITATION"), FinishReason::ContentFilter);
    assert_eq!(with("PROHIBITED_CONTENT"), FinishReason::ContentFilter);
    assert_eq!(with("MALFORMED_FUNCTION_CALL"), FinishReason::Other("MALFORMED_FUNCTION_CALL".into()));
}

#[test]
fn rejects_bodies_that_are_not_a_response() {
    let cases = [
        "not json",
        "{}",
        "[]",
        r#"{"candidates":[]}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":7}]}}]}"#,
        ERROR_KEY,
    ];
    for body in cases {
        let result = parse_response(body.as_bytes());
        assert!(matches!(result, Err(ProviderError::Malformed(_))), "{body} gave {result:?}");
    }
}

#[test]
fn reads_error_messages() {
    assert_eq!(
        error_message(ERROR_KEY.as_bytes()).unwrap(),
        "INVALID_ARGUMENT: API key not valid. Please pass a valid API key."
    );
    let wrapped = format!("[{ERROR_KEY}]");
    assert_eq!(
        error_message(wrapped.as_bytes()).unwrap(),
        "INVALID_ARGUMENT: API key not valid. Please pass a valid API key."
    );
    assert_eq!(error_message(b"Service Unavailable"), None);
    let err = parse_error(
        ProviderKind::Gemini,
        429,
        br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#,
    );
    assert_eq!(
        err,
        ProviderError::Status { status: 429, message: "RESOURCE_EXHAUSTED: Resource has been exhausted".into() }
    );
}

#[test]
fn decodes_a_stream_event_by_event() {
    let mut state = StreamState::default();
    let events: Vec<Vec<StreamEvent>> = sse_events(STREAM).iter().map(|e| state.decode(e).unwrap()).collect();
    let early = Usage { input_tokens: 6, output_tokens: 90, reasoning_tokens: 90, cached_tokens: 0 };
    assert_eq!(
        events,
        vec![
            vec![
                StreamEvent::Model("gemini-2.5-flash".into()),
                StreamEvent::Thinking("**Planning the answer**\n\nThe user wants a greeting.".into()),
                StreamEvent::Usage(early),
            ],
            vec![StreamEvent::Delta("Hello!".into()), StreamEvent::Usage(early)],
            vec![StreamEvent::Delta(" How can I help you today".into()), StreamEvent::Usage(early)],
            vec![
                StreamEvent::Delta("?".into()),
                StreamEvent::Finish(FinishReason::Stop),
                StreamEvent::Usage(Usage {
                    input_tokens: 6,
                    output_tokens: 99,
                    reasoning_tokens: 90,
                    cached_tokens: 0
                }),
            ],
        ]
    );
    assert_eq!(state.finish().unwrap(), vec![StreamEvent::Done]);
    assert_eq!(state.finish().unwrap(), vec![], "Done is reported once");

    let collected = collect(&decode_all(ProviderKind::Gemini, STREAM).unwrap());
    assert_eq!(collected.text, "Hello! How can I help you today?");
    assert_eq!(collected.usage, Usage { input_tokens: 6, output_tokens: 99, reasoning_tokens: 90, cached_tokens: 0 });
    assert_eq!(collected.done, 1);
}

#[test]
fn in_stream_error_is_a_stream_error() {
    let mut state = StreamState::default();
    state.decode(&sse_events(STREAM)[1]).unwrap();
    let err = state
        .decode(&data(r#"{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"#))
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::StreamError { message: "UNAVAILABLE: The model is overloaded. Please try again later.".into() }
    );
}

#[test]
fn a_blocked_stream_finishes_with_content_filter() {
    let mut state = StreamState::default();
    let events = state.decode(&data(&RESPONSE_BLOCKED.replace('\n', " "))).unwrap();
    assert_eq!(
        events,
        vec![
            StreamEvent::Model("gemini-2.0-flash".into()),
            StreamEvent::Finish(FinishReason::ContentFilter),
            StreamEvent::Usage(Usage { input_tokens: 14, output_tokens: 0, reasoning_tokens: 0, cached_tokens: 0 }),
        ]
    );
    assert_eq!(state.finish().unwrap(), vec![StreamEvent::Done]);
}

#[test]
fn malformed_chunks_and_early_ends_are_errors() {
    let mut state = StreamState::default();
    assert!(matches!(state.decode(&data("{\"candidates\": [")), Err(ProviderError::Malformed(_))));
    assert_eq!(state.decode(&data("  ")).unwrap(), vec![]);

    let mut state = StreamState::default();
    for e in sse_events(STREAM).iter().take(3) {
        state.decode(e).unwrap();
    }
    assert_eq!(state.finish().unwrap_err(), ProviderError::Malformed("stream ended before finishReason".into()));
}

/// Gemini's parts: inline bytes as `inlineData`, a URL as `fileData` with the type its
/// extension names, then the text.
#[test]
fn images_are_inline_data_and_file_data_parts() {
    let built = body(&build_request(&config(), &super::super::fixtures::image_conversation(), false).unwrap());
    assert_eq!(
        built["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "image/png", "data": super::super::fixtures::PIXEL_PNG}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://img.example/cat.jpg"}},
            {"text": "What is in these?"},
        ])
    );
}

#[test]
fn top_k_is_the_generation_configs_top_k() {
    let request = ChatRequest { messages: vec![Message::user("Hi")], top_k: Some(8), ..Default::default() };
    assert_eq!(body(&build_request(&config(), &request, false).unwrap())["generationConfig"]["topK"], 8);
}
