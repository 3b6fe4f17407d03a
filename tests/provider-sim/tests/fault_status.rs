//! `status=N`, `retry_after=S`, `*K` counting and targeting (`any`, labels).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;

#[tokio::test]
async fn status_answers_with_each_vendors_error_format() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = call(sim.addr(), "openai", "a sim:openai:status=503", false).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "server_error");
    let r = call(sim.addr(), "openai", "b sim:openai:status=429", false).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");

    let r = call(sim.addr(), "anthropic", "c sim:anthropic:status=529", true).await;
    assert_eq!(r.status, 529);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    let r = call(sim.addr(), "anthropic", "d sim:anthropic:status=429", false).await;
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    let r = call(sim.addr(), "anthropic", "e sim:anthropic:status=500", false).await;
    assert_eq!(r.json()["error"]["type"], "api_error");

    let r = call(sim.addr(), "gemini", "f sim:gemini:status=503", true).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], 503);
    assert_eq!(r.json()["error"]["status"], "UNAVAILABLE");
    let r = call(sim.addr(), "gemini", "g sim:gemini:status=429", false).await;
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
}

#[tokio::test]
async fn retry_after_adds_the_header_and_alone_means_429() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = call(sim.addr(), "gemini", "ra1 sim:gemini:retry_after=7", false).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    let r = call(sim.addr(), "anthropic", "ra2 sim:anthropic:status=529 sim:anthropic:retry_after=2", false).await;
    assert_eq!(r.status, 529);
    assert_eq!(r.header("retry-after"), Some("2"));
    let r = call(sim.addr(), "openai", "ra3 sim:openai:status=500", false).await;
    assert_eq!(r.header("retry-after"), None);
}

#[tokio::test]
async fn times_limits_a_fault_to_the_first_k_requests_with_that_text() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let text = "flaky-once-twice sim:openai:status=500*2";
    assert_eq!(call(sim.addr(), "openai", text, false).await.status, 500);
    assert_eq!(call(sim.addr(), "openai", text, false).await.status, 500);
    let third = call(sim.addr(), "openai", text, false).await;
    assert_eq!(third.status, 200);
    assert_eq!(answer_text("openai", &third.json()), "Hello from openai (gpt-4o-mini). You said: flaky-once-twice");
    // Another message text has its own counter.
    assert_eq!(call(sim.addr(), "openai", "other-text sim:openai:status=500*2", false).await.status, 500);
    // Reset clears the counters.
    assert_eq!(send(sim.addr(), "POST", "/_sim/reset", &[], None).await.status, 200);
    assert_eq!(call(sim.addr(), "openai", text, false).await.status, 500);
}

#[tokio::test]
async fn times_counts_stream_and_non_stream_requests_alike() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let text = "mixed-calls sim:anthropic:status=529*1";
    assert_eq!(call(sim.addr(), "anthropic", text, true).await.status, 529);
    assert_eq!(call(sim.addr(), "anthropic", text, false).await.status, 200);
}

#[tokio::test]
async fn any_targets_every_provider_and_a_label_only_its_own() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    for provider in ["openai", "anthropic", "gemini", "ollama"] {
        let r = call(sim.addr(), provider, "everyone sim:any:status=502", false).await;
        assert_eq!(r.status, 502, "{provider}");
    }
    for provider in ["openai", "anthropic", "gemini"] {
        let r = call(sim.addr(), provider, "only-ollama sim:ollama:status=502", false).await;
        assert_eq!(r.status, 200, "{provider}");
        assert_eq!(answer_text(provider, &r.json()).rsplit(": ").next(), Some("only-ollama"));
    }
    assert_eq!(call(sim.addr(), "ollama", "only-ollama sim:ollama:status=502", false).await.status, 502);
}

#[tokio::test]
async fn a_fault_for_one_provider_lets_the_fallback_succeed() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let text = "fallback sim:openai:status=503 sim:anthropic:status=529";
    assert_eq!(call(sim.addr(), "openai", text, false).await.status, 503);
    assert_eq!(call(sim.addr(), "anthropic", text, false).await.status, 529);
    let r = call(sim.addr(), "gemini", text, false).await;
    assert_eq!(r.status, 200);
    assert_eq!(answer_text("gemini", &r.json()), "Hello from gemini (gemini-2.5-flash). You said: fallback");
}
