#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::super::fixtures::{collect, decode_all, sse_events};
use super::super::{parse_error, ProviderConfig, ProviderError, ProviderKind, SseEvent};
use super::*;
use crate::model::{Message, Reasoning, Role};

const COMPLETION: &str = include_str!("../../../tests/fixtures/openai/chat_completion.json");
const COMPLETION_REASONING: &str = include_str!("../../../tests/fixtures/openai/chat_completion_reasoning.json");
const STREAM: &str = include_str!("../../../tests/fixtures/openai/stream.sse");
const STREAM_REASONING: &str = include_str!("../../../tests/fixtures/openai/stream_reasoning.sse");
const ERROR_KEY: &str = include_str!("../../../tests/fixtures/openai/error_invalid_api_key.json");

fn config(kind: ProviderKind, key: Option<&str>) -> ProviderConfig {
    ProviderConfig {
        kind,
        name: "openai".into(),
        base_url: "https://api.openai.com/v1".into(),
        api_key: key.map(str::to_owned),
        model: "gpt-4o-mini".into(),
        price: None,
    }
}

fn openai() -> ProviderConfig {
    config(ProviderKind::OpenAi, Some("sk-test"))
}

fn msg(role: Role, content: &str) -> Message {
    Message::new(role, content)
}

fn full_request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            msg(Role::System, "Be brief."),
            msg(Role::User, "Hi"),
            msg(Role::Assistant, "Hello."),
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
    }
}

fn body(request: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(request.body()).unwrap()
}

fn event(data: &str) -> SseEvent {
    SseEvent { event: String::new(), data: data.into() }
}

#[test]
fn request_body_has_every_set_field_in_openai_names() {
    let request = build_request(&openai(), &full_request(), false).unwrap();
    assert_eq!(
        body(&request),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "How are you?"}
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "max_completion_tokens": 256,
            "stop": ["END"],
            "seed": 42
        })
    );
}

#[test]
fn penalties_and_logit_bias_reach_openai_in_its_names() {
    let request = ChatRequest {
        messages: vec![msg(Role::User, "Hi")],
        frequency_penalty: Some(0.5),
        presence_penalty: Some(-1.0),
        logit_bias: [(50256, -100.0)].into_iter().collect(),
        ..Default::default()
    };
    let sent = body(&build_request(&openai(), &request, false).unwrap());
    assert_eq!(sent["frequency_penalty"], 0.5);
    assert_eq!(sent["presence_penalty"], -1.0);
    assert_eq!(sent["logit_bias"], json!({"50256": -100.0}));
}

#[test]
fn request_omits_absent_fields_and_request_model_overrides_config() {
    let request =
        ChatRequest { messages: vec![msg(Role::User, "Hi")], model: Some("gpt-4.1".into()), ..Default::default() };
    let built = build_request(&openai(), &request, false).unwrap();
    assert_eq!(body(&built), json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}]}));
}

#[test]
fn streaming_request_asks_for_usage() {
    let request = ChatRequest { messages: vec![msg(Role::User, "Hi")], ..Default::default() };
    let built = build_request(&openai(), &request, true).unwrap();
    assert_eq!(
        body(&built),
        json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[test]
fn request_line_and_headers() {
    let built = build_request(&openai(), &full_request(), false).unwrap();
    assert_eq!(built.method(), http::Method::POST);
    assert_eq!(built.uri(), "https://api.openai.com/v1/chat/completions");
    assert_eq!(built.headers()["content-type"], "application/json");
    let auth = &built.headers()["authorization"];
    assert_eq!(auth, "Bearer sk-test");
    assert!(auth.is_sensitive(), "the key must be hidden from Debug output");
    assert!(!format!("{built:?}").contains("sk-test"));
}

#[test]
fn reasoning_maps_budget_to_effort_and_leaves_room_for_the_answer() {
    let cases = [(1024, "low"), (2047, "low"), (2048, "medium"), (8191, "medium"), (8192, "high")];
    for (budget, expected) in cases {
        let request = ChatRequest {
            messages: vec![msg(Role::User, "Think")],
            max_tokens: Some(100),
            temperature: Some(0.2),
            top_p: Some(0.5),
            reasoning: Some(Reasoning { budget_tokens: budget }),
            ..Default::default()
        };
        let built = body(&build_request(&openai(), &request, false).unwrap());
        assert_eq!(built["reasoning_effort"], expected, "budget {budget}");
        assert_eq!(built["max_completion_tokens"], 100 + budget, "budget {budget}");
        // Reasoning models refuse changed sampling; compatible servers keep it.
        assert!(built.get("temperature").is_none() && built.get("top_p").is_none(), "{built}");
        let compat = body(&build_request(&config(ProviderKind::Compat, None), &request, false).unwrap());
        assert_eq!(compat["reasoning_effort"], expected);
        assert_eq!(compat["max_tokens"], 100 + budget);
        assert!(compat["temperature"].is_number() && compat["top_p"].is_number(), "{compat}");
    }
}

#[test]
fn every_effort_level_reaches_openai_as_itself() {
    for effort in [Effort::Low, Effort::Medium, Effort::High] {
        let request = ChatRequest {
            messages: vec![msg(Role::User, "Think")],
            reasoning: Some(Reasoning { budget_tokens: effort.budget_tokens() }),
            ..Default::default()
        };
        let built = body(&build_request(&openai(), &request, false).unwrap());
        assert_eq!(built["reasoning_effort"], effort.as_str());
    }
}

#[test]
fn compat_sends_max_tokens_and_no_authorization_without_a_key() {
    let mut cfg = config(ProviderKind::Compat, None);
    cfg.base_url = "http://localhost:11434/v1/".into();
    cfg.model = "llama3.2".into();
    let built = build_request(&cfg, &full_request(), false).unwrap();
    assert_eq!(built.uri(), "http://localhost:11434/v1/chat/completions");
    assert!(built.headers().get("authorization").is_none());
    let built = body(&built);
    assert_eq!(built["max_tokens"], 256);
    assert!(built.get("max_completion_tokens").is_none());

    // An empty key counts as none; a real one is sent.
    cfg.api_key = Some(String::new());
    assert!(build_request(&cfg, &full_request(), false).unwrap().headers().get("authorization").is_none());
    cfg.api_key = Some("local-key".into());
    let built = build_request(&cfg, &full_request(), false).unwrap();
    assert_eq!(built.headers()["authorization"], "Bearer local-key");
}

#[test]
fn configuration_errors() {
    let request = full_request();
    let no_key = config(ProviderKind::OpenAi, None);
    assert!(matches!(build_request(&no_key, &request, false), Err(ProviderError::Config(_))));

    let mut bad_url = openai();
    bad_url.base_url = "api.openai.com/v1".into();
    assert!(matches!(build_request(&bad_url, &request, false), Err(ProviderError::Config(_))));

    let mut no_model = openai();
    no_model.model = String::new();
    assert!(matches!(build_request(&no_model, &request, false), Err(ProviderError::Config(_))));

    let mut bad_key = openai();
    bad_key.api_key = Some("sk-with\nnewline".into());
    let err = build_request(&bad_key, &request, false).unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)));
    assert!(!err.to_string().contains("newline"), "the key is not echoed: {err}");
}

