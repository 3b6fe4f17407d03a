//! Modes as models: `model: "opencode/<mode>"` on a vendor's path at the gateway runs that mode
//! and answers in the vendor's shape; `opencode/auto` runs the mode the analyzer picks.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use bytes::Bytes;
use common::*;
use opencode_testkit::{json_response, TestHost};
use serde_json::{json, Value};

fn tavily_ok() -> String {
    json!({"query": "q", "answer": null, "images": [], "response_time": "0.3", "results": [
        {"title": "Tavily one", "url": "https://t.example/1", "content": "About it.", "score": 0.9, "raw_content": null},
    ]})
    .to_string()
}

/// The gateway with every mode's function in process; Tavily and the chat providers upstream.
fn host() -> TestHost {
    let host = test_host()
        .with_var("TAVILY_API_KEY", "tvly-key")
        .with_var("TAVILY_BASE_URL", "http://tavily.test")
        .with_upstream(|req: http::Request<Bytes>| async move {
            Ok(if req.uri().host() == Some("tavily.test") {
                json_response(200, &tavily_ok())
            } else {
                json_response(200, &openai_ok("It is so [1]."))
            })
        });
    in_process(&host, &["gateway", "chat", "search", "thinking", "agent"]);
    host
}

async fn gateway(host: &TestHost, path: &str, body: Value) -> (u16, http::HeaderMap, Value) {
    let (status, headers, text) = serve(host, "gateway", user_request(path, &body)).await;
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test(start_paused = true)]
async fn opencode_search_answers_a_chat_completion_with_url_citations() {
    let host = host();
    let body = json!({"model": "opencode/search", "messages": [{"role": "user", "content": "is it so?"}]});
    let (status, _, v) = gateway(&host, "/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["opencode"]["mode"], "search");
    let annotation = &v["choices"][0]["message"]["annotations"][0];
    assert_eq!(annotation["type"], "url_citation");
    assert_eq!(annotation["url_citation"]["url"], "https://t.example/1");
    assert_eq!(
        (annotation["url_citation"]["start_index"].as_u64(), annotation["url_citation"]["end_index"].as_u64()),
        (Some(9), Some(12))
    );
}

#[tokio::test(start_paused = true)]
async fn chat_passes_another_modes_alias_on_to_the_gateway() {
    // Spin routes OpenAI's and Anthropic's chat paths straight to chat.
    let host = host();
    let body = json!({"model": "opencode/search", "messages": [{"role": "user", "content": "is it so?"}]});
    let (status, _, text) = serve(&host, "chat", user_request("/v1/chat/completions", &body)).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, v["object"].as_str(), v["opencode"]["mode"].as_str()),
        (200, Some("chat.completion"), Some("search")),
        "{v}"
    );
    let body = json!({"model": "opencode/nomode", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, text) = serve(&host, "chat", user_request("/v1/messages", &body)).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, v["type"].as_str()), (404, Some("error")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("opencode/nomode"), "{v}");
}

#[tokio::test(start_paused = true)]
async fn opencode_thinking_answers_an_anthropic_message() {
    let host = host();
    let body =
        json!({"model": "opencode/thinking", "max_tokens": 2048, "messages": [{"role": "user", "content": "why?"}]});
    let (status, _, v) = gateway(&host, "/v1/messages", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["opencode"]["mode"], "thinking");
}

#[tokio::test(start_paused = true)]
async fn opencode_auto_runs_the_analyzers_choice_and_says_so_in_headers() {
    let host = host();
    let body = json!({"model": "opencode/auto", "input": "hi there"});
    let (status, headers, v) = gateway(&host, "/v1/responses", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "response");
    assert_eq!(headers["x-routing-mode"], "chat");
    assert_eq!(headers["x-routing-tier"], "system1");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_alias_is_a_404_and_a_plain_model_goes_to_chat() {
    let host = host();
    let body = json!({"model": "opencode/nothing", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, v) = gateway(&host, "/v1/chat/completions", body).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
    let body = json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, v) = gateway(&host, "/v1/chat/completions", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["opencode"]["provider"], "openai");
}

#[tokio::test(start_paused = true)]
async fn opencode_knowledge_answers_from_the_tenants_documents() {
    let host = host();
    in_process(&host, &["knowledge"]);
    let body =
        json!({"model": "opencode/knowledge", "messages": [{"role": "user", "content": "what do my notes say?"}]});
    let (status, _, v) = gateway(&host, "/v1/chat/completions", body).await;
    // No document is stored: the mode says so without a model call, in OpenAI's shape.
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["opencode"]["mode"], "knowledge");
}
