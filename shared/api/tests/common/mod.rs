//! Fixtures the chat tests share: provider wire bodies, a configured test host, requests.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{TestHost, EPOCH_MS};
use serde_json::{json, Value};

pub const SECRET: &str = "test-secret-0123456789-0123456789";

pub fn openai_ok(text: &str) -> String {
    json!({"id":"c","object":"chat.completion","created":1,"model":"gpt-x",
        "choices":[{"index":0,"message":{"role":"assistant","content":text},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})
    .to_string()
}

pub fn anthropic_ok(text: &str) -> String {
    json!({"id":"m","type":"message","role":"assistant","model":"claude-x",
        "content":[{"type":"text","text":text}],"stop_reason":"end_turn","stop_sequence":null,
        "usage":{"input_tokens":4,"output_tokens":6}})
    .to_string()
}

pub fn openai_chunks(words: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = words
        .iter()
        .map(|w| format!("data: {}\n\n", json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{"content":w},"finish_reason":null}]})))
        .collect();
    out.push(format!("data: {}\n\n", json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})));
    out.push(format!("data: {}\n\n", json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})));
    out.push("data: [DONE]\n\n".into());
    out
}

pub fn test_host() -> TestHost {
    TestHost::new()
        .with_var("OPENAI_API_KEY", "ko")
        .with_var("ANTHROPIC_API_KEY", "ka")
        .with_var("OPENAI_BASE_URL", "http://up/v1")
        .with_var("ANTHROPIC_BASE_URL", "http://up")
        .with_var("PROVIDER_ORDER", "openai,anthropic")
        .with_var("JWT_SECRET", SECRET)
        .with_var("ATTEMPT_TIMEOUT_MS", "1000")
        .with_var("MAX_RETRIES", "1")
        .with_var("RETRY_BACKOFF_MS", "10")
        .with_var("RETRY_AFTER_CAP_MS", "3000")
}

pub fn is_openai(req: &http::Request<Bytes>) -> bool {
    req.uri().path().ends_with("/chat/completions")
}

/// A POST of `body` to `path` as user `u` of tenant `t`.
pub fn user_request(path: &str, body: &Value) -> http::Request<Body> {
    let token = auth::issue(SECRET, "u", "t", "member", EPOCH_MS, 3600).unwrap();
    http::Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub fn chat(body: Value) -> http::Request<Body> {
    user_request("/v1/chat", &body)
}

/// Makes the functions `names` callable in process on `host` (its state is shared by clones).
#[allow(dead_code)]
pub fn in_process(host: &TestHost, names: &[&'static str]) {
    for &name in names {
        let _ = host.clone().with_function(name, move |host, req| async move {
            opencode_api::serve_named(name, host, req.map(Body::Full)).await
        });
    }
}

/// `request` served by `function`: the status, headers and body text.
pub async fn serve(host: &TestHost, function: &str, request: http::Request<Body>) -> (u16, http::HeaderMap, String) {
    let response = opencode_api::serve_named(function, host.clone(), request).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect(1 << 20).await.unwrap();
    (parts.status.as_u16(), parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

pub async fn send(host: &TestHost, body: Value) -> (u16, http::HeaderMap, String) {
    serve(host, "chat", chat(body)).await
}

/// A test host whose outbound HTTP goes to a real provider simulator, with the three vendors
/// configured in `order`.
pub fn sim_host(sim: &provider_sim::SimHandle, order: &str) -> TestHost {
    let url = sim.url();
    TestHost::new()
        .with_upstream(opencode_testkit::http_fetch)
        .with_var("OPENAI_API_KEY", "sk-sim")
        .with_var("OPENAI_BASE_URL", &format!("{url}/v1"))
        .with_var("ANTHROPIC_API_KEY", "ak-sim")
        .with_var("ANTHROPIC_BASE_URL", &url)
        .with_var("GEMINI_API_KEY", "gk-sim")
        .with_var("GEMINI_BASE_URL", &url)
        .with_var("PROVIDER_ORDER", order)
        .with_var("JWT_SECRET", SECRET)
        .with_var("ATTEMPT_TIMEOUT_MS", "5000")
        .with_var("MAX_RETRIES", "0")
}

pub fn hello() -> Value {
    json!({"messages":[{"role":"user","content":"hi"}]})
}

/// POSTs `body` to function `function` at `path` as user `u` of tenant `t`, with `headers`
/// added; the status and the body text.
pub async fn post_as_user(
    host: &TestHost,
    function: &str,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut request = user_request(path, body);
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    let (status, _, text) = serve(host, function, request).await;
    (status, text)
}

/// The named events of an SSE body, as (event, data) pairs; comment lines and `data:`-only
/// frames are skipped.
pub fn sse_frames(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|frame| frame.starts_with("event: "))
        .map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap().to_string();
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// An OpenAI stream in which the model calls `now` (index 0, id `call_1`, arguments `{}` in two
/// pieces) after `text`, if any.
pub fn openai_call_chunks(text: Option<&str>) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-x",
                "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
        )
    };
    let mut chunks: Vec<String> = text.map(|t| chunk(json!({"content": t}), Value::Null)).into_iter().collect();
    chunks.push(chunk(
        json!({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"now","arguments":""}}]}),
        Value::Null,
    ));
    chunks.push(chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}), Value::Null));
    chunks.push(chunk(json!({}), json!("tool_calls")));
    chunks.push("data: [DONE]\n\n".into());
    chunks
}

/// A host whose OpenAI stream breaks after two tokens ("Hel", "lo"); Anthropic would answer.
pub fn broken_stream_host() -> TestHost {
    test_host().with_upstream(|req| async move {
        Ok(if is_openai(&req) {
            let mut chunks = openai_chunks(&["Hel", "lo"]);
            chunks.truncate(2);
            opencode_testkit::streamed_response(chunks, 10, true)
        } else {
            opencode_testkit::json_response(200, &anthropic_ok("never"))
        })
    })
}
