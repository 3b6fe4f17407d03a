//! `drop`, `cut`, `malformed` and `error_event`: broken connections and broken bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn drop_closes_the_connection_without_any_response() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let (bytes, end) = raw_post(
        sim.addr(),
        "/v1/chat/completions",
        &[OPENAI_KEY],
        &openai_body("gpt", "bye sim:openai:drop", false),
        WAIT,
    )
    .await;
    assert_eq!(end, End::Closed);
    assert!(bytes.is_empty(), "got {:?}", String::from_utf8_lossy(&bytes));
    // A real HTTP client sees a failed request, not a response.
    let body = openai_body("gpt", "bye sim:openai:drop", true);
    let err = try_send(sim.addr(), "POST", "/v1/chat/completions", &[OPENAI_KEY], Some(&body)).await;
    assert!(err.is_err());
    // The request was still received and logged.
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn cut_ends_a_stream_after_n_content_events_without_the_terminal_chunk() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let (raw, end) = raw_post(
        sim.addr(),
        "/v1/chat/completions",
        &[OPENAI_KEY],
        &openai_body("gpt", "cut me short sim:openai:cut=3", true),
        WAIT,
    )
    .await;
    assert_eq!(end, End::Closed);
    let (head, body) = split_head(&raw);
    assert!(head.starts_with("HTTP/1.1 200"));
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"));
    let (decoded, terminated) = dechunk(&body);
    assert!(!terminated, "no terminating zero-length chunk after a cut");
    let events = parse_sse(&String::from_utf8(decoded).unwrap());
    assert_eq!(content_events("openai", &events), 3);
    assert_eq!(stream_text("openai", &events), "Hello from openai");
    assert!(events.iter().all(|e| e.data != "[DONE]"));

    // Through a real client the body ends in an error.
    let r = call(sim.addr(), "anthropic", "cut again sim:anthropic:cut=2", true).await;
    assert!(r.body_error.is_some());
    let events = r.events();
    assert_eq!(content_events("anthropic", &events), 2);
    assert!(events.iter().all(|e| e.event.as_deref() != Some("message_stop")));
}

#[tokio::test]
async fn cut_on_a_non_streamed_answer_sends_less_than_content_length() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let (raw, end) = raw_post(
        sim.addr(),
        "/v1beta/models/g:generateContent",
        &[GEMINI_KEY],
        &gemini_body("partial sim:gemini:cut=20"),
        WAIT,
    )
    .await;
    assert_eq!(end, End::Closed);
    let (head, body) = split_head(&raw);
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.parse().unwrap()))
        .expect("content-length announced");
    assert_eq!(body.len(), 20);
    assert!(length > body.len());
    let r = call(sim.addr(), "gemini", "partial2 sim:gemini:cut=20", false).await;
    assert!(r.body_error.is_some());
}

#[tokio::test]
async fn malformed_sends_200_json_that_does_not_parse() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    for provider in ["openai", "anthropic", "gemini"] {
        let r = call(sim.addr(), provider, "garbled sim:any:malformed", false).await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("application/json"));
        assert!(r.body_error.is_none());
        assert!(serde_json::from_slice::<serde_json::Value>(&r.bytes()).is_err(), "{provider}: {}", r.text());
    }
}

#[tokio::test]
async fn malformed_in_a_stream_sends_a_data_line_that_is_not_json() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    for provider in ["openai", "anthropic", "gemini"] {
        let r = call(sim.addr(), provider, "garbled stream sim:any:malformed=2", true).await;
        assert_eq!(r.status, 200);
        let events = r.events();
        assert_eq!(content_events(provider, &events), 2, "{provider}");
        let last = events.last().unwrap();
        assert!(last.json().is_none() && last.data != "[DONE]", "{provider}: {last:?}");
    }
}

#[tokio::test]
async fn error_event_sends_the_vendors_in_stream_error_after_n_events() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();

    let r = call(sim.addr(), "openai", "oops sim:openai:error_event=2", true).await;
    assert!(r.body_error.is_none(), "the stream ends cleanly after the error event");
    let events = r.events();
    assert_eq!(content_events("openai", &events), 2);
    let last = events.last().unwrap().json().unwrap();
    assert_eq!(last["error"]["type"], "server_error");
    assert!(last["error"]["message"].is_string());
    assert!(events.iter().all(|e| e.data != "[DONE]"));

    let r = call(sim.addr(), "anthropic", "oops sim:anthropic:error_event=1", true).await;
    let events = r.events();
    assert_eq!(content_events("anthropic", &events), 1);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    let data = last.json().unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "overloaded_error");

    let r = call(sim.addr(), "gemini", "oops sim:gemini:error_event=0", true).await;
    let events = r.events();
    assert_eq!(content_events("gemini", &events), 0);
    let last = events.last().unwrap().json().unwrap();
    assert_eq!(last["error"]["status"], "UNAVAILABLE");
    assert_eq!(last["error"]["code"], 503);
}

#[tokio::test]
async fn stream_faults_ignore_other_targets() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = call(sim.addr(), "openai", "fine sim:anthropic:cut=1 sim:gemini:error_event=1", true).await;
    assert!(r.body_error.is_none());
    assert_eq!(r.events().last().unwrap().data, "[DONE]");
    assert_eq!(stream_text("openai", &r.events()), "Hello from openai (gpt-4o-mini). You said: fine");
}
