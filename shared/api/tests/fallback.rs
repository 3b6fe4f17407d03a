//! The executor's fallback rules, end to end through `serve("chat", ...)` on the test host:
//! retries, Retry-After, timeouts, client errors, and the commit point of a stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use futures::StreamExt;
use opencode_runtime::{Body, HostError};
use opencode_testkit::{hanging_response, json_response, streamed_response, TestHost};
use serde_json::{json, Value};

#[tokio::test(start_paused = true)]
async fn a_5xx_is_retried_then_the_next_provider_answers() {
    let host = test_host().with_upstream(|req| async move {
        Ok(if is_openai(&req) {
            json_response(503, r#"{"error":{"message":"down"}}"#)
        } else {
            json_response(200, &anthropic_ok("from anthropic"))
        })
    });
    let (status, headers, body) = send(&host, hello()).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["provider"], "anthropic");
    assert_eq!(v["message"]["content"], "from anthropic");
    assert_eq!(v["attempts"], 3);
    assert_eq!(v["attempt_log"][0]["outcome"], "status");
    assert_eq!(v["attempt_log"][0]["status"], 503);
    // claude-haiku-4-5 at $1 / $5 per million tokens: 4 + 30 millionths of a dollar.
    assert_eq!(v["usage"], json!({"input_tokens":4,"output_tokens":6,"total_tokens":10,"cost_usd":0.000034}));
    assert_eq!(headers["x-provider"], "anthropic");
    assert_eq!(headers["x-attempts"], "3");
    assert!(headers["x-request-id"].to_str().unwrap().starts_with("req_"));
    assert_eq!(host.requests().iter().filter(|r| is_openai(r)).count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried_on_the_same_provider() {
    let host = test_host().with_upstream(|req| async move {
        Ok(if is_openai(&req) {
            json_response(401, r#"{"error":{"message":"bad key sk-123"}}"#)
        } else {
            json_response(200, &anthropic_ok("ok"))
        })
    });
    let (status, _, body) = send(&host, hello()).await;
    assert_eq!(status, 200);
    assert!(!body.contains("sk-123"), "upstream text must not reach clients: {body}");
    assert_eq!(host.requests().iter().filter(|r| is_openai(r)).count(), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_under_the_cap_and_skipped_when_over() {
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = calls.clone();
    let host = test_host().with_upstream(move |req| {
        let n = seen.get();
        seen.set(n + 1);
        async move {
            if is_openai(&req) && n == 0 {
                let mut r = json_response(429, "{}");
                r.headers_mut().insert("retry-after", "2".parse().unwrap());
                return Ok(r);
            }
            Ok(json_response(200, &openai_ok("second try")))
        }
    });
    let start = tokio::time::Instant::now();
    let (status, _, body) = send(&host, hello()).await;
    assert_eq!(status, 200, "{body}");
    assert!(start.elapsed() >= std::time::Duration::from_millis(2000), "waited {:?}", start.elapsed());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["provider"].as_str(), v["attempts"].as_u64()), (Some("openai"), Some(2)));

    let host = host_with_long_retry_after();
    let start = tokio::time::Instant::now();
    let (_, _, body) = send(&host, hello()).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["provider"], "anthropic", "{body}");
    assert!(start.elapsed() < std::time::Duration::from_millis(100));
}

fn host_with_long_retry_after() -> TestHost {
    test_host().with_upstream(|req| async move {
        if is_openai(&req) {
            let mut r = json_response(429, "{}");
            r.headers_mut().insert("retry-after", "60".parse().unwrap());
            return Ok(r);
        }
        Ok(json_response(200, &anthropic_ok("fallback")))
    })
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_connect_errors_fall_back_and_all_failing_is_a_502_or_504() {
    let host = test_host().with_upstream(|req| async move {
        if is_openai(&req) {
            Ok(hanging_response())
        } else {
            Err(HostError::Connect("refused".into()))
        }
    });
    let (status, _, body) = send(&host, hello()).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 502, "{body}");
    assert_eq!(v["error"]["code"], "upstream_failed");
    let outcomes: Vec<&str> =
        v["error"]["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["timeout", "timeout", "connect", "connect"]);

    let host = test_host().with_upstream(|_| async move { Ok(hanging_response()) });
    let (status, _, body) = send(&host, hello()).await;
    assert_eq!(status, 504, "{body}");
}

async fn sse_events(host: &TestHost, body: Value) -> (u16, Vec<(String, Value)>) {
    let response = opencode_api::serve_named("chat", host.clone(), chat(body)).await;
    let status = response.status().as_u16();
    let Body::Stream(mut stream) = response.into_body() else {
        return (status, vec![]);
    };
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    (status, sse_frames(&text))
}

#[tokio::test(start_paused = true)]
async fn a_stream_failing_before_its_first_token_falls_back() {
    let host = test_host().with_upstream(|req| async move {
        Ok(if is_openai(&req) {
            streamed_response(vec![format!("data: {}\n\n", json!({"error":{"message":"overloaded"}}))], 0, false)
        } else {
            streamed_response(
                vec![
                    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}\n\n".into(),
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n".into(),
                    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n".into(),
                    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into(),
                ],
                5,
                false,
            )
        })
    });
    let (status, events) = sse_events(&host, json!({"messages":[{"role":"user","content":"hi"}],"stream":true})).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "usage", "done"]);
    assert_eq!(events[0].1["provider"], "anthropic");
    assert_eq!(events[1].1["text"], "Hi");
    // Usage and its cost survive the stream translation and the fallback.
    assert_eq!(events[2].1, json!({"input_tokens":4,"output_tokens":7,"total_tokens":11,"cost_usd":0.000039}));
    assert_eq!(events[3].1["attempts"], 3);
}

