//! Token estimates at the gateway: `/v1/tokens/estimate` and Anthropic's `count_tokens`, from
//! the one estimator limits and budgets reserve with.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_core::model::{ChatRequest, Message};
use opencode_core::tokens::request_tokens;
use serde_json::{json, Value};

async fn gateway(path: &str, body: Value) -> (u16, Value) {
    let (status, _, text) = serve(&test_host(), "gateway", user_request(path, &body)).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(start_paused = true)]
async fn an_estimate_counts_the_input_and_prices_the_most_the_answer_may_cost() {
    let messages =
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How far is the Moon?"}]);
    let (status, v) =
        gateway("/v1/tokens/estimate", json!({"model": "gpt-4.1-mini", "messages": messages, "max_tokens": 1000}))
            .await;
    assert_eq!(status, 200, "{v}");
    let expected = request_tokens(&ChatRequest {
        messages: vec![Message::system("Be brief."), Message::user("How far is the Moon?")],
        ..ChatRequest::default()
    });
    assert_eq!(v["input_tokens"], expected);
    assert_eq!(v["max_output_tokens"], 1000);
    assert_eq!(v["model"], "openai/gpt-4.1-mini");
    // gpt-4.1-mini: $0.40 in, $1.60 out per million.
    let cost = (expected as f64 * 0.4 + 1000.0 * 1.6) / 1e6;
    assert!((v["max_cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12, "{v}");
    // A string `input`, no limit: the reservation's default output.
    let (status, v) = gateway("/v1/tokens/estimate", json!({"input": "How far is the Moon?"})).await;
    assert_eq!((status, v["max_output_tokens"].as_u64()), (200, Some(4096)), "{v}");
}

#[tokio::test(start_paused = true)]
async fn estimates_refuse_what_they_cannot_count() {
    for (body, needle) in [
        (json!({"input": "a", "messages": [{"role": "user", "content": "b"}]}), "one of them"),
        (json!({}), "one of them"),
        (json!({"input": "a", "temperature": 1}), "`temperature`"),
        (json!({"input": "a", "model": "compat/some-model"}), "compat"),
    ] {
        let (status, v) = gateway("/v1/tokens/estimate", body.clone()).await;
        assert!((400..500).contains(&status), "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
}

#[tokio::test(start_paused = true)]
async fn anthropics_count_tokens_matches_the_estimate_of_the_same_conversation() {
    let tools = json!([{"name": "get_weather", "description": "now", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let body = json!({"model": "claude-sonnet-4-5", "system": "Be brief.", "tools": tools,
        "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let (status, counted) = gateway("/v1/messages/count_tokens", body).await;
    assert_eq!(status, 200, "{counted}");
    let openai_tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let same = json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}], "tools": openai_tools});
    let (_, estimated) = gateway("/v1/tokens/estimate", same).await;
    assert_eq!(counted, json!({"input_tokens": estimated["input_tokens"]}));
    // Anthropic's error shape on its path.
    let (status, v) = gateway("/v1/messages/count_tokens", json!({"model": "claude-sonnet-4-5"})).await;
    assert_eq!(
        (status, v["type"].as_str(), v["error"]["type"].as_str()),
        (400, Some("error"), Some("invalid_request_error")),
        "{v}"
    );
}
