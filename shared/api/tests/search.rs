//! `POST /v1/search` through `serve("search", ...)` on the test host: Tavily and Brave answer
//! in their wire formats, the search falls back from one to the other on every named
//! failure, and the answer cites what was found, as JSON or as a stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use opencode_api::auth;
use opencode_runtime::search::{self, SearchConfig, SearchFailure};
use opencode_runtime::{Body, HostError};
use opencode_testkit::{hanging_response, json_response, streamed_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};

const TAVILY: &str = "http://tavily.test";
const BRAVE: &str = "http://brave.test";

/// The chat test host plus both search providers, Tavily first.
fn search_host() -> TestHost {
    test_host()
        .with_var("TAVILY_API_KEY", "tvly-secret-key")
        .with_var("TAVILY_BASE_URL", TAVILY)
        .with_var("BRAVE_API_KEY", "BSA-secret-key")
        .with_var("BRAVE_BASE_URL", BRAVE)
}

fn is_tavily(req: &http::Request<Bytes>) -> bool {
    req.uri().host() == Some("tavily.test")
}

fn is_brave(req: &http::Request<Bytes>) -> bool {
    req.uri().host() == Some("brave.test")
}

fn tavily_ok(query: &str) -> String {
    json!({"query": query, "answer": null, "images": [], "response_time": "0.3", "results": [
        {"title": "Tavily one", "url": "https://t.example/1", "content": format!("About {query}."), "score": 0.9, "raw_content": null},
        {"title": "Tavily two", "url": "https://t.example/2", "content": "More.", "score": 0.8, "raw_content": null},
    ]})
    .to_string()
}

fn brave_ok() -> String {
    json!({"type": "search", "query": {"original": "q"}, "web": {"type": "search", "results": [
        {"title": "Brave one", "url": "https://b.example/1", "description": "From <strong>Brave</strong>.", "type": "search_result"},
        {"title": "Brave two", "url": "https://b.example/2", "description": "Also Brave.", "type": "search_result"},
        {"title": "Brave three", "url": "https://b.example/3", "description": "Third.", "type": "search_result"},
    ]}})
    .to_string()
}

/// Both search providers healthy, the model answers "answer [1]" (streamed when asked).
async fn healthy(req: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
    if is_tavily(&req) {
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        return Ok(json_response(200, &tavily_ok(body["query"].as_str().unwrap())));
    }
    if is_brave(&req) {
        return Ok(json_response(200, &brave_ok()));
    }
    model(req)
}

fn model(req: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
    let body: Value = serde_json::from_slice(req.body()).unwrap();
    Ok(if body["stream"] == json!(true) {
        streamed_response(openai_chunks(&["answer ", "[1]"]), 0, false)
    } else {
        json_response(200, &openai_ok("answer [1]"))
    })
}

