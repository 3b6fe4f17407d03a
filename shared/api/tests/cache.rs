//! The System 1 cache on `POST /v1/chat`: hits and misses, the key's coverage, tenants,
//! cache-control, expiry by the stored deadline, and streamed answers replayed as streams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{json_response, streamed_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};

/// A host whose OpenAI upstream counts its calls and answers with the call number.
fn counting_host() -> (TestHost, Rc<Cell<u32>>) {
    let calls = Rc::new(Cell::new(0));
    let seen = Rc::clone(&calls);
    let host = test_host().with_upstream(move |req| {
        seen.set(seen.get() + 1);
        let n = seen.get();
        async move {
            let body: Value = serde_json::from_slice(req.body()).unwrap();
            Ok(if body["stream"] == json!(true) {
                streamed_response(openai_chunks(&["call ", &n.to_string()]), 0, false)
            } else {
                json_response(200, &openai_ok(&format!("call {n}")))
            })
        }
    });
    (host, calls)
}

async fn ask(host: &TestHost, tenant: &str, body: Value, cache_control: Option<&str>) -> (http::HeaderMap, String) {
    let token = auth::issue(SECRET, "u", tenant, "member", EPOCH_MS, 3600).unwrap();
    let mut request = http::Request::post("/v1/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if let Some(value) = cache_control {
        request = request.header("cache-control", value);
    }
    let response =
        opencode_api::serve_named("chat", host.clone(), request.body(Body::from(body.to_string())).unwrap()).await;
    host.run_background().await;
    let (parts, body) = response.into_parts();
    assert_eq!(parts.status, 200);
    let text = String::from_utf8(body.collect(1 << 20).await.unwrap().to_vec()).unwrap();
    host.run_background().await;
    (parts.headers, text)
}

fn content(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["message"]["content"].as_str().unwrap().to_string()
}

#[tokio::test(start_paused = true)]
async fn a_repeated_request_is_a_hit_with_the_same_answer_and_no_upstream_call() {
    let (host, calls) = counting_host();
    let (headers, first) = ask(&host, "acme", hello(), None).await;
    assert_eq!(headers["x-cache"], "miss");
    let (headers, second) = ask(&host, "acme", hello(), None).await;
    assert_eq!(headers["x-cache"], "hit");
    assert_eq!(calls.get(), 1);
    assert_eq!(content(&first), content(&second));
    let hit: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(hit["provider"], "openai");
    assert_eq!(hit["attempts"], 0);
    let keys: Vec<String> = host.kv_snapshot("cache").into_keys().collect();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("s1/") && keys[0].len() <= 256, "{keys:?}");
}

