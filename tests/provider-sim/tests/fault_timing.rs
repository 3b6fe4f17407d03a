//! `delay_ms`, `chunk_delay_ms` and `hang`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn delay_ms_holds_the_response_head_back() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let fast = call(sim.addr(), "anthropic", "no delay", false).await;
    assert!(fast.head_after < Duration::from_millis(250), "{:?}", fast.head_after);
    let slow = call(sim.addr(), "anthropic", "slow sim:anthropic:delay_ms=300", false).await;
    assert_eq!(slow.status, 200);
    assert!(slow.head_after >= Duration::from_millis(300), "{:?}", slow.head_after);
}

#[tokio::test]
async fn delay_ms_applies_before_an_error_status() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = call(sim.addr(), "gemini", "slow-fail sim:gemini:delay_ms=200 sim:gemini:status=503", false).await;
    assert_eq!(r.status, 503);
    assert!(r.head_after >= Duration::from_millis(200));
}

#[tokio::test]
async fn chunk_delay_ms_spaces_stream_events_so_they_arrive_one_by_one() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = call(sim.addr(), "openai", "tick tock sim:openai:chunk_delay_ms=60", true).await;
    assert_eq!(r.status, 200);
    // Reply "Hello from openai (gpt-4o-mini). You said: tick tock" + role, finish, usage, [DONE].
    assert!(r.frames.len() >= 10, "events arrive as separate frames: {}", r.frames.len());
    let first = r.frames.first().unwrap().0;
    let last = r.frames.last().unwrap().0;
    assert!(last - first >= Duration::from_millis(60 * 9), "{:?}", last - first);
    assert_eq!(stream_text("openai", &r.events()), "Hello from openai (gpt-4o-mini). You said: tick tock");
    // No two frames arrived together.
    for pair in r.frames.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= Duration::from_millis(40));
    }
}

#[tokio::test]
async fn hang_never_answers_until_the_client_gives_up() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let outcome =
        tokio::time::timeout(Duration::from_millis(400), call(sim.addr(), "openai", "stuck sim:openai:hang", false))
            .await;
    assert!(outcome.is_err(), "a hung request must not get an answer");
    assert!(started.elapsed() >= Duration::from_millis(400));
    // The simulator still serves other requests meanwhile.
    assert_eq!(call(sim.addr(), "openai", "still alive", false).await.status, 200);
}

#[tokio::test]
async fn hang_keeps_the_connection_open_with_no_bytes() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let (bytes, end) = raw_post(
        sim.addr(),
        "/v1/messages",
        &ANTHROPIC_HEADERS,
        &anthropic_body("claude", "stuck sim:any:hang", true),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(end, End::TimedOut);
    assert!(bytes.is_empty());
}
