//! `POST /v1/route` on the gateway: authenticated, decision only, no upstream call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::{json, Value};

async fn route(host: &opencode_testkit::TestHost, body: Value, authorized: bool) -> (u16, Value) {
    let mut request = chat(body);
    *request.uri_mut() = "/v1/route".parse().unwrap();
    if !authorized {
        request.headers_mut().remove("authorization");
    }
    let response = opencode_api::serve_named("gateway", host.clone(), request).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect(1 << 20).await.unwrap();
    (parts.status.as_u16(), serde_json::from_slice(&bytes).unwrap())
}

fn prompt(text: &str) -> Value {
    json!({"messages":[{"role":"user","content":text}]})
}

#[tokio::test(start_paused = true)]
async fn auto_returns_an_explainable_decision_without_calling_anything() {
    let host = test_host();
    let (status, body) = route(&host, prompt("Write a Python function that parses ISO dates, with tests"), true).await;
    assert_eq!(status, 200, "{body}");
    let routing = &body["routing"];
    assert_eq!(routing["mode"], "code");
    assert!(routing["tier"] == "system1" || routing["tier"] == "system2");
    assert!(routing["score"].as_f64().unwrap() >= 0.0);
    assert!(!routing["reasons"].as_array().unwrap().is_empty());
    assert!(host.requests().is_empty(), "routing never calls a provider");

    let (_, body) =
        route(&host, json!({"messages":[{"role":"user","content":"請幫我搜尋今天的最新新聞"}], "mode":"auto"}), true)
            .await;
    assert_eq!(body["routing"]["mode"], "search", "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_named_mode_is_kept_and_bad_bodies_are_refused_clearly() {
    let host = test_host();
    let (status, body) =
        route(&host, json!({"messages":[{"role":"user","content":"hello there"}], "mode":"research"}), true).await;
    assert_eq!(status, 200);
    assert_eq!(body["routing"]["mode"], "research");

    // A named tier is kept too, and says so.
    let (status, body) = route(
        &host,
        json!({"messages":[{"role":"user","content":"hello there"}], "mode":"chat", "tier":"system2"}),
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["routing"]["tier"], "system2");
    assert_eq!(body["routing"]["reasons"][0], "tier `system2` requested by the caller");
    let (status, body) = route(&host, json!({"messages":[{"role":"user","content":"x"}], "tier":"fast"}), true).await;
    assert_eq!(
        (status, body["error"]["message"].as_str().unwrap()),
        (422, "`tier` must be one of auto, system1, system2")
    );

    let (status, body) = route(&host, json!({"messages":[{"role":"user","content":"x"}], "mode":"magic"}), true).await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (422, "validation_failed"));
    assert!(body["error"]["message"].as_str().unwrap().contains("magic"));
    let (status, _) = route(&host, json!({"messages":[{"role":"user","content":"x"}], "mode":7}), true).await;
    assert_eq!(status, 422);
    let (status, _) = route(&host, json!({"messages":[]}), true).await;
    assert_eq!(status, 422);
    let (status, body) = route(&host, prompt("hi"), false).await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (401, "missing_token"));
}

#[tokio::test(start_paused = true)]
async fn router_config_moves_the_threshold_and_a_bad_one_is_a_configuration_error() {
    let text = "Compare three sorting algorithms step by step and explain their complexity";
    let low = test_host().with_var("ROUTER", "lexicon").with_var("ROUTER_CONFIG", r#"{"threshold": 0.0}"#);
    let (_, body) = route(&low, prompt(text), true).await;
    assert_eq!(body["routing"]["tier"], "system2");
    let high = test_host().with_var("ROUTER", "lexicon").with_var("ROUTER_CONFIG", r#"{"threshold": 1.0}"#);
    let (_, body) = route(&high, prompt("hi"), true).await;
    assert_eq!(body["routing"]["tier"], "system1");
    let broken = test_host().with_var("ROUTER_CONFIG", "{not json");
    let (status, body) = route(&broken, prompt(text), true).await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (503, "not_configured"));
}

/// A host whose `chat` binding runs the real chat function, as the runtimes wire it.
fn process_host() -> opencode_testkit::TestHost {
    test_host()
        .with_upstream(|req| async move {
            assert!(is_openai(&req));
            let body: Value = serde_json::from_slice(req.body()).unwrap();
            let streamed = body["stream"] == true;
            let answer = if streamed { openai_chunks(&["Hi", " there"]).concat() } else { openai_ok("Hi there") };
            Ok(http::Response::new(opencode_runtime::Body::from(answer)))
        })
        .with_function("chat", |host, req| async move {
            assert_eq!(req.uri().path(), "/v1/chat");
            let tier = req.headers()["x-opencode-tier"].to_str().unwrap().to_string();
            let mut response = opencode_api::serve_named("chat", host, req.map(opencode_runtime::Body::Full)).await;
            response.headers_mut().insert("x-seen-tier", tier.parse().unwrap());
            response
        })
}

async fn process(host: &opencode_testkit::TestHost, body: Value) -> (u16, http::HeaderMap, String) {
    let mut request = chat(body);
    *request.uri_mut() = "/v1/process".parse().unwrap();
    let response = opencode_api::serve_named("gateway", host.clone(), request).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect(1 << 20).await.unwrap();
    (parts.status.as_u16(), parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn process_runs_the_chosen_mode_and_reports_the_decision() {
    let host = process_host();
    let (status, headers, body) =
        process(&host, json!({"messages":[{"role":"user","content":"hi"}], "mode":"auto", "temperature":0.2})).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["message"]["content"], "Hi there");
    assert_eq!(body["routing"]["mode"], "chat");
    assert_eq!(body["routing"]["tier"], "system1");
    assert_eq!(headers["x-routing-mode"], "chat");
    assert_eq!(headers["x-seen-tier"], "system1", "the tier reaches the mode function");
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["temperature"], 0.2, "the mode's fields pass through");

    let (status, _, body) =
        process(&host, json!({"messages":[{"role":"user","content":"hi again"}], "mode":"chat", "stream":true})).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("event: routing\ndata: {"), "{body}");
    assert!(body.contains("event: delta") && body.contains("event: done"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn process_refuses_bad_bodies_and_passes_mode_errors_through() {
    let host = process_host();
    let (status, _, body) = process(&host, json!({"messages":[{"role":"user","content":"x"}], "mode":"magic"})).await;
    assert_eq!(status, 422, "{body}");
    let (status, _, body) = process(&host, json!({"mode":"chat"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("messages"), "{body}");
    // Fields the mode does not know are refused by the mode itself, with the decision attached.
    let (status, headers, body) =
        process(&host, json!({"messages":[{"role":"user","content":"x"}], "mode":"chat", "top_kk": 1})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("top_kk"), "{body}");
    assert_eq!(headers["x-routing-mode"], "chat");
    assert!(host.requests().is_empty());
    // A mode without a binding is a clear 503.
    let (status, _, body) = process(&host, json!({"messages":[{"role":"user","content":"x"}], "mode":"search"})).await;
    assert_eq!(status, 503, "{body}");
}