#[tokio::test(start_paused = true)]
async fn every_field_that_changes_the_output_changes_the_key_and_tenants_never_share() {
    let (host, calls) = counting_host();
    ask(&host, "acme", hello(), None).await;
    let variants = [
        json!({"messages":[{"role":"user","content":"hi!"}]}),
        json!({"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}),
        json!({"messages":[{"role":"user","content":"hi"}],"temperature":0.5}),
        json!({"messages":[{"role":"user","content":"hi"}],"top_p":0.5}),
        json!({"messages":[{"role":"user","content":"hi"}],"max_tokens":7}),
        json!({"messages":[{"role":"user","content":"hi"}],"stop":"x"}),
        json!({"messages":[{"role":"user","content":"hi"}],"seed":7}),
        json!({"messages":[{"role":"user","content":"hi"}],"model":"gpt-other"}),
    ];
    for (i, body) in variants.iter().enumerate() {
        let (headers, _) = ask(&host, "acme", body.clone(), None).await;
        assert_eq!(headers["x-cache"], "miss", "variant {i}: {body}");
    }
    let (headers, _) = ask(&host, "globex", hello(), None).await;
    assert_eq!(headers["x-cache"], "miss", "another tenant never sees acme's answer");
    let (headers, _) = ask(&host, "acme", hello(), None).await;
    assert_eq!(headers["x-cache"], "hit");
    assert_eq!(calls.get() as usize, 1 + variants.len() + 1);
}

#[tokio::test(start_paused = true)]
async fn no_cache_refreshes_no_store_bypasses_and_entries_expire() {
    let (host, calls) = counting_host();
    let (_, first) = ask(&host, "acme", hello(), None).await;
    let (headers, refreshed) = ask(&host, "acme", hello(), Some("no-cache")).await;
    assert_eq!(headers["x-cache"], "miss");
    assert_ne!(content(&first), content(&refreshed));
    let (headers, after) = ask(&host, "acme", hello(), None).await;
    assert_eq!((headers["x-cache"].to_str().unwrap(), content(&after)), ("hit", content(&refreshed)));

    let (headers, bypassed) = ask(&host, "acme", hello(), Some("max-age=0, no-store")).await;
    assert_eq!(headers["x-cache"], "miss");
    let (_, after) = ask(&host, "acme", hello(), None).await;
    assert_ne!(content(&after), content(&bypassed), "no-store did not replace the entry");
    assert_eq!(calls.get(), 3);

    // Past the TTL (default one hour) the stored deadline makes it a miss, whatever the store keeps.
    host.set_now_ms(Some(EPOCH_MS + 3_600_001));
    let (headers, _) = ask(&host, "acme", hello(), None).await;
    assert_eq!(headers["x-cache"], "miss");
    assert_eq!(calls.get(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_ttl_is_configuration_and_zero_turns_the_cache_off() {
    let calls = Rc::new(Cell::new(0));
    let seen = Rc::clone(&calls);
    let host = test_host().with_var("CACHE_TTL_SECS", "0").with_upstream(move |_| {
        seen.set(seen.get() + 1);
        async { Ok(json_response(200, &openai_ok("x"))) }
    });
    ask(&host, "acme", hello(), None).await;
    let (headers, _) = ask(&host, "acme", hello(), None).await;
    assert_eq!(headers["x-cache"], "miss");
    assert_eq!(calls.get(), 2);
    assert!(host.kv_snapshot("cache").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_streamed_answer_is_cached_once_complete_and_replayed_as_a_stream() {
    let (host, calls) = counting_host();
    let streamed = json!({"messages":[{"role":"user","content":"hi"}],"stream":true});
    let (headers, first) = ask(&host, "acme", streamed.clone(), None).await;
    assert_eq!(headers["x-cache"], "miss");
    let (headers, replayed) = ask(&host, "acme", streamed.clone(), None).await;
    assert_eq!(headers["x-cache"], "hit");
    assert_eq!(calls.get(), 1);
    let deltas =
        |sse: &str| sse.lines().filter(|l| l.starts_with("data: {\"text\"")).map(String::from).collect::<Vec<_>>();
    assert_eq!(deltas(&first), deltas(&replayed), "the same pieces, in order");
    assert_eq!(deltas(&replayed).len(), 2);
    for event in ["event: start", "event: usage", "event: done"] {
        assert!(replayed.contains(event), "{event} in {replayed}");
    }
    // Streaming is delivery, not content: the same question asked without `stream` is a hit.
    let (headers, body) = ask(&host, "acme", hello(), None).await;
    assert_eq!(headers["x-cache"], "hit");
    assert_eq!(content(&body), "call 1");
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_fails_midway_is_not_cached() {
    let calls = Rc::new(Cell::new(0));
    let seen = Rc::clone(&calls);
    let host = test_host().with_var("PROVIDER_ORDER", "openai").with_upstream(move |_| {
        seen.set(seen.get() + 1);
        async { Ok(streamed_response(openai_chunks(&["a ", "b"])[..2].to_vec(), 0, true)) }
    });
    let streamed = json!({"messages":[{"role":"user","content":"hi"}],"stream":true});
    let (_, body) = ask(&host, "acme", streamed.clone(), None).await;
    assert!(body.contains("event: error"), "{body}");
    let (headers, _) = ask(&host, "acme", streamed, None).await;
    assert_eq!(headers["x-cache"], "miss");
    assert!(host.kv_snapshot("cache").is_empty());
}