#[test]
fn parses_a_documented_completion() {
    let response = parse_response(COMPLETION.as_bytes()).unwrap();
    assert_eq!(
        response,
        ChatResponse {
            text: "Hello! How can I assist you today?".into(),
            thinking: None,
            thinking_signature: None,
            model: "gpt-4.1-2025-04-14".into(),
            finish_reason: FinishReason::Stop,
            usage: Usage { input_tokens: 19, output_tokens: 10, reasoning_tokens: 0, cached_tokens: 0 },
            tool_calls: vec![],
        }
    );
}

#[test]
fn cached_prompt_tokens_are_counted_apart() {
    // As OpenAI documents `usage` when part of the prompt came from its cache.
    let body = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}});
    let response = parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        response.usage,
        Usage { input_tokens: 2006, output_tokens: 300, reasoning_tokens: 0, cached_tokens: 1920 }
    );
}

#[test]
fn parses_reasoning_content_of_compatible_servers() {
    let response = parse_response(COMPLETION_REASONING.as_bytes()).unwrap();
    assert_eq!(response.text, "9.11 is smaller than 9.8.");
    assert_eq!(response.thinking.as_deref(), Some("Compare the tenths: 1 is less than 8, so 9.11 < 9.8."));
    assert_eq!(response.finish_reason, FinishReason::Length);
    assert_eq!(response.usage, Usage { input_tokens: 17, output_tokens: 412, reasoning_tokens: 380, cached_tokens: 0 });

    // Ollama names the field `reasoning`.
    let ollama = json!({"model": "qwen3", "choices": [{"message": {"role": "assistant",
        "content": "4", "reasoning": "2+2"}, "finish_reason": "stop"}]});
    let response = parse_response(ollama.to_string().as_bytes()).unwrap();
    assert_eq!(response.thinking.as_deref(), Some("2+2"));
    assert_eq!(response.usage, Usage::default(), "usage is optional on compatible servers");
}

#[test]
fn maps_finish_reasons_and_refusals() {
    let with = |reason: &str| {
        let body = json!({"model": "m", "choices": [{"message": {"content": null,
            "refusal": "I can't help with that."}, "finish_reason": reason}]});
        parse_response(body.to_string().as_bytes()).unwrap()
    };
    assert_eq!(with("content_filter").finish_reason, FinishReason::ContentFilter);
    assert_eq!(with("tool_calls").finish_reason, FinishReason::ToolCalls);
    assert_eq!(with("weird").finish_reason, FinishReason::Other("weird".into()));
    assert_eq!(with("stop").text, "I can't help with that.");
}

