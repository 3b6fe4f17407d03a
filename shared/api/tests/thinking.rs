//! The thinking mode end to end in process: `serve("thinking", ...)` on the test host, whose
//! outbound HTTP goes to a real provider simulator. Each vendor gets its own reasoning control
//! on the wire, the simulator enforces the vendor's rules for it, and the reasoning comes
//! back apart from the answer. Real time, not a paused clock: the simulator is real I/O.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{serve, sim_host, sse_frames, user_request};
use opencode_runtime::Body;
use opencode_testkit::TestHost;
use provider_sim::SimHandle;
use serde_json::{json, Value};

fn host(sim: &SimHandle, order: &str) -> TestHost {
    sim_host(sim, order)
        .with_var("COMPAT_BASE_URL", &format!("{}/vllm/v1", sim.url()))
        .with_var("COMPAT_MODEL", "deepseek-reasoner")
}

fn request(body: &Value) -> http::Request<Body> {
    user_request("/v1/thinking", body)
}

async fn send(host: &TestHost, body: Value) -> (u16, http::HeaderMap, String) {
    serve(host, "thinking", request(&body)).await
}

async fn answer(host: &TestHost, body: Value) -> Value {
    let (status, _, text) = send(host, body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn ask(text: &str, extra: Value) -> Value {
    let mut body = json!({"messages": [{"role": "user", "content": text}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The bodies the simulator received, oldest first.
fn wire_bodies(sim: &SimHandle) -> Vec<Value> {
    sim.requests().into_iter().map(|r| r["body"].clone()).collect()
}

fn joined(events: &[(String, Value)], name: &str) -> String {
    events.iter().filter(|(n, _)| n == name).map(|(_, d)| d["text"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn openai_gets_a_reasoning_effort_and_reports_reasoning_tokens_but_no_text() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "openai").with_var("OPENAI_MODEL", "o4-mini");
    let body = ask(
        "why is the sky blue",
        json!({"reasoning": {"effort": "high"}, "temperature": 0.3, "max_tokens": 200, "include_thinking": true}),
    );
    let v = answer(&host, body).await;

    let wire = &wire_bodies(&sim)[0];
    assert_eq!(wire["reasoning_effort"], "high");
    assert_eq!(wire["max_completion_tokens"], 200 + 16_384);
    assert!(wire.get("temperature").is_none() && wire.get("max_tokens").is_none(), "{wire}");

    assert_eq!(v["object"], "thinking.answer");
    assert_eq!(v["mode"], "thinking");
    assert_eq!(v["provider"], "openai");
    assert_eq!(v["reasoning"], json!({"effort": "high", "budget_tokens": 16_384}));
    assert_eq!(v["citations"], json!([]));
    assert_eq!(v["message"]["content"], "Hello from openai (o4-mini). You said: why is the sky blue");
    // Asked for, but OpenAI never returns reasoning text: only its count.
    assert!(v["thinking"].is_null() && v.as_object().unwrap().contains_key("thinking"), "{v}");
    let usage = &v["usage"];
    assert!(usage["reasoning_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(usage["output_tokens"].as_u64().unwrap(), 11 + usage["reasoning_tokens"].as_u64().unwrap());
}

#[tokio::test]
async fn anthropic_gets_extended_thinking_within_its_rules_and_the_thinking_only_when_asked() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "anthropic");
    let extra = json!({"reasoning": {"budget_tokens": 3000}, "max_tokens": 100, "temperature": 0.3, "top_p": 0.5});
    let v = answer(&host, ask("ponder this", extra.clone())).await;

    let wire = &wire_bodies(&sim)[0];
    assert_eq!(wire["thinking"], json!({"type": "enabled", "budget_tokens": 3000}));
    assert_eq!(wire["max_tokens"], 3100);
    assert!(wire.get("temperature").is_none() && wire.get("top_p").is_none(), "{wire}");

    assert_eq!(v["provider"], "anthropic");
    assert_eq!(v["reasoning"], json!({"effort": "medium", "budget_tokens": 3000}));
    assert_eq!(v["message"]["content"], "Hello from anthropic (claude-haiku-4-5). You said: ponder this");
    assert!(v.get("thinking").is_none(), "omitted unless asked for: {v}");

    let mut asked = extra;
    asked["include_thinking"] = json!(true);
    let v = answer(&host, ask("ponder this", asked)).await;
    let thinking = v["thinking"].as_str().unwrap();
    assert!(thinking.contains("anthropic will echo"), "{thinking}");
    assert!(!v["message"]["content"].as_str().unwrap().contains(thinking));
}

#[tokio::test]
async fn gemini_gets_a_thinking_budget_and_asks_for_the_thoughts() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "gemini");
    let v = answer(&host, ask("hmm", json!({"reasoning": {"effort": "low"}, "include_thinking": true}))).await;

    let wire = &wire_bodies(&sim)[0];
    assert_eq!(wire["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 1024, "includeThoughts": true}));
    assert_eq!(v["provider"], "gemini");
    assert!(v["thinking"].as_str().unwrap().contains("gemini will echo"), "{v}");
    assert_eq!(v["message"]["content"], "Hello from gemini (gemini-2.5-flash). You said: hmm");
    assert!(v["usage"]["reasoning_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_compatible_server_gets_a_reasoning_effort_and_returns_reasoning_content() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "compat");
    let v = answer(&host, ask("hmm", json!({"include_thinking": true, "temperature": 0.6}))).await;
    let wire = &wire_bodies(&sim)[0];
    assert_eq!(wire["reasoning_effort"], "medium");
    assert_eq!(wire["temperature"], json!(0.6));
    assert!(v["thinking"].as_str().unwrap().contains("vllm will echo"), "{v}");
}

#[tokio::test]
async fn a_stream_sends_thinking_events_before_the_deltas_and_done_carries_the_answer_fields() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "anthropic");
    let (status, headers, text) = send(&host, ask("stream it", json!({"stream": true}))).await;
    assert_eq!(status, 200, "{text}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(headers["x-provider"], "anthropic");
    let evs = sse_frames(&text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"start"));
    assert_eq!(&names[names.len() - 2..], ["usage", "done"]);
    let last_thinking = names.iter().rposition(|n| *n == "thinking").expect("thinking events");
    let first_delta = names.iter().position(|n| *n == "delta").unwrap();
    assert!(last_thinking < first_delta, "{names:?}");

    let start = &evs[0].1;
    assert_eq!((start["mode"].as_str(), start["tier"].as_str()), (Some("thinking"), Some("system2")));
    assert_eq!(start["reasoning"], json!({"effort": "medium", "budget_tokens": 4096}));
    assert!(joined(&evs, "thinking").contains("anthropic will echo"));
    assert_eq!(joined(&evs, "delta"), "Hello from anthropic (claude-haiku-4-5). You said: stream it");
    let done = &evs.last().unwrap().1;
    assert_eq!(done["object"], "thinking.answer");
    assert_eq!(done["reasoning"]["budget_tokens"], 4096);
    assert_eq!(done["usage"], evs[evs.len() - 2].1);
    assert!(done.get("message").is_none() && done.get("thinking").is_none(), "{done}");
}

#[tokio::test]
async fn include_thinking_false_keeps_the_reasoning_out_of_a_stream_too() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "gemini").with_var("GEMINI_MODEL", "gemini-2.5-pro");
    let (status, _, text) = send(&host, ask("quiet", json!({"stream": true, "include_thinking": false}))).await;
    assert_eq!(status, 200, "{text}");
    let evs = sse_frames(&text);
    assert!(evs.iter().all(|(n, _)| n != "thinking"), "{text}");
    assert_eq!(joined(&evs, "delta"), "Hello from gemini (gemini-2.5-pro). You said: quiet");
    // The model still reasoned, and was billed for it.
    assert!(evs.last().unwrap().1["usage"]["reasoning_tokens"].as_u64().unwrap() > 0, "{text}");
}

#[tokio::test]
async fn openai_reasons_on_its_reasoning_model_when_no_model_was_set() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    // Its default chat model (gpt-4.1-mini) would refuse `reasoning_effort` with a 400.
    let v = answer(&host(&sim, "openai"), ask("default model", json!({}))).await;
    assert_eq!(
        (v["provider"].as_str(), v["model"].as_str(), v["attempts"].as_u64()),
        (Some("openai"), Some("gpt-5-mini"), Some(1))
    );
    assert_eq!(v["message"]["content"], "Hello from openai (gpt-5-mini). You said: default model");
    let sent = wire_bodies(&sim);
    assert_eq!((sent[0]["model"].as_str(), sent[0]["reasoning_effort"].as_str()), (Some("gpt-5-mini"), Some("medium")));
    assert!(v["usage"]["cost_usd"].as_f64().unwrap() > 0.0, "priced as gpt-5-mini: {v}");
}

#[tokio::test]
async fn a_provider_that_refuses_reasoning_falls_back_to_the_next() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    // A chosen gpt-4.1-mini is not a reasoning model: OpenAI answers `reasoning_effort` with a 400.
    let host = host(&sim, "openai,anthropic").with_var("OPENAI_MODEL", "gpt-4.1-mini");
    let v = answer(&host, ask("fall back", json!({"include_thinking": true}))).await;
    assert_eq!((v["provider"].as_str(), v["attempts"].as_u64()), (Some("anthropic"), Some(2)));
    assert!(v["thinking"].is_string());

    // The model asked for pins its provider; a fallback asks the next for its own model.
    let host = self::host(&sim, "gemini,anthropic");
    let v = answer(&host, ask("sim:anthropic:status=503 pinned", json!({"model": "anthropic/claude-haiku-4-5"}))).await;
    assert_eq!(v["provider"], "gemini");
    assert_eq!(v["message"]["content"], "Hello from gemini (gemini-2.5-flash). You said: pinned");
    let models: Vec<Value> = sim.requests().iter().rev().take(2).map(|r| r["body"]["model"].clone()).collect();
    assert_eq!(models[1], "claude-haiku-4-5", "the provider prefix is not sent");

    // An outage of the first provider, streamed: the stream starts on the second.
    let host = self::host(&sim, "gemini,anthropic");
    let (status, _, text) = send(&host, ask("sim:gemini:status=503 again", json!({"stream": true}))).await;
    assert_eq!(status, 200, "{text}");
    let evs = sse_frames(&text);
    assert_eq!(evs[0].1["provider"], "anthropic");
    assert_eq!(evs[0].1["attempts"], 2);
    assert!(!joined(&evs, "thinking").is_empty());
}

#[tokio::test]
async fn bad_bodies_are_422_before_any_provider_is_called() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "anthropic");
    for extra in [
        json!({"reasoning": {"effort": "maximal"}}),
        json!({"reasoning": {"budget_tokens": 512}}),
        json!({"reasoning": {"budget_tokens": 100_000}}),
        json!({"reasoning": {"effort": "low", "budget_tokens": 2048}}),
        json!({"include_thinking": 1}),
        json!({"thinking_budget": 2048}),
    ] {
        let (status, _, text) = send(&host, ask("hi", extra.clone())).await;
        assert_eq!(status, 422, "{extra}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "validation_failed", "{text}");
    }
    assert!(sim.requests().is_empty());
}
