//! `/_sim/health`, `/_sim/requests` (with redaction), `/_sim/reset`, unknown paths, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn health_is_200() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = send(sim.addr(), "GET", "/_sim/health", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
}

#[tokio::test]
async fn requests_are_logged_in_order_with_credentials_redacted() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    call(sim.addr(), "openai", "first", false).await;
    call(sim.addr(), "anthropic", "second", true).await;
    post(
        sim.addr(),
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=goog-query-secret",
        &[],
        &gemini_body("third"),
    )
    .await;
    call(sim.addr(), "gemini", "fourth", false).await;
    call(sim.addr(), "ollama", "fifth", false).await;

    let r = send(sim.addr(), "GET", "/_sim/requests", &[], None).await;
    assert_eq!(r.status, 200);
    let log = r.json();
    let log = log.as_array().unwrap();
    let providers: Vec<_> = log.iter().map(|e| e["provider"].as_str().unwrap()).collect();
    assert_eq!(providers, ["openai", "anthropic", "gemini", "gemini", "ollama"]);

    let openai = &log[0];
    assert_eq!(openai["method"], "POST");
    assert_eq!(openai["path"], "/v1/chat/completions");
    assert_eq!(openai["headers"]["authorization"], "***");
    assert_eq!(openai["headers"]["content-type"], "application/json");
    assert_eq!(openai["body"]["messages"][1], json!({"role": "user", "content": "first"}));
    assert_eq!(log[1]["headers"]["x-api-key"], "***");
    assert_eq!(log[1]["headers"]["anthropic-version"], "2023-06-01");
    assert_eq!(log[2]["query"], "alt=sse&key=***");
    assert_eq!(log[3]["headers"]["x-goog-api-key"], "***");
    assert_eq!(log[4]["path"], "/ollama/v1/chat/completions");

    let text = r.text();
    for secret in ["sk-test-secret", "sk-ant-secret", "goog-secret", "goog-query-secret"] {
        assert!(!text.contains(secret), "{secret} leaked into the log");
    }
    // The in-process view is the same.
    assert_eq!(sim.requests(), *log);
}

#[tokio::test]
async fn rejected_requests_are_logged_too() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), "/v1/messages", &[], &anthropic_body("c", "no key", false)).await;
    assert_eq!(r.status, 401);
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(sim.requests()[0]["provider"], "anthropic");
}

#[tokio::test]
async fn reset_clears_the_log() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    call(sim.addr(), "openai", "x", false).await;
    assert_eq!(send(sim.addr(), "GET", "/_sim/requests", &[], None).await.json().as_array().unwrap().len(), 1);
    let r = send(sim.addr(), "POST", "/_sim/reset", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(send(sim.addr(), "GET", "/_sim/requests", &[], None).await.json(), json!([]));
    call(sim.addr(), "openai", "y", false).await;
    sim.reset();
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn unknown_paths_are_404_and_not_logged() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    assert_eq!(send(sim.addr(), "GET", "/nope", &[], None).await.status, 404);
    assert_eq!(post(sim.addr(), "/v1beta/models/g:countTokens", &[GEMINI_KEY], &gemini_body("x")).await.status, 404);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn shutdown_stops_serving_and_only_loopback_is_accepted() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let addr = sim.addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    assert_eq!(sim.url(), format!("http://127.0.0.1:{}", addr.port()));
    sim.shutdown();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(provider_sim::start("0.0.0.0:0").is_err());
}

#[tokio::test]
async fn dropping_the_handle_closes_hung_connections() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let addr = sim.addr();
    let hung = tokio::spawn(async move {
        raw_post(
            addr,
            "/v1/chat/completions",
            &[OPENAI_KEY],
            &openai_body("m", "sim:any:hang", false),
            std::time::Duration::from_secs(5),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(sim);
    let (bytes, end) = hung.await.unwrap();
    assert_eq!(end, End::Closed);
    assert!(bytes.is_empty());
}