#[test]
fn rejects_bodies_that_are_not_a_completion() {
    let cases = [
        "not json",
        "[]",
        r#"{"model":"m","choices":[]}"#,
        r#"{"model":"m"}"#,
        r#"{"model":"m","choices":[{"finish_reason":"stop"}]}"#,
        r#"{"model":"m","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":"x"}}"#,
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
        "invalid_api_key: Incorrect API key provided: sk-abc***xyz. You can find your API key at \
         https://platform.openai.com/account/api-keys."
    );
    let rate = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":null}}"#;
    assert_eq!(error_message(rate).unwrap(), "requests: Rate limit reached");
    assert_eq!(error_message(br#"{"error":"model not found"}"#).unwrap(), "model not found");
    let vllm =
        br#"{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}"#;
    assert_eq!(error_message(vllm).unwrap(), "BadRequestError: max_tokens is too large");
    assert_eq!(error_message(b"<html>502 Bad Gateway</html>"), None);
    assert_eq!(error_message(br#"{"detail":"nope"}"#), None);

    let err = parse_error(ProviderKind::Compat, 404, br#"{"error":"model not found"}"#);
    assert_eq!(err, ProviderError::Status { status: 404, message: "model not found".into() });
}

#[test]
fn decodes_a_documented_stream_event_by_event() {
    let mut state = StreamState::default();
    let events: Vec<Vec<StreamEvent>> = sse_events(STREAM).iter().map(|e| state.decode(e).unwrap()).collect();
    assert_eq!(
        events,
        vec![
            vec![StreamEvent::Model("gpt-4o-mini-2024-07-18".into())],
            vec![StreamEvent::Delta("Hello".into())],
            vec![StreamEvent::Delta("! How".into())],
            vec![StreamEvent::Delta(" can I help?".into())],
            vec![StreamEvent::Finish(FinishReason::Stop)],
            vec![StreamEvent::Usage(Usage {
                input_tokens: 9,
                output_tokens: 7,
                reasoning_tokens: 0,
                cached_tokens: 0
            })],
            vec![StreamEvent::Done],
        ]
    );
    assert_eq!(state.finish().unwrap(), vec![]);
}

#[test]
fn decodes_a_reasoning_stream_of_a_compatible_server() {
    let collected = collect(&decode_all(ProviderKind::Compat, STREAM_REASONING).unwrap());
    assert_eq!(collected.thinking, "Compare the tenths: 1 < 8.");
    assert_eq!(collected.text, "9.11 is smaller.");
    assert_eq!(collected.models, vec!["deepseek-reasoner".to_owned()]);
    assert_eq!(collected.usage, Usage { input_tokens: 17, output_tokens: 25, reasoning_tokens: 0, cached_tokens: 0 });
    assert_eq!(collected.finishes, vec![FinishReason::Stop]);
    assert_eq!(collected.done, 1);
}

#[test]
fn in_stream_error_is_a_stream_error() {
    let mut state = StreamState::default();
    state.decode(&sse_events(STREAM)[0]).unwrap();
    let err = state
        .decode(&event(r#"{"error":{"message":"The server had an error","type":"server_error","code":null}}"#))
        .unwrap_err();
    assert_eq!(err, ProviderError::StreamError { message: "server_error: The server had an error".into() });
}

#[test]
fn malformed_chunks_and_early_ends_are_errors() {
    let mut state = StreamState::default();
    let err = state.decode(&event("{\"choices\": [")).unwrap_err();
    assert!(matches!(err, ProviderError::Malformed(_)));

    // The stream is cut after some text: no [DONE].
    let mut state = StreamState::default();
    for e in sse_events(STREAM).iter().take(3) {
        state.decode(e).unwrap();
    }
    assert_eq!(state.finish().unwrap_err(), ProviderError::Malformed("stream ended before [DONE]".into()));
}

#[test]
fn ignores_keepalives_and_anything_after_done() {
    let mut state = StreamState::default();
    assert_eq!(state.decode(&event("")).unwrap(), vec![]);
    assert_eq!(state.decode(&event("[DONE]")).unwrap(), vec![StreamEvent::Done]);
    assert_eq!(state.decode(&event("{\"garbage")).unwrap(), vec![]);
    assert_eq!(state.finish().unwrap(), vec![]);
}

/// OpenAI's vision input: the images as `image_url` parts (a `data:` URL for inline bytes, the
/// `detail` kept), then the text.
#[test]
fn images_are_image_url_parts_before_the_text() {
    let sent = body(&build_request(&openai(), &super::super::fixtures::image_conversation(), false).unwrap());
    let png = format!("data:image/png;base64,{}", super::super::fixtures::PIXEL_PNG);
    assert_eq!(
        sent["messages"][1]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": png}},
            {"type": "image_url", "image_url": {"url": "https://img.example/cat.jpg", "detail": "low"}},
            {"type": "text", "text": "What is in these?"},
        ])
    );
    assert_eq!(sent["messages"][0]["content"], "Be brief.", "a message without images stays a string");
}

/// `top_k` reaches compatible servers (vLLM, Ollama); OpenAI, which has none, never sees it.
#[test]
fn top_k_goes_to_compatible_servers_only() {
    let request = ChatRequest { top_k: Some(40), ..full_request() };
    assert!(body(&build_request(&openai(), &request, false).unwrap()).get("top_k").is_none());
    let compat = config(ProviderKind::Compat, None);
    assert_eq!(body(&build_request(&compat, &request, false).unwrap())["top_k"], 40);
}
