//! What the platform logs: every failed provider attempt and every failed cache write, where it
//! happens, with the request's id and never a key.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_testkit::json_response;

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_is_logged_with_its_status_and_the_vendors_words_redacted() {
    let host = test_host().with_upstream(|req| async move {
        Ok(if is_openai(&req) {
            json_response(401, r#"{"error":{"message":"Incorrect API key provided: sk-proj-abcdefghijkl0123."}}"#)
        } else {
            json_response(200, &anthropic_ok("ok"))
        })
    });
    let (status, headers, body) = send(&host, hello()).await;
    assert_eq!(status, 200, "{body}");
    let logs = host.logs();
    let failed: Vec<_> = logs.iter().filter(|r| r["msg"] == "attempt failed").collect();
    assert_eq!(failed.len(), 1, "{logs:?}");
    let record = failed[0];
    assert_eq!(record["level"], "warn");
    assert_eq!(record["provider"], "openai");
    assert_eq!(record["status"], 401);
    assert!(record["elapsed_ms"].is_u64());
    assert_eq!(record["request_id"], headers["x-request-id"].to_str().unwrap());
    let detail = record["detail"].as_str().unwrap();
    assert!(detail.contains("Incorrect API key provided: [redacted]"), "{detail}");
    let line = record.to_string();
    assert!(!line.contains("sk-proj") && !line.contains("abcdefghijkl"), "{line}");
}

#[tokio::test(start_paused = true)]
async fn a_cache_write_that_fails_is_logged_and_the_answer_still_goes_out() {
    let host = test_host()
        .with_upstream(|_| async move { Ok(http::Response::new(opencode_runtime::Body::from(openai_ok("hello")))) });
    host.fail_kv_writes("cache");
    let (status, headers, _) = send(&host, hello()).await;
    assert_eq!(status, 200);
    host.run_background().await;
    let logs = host.logs();
    let failed: Vec<_> = logs.iter().filter(|r| r["msg"] == "cache write failed").collect();
    assert_eq!(failed.len(), 1, "{logs:?}");
    assert_eq!(failed[0]["request_id"], headers["x-request-id"].to_str().unwrap());
    assert!(failed[0]["error"].as_str().unwrap().contains("down"));
}
