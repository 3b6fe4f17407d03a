//! What bounds a provider's stream: an event's size, a stream's total time, and what is kept of
//! it for the cache.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use opencode_runtime::Body;
use opencode_testkit::{streamed_response, TestHost};
use serde_json::{json, Value};

/// The events of a streamed chat answer, by name and data.
async fn events(host: &TestHost, body: Value) -> Vec<(String, Value)> {
    let response = opencode_api::serve_named("chat", host.clone(), chat(body)).await;
    let bytes = response.into_body().collect(8 << 20).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    text.split("\n\n")
        .filter_map(|frame| {
            let (event, data) = frame.split_once('\n')?;
            Some((event.strip_prefix("event: ")?.to_owned(), serde_json::from_str(data.strip_prefix("data: ")?).ok()?))
        })
        .collect()
}

fn streamed(text: &str) -> Value {
    json!({"messages":[{"role":"user","content":text}],"stream":true})
}

#[tokio::test(start_paused = true)]
async fn an_event_over_a_mebibyte_fails_the_attempt_as_malformed_at_once() {
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = calls.clone();
    let host = test_host().with_var("PROVIDER_ORDER", "openai").with_upstream(move |_| {
        seen.set(seen.get() + 1);
        let first = seen.get() == 1;
        async move {
            Ok(if first {
                // A line that never ends, then silence: without a bound the decoder would hold it
                // and wait for the rest until the attempt timed out.
                let line = format!("data: {}", "x".repeat((1 << 20) + 1));
                let (parts, body) = streamed_response(vec![line], 0, false).into_parts();
                let Body::Stream(body) = body else { unreachable!() };
                http::Response::from_parts(parts, Body::Stream(body.chain(futures::stream::pending()).boxed_local()))
            } else {
                streamed_response(openai_chunks(&["fine"]), 0, false)
            })
        }
    });
    let start = tokio::time::Instant::now();
    let got = events(&host, streamed("hi")).await;
    assert_eq!(got.last().unwrap().0, "done", "{got:?}");
    assert_eq!(got.last().unwrap().1["attempts"], 2);
    assert!(start.elapsed() < Duration::from_millis(100), "failed at once, not at the timeout: {:?}", start.elapsed());
    let failed: Vec<_> = host.logs().into_iter().filter(|r| r["msg"] == "attempt failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["outcome"], "malformed response");
}

#[tokio::test(start_paused = true)]
async fn a_stream_ends_with_an_error_once_it_has_run_for_stream_max_ms() {
    // An event every 400 ms keeps the silence under the attempt timeout (1 s) for 8 s; the
    // stream may take 2 s in all.
    let host = test_host().with_var("STREAM_MAX_MS", "2000").with_upstream(|_| async move {
        let words: Vec<String> = (0..20).map(|i| format!("w{i} ")).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        Ok(streamed_response(openai_chunks(&words), 400, false))
    });
    let start = tokio::time::Instant::now();
    let got = events(&host, streamed("hi")).await;
    let last = got.last().unwrap();
    assert_eq!(last.0, "error", "{got:?}");
    assert_eq!(last.1["code"], "stream_interrupted");
    assert!(last.1["message"].as_str().unwrap().contains("STREAM_MAX_MS"), "{}", last.1);
    assert_eq!(start.elapsed(), Duration::from_millis(2000));
}

#[tokio::test(start_paused = true)]
async fn an_answer_too_large_for_the_cache_is_delivered_but_not_kept() {
    let half = "x".repeat(600 * 1024);
    let host = test_host().with_upstream(move |req| {
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        let half = half.clone();
        async move {
            Ok(if body["stream"] == true {
                streamed_response(openai_chunks(&[&half, &half]), 0, false)
            } else {
                http::Response::new(Body::from(openai_ok(&format!("{half}{half}"))))
            })
        }
    });
    let got = events(&host, streamed("big")).await;
    let text: usize = got.iter().filter(|(n, _)| n == "delta").map(|(_, v)| v["text"].as_str().unwrap().len()).sum();
    assert_eq!(text, 1200 * 1024, "the client gets all of it");
    let whole = opencode_api::serve_named(
        "chat",
        host.clone(),
        chat(json!({"messages":[{"role":"user","content":"big whole"}]})),
    );
    assert_eq!(whole.await.status(), 200);
    host.run_background().await;
    assert!(host.kv_snapshot("cache").is_empty(), "nothing over the bound is cached");

    let small =
        test_host().with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["small"]), 0, false)) });
    events(&small, streamed("small")).await;
    small.run_background().await;
    assert_eq!(small.kv_snapshot("cache").len(), 1, "an answer within the bound still is");
}
