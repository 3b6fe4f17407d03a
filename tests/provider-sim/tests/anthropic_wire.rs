//! Anthropic Messages and its typed event stream, as the API reference documents them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn message_has_the_documented_shape() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r =
        post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_body("claude-sonnet-4-5", "Hi Claude", false))
            .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello from anthropic (claude-sonnet-4-5). You said: Hi Claude"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    assert_eq!(v["usage"]["input_tokens"], 5);
    assert_eq!(v["usage"]["output_tokens"], 8);
}

#[tokio::test]
async fn stream_sends_the_typed_events_in_documented_order() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let text = "tell me a story";
    let whole =
        post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_body("claude-haiku", text, false)).await.json();
    let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_body("claude-haiku", text, true)).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
    let events = r.events();
    let words = whole["content"][0]["text"].as_str().unwrap().split_whitespace().count();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", words));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    let names: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(names, expected);
    for e in &events {
        assert_eq!(e.json().unwrap()["type"], e.event.clone().unwrap(), "event name and data type match");
    }
    let start = events[0].json().unwrap();
    assert_eq!(start["message"]["usage"]["input_tokens"], whole["usage"]["input_tokens"]);
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(events[1].json().unwrap()["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(events[3].json().unwrap()["delta"]["type"], "text_delta");
    assert_eq!(stream_text("anthropic", &events), whole["content"][0]["text"].as_str().unwrap());
    let delta = events[events.len() - 2].json().unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], whole["usage"]["output_tokens"]);
}

#[tokio::test]
async fn auth_and_version_headers_and_max_tokens_are_required() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = anthropic_body("claude", "hi", false);
    let check = |r: &Reply, status: u16, kind: &str| {
        assert_eq!(r.status, status);
        let v = r.json();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
        assert!(v["error"]["message"].is_string());
    };
    check(
        &post(sim.addr(), "/v1/messages", &[("anthropic-version", "2023-06-01")], &body).await,
        401,
        "authentication_error",
    );
    check(
        &post(sim.addr(), "/v1/messages", &[("x-api-key", "invalid"), ("anthropic-version", "2023-06-01")], &body)
            .await,
        401,
        "authentication_error",
    );
    check(&post(sim.addr(), "/v1/messages", &[("x-api-key", "k")], &body).await, 400, "invalid_request_error");
    let mut no_max = body.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    check(&post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &no_max).await, 400, "invalid_request_error");
}

#[tokio::test]
async fn think_adds_a_thinking_block_before_the_text() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let v = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_body("claude", "ponder sim:think", false))
        .await
        .json();
    assert_eq!(v["content"][0]["type"], "thinking");
    assert!(v["content"][0]["signature"].is_string());
    assert_eq!(v["content"][1]["text"], "Hello from anthropic (claude). You said: ponder");

    let r =
        post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_body("claude", "ponder sim:think", true)).await;
    let events: Vec<_> = r.events().iter().map(|e| e.json().unwrap()).collect();
    assert_eq!(events[1]["content_block"]["type"], "thinking");
    assert!(events.iter().any(|e| e["delta"]["type"] == "thinking_delta"));
    assert!(events.iter().any(|e| e["delta"]["type"] == "signature_delta"));
    assert_eq!(stream_text("anthropic", &r.events()), "Hello from anthropic (claude). You said: ponder");
}
