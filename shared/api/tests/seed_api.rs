//! The seed platform's API at the gateway: `/api/v1/chat` and `/api/v1/chat/stream` run the
//! mode `mode` names (auto routes) and answer in the seed's shapes; `/api/status` is public.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_runtime::Body;
use opencode_testkit::{json_response, streamed_response, TestHost};
use serde_json::{json, Value};

fn host(streamed: bool) -> TestHost {
    let tavily = json!({"query": "q", "results": [
        {"title": "Page one", "url": "https://t.example/1", "content": "About it.", "score": 0.9}]});
    let host = test_host()
        .with_var("TAVILY_API_KEY", "tvly-key")
        .with_var("TAVILY_BASE_URL", "http://tavily.test")
        .with_upstream(move |req| {
            let tavily = tavily.to_string();
            async move {
                Ok(if req.uri().host() == Some("tavily.test") {
                    json_response(200, &tavily)
                } else if streamed {
                    streamed_response(openai_chunks(&["Hel", "lo"]), 1, false)
                } else {
                    json_response(200, &openai_ok("Hello there [1]"))
                })
            }
        });
    in_process(&host, &["chat", "thinking", "admin", "search", "code"]);
    host
}

#[tokio::test(start_paused = true)]
async fn chat_answers_in_the_seeds_shape() {
    let host = host(false);
    let (status, headers, body) =
        serve(&host, "gateway", user_request("/api/v1/chat", &json!({"query": "hi", "mode": "chat"}))).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"], "Hello there [1]");
    assert_eq!(v["mode"], "chat");
    assert_eq!(v["trace_id"], headers["x-request-id"].to_str().unwrap());
    assert_eq!(v["tokens_used"], 5);
    assert!(v["time_ms"].is_u64());
    assert_eq!(v["events"][0]["type"], "attempt");
    assert_eq!(v["events"][0]["data"]["provider"], "openai");

    // No mode is auto: the analyzer picks, and says so.
    let (status, headers, body) =
        serve(&host, "gateway", user_request("/api/v1/chat", &json!({"query": "hello"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-routing-mode"], "chat");
}

#[tokio::test(start_paused = true)]
async fn the_stream_starts_connected_and_always_ends_with_end() {
    let host = host(true);
    let (status, _, body) =
        serve(&host, "gateway", user_request("/api/v1/chat/stream", &json!({"query": "hi", "mode": "chat"}))).await;
    assert_eq!(status, 200, "{body}");
    let events = sse_frames(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"start"));
    assert_eq!(events[0].1, json!({"status": "connected"}));
    let text: String =
        events.iter().filter(|(n, _)| n == "message").map(|(_, d)| d["content"].as_str().unwrap()).collect();
    assert_eq!(text, "Hello");
    let result = events.iter().find(|(n, _)| n == "result").unwrap();
    assert_eq!(result.1["response"], "Hello");
    assert_eq!(names.last(), Some(&"end"));
    assert_eq!(events.last().unwrap().1, json!({"status": "complete"}));
}

#[tokio::test(start_paused = true)]
async fn bad_bodies_get_the_seeds_error_shape_and_status_is_public() {
    let host = host(false);
    for body in [json!({"query": ""}), json!({"query": "x", "mode": "fast"}), json!({"query": "x", "temperature": 9})] {
        let (status, headers, text) = serve(&host, "gateway", user_request("/api/v1/chat", &body)).await;
        assert_eq!(status, 422, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error_code"], "VALIDATION_FAILED", "{text}");
        assert_eq!(v["trace_id"], headers["x-request-id"].to_str().unwrap());
    }
    // The seed names research `deep_research`; the platform's own name is not one of its modes.
    let (status, _, text) =
        serve(&host, "gateway", user_request("/api/v1/chat", &json!({"query": "x", "mode": "research"}))).await;
    assert_eq!((status, text.contains("`mode` must be one of")), (422, true), "{text}");
    let status_request = http::Request::get("/api/status").body(Body::empty()).unwrap();
    let (status, _, text) = serve(&host, "gateway", status_request).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"api": "operational", "engine_ready": true}));
}

#[tokio::test(start_paused = true)]
async fn search_answers_the_query_with_its_sources() {
    let host = host(false);
    let (status, headers, body) =
        serve(&host, "gateway", user_request("/api/v1/search", &json!({"query": "what is it", "max_results": 3})))
            .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["query"], "what is it");
    assert_eq!(v["results"][0]["content"], "Hello there [1]");
    assert_eq!(v["results"][0]["citations"][0]["url"], "https://t.example/1");
    assert_eq!(v["trace_id"], headers["x-request-id"].to_str().unwrap());
    let (status, _, body) =
        serve(&host, "gateway", user_request("/api/v1/search", &json!({"query": "x", "max_results": 50}))).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test(start_paused = true)]
async fn sandbox_execute_refuses_what_the_sandbox_cannot_do_by_name() {
    let host = host(false).with_var("SANDBOX_URL", "http://sandbox.test");
    for (body, field) in [
        (json!({"code": "echo hi", "language": "bash"}), "bash"),
        (json!({"code": "print(1)", "timeout": 500}), "timeout"),
        (json!({"code": "print(x)", "context": {"x": 1}}), "context"),
        (json!({"code": " "}), "code"),
    ] {
        let (status, _, text) = serve(&host, "gateway", user_request("/api/v1/sandbox/execute", &body)).await;
        assert_eq!(status, 422, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error_code"], "VALIDATION_FAILED");
        assert!(v["message"].as_str().unwrap().contains(field), "{text}");
    }
    assert!(host.requests().is_empty(), "nothing reached the sandbox");
}
