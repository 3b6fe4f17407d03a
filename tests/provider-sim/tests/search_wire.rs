//! Tavily and Brave: the wire formats, key checks, and the fault directives on search.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const TAVILY_KEY: (&str, &str) = ("authorization", "Bearer tvly-sim-secret");
const BRAVE_KEY: (&str, &str) = ("x-subscription-token", "BSA-sim-secret");

async fn tavily(addr: std::net::SocketAddr, query: &str, max_results: u64) -> Reply {
    let body = json!({"query": query, "max_results": max_results, "search_depth": "basic", "include_answer": false});
    post(addr, "/search", &[TAVILY_KEY], &body).await
}

/// Percent-encodes like a client would (spaces as %20).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn brave(addr: std::net::SocketAddr, query: &str, extra: &str) -> Reply {
    let path = format!("/res/v1/web/search?q={}&count=10{extra}", encode(query));
    send(addr, "GET", &path, &[BRAVE_KEY, ("accept", "application/json")], None).await
}

fn urls(results: &Value) -> Vec<String> {
    results.as_array().unwrap().iter().map(|r| r["url"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn tavily_answers_results_derived_from_the_query() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = tavily(sim.addr(), "Edge Wasm runtimes", 10).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["query"], "Edge Wasm runtimes");
    let results = &body["results"];
    let n = results.as_array().unwrap().len();
    assert!((3..=5).contains(&n), "{n} results");
    assert_eq!(urls(results)[0], "https://example.com/edge-wasm-runtimes/1");
    for (i, result) in results.as_array().unwrap().iter().enumerate() {
        assert!(result["title"].as_str().unwrap().contains("Edge Wasm runtimes"));
        assert!(result["content"].as_str().unwrap().contains("Edge Wasm runtimes"));
        assert!(result["score"].as_f64().unwrap() > 0.0);
        assert_eq!(result["url"], format!("https://example.com/edge-wasm-runtimes/{}", i + 1));
    }
    // The same query gives the same pages; max_results bounds them.
    assert_eq!(urls(&tavily(sim.addr(), "Edge Wasm runtimes", 10).await.json()["results"]), urls(results));
    assert_eq!(tavily(sim.addr(), "Edge Wasm runtimes", 2).await.json()["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn brave_answers_web_results_with_decorations_unless_turned_off() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = brave(sim.addr(), "rust & wasm?", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["type"], "search");
    assert_eq!(body["query"]["original"], "rust & wasm?");
    let results = &body["web"]["results"];
    assert_eq!(urls(results)[0], "https://example.com/rust-wasm/1");
    let description = results[0]["description"].as_str().unwrap();
    assert!(description.contains("<strong>rust</strong>"), "{description}");

    let plain = brave(sim.addr(), "rust & wasm?", "&text_decorations=false").await.json();
    let description = plain["web"]["results"][0]["description"].as_str().unwrap();
    assert!(!description.contains('<') && description.contains("rust & wasm?"), "{description}");
}

#[tokio::test]
async fn missing_or_invalid_keys_get_each_vendors_refusal() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = json!({"query": "q"});
    for headers in [vec![], vec![("authorization", "Bearer invalid-key")]] {
        let r = post(sim.addr(), "/search", &headers, &body).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json(), json!({"detail": {"error": "Unauthorized: missing or invalid API key."}}));
    }
    // Tavily's older clients put the key in the body.
    let r = post(sim.addr(), "/search", &[], &json!({"query": "q", "api_key": "tvly-old"})).await;
    assert_eq!(r.status, 200);

    for headers in [vec![], vec![("x-subscription-token", "invalid-token")]] {
        let r = send(sim.addr(), "GET", "/res/v1/web/search?q=x", &headers, None).await;
        assert_eq!(r.status, 422, "Brave refuses keys with 422");
        let body = r.json();
        assert_eq!(body["type"], "ErrorResponse");
        assert_eq!(body["error"]["code"], "SUBSCRIPTION_TOKEN_INVALID");
        assert_eq!(body["error"]["meta"]["component"], "authentication");
    }
}

#[tokio::test]
async fn a_request_without_a_query_is_refused_in_the_vendors_format() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), "/search", &[TAVILY_KEY], &json!({"max_results": 3})).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"]["error"].is_string());
    let r = send(sim.addr(), "GET", "/res/v1/web/search?count=3", &[BRAVE_KEY], None).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["code"], "VALIDATION");
}

#[tokio::test]
async fn status_and_retry_after_use_each_vendors_error_body() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = tavily(sim.addr(), "s1 sim:tavily:status=503", 3).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["detail"]["error"], "Internal Server Error");
    let r = tavily(sim.addr(), "s2 sim:tavily:status=432", 3).await;
    assert_eq!(r.status, 432);
    assert!(r.json()["detail"]["error"].as_str().unwrap().contains("plan"));

    let r = brave(sim.addr(), "s3 sim:brave:retry_after=2", "").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.json()["error"]["code"], "RATE_LIMITED");
    let r = brave(sim.addr(), "s4 sim:brave:status=500", "").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["type"], "ErrorResponse");
}

#[tokio::test]
async fn directives_aim_at_one_search_provider_and_count_with_times() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let query = "t1 sim:tavily:status=503*1";
    assert_eq!(brave(sim.addr(), query, "").await.status, 200, "a tavily directive leaves brave alone");
    assert_eq!(tavily(sim.addr(), query, 3).await.status, 503);
    assert_eq!(tavily(sim.addr(), query, 3).await.status, 200, "only the first request fails");
    // The directive is not part of what the pages say.
    let body = tavily(sim.addr(), query, 3).await.json();
    assert_eq!(urls(&body["results"])[0], "https://example.com/t1/1");
}

#[tokio::test]
async fn empty_answers_well_formed_bodies_with_no_results() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = tavily(sim.addr(), "e1 sim:tavily:empty", 3).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["results"], json!([]));
    let r = brave(sim.addr(), "e2 sim:any:empty", "").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["type"], "search");
    assert!(body.get("web").is_none(), "Brave leaves `web` out when nothing matched");
}

#[tokio::test]
async fn malformed_delay_and_drop_apply_to_search_too() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = tavily(sim.addr(), "m1 sim:tavily:malformed", 3).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes()).is_err());

    let r = brave(sim.addr(), "d1 sim:brave:delay_ms=300", "").await;
    assert!(r.head_after >= Duration::from_millis(300), "{:?}", r.head_after);

    let path = format!("/res/v1/web/search?q={}", encode("x1 sim:brave:drop"));
    let result = try_send(sim.addr(), "GET", &path, &[BRAVE_KEY], None).await;
    assert!(result.is_err(), "the connection closes with no response");
}

#[tokio::test]
async fn the_request_log_hides_search_keys() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    tavily(sim.addr(), "log me", 3).await;
    brave(sim.addr(), "log me", "").await;
    post(sim.addr(), "/search", &[], &json!({"query": "old", "api_key": "tvly-old-secret"})).await;
    let log = sim.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0]["provider"], "tavily");
    assert_eq!(log[0]["headers"]["authorization"], "***");
    assert_eq!(log[1]["provider"], "brave");
    assert_eq!(log[1]["headers"]["x-subscription-token"], "***");
    assert_eq!(log[2]["body"]["api_key"], "***");
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("secret"), "{text}");
}
