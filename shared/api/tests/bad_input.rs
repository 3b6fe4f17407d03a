//! Every bad input gets a 4xx JSON error naming the problem, with the request id.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{TestHost, EPOCH_MS};
use serde_json::Value;

const SECRET: &str = "test-secret-0123456789-0123456789";

fn host() -> TestHost {
    TestHost::new().with_var("OPENAI_API_KEY", "k").with_var("JWT_SECRET", SECRET).with_var("MAX_BODY_BYTES", "200")
}

async fn call(function: &str, request: http::Request<Body>) -> (u16, Value) {
    let response = opencode_api::serve_named(function, host(), request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect(1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn post(body: &str, token: Option<&str>) -> http::Request<Body> {
    let mut builder =
        http::Request::post("/v1/chat").header("content-type", "application/json").header("x-request-id", "abc-1");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn token() -> String {
    auth::issue(SECRET, "u", "t", "member", EPOCH_MS, 3600).unwrap()
}

#[tokio::test(start_paused = true)]
async fn bad_bodies_get_precise_codes() {
    let t = token();
    let cases: &[(&str, u16, &str, &str)] = &[
        ("{", 400, "malformed_json", "not valid JSON"),
        ("", 400, "malformed_json", "empty"),
        (r#"{"messages":[]}"#, 422, "validation_failed", "at least one message"),
        (r#"{"messages":"hi"}"#, 422, "validation_failed", "invalid type"),
        (r#"{"messages":[{"role":"robot","content":"x"}]}"#, 422, "validation_failed", "messages[0].role `robot`"),
        (r#"{"messages":[{"role":"user","content":5}]}"#, 422, "validation_failed", "a string or a list of parts"),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/a.png"}}]}]}"#,
            422,
            "validation_failed",
            "https URL or a base64 `data:` URL",
        ),
        (
            r#"{"messages":[{"role":"assistant","content":[{"type":"image_url","image_url":"https://x/a.png"}]},{"role":"user","content":"x"}]}"#,
            422,
            "validation_failed",
            "only allowed in user messages",
        ),
        (r#"{"messages":[{"role":"user","content":"x"}],"temperature":7}"#, 422, "validation_failed", "temperature"),
        (r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#, 422, "validation_failed", "invalid value"),
        (
            r#"{"messages":[{"role":"user","content":"x"}],"colour":1}"#,
            422,
            "validation_failed",
            "unknown field `colour`",
        ),
        (r#"{"messages":[{"role":"system","content":"x"}]}"#, 422, "validation_failed", "user message"),
    ];
    for (body, status, code, needle) in cases {
        let (got, v) = call("chat", post(body, Some(&t))).await;
        assert_eq!((got, v["error"]["code"].as_str().unwrap()), (*status, *code), "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{body}: {v}");
        assert_eq!(v["error"]["request_id"], "abc-1");
    }
    let big = format!(r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(500));
    let (got, v) = call("chat", post(&big, Some(&t))).await;
    assert_eq!((got, v["error"]["code"].as_str().unwrap()), (413, "payload_too_large"));
}

#[tokio::test(start_paused = true)]
async fn auth_is_required_except_for_health() {
    let (status, v) = call("chat", post("{}", None)).await;
    assert_eq!((status, v["error"]["code"].as_str().unwrap()), (401, "missing_token"));
    let expired = auth::issue(SECRET, "u", "t", "member", EPOCH_MS - 7_200_000, 60).unwrap();
    let (status, v) = call("chat", post("{}", Some(&expired))).await;
    assert_eq!((status, v["error"]["message"].as_str().unwrap()), (401, "invalid token: token has expired"));
    let health = http::Request::get("/health").body(Body::empty()).unwrap();
    let (status, v) = call("admin", health).await;
    assert_eq!((status, v["status"].as_str().unwrap()), (200, "ok"));
    assert!(!v.to_string().contains("\"k\""), "no keys in health: {v}");
}

#[tokio::test(start_paused = true)]
async fn the_gateway_forwards_a_chunked_upload_with_its_length_and_no_hop_by_hop_headers() {
    let host = host().with_function("chat", |_host, req: http::Request<bytes::Bytes>| async move {
        let seen: Vec<String> =
            req.headers().iter().map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("?"))).collect();
        http::Response::new(Body::from(seen.join("\n")))
    });
    let upload = http::Request::post("/v1/chat")
        .header("transfer-encoding", "chunked")
        .header("connection", "keep-alive, x-private")
        .header("keep-alive", "timeout=5")
        .header("x-private", "named by connection")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {}", token()))
        .header("content-type", "application/json")
        .body(Body::from(String::from("{\"messages\":[]}")))
        .unwrap();
    let response = opencode_api::serve_named("gateway", host.clone(), upload).await;
    let seen = String::from_utf8(response.into_body().collect(1 << 16).await.unwrap().to_vec()).unwrap();
    assert!(seen.lines().any(|line| line.starts_with("traceparent=00-")), "the trace goes on: {seen}");
    let mut seen: Vec<&str> =
        seen.lines().filter(|line| !line.starts_with("x-request-id=") && !line.starts_with("traceparent=")).collect();
    seen.sort_unstable();
    let authorization = format!("authorization=Bearer {}", token());
    assert_eq!(seen, [authorization.as_str(), "content-length=15", "content-type=application/json"]);

    let bodiless = http::Request::get("/v1/chat")
        .header("content-length", "0")
        .header("authorization", format!("Bearer {}", token()))
        .body(Body::empty())
        .unwrap();
    let response = opencode_api::serve_named("gateway", host, bodiless).await;
    let seen = String::from_utf8(response.into_body().collect(1 << 16).await.unwrap().to_vec()).unwrap();
    assert!(!seen.contains("content-length"), "{seen}");
}

#[tokio::test(start_paused = true)]
async fn the_gateway_routes_by_path_and_404s_the_rest() {
    let host = host().with_function("admin", |host, req: http::Request<bytes::Bytes>| async move {
        let (parts, body) = req.into_parts();
        opencode_api::serve_named("admin", host, http::Request::from_parts(parts, Body::Full(body))).await
    });
    let health = http::Request::get("/health").body(Body::empty()).unwrap();
    let response = opencode_api::serve_named("gateway", host.clone(), health).await;
    assert_eq!(response.status(), 200);
    let nowhere = http::Request::get("/nowhere").body(Body::empty()).unwrap();
    let response = opencode_api::serve_named("gateway", host.clone(), nowhere).await;
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
    let chat = http::Request::post("/v1/chat")
        .header("authorization", format!("Bearer {}", token()))
        .body(Body::empty())
        .unwrap();
    let response = opencode_api::serve_named("gateway", host, chat).await;
    assert_eq!(response.status(), 503, "an unbound function is a configuration problem");
}

/// A body of `chunks` chunks of 64 KiB that counts how many were read.
fn counted_body(chunks: usize) -> (Body, std::rc::Rc<std::cell::Cell<usize>>) {
    use futures::StreamExt as _;
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = std::rc::Rc::clone(&read);
    let stream = futures::stream::iter(0..chunks).map(move |_| {
        seen.set(seen.get() + 1);
        Ok(bytes::Bytes::from(vec![b'x'; 64 * 1024]))
    });
    (Body::Stream(stream.boxed_local()), read)
}

#[tokio::test(start_paused = true)]
async fn a_request_without_a_valid_token_is_refused_before_its_body_is_read_or_forwarded() {
    let forwarded = std::rc::Rc::new(std::cell::Cell::new(0));
    let calls = std::rc::Rc::clone(&forwarded);
    let host = host().with_var("MAX_BODY_BYTES", "1048576").with_function("chat", move |_, _| {
        calls.set(calls.get() + 1);
        async move { http::Response::new(Body::empty()) }
    });
    for (function, authorization) in
        [("gateway", None), ("gateway", Some("Bearer forged")), ("chat", None), ("search", Some("Bearer x.y.z"))]
    {
        let (body, read) = counted_body(16);
        let mut request = http::Request::post("/v1/chat").header("content-type", "application/json");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = opencode_api::serve_named(function, host.clone(), request.body(body).unwrap()).await;
        assert_eq!(response.status(), 401, "{function} {authorization:?}");
        assert_eq!(read.get(), 0, "{function} read the body of a request it refused");
    }
    assert_eq!(forwarded.get(), 0, "the gateway forwarded a request without a valid token");
}

#[tokio::test(start_paused = true)]
async fn health_names_providers_and_models_but_never_a_base_url() {
    let host = host().with_var("OPENAI_BASE_URL", "http://user:pw@10.0.0.7:8080/v1");
    let health = http::Request::get("/health").body(Body::empty()).unwrap();
    let response = opencode_api::serve_named("admin", host, health).await;
    let body = String::from_utf8(response.into_body().collect(1 << 16).await.unwrap().to_vec()).unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["providers"][0]["name"], "openai");
    assert_eq!(v["providers"][0]["model"], "gpt-4.1-mini");
    assert!(!body.contains("base_url") && !body.contains("10.0.0.7") && !body.contains("pw@"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_jwt_secret_shorter_than_32_bytes_is_a_configuration_error_not_a_bad_token() {
    let short = "a-secret-of-31-bytes-0123456789";
    let host = host().with_var("JWT_SECRET", short);
    let token = auth::issue(short, "u", "t", "member", EPOCH_MS, 3600).unwrap();
    let request = http::Request::post("/v1/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from("{}".to_string()))
        .unwrap();
    let response = opencode_api::serve_named("chat", host.clone(), request).await;
    assert_eq!(response.status(), 503);
    let v: Value = serde_json::from_slice(&response.into_body().collect(1 << 16).await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], "not_configured");
    assert!(v["error"]["message"].as_str().unwrap().contains("JWT_SECRET"), "{v}");
    let health = http::Request::get("/health").body(Body::empty()).unwrap();
    let response = opencode_api::serve_named("admin", host, health).await;
    let v: Value = serde_json::from_slice(&response.into_body().collect(1 << 16).await.unwrap()).unwrap();
    assert_eq!(v["auth_configured"], false);
    assert!(v["auth_problem"].as_str().unwrap().contains("32 bytes"), "{v}");
}
