//! Event webhooks (Standard Webhooks): what is sent for each event, signed as the
//! specification says (checked here with an HMAC written from its definition), after the
//! response, retried after a failure under the same id, and never with prompts or keys unless
//! `WEBHOOK_CONTENT=true`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use common::*;
use ct_codecs::{Base64, Decoder, Encoder};
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{json_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SECRET_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Received = Rc<RefCell<Vec<http::Request<Bytes>>>>;

/// A host whose provider answers and whose webhook receiver (`http://hooks/in`) answers the
/// statuses in `statuses` in turn (200 once they run out).
fn host_with_receiver(statuses: &[u16], extra: &[(&str, &str)]) -> (TestHost, Received) {
    let received: Received = Rc::default();
    let seen = Rc::clone(&received);
    let statuses = Rc::new(RefCell::new(statuses.to_vec()));
    let mut host = test_host().with_upstream(move |req| {
        let hook = req.uri().host() == Some("hooks");
        if hook {
            seen.borrow_mut().push(req.clone());
        }
        let status = if hook && !statuses.borrow().is_empty() { statuses.borrow_mut().remove(0) } else { 200 };
        async move { Ok(json_response(status, &if hook { "{}".to_owned() } else { openai_ok("the answer") })) }
    });
    host = host.with_var("WEBHOOK_URL", "http://hooks/in").with_var("WEBHOOK_SECRET", &format!("whsec_{SECRET_B64}"));
    for (name, value) in extra {
        host = host.with_var(name, value);
    }
    (host, received)
}

/// HMAC-SHA256 from its definition (RFC 2104), independent of the platform's.
fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

/// Checks a delivery as a receiver would, and returns its body.
fn verified(request: &http::Request<Bytes>) -> Value {
    let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    assert!(id.starts_with("msg_"), "{id}");
    let signed = format!("{id}.{timestamp}.{}", std::str::from_utf8(request.body()).unwrap());
    let secret = Base64::decode_to_vec(SECRET_B64, None).unwrap();
    let expected = format!("v1,{}", Base64::encode_to_string(hmac(&secret, signed.as_bytes())).unwrap());
    assert_eq!(header("webhook-signature"), expected);
    assert_eq!(request.method(), "POST");
    assert_eq!(request.headers()["content-type"], "application/json");
    serde_json::from_slice(request.body()).unwrap()
}

async fn chat_as(host: &TestHost, tenant: &str, text: &str) -> u16 {
    let token = auth::issue(SECRET, "u", tenant, "member", EPOCH_MS, 3600).unwrap();
    let request = http::Request::post("/v1/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"messages": [{"role": "user", "content": text}]}).to_string()))
        .unwrap();
    let (status, _, _) = serve(host, "chat", request).await;
    status
}

#[tokio::test(start_paused = true)]
async fn a_completed_request_is_sent_signed_after_the_response_with_ids_usage_and_cost_only() {
    let (host, received) = host_with_receiver(&[], &[]);
    assert_eq!(chat_as(&host, "acme", "my secret plan").await, 200);
    assert!(received.borrow().is_empty(), "nothing before the response's background work");
    host.run_background().await;
    let deliveries = received.borrow();
    assert_eq!(deliveries.len(), 1);
    let body = verified(&deliveries[0]);
    assert_eq!(body["type"], "request.completed");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    let data = &body["data"];
    assert_eq!(
        (data["tenant"].as_str(), data["mode"].as_str(), data["tier"].as_str()),
        (Some("acme"), Some("chat"), Some("system1"))
    );
    assert!(data["request_id"].as_str().unwrap().len() > 8);
    assert_eq!((data["input_tokens"].as_u64(), data["status"].as_str()), (Some(3), Some("ok")));
    assert!(data.get("id").is_none());
    assert!(data["cost_usd"].as_f64().unwrap() > 0.0);
    let text = body.to_string();
    assert!(!text.contains("secret plan") && !text.contains("the answer"), "no prompt, no answer: {text}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_delivery_is_retried_under_the_same_id() {
    let (host, received) = host_with_receiver(&[500, 503], &[]);
    chat_as(&host, "acme", "hello").await;
    host.run_background().await;
    let deliveries = received.borrow().clone();
    assert_eq!(deliveries.len(), 3, "two failures, then delivered");
    let ids: Vec<_> = deliveries.iter().map(|r| r.headers()["webhook-id"].clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    let bodies: Vec<Value> = deliveries.iter().map(verified).collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    // A receiver that never answers 2xx: four attempts, then it is logged, never the request's failure.
    let (host, received) = host_with_receiver(&[500; 10], &[]);
    assert_eq!(chat_as(&host, "acme", "hello").await, 200);
    host.run_background().await;
    assert_eq!(received.borrow().len(), 4);
    let logged = host.logs();
    let lost = logged.iter().find(|l| l["msg"] == "webhook not delivered").unwrap();
    assert_eq!(lost["error"], "the receiver answered 500");
    assert!(!lost.to_string().contains("hooks/in") && !lost.to_string().contains(SECRET_B64));
}

#[tokio::test(start_paused = true)]
async fn content_only_when_asked_and_only_the_events_asked_for() {
    let (host, received) = host_with_receiver(&[], &[("WEBHOOK_CONTENT", "true")]);
    chat_as(&host, "acme", "hello").await;
    host.run_background().await;
    assert_eq!(verified(&received.borrow()[0])["data"]["answer"], "the answer");

    let (host, received) = host_with_receiver(&[], &[("WEBHOOK_EVENTS", "key.created,flags.updated")]);
    chat_as(&host, "acme", "hello").await;
    host.run_background().await;
    assert!(received.borrow().is_empty(), "request.completed was not asked for");
    let (status, _, _) = serve(&host, "chat", bad_config_request()).await;
    assert_eq!(status, 200);
    let (status, _, text) = serve(&host.clone().with_var("WEBHOOK_SECRET", "nope"), "chat", bad_config_request()).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("WEBHOOK_SECRET must be `whsec_`") && !text.contains("nope"), "{text}");
}

fn bad_config_request() -> http::Request<Body> {
    let token = auth::issue(SECRET, "u", "acme", "member", EPOCH_MS, 3600).unwrap();
    http::Request::post("/v1/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(hello().to_string()))
        .unwrap()
}

async fn admin(host: &TestHost, method: &str, path: &str, role: &str, body: Option<Value>) -> (u16, Value) {
    let token = auth::issue(SECRET, "boss", "acme", role, EPOCH_MS, 3600).unwrap();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let (status, _, text) = serve(host, "admin", request).await;
    host.run_background().await;
    (status, serde_json::from_str(&text).unwrap_or_default())
}

#[tokio::test(start_paused = true)]
async fn keys_flags_and_limits_are_events_too() {
    let (host, received) = host_with_receiver(&[], &[]);
    let (status, created) = admin(&host, "POST", "/admin/keys", "owner", Some(json!({"name": "ci"}))).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    admin(&host, "PUT", "/admin/tenants/acme/flags", "owner", Some(json!({"platform": {"modes": {"code": false}}})))
        .await;
    admin(&host, "PUT", "/admin/tenants/acme/limits", "owner", Some(json!({"limits": {"rpm": 1}}))).await;
    assert_eq!(chat_as(&host, "acme", "one").await, 200);
    assert_eq!(chat_as(&host, "acme", "two").await, 429);
    host.run_background().await;
    let (status, _) = admin(&host, "DELETE", &format!("/admin/keys/{id}"), "owner", None).await;
    assert!(status < 300);

    let bodies: Vec<Value> = received.borrow().iter().map(verified).collect();
    let of =
        |kind: &str| bodies.iter().find(|b| b["type"] == kind).unwrap_or_else(|| panic!("{kind}: {bodies:?}")).clone();
    let created = of("key.created");
    assert_eq!(
        (created["data"]["key_id"].as_str(), created["data"]["tenant"].as_str()),
        (Some(id.as_str()), Some("acme"))
    );
    assert!(!created.to_string().contains(&key), "the key itself is content");
    assert_eq!(of("key.revoked")["data"]["key_id"], id.as_str());
    let flags = of("flags.updated");
    assert_eq!(flags["data"]["change"], json!({"platform": {"modes": {"code": false}}}));
    assert_eq!(flags["data"]["scope"], "acme");
    let limited = of("rate_limited");
    assert_eq!(
        (limited["data"]["limit"].as_str(), limited["data"]["tenant"].as_str()),
        (Some("requests_per_minute"), Some("acme"))
    );
    let failed = of("request.failed");
    assert_eq!(failed["data"]["error"], "rate_limited");
}
