//! Observability end to end through `serve` on the test host: the caller's trace context passed
//! on, spans sent to the collector after the answer (and dropped with a log line when it is
//! down), one log line per request, `server-timing`, `/metrics` and `/health/ready`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use bytes::Bytes;
use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{json_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const COLLECTOR: &str = "http://collector.test";

fn is_export(req: &http::Request<Bytes>) -> bool {
    req.uri().to_string().starts_with(COLLECTOR)
}

/// Chat's test host with a collector at `COLLECTOR` answering `collector_status`; OpenAI fails
/// with a 503 when the prompt says `fail`.
fn host(collector_status: u16) -> TestHost {
    test_host()
        .with_var("OTEL_EXPORTER_OTLP_ENDPOINT", COLLECTOR)
        .with_var("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=s%20ecret")
        .with_var("MAX_RETRIES", "0")
        .with_upstream(move |req| async move {
            if is_export(&req) {
                return Ok(json_response(collector_status, "{}"));
            }
            let failing = String::from_utf8_lossy(req.body()).contains("fail");
            Ok(if is_openai(&req) && failing {
                json_response(503, r#"{"error":{"message":"overloaded, key sk-live-0123456789abcdef"}}"#)
            } else if is_openai(&req) {
                json_response(200, &openai_ok("hello"))
            } else {
                json_response(200, &anthropic_ok("from anthropic"))
            })
        })
}

fn traced(body: Value) -> http::Request<Body> {
    let mut request = chat(body);
    request.headers_mut().insert("traceparent", CALLER.parse().unwrap());
    request.headers_mut().insert("tracestate", "vendor=1".parse().unwrap());
    request
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(start_paused = true)]
async fn the_callers_trace_reaches_the_provider_and_the_spans_reach_the_collector_after_the_answer() {
    let host = host(200);
    let (status, headers, body) =
        serve(&host, "chat", traced(json!({"messages":[{"role":"user","content":"fail"}]}))).await;
    assert_eq!(status, 200, "{body}");
    let provider_calls: Vec<_> = host.requests().into_iter().filter(|r| !is_export(r)).collect();
    assert_eq!(provider_calls.len(), 2, "openai failed, anthropic answered");
    for call in &provider_calls {
        let parent = call.headers()["traceparent"].to_str().unwrap();
        assert!(parent.starts_with(&format!("00-{TRACE_ID}-")) && parent.ends_with("-01"), "{parent}");
        assert!(!parent.contains("00f067aa0ba902b7"), "the request's own span is the parent, not the caller's");
        assert_eq!(call.headers()["tracestate"], "vendor=1");
    }
    assert!(host.requests().iter().all(|r| !is_export(r)), "nothing is exported before the answer is out");
    host.run_background().await;
    let exports: Vec<_> = host.requests().into_iter().filter(is_export).collect();
    assert_eq!(exports.len(), 1);
    let export = &exports[0];
    assert_eq!(export.uri().to_string(), format!("{COLLECTOR}/v1/traces"));
    assert_eq!(export.headers()["content-type"], "application/x-protobuf");
    assert_eq!(export.headers()["x-collector-key"], "s ecret");
    assert!(!export.headers().contains_key("traceparent"), "the export is not part of the trace");
    let spans = export.body();
    let trace_id: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&TRACE_ID[i * 2..i * 2 + 2], 16).unwrap()).collect();
    assert!(contains(spans, &trace_id));
    assert!(contains(spans, b"POST /v1/chat"), "the SERVER span");
    assert!(
        contains(spans, b"chat gpt-4o-mini") || contains(spans, b"chat "),
        "CLIENT spans named by operation and model"
    );
    assert!(contains(spans, b"error.type") && contains(spans, b"http_5xx"), "the failed attempt");
    assert!(contains(spans, b"gen_ai.usage.output_tokens"));
    assert!(!contains(spans, b"fail"), "no prompt in attributes by default");
    assert!(!contains(spans, b"from anthropic"), "no answer in attributes by default");
    assert!(headers.contains_key("server-timing"));
}