#[tokio::test(start_paused = true)]
async fn after_the_first_token_a_failure_ends_the_stream_with_an_error_and_no_switch() {
    let host = test_host().with_upstream(|req| async move {
        Ok(if is_openai(&req) {
            let mut chunks = openai_chunks(&["Hel", "lo"]);
            chunks.truncate(2);
            streamed_response(chunks, 10, true)
        } else {
            json_response(200, &anthropic_ok("never"))
        })
    });
    let (_, events) = sse_events(&host, json!({"messages":[{"role":"user","content":"hi"}],"stream":true})).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "delta", "error"]);
    assert_eq!(events[3].1["code"], "stream_interrupted");
    assert!(host.requests().iter().all(is_openai), "no other provider may be called after the commit");
}

#[tokio::test(start_paused = true)]
async fn a_complete_stream_carries_usage_and_done() {
    let host =
        test_host().with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["a", " b"]), 1, false)) });
    let (_, events) = sse_events(&host, json!({"messages":[{"role":"user","content":"hi"}],"stream":true})).await;
    let text: String = events.iter().filter(|(n, _)| n == "delta").map(|(_, v)| v["text"].as_str().unwrap()).collect();
    assert_eq!(text, "a b");
    let last = &events[events.len() - 1];
    assert_eq!(last.0, "done");
    assert_eq!(last.1["finish_reason"], "stop");
    assert_eq!(last.1["model"], "gpt-x");
}

/// A provider stream that sends `chunks` `gap_ms` apart and then nothing, without ending.
fn stalling_response(chunks: Vec<String>, gap_ms: u64) -> http::Response<Body> {
    let (parts, body) = streamed_response(chunks, gap_ms, false).into_parts();
    let Body::Stream(events) = body else { unreachable!("streamed_response streams") };
    http::Response::from_parts(parts, Body::Stream(events.chain(futures::stream::pending()).boxed_local()))
}

#[tokio::test(start_paused = true)]
async fn a_stream_outlasts_the_attempt_timeout_while_its_events_keep_coming() {
    // Six events 400 ms apart, 2.4 s in all; the limit (1 s) is on the silence between them.
    let host = test_host()
        .with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["a", "b", "c"]), 400, false)) });
    let start = tokio::time::Instant::now();
    let (_, events) = sse_events(&host, json!({"messages":[{"role":"user","content":"hi"}],"stream":true})).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "delta", "delta", "usage", "done"]);
    assert_eq!(start.elapsed(), std::time::Duration::from_millis(2400));
    assert_eq!(host.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn silence_after_the_first_token_ends_the_stream_a_timeout_after_the_last_event() {
    let host = test_host().with_upstream(|req| async move {
        Ok(if is_openai(&req) {
            let mut chunks = openai_chunks(&["a", "b", "c"]);
            chunks.truncate(3);
            stalling_response(chunks, 300)
        } else {
            json_response(200, &anthropic_ok("never"))
        })
    });
    let start = tokio::time::Instant::now();
    let (_, events) = sse_events(&host, json!({"messages":[{"role":"user","content":"hi"}],"stream":true})).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "delta", "delta", "error"]);
    assert_eq!(events[4].1["code"], "stream_interrupted");
    assert_eq!(events[4].1["message"], "provider sent nothing for 1000 ms");
    // The last event came at 900 ms: the limit runs from there, not from the first event or
    // from the commit.
    assert_eq!(start.elapsed(), std::time::Duration::from_millis(1900));
    assert!(host.requests().iter().all(is_openai), "no other provider may be called after the commit");
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_opens_but_brings_no_token_in_time_is_tried_again() {
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = calls.clone();
    let host = test_host().with_upstream(move |_| {
        seen.set(seen.get() + 1);
        let first = seen.get() == 1;
        async move {
            Ok(if first {
                // The head and a role-only chunk, but no token before the attempt timeout.
                let role = json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]});
                stalling_response(vec![format!("data: {role}\n\n")], 600)
            } else {
                streamed_response(openai_chunks(&["ok"]), 0, false)
            })
        }
    });
    let start = tokio::time::Instant::now();
    let (status, events) = sse_events(&host, json!({"messages":[{"role":"user","content":"hi"}],"stream":true})).await;
    assert_eq!(status, 200);
    let done = &events[events.len() - 1];
    assert_eq!(done.0, "done", "{events:?}");
    assert_eq!(done.1["attempts"], 2);
    assert_eq!(calls.get(), 2);
    // The first attempt got the whole timeout for its first token, counted from its start and
    // not pushed back by the role-only chunk; then the retry's backoff (at most 10 ms here).
    assert!(start.elapsed() >= std::time::Duration::from_millis(1000), "{:?}", start.elapsed());
    assert!(start.elapsed() <= std::time::Duration::from_millis(1010), "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_silent_stream_ends_even_when_the_hosts_clock_stands_still() {
    // Workers' clock only moves on I/O; a deadline that trusted the clock alone would wait forever.
    let host = test_host().with_upstream(|_| async move {
        let mut chunks = openai_chunks(&["a"]);
        chunks.truncate(1);
        Ok(stalling_response(chunks, 100))
    });
    host.set_now_ms(Some(opencode_runtime::Host::now_ms(&host)));
    let body = json!({"messages":[{"role":"user","content":"hi"}],"stream":true});
    let (_, events) = tokio::time::timeout(std::time::Duration::from_secs(60), sse_events(&host, body))
        .await
        .expect("the stream ended");
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "error"]);
}
