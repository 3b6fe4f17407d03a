//! OpenAI Chat Completions and OpenAI-compatible prefixes, as the API reference documents them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn completion_has_the_documented_shape_and_deterministic_text() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r =
        post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_body("gpt-4o-mini", "  Hi   there ", false))
            .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gpt-4o-mini");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hello from openai (gpt-4o-mini). You said: Hi there");
    assert_eq!(choice["finish_reason"], "stop");
    // system "You are terse." (3) + user "Hi there" (2); reply has 8 words.
    assert_eq!(v["usage"]["prompt_tokens"], 5);
    assert_eq!(v["usage"]["completion_tokens"], 8);
    assert_eq!(v["usage"]["total_tokens"], 13);
}

#[tokio::test]
async fn stream_sends_role_then_one_word_per_chunk_then_finish_usage_and_done() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let text = "stream me please";
    let whole =
        post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_body("gpt-4o", text, false)).await.json();
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_body("gpt-4o", text, true)).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
    assert!(r.body_error.is_none());
    let events = r.events();
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<_> =
        events[..events.len() - 1].iter().map(|e| e.json().expect("every chunk but [DONE] is JSON")).collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "gpt-4o");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let expected = whole["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(stream_text("openai", &events), expected);
    assert_eq!(content_events("openai", &events), expected.split_whitespace().count());
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], whole["usage"]);
    // Every other chunk carries `usage: null` when include_usage is on.
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c["usage"].is_null()));
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let mut body = openai_body("gpt-4o", "no usage", true);
    body["stream_options"] = json!(null);
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &body).await;
    let events = r.events();
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<_> = events.iter().filter_map(|e| e.json()).collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none() && !c["choices"].as_array().unwrap().is_empty()));
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn missing_or_invalid_key_is_401_in_openai_error_format() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = openai_body("gpt-4o", "hi", false);
    for headers in [vec![], vec![("authorization", "Bearer ")], vec![("authorization", "Bearer invalid-key")]] {
        let r = post(sim.addr(), "/v1/chat/completions", &headers, &body).await;
        assert_eq!(r.status, 401, "{headers:?}");
        let e = &r.json()["error"];
        assert!(e["message"].is_string());
        assert_eq!(e["type"], "invalid_request_error");
        assert!(e.get("param").is_some() && e.get("code").is_some());
    }
}

#[tokio::test]
async fn missing_model_or_messages_is_400() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(
        sim.addr(),
        "/v1/chat/completions",
        &[OPENAI_KEY],
        &json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &json!({"model": "gpt-4o"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "messages");
}

#[tokio::test]
async fn compatible_prefix_needs_no_key_and_uses_its_label() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), "/ollama/v1/chat/completions", &[], &openai_body("llama3.2", "local please", false)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "Hello from ollama (llama3.2). You said: local please");
    let r = post(sim.addr(), "/vllm/v1/chat/completions", &[], &openai_body("qwen", "x", true)).await;
    assert_eq!(stream_text("vllm", &r.events()), "Hello from vllm (qwen). You said: x");
}

#[tokio::test]
async fn models_lists_models_and_needs_a_key_for_openai() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = send(sim.addr(), "GET", "/v1/models", &[OPENAI_KEY], None).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(send(sim.addr(), "GET", "/v1/models", &[], None).await.status, 401);
    assert_eq!(send(sim.addr(), "GET", "/ollama/v1/models", &[], None).await.status, 200);
}

#[tokio::test]
async fn think_reports_reasoning_tokens_and_compatible_servers_send_reasoning_content() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_body("o3-mini", "why sim:think", false))
        .await
        .json();
    assert_eq!(r["choices"][0]["message"]["content"], "Hello from openai (o3-mini). You said: why");
    assert!(r["choices"][0]["message"].get("reasoning_content").is_none());
    let reasoning = r["usage"]["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap();
    assert!(reasoning > 0);
    assert_eq!(r["usage"]["completion_tokens"].as_u64().unwrap(), 7 + reasoning);

    let r = post(sim.addr(), "/vllm/v1/chat/completions", &[], &openai_body("qwen", "why sim:think", true)).await;
    let reasoning: String = r
        .events()
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str().map(str::to_owned))
        .collect();
    assert!(!reasoning.is_empty());
    assert_eq!(stream_text("vllm", &r.events()), "Hello from vllm (qwen). You said: why");
}
