//! Each dialect's renderer against the vendor's own documented answers: every field the vendor's
//! example has, ours has too (recursively, the first element of each list standing for all),
//! with the same JSON type where both are set. The examples are the fixtures the providers'
//! tests read (`shared/core/tests/fixtures`) and OpenAI's documented `response` object; the
//! few fields the platform cannot fill (audio and prediction token counts, a service tier) are
//! named where they are left out.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use opencode_testkit::{json_response, streamed_response, TestHost};
use serde_json::{json, Value};

const CHAT_COMPLETION: &str = include_str!("../../core/tests/fixtures/openai/chat_completion.json");
const CHAT_TOOL_CALLS: &str = include_str!("../../core/tests/fixtures/openai/chat_completion_tool_calls.json");
const CHAT_STREAM: &str = include_str!("../../core/tests/fixtures/openai/stream.sse");
const MESSAGE: &str = include_str!("../../core/tests/fixtures/anthropic/message.json");
const MESSAGE_TOOL_USE: &str = include_str!("../../core/tests/fixtures/anthropic/message_tool_use.json");
const MESSAGE_STREAM: &str = include_str!("../../core/tests/fixtures/anthropic/stream.sse");
const RESPONSE: &str = include_str!("fixtures/openai/response.json");

/// What OpenAI reports that no vendor behind the platform counts.
const OPENAI_UNFILLED: &[&str] = &[
    "service_tier",
    "usage.prompt_tokens_details.audio_tokens",
    "usage.completion_tokens_details.audio_tokens",
    "usage.completion_tokens_details.accepted_prediction_tokens",
    "usage.completion_tokens_details.rejected_prediction_tokens",
];

/// Fails unless `ours` has every field of `documented` at `path`, with the same type where both
/// are set.
fn assert_shape(ours: &Value, documented: &Value, path: &str, unfilled: &[&str]) {
    match (documented, ours) {
        (Value::Object(fields), Value::Object(have)) => {
            for (key, value) in fields {
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if unfilled.contains(&at.as_str()) {
                    continue;
                }
                let Some(mine) = have.get(key) else { panic!("`{at}` is missing from {ours}") };
                assert_shape(mine, value, &at, unfilled);
            }
        }
        (Value::Array(items), Value::Array(have)) => {
            if let (Some(first), Some(mine)) = (items.first(), have.first()) {
                assert_shape(mine, first, &format!("{path}[0]"), unfilled);
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (a, b) => assert_eq!(kind(a), kind(b), "`{path}`: documented {a}, ours {b}"),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The `data:` payloads of an SSE body (not `[DONE]`).
fn data(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| l.strip_prefix("data: ")).filter_map(|d| serde_json::from_str(d).ok()).collect()
}

fn openai_host(answer: String) -> TestHost {
    test_host().with_upstream(move |_| {
        let answer = answer.clone();
        async move { Ok(json_response(200, &answer)) }
    })
}

fn ask(extra: Value) -> Value {
    let mut body = json!({"model": "opencode/chat", "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test(start_paused = true)]
async fn chat_completions_have_openais_documented_fields() {
    for (fixture, upstream) in [(CHAT_COMPLETION, openai_ok("Hello!")), (CHAT_TOOL_CALLS, CHAT_TOOL_CALLS.to_owned())] {
        let host = openai_host(upstream);
        let (status, _, text) = serve(&host, "chat", user_request("/v1/chat/completions", &ask(json!({})))).await;
        assert_eq!(status, 200, "{text}");
        let ours: Value = serde_json::from_str(&text).unwrap();
        assert_shape(&ours, &serde_json::from_str(fixture).unwrap(), "", OPENAI_UNFILLED);
    }
}

#[tokio::test(start_paused = true)]
async fn chat_completion_chunks_have_openais_documented_fields() {
    let host =
        test_host().with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["Hel", "lo"]), 1, false)) });
    let body = ask(json!({"stream": true, "stream_options": {"include_usage": true}}));
    let (status, _, text) = serve(&host, "chat", user_request("/v1/chat/completions", &body)).await;
    assert_eq!(status, 200, "{text}");
    let ours = data(&text);
    let documented = data(CHAT_STREAM);
    // The first chunk (the role), a content chunk, the finish chunk and the usage chunk.
    let pick = |chunks: &[Value], which: &dyn Fn(&Value) -> bool| chunks.iter().find(|c| which(c)).cloned().unwrap();
    let first = |c: &Value| c["choices"][0]["delta"].get("role").is_some();
    let content = |c: &Value| c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty());
    let finish = |c: &Value| c["choices"][0]["finish_reason"].is_string();
    let usage = |c: &Value| c["choices"].as_array().is_some_and(Vec::is_empty);
    for which in [&first as &dyn Fn(&Value) -> bool, &content, &finish, &usage] {
        assert_shape(&pick(&ours, which), &pick(&documented, which), "", OPENAI_UNFILLED);
    }
}

#[tokio::test(start_paused = true)]
async fn messages_have_anthropics_documented_fields() {
    let unfilled = &["usage.service_tier"];
    for fixture in [MESSAGE, MESSAGE_TOOL_USE] {
        let host = test_host()
            .with_var("PROVIDER_ORDER", "anthropic")
            .with_upstream(move |_| async move { Ok(json_response(200, fixture)) });
        let body = ask(json!({"max_tokens": 64}));
        let (status, _, text) = serve(&host, "chat", user_request("/v1/messages", &body)).await;
        assert_eq!(status, 200, "{text}");
        let ours: Value = serde_json::from_str(&text).unwrap();
        assert_shape(&ours, &serde_json::from_str(fixture).unwrap(), "", unfilled);
    }
}

#[tokio::test(start_paused = true)]
async fn message_streams_have_anthropics_documented_events() {
    let host =
        test_host().with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["Hel", "lo"]), 1, false)) });
    let body = ask(json!({"max_tokens": 64, "stream": true}));
    let (status, _, text) = serve(&host, "chat", user_request("/v1/messages", &body)).await;
    assert_eq!(status, 200, "{text}");
    let ours = data(&text);
    for documented in data(MESSAGE_STREAM) {
        let kind = documented["type"].as_str().unwrap();
        let Some(mine) = ours.iter().find(|e| e["type"] == kind) else { panic!("no `{kind}` event in {text}") };
        assert_shape(mine, &documented, kind, &[]);
    }
}

#[tokio::test(start_paused = true)]
async fn responses_have_openais_documented_fields() {
    let host = openai_host(openai_ok("Once upon a time."));
    in_process(&host, &["chat"]);
    let body = json!({"model": "opencode/chat", "input": "Tell me a story."});
    let (status, _, text) = serve(&host, "gateway", user_request("/v1/responses", &body)).await;
    assert_eq!(status, 200, "{text}");
    let ours: Value = serde_json::from_str(&text).unwrap();
    assert_shape(&ours, &serde_json::from_str(RESPONSE).unwrap(), "", &[]);
}
