//! A request's `model` is pinned on its own provider: when that provider fails, the fallbacks
//! are asked for their own configured models, never for the pinned one (which they would
//! refuse). Checked on every mode that takes `model` and calls a model chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::*;
use opencode_testkit::{json_response, TestHost};
use serde_json::{json, Value};

/// OpenAI is down; Anthropic answers; Tavily finds one page. Research's planner gets a plan.
fn host() -> TestHost {
    test_host()
        .with_var("ANTHROPIC_MODEL", "claude-own")
        .with_var("ANTHROPIC_STRONG_MODEL", "claude-own")
        .with_var("TAVILY_API_KEY", "tvly-key")
        .with_var("TAVILY_BASE_URL", "http://tavily.test")
        .with_upstream(|req| async move {
            if req.uri().host() == Some("tavily.test") {
                let results = json!([{"title": "Page", "url": "https://p.example/", "content": "c", "score": 0.9}]);
                return Ok(json_response(200, &json!({"query": "q", "results": results}).to_string()));
            }
            if is_openai(&req) {
                return Ok(json_response(500, r#"{"error":{"message":"down"}}"#));
            }
            let body: Value = serde_json::from_slice(req.body()).unwrap();
            let planning = body.to_string().contains("JSON array of sub-questions");
            Ok(json_response(200, &anthropic_ok(if planning { r#"["q?"]"# } else { "answer [1]" })))
        })
}

async fn call(host: &TestHost, mode: &str) -> (u16, String) {
    let body = json!({"messages": [{"role": "user", "content": "What is new?"}], "model": "gpt-4o"});
    post_as_user(host, mode, &format!("/v1/{mode}"), &body, &[]).await
}

#[tokio::test(start_paused = true)]
async fn fallbacks_ask_for_their_own_model_in_every_mode() {
    for mode in ["chat", "search", "research"] {
        let host = host();
        let (status, body) = call(&host, mode).await;
        assert_eq!(status, 200, "{mode}: {body}");
        let requests = host.requests();
        let openai: Vec<Value> =
            requests.iter().filter(|r| is_openai(r)).map(|r| serde_json::from_slice(r.body()).unwrap()).collect();
        let anthropic: Vec<Value> = requests
            .iter()
            .filter(|r| r.uri().path() == "/v1/messages")
            .map(|r| serde_json::from_slice(r.body()).unwrap())
            .collect();
        assert!(!openai.is_empty() && !anthropic.is_empty(), "{mode}: both providers are tried");
        assert!(openai.iter().all(|b| b["model"] == "gpt-4o"), "{mode}: the pinned model goes to its provider");
        assert!(anthropic.iter().all(|b| b["model"] == "claude-own"), "{mode}: {anthropic:?}");
    }
}