fn request(body: Value) -> http::Request<Body> {
    let token = auth::issue(SECRET, "u", "t", "member", EPOCH_MS, 3600).unwrap();
    http::Request::post("/v1/search")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn ask(host: &TestHost, body: Value) -> (u16, http::HeaderMap, String) {
    let response = opencode_api::serve_named("search", host.clone(), request(body)).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect(1 << 20).await.unwrap();
    (parts.status.as_u16(), parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn question(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

/// The system prompt the model got (the first message of the one model request).
fn model_prompt(host: &TestHost) -> String {
    let requests: Vec<_> = host.requests().into_iter().filter(is_openai).collect();
    assert_eq!(requests.len(), 1, "one model call");
    let body: Value = serde_json::from_slice(requests[0].body()).unwrap();
    assert_eq!(body["messages"][0]["role"], "system");
    body["messages"][0]["content"].as_str().unwrap().to_string()
}

#[tokio::test(start_paused = true)]
async fn tavily_results_become_numbered_sources_and_citations() {
    let host = search_host().with_upstream(healthy);
    let (status, headers, body) = ask(&host, question("  What is   Wasm? ")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "search.answer");
    assert_eq!(v["mode"], "search");
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["message"], json!({"role": "assistant", "content": "answer [1]"}));
    assert_eq!(v["search"]["provider"], "tavily");
    assert_eq!(v["search"]["query"], "What is Wasm?");
    assert_eq!(v["search"]["results"], 2);
    assert_eq!(v["search"]["attempts"], 1);
    assert_eq!(
        v["citations"],
        json!([{"index": 1, "url": "https://t.example/1", "title": "Tavily one"},
               {"index": 2, "url": "https://t.example/2", "title": "Tavily two"}])
    );
    assert_eq!(v["usage"]["total_tokens"], 5);
    assert_eq!(headers["x-search-provider"], "tavily");

    let tavily: Vec<_> = host.requests().into_iter().filter(is_tavily).collect();
    assert_eq!(tavily.len(), 1);
    assert_eq!(tavily[0].headers()["authorization"], "Bearer tvly-secret-key");
    let sent: Value = serde_json::from_slice(tavily[0].body()).unwrap();
    assert_eq!((sent["query"].as_str(), sent["max_results"].as_u64()), (Some("What is Wasm?"), Some(5)));

    let prompt = model_prompt(&host);
    assert!(prompt.contains("[1] Tavily one — https://t.example/1\nAbout What is Wasm?."), "{prompt}");
    assert!(prompt.contains("[2] Tavily two — https://t.example/2"), "{prompt}");
    assert!(prompt.contains("[n]") || prompt.contains("[1] or [2][3]"), "cite instructions: {prompt}");
    assert!(prompt.contains("do not answer"), "{prompt}");
    assert!(!body.contains("secret-key"));
}

#[tokio::test(start_paused = true)]
async fn search_provider_brave_puts_brave_first_and_max_results_bounds_the_sources() {
    let host = search_host().with_var("SEARCH_PROVIDER", "brave").with_upstream(healthy);
    let (status, _, body) =
        ask(&host, json!({"messages": [{"role": "user", "content": "rust & wasm"}], "max_results": 2})).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["search"]["provider"], "brave");
    assert_eq!(v["citations"].as_array().unwrap().len(), 2, "three found, two asked for");
    let brave: Vec<_> = host.requests().into_iter().filter(is_brave).collect();
    assert_eq!(brave[0].uri().query(), Some("q=rust%20%26%20wasm&count=2&result_filter=web&text_decorations=false"));
    assert_eq!(brave[0].headers()["x-subscription-token"], "BSA-secret-key");
    assert!(model_prompt(&host).contains("[1] Brave one — https://b.example/1\nFrom Brave."));
    assert!(host.requests().iter().all(|r| !is_tavily(r)));
}

/// Tavily fails in one named way; Brave answers.
async fn tavily_fails(failure: &'static str) -> Value {
    let host = search_host().with_upstream(move |req| async move {
        if !is_tavily(&req) {
            return healthy(req).await;
        }
        Ok(match failure {
            "connect" => return Err(HostError::Connect("refused".into())),
            "timeout" => hanging_response(),
            "429" => {
                let mut r = json_response(
                    429,
                    r#"{"detail":{"error":"Your request has been blocked due to excessive requests."}}"#,
                );
                r.headers_mut().insert("retry-after", "60".parse().unwrap());
                r
            }
            "503" => json_response(503, r#"{"detail":{"error":"Internal Server Error"}}"#),
            "malformed" => json_response(200, r#"{"results": [{"title": "#),
            "empty" => json_response(200, r#"{"query":"q","results":[],"response_time":0.1}"#),
            "unusable" => {
                json_response(200, r#"{"query":"q","results":[{"title":"x","url":"not a url","content":""}]}"#)
            }
            "401" => json_response(
                401,
                r#"{"detail":{"error":"Unauthorized: missing or invalid API key tvly-secret-key."}}"#,
            ),
            _ => unreachable!("unknown failure {failure}"),
        })
    });
    let (status, _, body) = ask(&host, question(&format!("fallback on {failure}"))).await;
    assert_eq!(status, 200, "{failure}: {body}");
    assert!(!body.contains("secret-key"), "{failure}: upstream text leaked: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["search"]["provider"], "brave", "{failure}");
    assert_eq!(v["citations"][0]["url"], "https://b.example/1", "{failure}");
    v["search"]["attempt_log"].clone()
}

#[tokio::test(start_paused = true)]
async fn every_named_tavily_failure_falls_back_to_brave() {
    // Retryable failures are retried once on Tavily (MAX_RETRIES=1), the others are not.
    let log = tavily_fails("connect").await;
    assert_eq!(log.as_array().unwrap().len(), 3);
    assert_eq!(log[0], json!({"provider": "tavily", "outcome": "connect", "elapsed_ms": log[0]["elapsed_ms"]}));
    assert_eq!(log[2]["provider"], "brave");
    assert_eq!(log[2]["outcome"], "ok");

    let log = tavily_fails("timeout").await;
    assert_eq!((log[0]["outcome"].as_str(), log[0]["after_ms"].as_u64()), (Some("timeout"), Some(1000)));
    assert_eq!(log.as_array().unwrap().len(), 3);

    let log = tavily_fails("429").await;
    assert_eq!((log[0]["outcome"].as_str(), log[0]["status"].as_u64()), (Some("status"), Some(429)));
    assert_eq!(log.as_array().unwrap().len(), 2, "a Retry-After over the cap falls back at once");

    let log = tavily_fails("503").await;
    assert_eq!(log[0]["status"], 503);
    assert_eq!(log.as_array().unwrap().len(), 3);

    let log = tavily_fails("malformed").await;
    assert_eq!(log[0]["outcome"], "malformed");

    for failure in ["empty", "unusable"] {
        let log = tavily_fails(failure).await;
        assert_eq!(log[0]["outcome"], "no_results", "{failure}");
        assert_eq!(log.as_array().unwrap().len(), 2, "{failure}: finding nothing is not retried");
    }

    let log = tavily_fails("401").await;
    assert_eq!(
        log[0],
        json!({"provider": "tavily", "outcome": "status", "status": 401, "rejected_key": true, "elapsed_ms": log[0]["elapsed_ms"]})
    );
    assert_eq!(log.as_array().unwrap().len(), 2, "a refused key is reported and not retried");
}

#[tokio::test(start_paused = true)]
async fn when_both_search_providers_fail_the_answer_is_a_502_with_the_attempts() {
    let host = search_host().with_upstream(|req| async move {
        if is_tavily(&req) {
            return Ok(json_response(503, r#"{"detail":{"error":"down tvly-secret-key"}}"#));
        }
        if is_brave(&req) {
            return Ok(json_response(422, r#"{"type":"ErrorResponse","error":{"status":422,"code":"SUBSCRIPTION_TOKEN_INVALID","detail":"The provided subscription token is invalid.","meta":{"component":"authentication"}}}"#));
        }
        model(req)
    });
    let (status, _, body) = ask(&host, question("nothing works")).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("secret-key") && !body.contains("subscription token is invalid"), "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "search_failed");
    assert_eq!(v["error"]["type"], "upstream_error");
    let attempts = v["error"]["attempts"].as_array().unwrap();
    let who: Vec<_> = attempts.iter().map(|a| a["provider"].as_str().unwrap()).collect();
    assert_eq!(who, ["tavily", "tavily", "brave"]);
    assert_eq!(attempts[2]["rejected_key"], true);
    assert!(v["error"]["message"].as_str().unwrap().contains("brave: http status 422 (key refused)"));
    assert!(host.requests().iter().all(|r| !is_openai(r)), "no model call without sources");
}

#[tokio::test(start_paused = true)]
async fn without_a_search_key_the_answer_is_503_naming_the_variables() {
    let host = test_host().with_upstream(healthy);
    let (status, _, body) = ask(&host, question("anyone?")).await;
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "not_configured");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("TAVILY_API_KEY") && message.contains("BRAVE_API_KEY"), "{message}");
    assert!(host.requests().is_empty());

    let host = search_host().with_var("SEARCH_PROVIDER", "google").with_upstream(healthy);
    let (status, _, body) = ask(&host, question("anyone?")).await;
    assert_eq!(status, 503);
    assert!(body.contains("SEARCH_PROVIDER"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn the_named_provider_without_a_key_leaves_the_other_one() {
    let host = test_host()
        .with_var("SEARCH_PROVIDER", "tavily")
        .with_var("BRAVE_API_KEY", "BSA-secret-key")
        .with_var("BRAVE_BASE_URL", BRAVE)
        .with_upstream(healthy);
    let (status, _, body) = ask(&host, question("brave only")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["search"]["provider"], "brave");
    assert_eq!(v["search"]["attempts"], 1);
}

#[tokio::test(start_paused = true)]
async fn bad_bodies_are_refused_before_any_upstream_call() {
    let host = search_host().with_upstream(healthy);
    let cases = [
        (json!({"messages": [{"role": "user", "content": "q"}], "max_results": 0}), 422, "max_results"),
        (json!({"messages": [{"role": "user", "content": "q"}], "max_results": 11}), 422, "max_results"),
        (json!({"messages": [{"role": "user", "content": "q"}], "max_results": "5"}), 422, "max_results"),
        (json!({"messages": [{"role": "user", "content": "  \n "}]}), 422, "empty"),
        (json!({"messages": []}), 422, "messages"),
        (json!({"messages": [{"role": "user", "content": "q"}], "depth": 3}), 422, "depth"),
        (json!(["not", "an", "object"]), 422, "object"),
    ];
    for (body, status, mentions) in cases {
        let (got, _, text) = ask(&host, body.clone()).await;
        assert_eq!(got, status, "{body}: {text}");
        assert!(text.contains(mentions), "{body}: {text}");
    }
    let response = opencode_api::serve_named("search", host.clone(), {
        let mut r = request(json!({}));
        *r.body_mut() = Body::from("{not json".to_string());
        r
    })
    .await;
    assert_eq!(response.status(), 400);
    assert!(host.requests().is_empty(), "nothing was sent upstream");
}

#[tokio::test(start_paused = true)]
async fn a_stream_sends_start_search_citations_deltas_usage_done_in_order() {
    let host = search_host().with_upstream(healthy);
    let mut body = question("stream me");
    body["stream"] = json!(true);
    let (status, headers, text) = ask(&host, body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let events = sse_frames(&text);
    let names: Vec<_> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "search", "citations", "delta", "delta", "usage", "done"]);
    assert_eq!(events[0].1["mode"], "search");
    assert_eq!(events[0].1["query"], "stream me");
    assert_eq!(events[1].1["provider"], "tavily");
    assert_eq!(events[1].1["results"], 2);
    assert_eq!(events[2].1["citations"][1]["url"], "https://t.example/2");
    let answer: String = events[3..5].iter().map(|(_, d)| d["text"].as_str().unwrap()).collect();
    assert_eq!(answer, "answer [1]");
    assert_eq!(events[5].1["total_tokens"], 5);
    let done = &events[6].1;
    assert_eq!(done["object"], "search.answer");
    assert_eq!(done["provider"], "openai");
    assert_eq!(done["search"]["provider"], "tavily");
    assert_eq!(done["citations"], events[2].1["citations"]);
    assert_eq!(done["finish_reason"], "stop");
    assert!(done.get("message").is_none(), "done carries everything but the message");
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_search_fails_ends_with_a_terminal_error_event() {
    let host = search_host().with_upstream(|req| async move {
        if is_tavily(&req) || is_brave(&req) {
            return Err(HostError::Connect("refused".into()));
        }
        model(req)
    });
    let mut body = question("stream but fail");
    body["stream"] = json!(true);
    let (status, _, text) = ask(&host, body).await;
    assert_eq!(status, 200, "the stream was open before the search ran");
    let events = sse_frames(&text);
    let names: Vec<_> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "error"]);
    assert_eq!(events[1].1["code"], "search_failed");
    assert_eq!(events[1].1["attempts"].as_array().unwrap().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn search_is_usable_on_its_own_for_other_modes() {
    let host = search_host().with_upstream(healthy);
    let config = SearchConfig::from_host(&host, Default::default()).unwrap();
    let found = search::search(&host, &config, "  two   words ", 1).await.unwrap();
    assert_eq!((found.provider.as_str(), found.query.as_str(), found.results.len()), ("tavily", "two words", 1));
    assert_eq!(found.results[0].snippet, "About two words.");
    assert_eq!(search::search(&host, &config, " ", 3).await.unwrap_err(), SearchFailure::EmptyQuery);
    let none = SearchConfig { providers: vec![], policy: Default::default() };
    assert_eq!(search::search(&host, &none, "q", 3).await.unwrap_err(), SearchFailure::NotConfigured);
}
