//! Reasoning asked for with each vendor's own control (no `sim:think`), and the constraints
//! each vendor puts on that control, answered with the vendor's 400.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::{json, Value};

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn openai_reasoning_models_count_reasoning_tokens_but_return_no_reasoning_text() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = with(openai_body("o4-mini", "why is the sky blue", false), json!({"reasoning_effort": "high"}));
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let reasoning = v["usage"]["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap();
    assert!(reasoning > 0, "{v}");
    assert!(v["choices"][0]["message"].get("reasoning_content").is_none());
    assert_eq!(v["usage"]["completion_tokens"].as_u64().unwrap(), 11 + reasoning, "{v}");

    let plain = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_body("o4-mini", "why", false)).await;
    assert_eq!(plain.json()["usage"]["completion_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn compatible_servers_stream_reasoning_content_before_the_answer() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = with(openai_body("deepseek-reasoner", "why", true), json!({"reasoning_effort": "low"}));
    let r = post(sim.addr(), "/vllm/v1/chat/completions", &[], &body).await;
    assert_eq!(r.status, 200);
    let chunks: Vec<Value> = r.events().iter().filter_map(|e| e.json()).collect();
    let first_reasoning = chunks.iter().position(|c| c["choices"][0]["delta"]["reasoning_content"].is_string());
    let first_content =
        chunks.iter().position(|c| c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(first_reasoning.unwrap() < first_content.unwrap());
}

#[tokio::test]
async fn openai_refuses_what_its_models_refuse() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let cases = [
        ("gpt-4.1-mini", json!({"reasoning_effort": "low"}), "reasoning_effort"),
        ("o4-mini", json!({"reasoning_effort": "extreme"}), "reasoning_effort"),
        ("o4-mini", json!({"reasoning_effort": "low", "max_tokens": 100}), "max_tokens"),
        ("gpt-5-mini", json!({"reasoning_effort": "low", "temperature": 0.2}), "temperature"),
        ("o3", json!({"top_p": 0.5}), "top_p"),
    ];
    for (model, extra, param) in cases {
        let r = post(
            sim.addr(),
            "/v1/chat/completions",
            &[OPENAI_KEY],
            &with(openai_body(model, "hi", false), extra.clone()),
        )
        .await;
        assert_eq!(r.status, 400, "{model} {extra}");
        assert_eq!(r.json()["error"]["param"], param, "{model} {extra}: {}", r.text());
    }
    // Compatible servers take `reasoning_effort` on any model.
    let r = post(
        sim.addr(),
        "/ollama/v1/chat/completions",
        &[],
        &with(openai_body("qwen3", "hi", false), json!({"reasoning_effort": "high"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["choices"][0]["message"]["reasoning_content"].is_string());
}

fn anthropic_thinking(extra: Value) -> Value {
    with(anthropic_body("claude-haiku-4-5", "ponder", false), extra)
}

#[tokio::test]
async fn anthropic_extended_thinking_returns_a_thinking_block() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = anthropic_thinking(json!({"max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024}}));
    let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][1]["text"], "Hello from anthropic (claude-haiku-4-5). You said: ponder");

    let disabled = anthropic_thinking(json!({"thinking": {"type": "disabled"}}));
    let v = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &disabled).await.json();
    assert_eq!(v["content"][0]["type"], "text");
}

#[tokio::test]
async fn anthropic_refuses_budgets_and_sampling_that_extended_thinking_does_not_allow() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let enabled = |budget: u64| json!({"type": "enabled", "budget_tokens": budget});
    let cases = [
        (json!({"max_tokens": 4096, "thinking": enabled(1023)}), "greater than or equal to 1024"),
        (json!({"max_tokens": 1024, "thinking": enabled(1024)}), "max_tokens"),
        (json!({"max_tokens": 4096, "thinking": {"type": "enabled"}}), "budget_tokens"),
        (json!({"max_tokens": 4096, "thinking": {"type": "sometimes"}}), "thinking.type"),
        (json!({"max_tokens": 4096, "thinking": enabled(1024), "temperature": 0.5}), "temperature"),
        (json!({"max_tokens": 4096, "thinking": enabled(1024), "top_p": 0.9}), "top_p"),
        (json!({"max_tokens": 4096, "thinking": enabled(1024), "top_k": 5}), "top_k"),
    ];
    for (extra, needle) in cases {
        let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_thinking(extra.clone())).await;
        assert_eq!(r.status, 400, "{extra}");
        let v = r.json();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{extra}: {v}");
    }
    let allowed = json!({"max_tokens": 4096, "thinking": enabled(1024), "temperature": 1, "top_p": 0.95});
    let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_thinking(allowed)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

fn gemini_thinking(config: Value) -> Value {
    let mut body = gemini_body("hmm");
    body["generationConfig"]["thinkingConfig"] = config;
    body
}

const FLASH: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

#[tokio::test]
async fn gemini_returns_thoughts_only_with_include_thoughts() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let v = post(
        sim.addr(),
        FLASH,
        &[GEMINI_KEY],
        &gemini_thinking(json!({"thinkingBudget": 2048, "includeThoughts": true})),
    )
    .await
    .json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true, "{v}");
    assert!(v["usageMetadata"]["thoughtsTokenCount"].as_u64().unwrap() > 0);

    // The model still thinks (and bills it), but the text does not come back.
    let v = post(sim.addr(), FLASH, &[GEMINI_KEY], &gemini_thinking(json!({"thinkingBudget": 2048}))).await.json();
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap().clone();
    assert!(parts.iter().all(|p| p.get("thought").is_none()), "{v}");
    assert!(v["usageMetadata"]["thoughtsTokenCount"].as_u64().unwrap() > 0);

    let v =
        post(sim.addr(), FLASH, &[GEMINI_KEY], &gemini_thinking(json!({"thinkingBudget": 0, "includeThoughts": true})))
            .await
            .json();
    assert!(v["usageMetadata"].get("thoughtsTokenCount").is_none(), "{v}");

    let url = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    let r = post(
        sim.addr(),
        url,
        &[GEMINI_KEY],
        &gemini_thinking(json!({"thinkingBudget": 1024, "includeThoughts": true})),
    )
    .await;
    let chunks: Vec<Value> = r.events().iter().filter_map(|e| e.json()).collect();
    assert_eq!(chunks[0]["candidates"][0]["content"]["parts"][0]["thought"], true);
}

#[tokio::test]
async fn gemini_refuses_budgets_outside_the_models_range() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    for (path, budget, status) in [
        (FLASH, 24_576, 200),
        (FLASH, 24_577, 400),
        (FLASH, -1, 200),
        ("/v1beta/models/gemini-2.5-pro:generateContent", 32_768, 200),
        ("/v1beta/models/gemini-2.5-pro:generateContent", 0, 400),
    ] {
        let r = post(sim.addr(), path, &[GEMINI_KEY], &gemini_thinking(json!({"thinkingBudget": budget}))).await;
        assert_eq!(r.status, status, "{path} {budget}: {}", r.text());
        if status == 400 {
            assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
        }
    }
}
