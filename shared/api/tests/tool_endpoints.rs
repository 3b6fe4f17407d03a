//! The endpoints the System 2 chat agent's tools call, which callers may use too:
//! `POST /v1/search/results`, `POST /v1/knowledge/search` and `POST /v1/code/run`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use opencode_testkit::{json_response, TestHost};
use serde_json::{json, Value};

async fn post(host: &TestHost, function: &str, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = post_as_user(host, function, path, &body, &[]).await;
    (status, serde_json::from_str(&text).unwrap())
}

fn host() -> TestHost {
    test_host()
        .with_var("TAVILY_API_KEY", "tvly-key")
        .with_var("TAVILY_BASE_URL", "http://tavily.test")
        .with_var("SANDBOX_URL", "http://sandbox.test")
        .with_upstream(|req| async move {
            if req.uri().host() == Some("sandbox.test") {
                let run = json!({"language": "python", "version": "3.12.0", "run": {"stdout": "42\n", "stderr": "", "code": 0, "signal": null, "output": "42\n"}});
                return Ok(json_response(200, &run.to_string()));
            }
            let results = json!([{"title": "Tides", "url": "https://t.example/tides", "content": "the moon", "score": 0.9}]);
            Ok(json_response(200, &json!({"query": "q", "results": results}).to_string()))
        })
}

#[tokio::test(start_paused = true)]
async fn search_results_without_a_model() {
    let host = host();
    let (status, body) =
        post(&host, "search", "/v1/search/results", json!({"query": "why tides", "max_results": 3})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["object"].as_str(), body["provider"].as_str()), (Some("search.results"), Some("tavily")));
    assert_eq!(body["results"][0]["url"], "https://t.example/tides");
    assert!(host.requests().iter().all(|r| r.uri().host() == Some("tavily.test")), "no model was called");

    for (bad, needle) in [
        (json!({"query": "  "}), "`query`"),
        (json!({"query": "x", "max_results": 0}), "`max_results`"),
        (json!({"q": "x"}), "q"),
    ] {
        let (status, body) = post(&host, "search", "/v1/search/results", bad).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{body}");
    }
    let (status, _) = post(&test_host(), "search", "/v1/search/results", json!({"query": "x"})).await;
    assert_eq!(status, 503, "no search provider configured");
}

#[tokio::test(start_paused = true)]
async fn code_runs_as_given() {
    let host = host();
    let (status, body) = post(&host, "code", "/v1/code/run", json!({"language": "python", "code": "print(6*7)"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["execution"]["stdout"], "42\n");
    assert_eq!(body["sandbox_error"], Value::Null);
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["files"][0]["content"], "print(6*7)");

    for bad in
        [json!({"code": " "}), json!({"code": "x", "language": "cobol"}), json!({"code": "x", "max_attempts": 2})]
    {
        let (status, body) = post(&host, "code", "/v1/code/run", bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, _) = post(&test_host(), "code", "/v1/code/run", json!({"code": "print(1)"})).await;
    assert_eq!(status, 503, "no sandbox configured");
}

#[tokio::test(start_paused = true)]
async fn knowledge_search_without_documents_finds_nothing_and_checks_its_body() {
    let host = host();
    let (status, body) = post(&host, "knowledge", "/v1/knowledge/search", json!({"query": "tides"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hits"], json!([]));
    assert!(host.requests().is_empty(), "an empty knowledge base costs no embedding call");
    for bad in [json!({"query": ""}), json!({"query": "x", "top_k": 0}), json!({"question": "x"})] {
        let (status, body) = post(&host, "knowledge", "/v1/knowledge/search", bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
}