#[tokio::test(start_paused = true)]
async fn each_request_logs_one_line_with_its_attempts_and_never_a_key() {
    let host = host(200);
    let (status, headers, _) =
        serve(&host, "chat", traced(json!({"messages":[{"role":"user","content":"fail"}]}))).await;
    assert_eq!(status, 200);
    let logs = host.logs();
    let lines: Vec<_> = logs.iter().filter(|r| r["msg"] == "request").collect();
    assert_eq!(lines.len(), 1, "{logs:?}");
    let line = lines[0];
    assert_eq!(line["level"], "info");
    assert_eq!(line["request_id"], headers["x-request-id"].to_str().unwrap());
    assert_eq!(line["trace_id"], TRACE_ID);
    assert_eq!(
        (line["function"].as_str(), line["mode"].as_str(), line["tier"].as_str()),
        (Some("chat"), Some("chat"), Some("system1"))
    );
    assert_eq!((line["tenant"].as_str(), line["sub"].as_str()), (Some("t"), Some("u")));
    assert_eq!(line["status"], 200);
    assert_eq!(line["cache"], "miss");
    assert!(line["latency_ms"].is_u64());
    let attempts = line["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!((attempts[0]["provider"].as_str(), attempts[0]["outcome"].as_str()), (Some("openai"), Some("http_5xx")));
    assert_eq!(attempts[0]["status"], 503);
    assert!(attempts[0]["error"].as_str().unwrap().contains("overloaded"));
    assert_eq!(attempts[1]["outcome"], "ok");
    let all = serde_json::to_string(&logs).unwrap();
    assert!(!all.contains("sk-live") && !all.contains("0123456789abcdef"), "{all}");
    assert!(!all.contains("\"fail\""), "no prompt in logs by default: {all}");
}

#[tokio::test(start_paused = true)]
async fn log_level_and_content_are_configured() {
    let host = host(200).with_var("LOG_LEVEL", "warn");
    serve(&host, "chat", traced(hello())).await;
    assert!(host.logs().iter().all(|r| r["level"] != "info"), "{:?}", host.logs());

    let host = self::host(200).with_var("LOG_CONTENT", "true");
    serve(&host, "chat", traced(json!({"messages":[{"role":"user","content":"tell me"}]}))).await;
    let logs = host.logs();
    let call = logs.iter().find(|r| r["msg"] == "model call").unwrap();
    assert!(call["prompt"].as_str().unwrap().contains("tell me"));
    assert_eq!(call["answer"], "hello");
}

#[tokio::test(start_paused = true)]
async fn captured_content_is_on_the_genai_span_only_when_asked_for() {
    let host = host(200).with_var("OTEL_CAPTURE_CONTENT", "true");
    serve(&host, "chat", traced(json!({"messages":[{"role":"user","content":"tell me"}]}))).await;
    host.run_background().await;
    let export = host.requests().into_iter().find(is_export).unwrap();
    assert!(contains(export.body(), b"gen_ai.input.messages") && contains(export.body(), b"tell me"));
}

#[tokio::test(start_paused = true)]
async fn a_collector_that_is_down_costs_a_log_line_not_the_answer() {
    let host = host(503);
    let (status, _, body) = serve(&host, "chat", traced(hello())).await;
    assert_eq!(status, 200, "{body}");
    host.run_background().await;
    let logs = host.logs();
    let dropped = logs.iter().find(|r| r["msg"] == "trace export failed; spans dropped").unwrap();
    assert_eq!(dropped["level"], "warn");
    assert!(dropped["error"].as_str().unwrap().contains("503"));
    assert!(!serde_json::to_string(&logs).unwrap().contains("s ecret"), "collector headers stay out of logs");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_traceparent_starts_a_new_trace_and_unsampled_ones_export_nothing() {
    let host = host(200);
    let mut request = chat(hello());
    request.headers_mut().insert("traceparent", "00-zz-00f067aa0ba902b7-01".parse().unwrap());
    serve(&host, "chat", request).await;
    let call = host.requests().into_iter().find(|r| !is_export(r)).unwrap();
    let parent = call.headers()["traceparent"].to_str().unwrap().to_owned();
    assert_eq!(parent.len(), 55);
    assert!(parent.ends_with("-01"), "a new trace is sampled by default");

    let host = self::host(200);
    let mut request = chat(hello());
    request
        .headers_mut()
        .insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".parse().unwrap());
    serve(&host, "chat", request).await;
    host.run_background().await;
    assert!(host.requests().iter().all(|r| !is_export(r)), "the caller did not sample: parent-based");
    let call = host.requests().into_iter().next().unwrap();
    assert!(call.headers()["traceparent"].to_str().unwrap().ends_with("-00"));
}

#[tokio::test(start_paused = true)]
async fn server_timing_names_the_gateway_upstream_and_cache() {
    let host = host(200);
    let (_, headers, _) = serve(&host, "chat", traced(hello())).await;
    let timing = headers["server-timing"].to_str().unwrap();
    assert!(timing.starts_with("gateway;dur="), "{timing}");
    assert!(timing.contains("upstream;dur=") && timing.contains("cache;dur="), "{timing}");
}

async fn get(host: &TestHost, path: &str, bearer: Option<&str>) -> (u16, http::HeaderMap, String) {
    let mut request = http::Request::get(path);
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    serve(host, "admin", request.body(Body::empty()).unwrap()).await
}

#[tokio::test(start_paused = true)]
async fn metrics_are_refused_without_their_token_and_count_every_request() {
    let host = host(200).with_var("METRICS_TOKEN", "scrape-me");
    serve(&host, "chat", traced(json!({"messages":[{"role":"user","content":"fail"}]}))).await;
    serve(&host, "chat", traced(json!({"messages":[]}))).await;
    host.run_background().await;

    assert_eq!(get(&host, "/metrics", None).await.0, 401);
    assert_eq!(get(&host, "/metrics", Some("wrong")).await.0, 401);
    let member = auth::issue(SECRET, "m", "t", "member", EPOCH_MS, 3600).unwrap();
    assert_eq!(get(&host, "/metrics", Some(&member)).await.0, 403);
    let owner = auth::issue(SECRET, "o", "t", "owner", EPOCH_MS, 3600).unwrap();
    assert_eq!(get(&host, "/metrics", Some(&owner)).await.0, 200);

    let (status, headers, text) = get(&host, "/metrics", Some("scrape-me")).await;
    assert_eq!(status, 200, "{text}");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(
        has(
            r#"opencode_requests_total{function="chat",mode="chat",tier="system1",provider="anthropic",status_class="2xx"} 1"#
        ),
        "{text}"
    );
    assert!(
        has(
            r#"opencode_requests_total{function="chat",mode="chat",tier="system1",provider="none",status_class="4xx"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"opencode_provider_attempts_total{provider="openai",model="gpt-4o-mini",outcome="http_5xx"} 1"#
        ) || text.contains(r#"outcome="http_5xx"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            "opencode_request_duration_seconds_bucket{function=\"chat\",mode=\"chat\",tier=\"system1\",le=\"+Inf\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE opencode_tokens_total counter"));
    assert!(text.contains(r#"opencode_cache_lookups_total{mode="chat",result="miss"} 1"#), "{text}");
    for forbidden in ["tenant=", "key_id", "req_", "sub="] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn unknown_models_are_labelled_other() {
    let host = host(200).with_var("OPENAI_MODEL", "my-private-finetune").with_var("METRICS_TOKEN", "m");
    serve(&host, "chat", traced(hello())).await;
    host.run_background().await;
    let (_, _, text) = get(&host, "/metrics", Some("m")).await;
    assert!(!text.contains("my-private-finetune"), "{text}");
    assert!(
        text.contains(r#"opencode_provider_attempts_total{provider="openai",model="other",outcome="ok"} 1"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn readiness_checks_the_stores_the_database_and_the_sandbox() {
    let host = test_host();
    let (status, _, body) = get(&host, "/health/ready", None).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ready");
    for check in ["kv_cache", "kv_data", "database"] {
        assert_eq!(v["checks"][check]["ok"], true, "{body}");
    }
    assert!(v["checks"].get("sandbox").is_none());

    let host = test_host()
        .with_var("SANDBOX_URL", "http://sandbox.internal:2000")
        .with_upstream(|_| async move { Ok(json_response(500, "{}")) });
    let (status, _, body) = get(&host, "/health/ready", None).await;
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["checks"]["sandbox"]["ok"], false);
    assert!(!body.contains("sandbox.internal"), "no address in the answer: {body}");
}

#[tokio::test(start_paused = true)]
async fn a_relayed_request_carries_the_gateways_span_not_the_callers() {
    let host = host(200).with_function("chat", |_host, req: http::Request<Bytes>| async move {
        let parent = req.headers()["traceparent"].to_str().unwrap().to_owned();
        let state = req.headers().get("tracestate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        http::Response::new(Body::from(format!("{parent} {state}")))
    });
    let (status, _, seen) = serve(&host, "gateway", traced(hello())).await;
    assert_eq!(status, 200, "{seen}");
    let (parent, state) = seen.split_once(' ').unwrap();
    assert!(parent.starts_with(&format!("00-{TRACE_ID}-")), "{parent}");
    assert_ne!(parent, CALLER, "the function's parent is the gateway's span");
    assert_eq!(state, "vendor=1");
}
