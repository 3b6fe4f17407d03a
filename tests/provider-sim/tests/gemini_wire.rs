//! Gemini generateContent / streamGenerateContent, as the API reference documents them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::json;

const GENERATE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";

#[tokio::test]
async fn generate_content_has_the_documented_shape() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), GENERATE, &[GEMINI_KEY], &gemini_body("Hi Gemini")).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let c = &v["candidates"][0];
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(c["content"]["parts"], json!([{"text": "Hello from gemini (gemini-2.5-flash). You said: Hi Gemini"}]));
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(c["index"], 0);
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 5);
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 8);
    assert_eq!(v["usageMetadata"]["totalTokenCount"], 13);
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");
}

#[tokio::test]
async fn sse_stream_sends_one_response_per_word_framed_with_crlf() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let whole = post(sim.addr(), GENERATE, &[GEMINI_KEY], &gemini_body("count my words")).await.json();
    let path = STREAM.replace("alt=sse", "alt=sse&key=goog-secret");
    let r = post(sim.addr(), &path, &[], &gemini_body("count my words")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
    assert!(r.text().contains("\r\n\r\n"), "Google frames SSE events with CRLF");
    let events = r.events();
    let expected = whole["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap();
    assert_eq!(stream_text("gemini", &events), expected);
    assert_eq!(content_events("gemini", &events), expected.split_whitespace().count());
    let responses: Vec<_> =
        events.iter().map(|e| e.json().expect("every event is a GenerateContentResponse")).collect();
    assert!(responses.iter().all(|v| v["candidates"][0]["content"]["role"] == "model"));
    let last = responses.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"], whole["usageMetadata"]);
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r =
        post(sim.addr(), "/v1beta/models/gemini-2.5-pro:streamGenerateContent", &[GEMINI_KEY], &gemini_body("array"))
            .await;
    let v = r.json();
    let items = v.as_array().unwrap();
    let text: String =
        items.iter().map(|i| i["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(text, "Hello from gemini (gemini-2.5-pro). You said: array");
}

#[tokio::test]
async fn missing_or_invalid_key_is_rejected_in_google_error_format() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), GENERATE, &[], &gemini_body("x")).await;
    assert_eq!(r.status, 403);
    let e = r.json()["error"].clone();
    assert_eq!(e["code"], 403);
    assert_eq!(e["status"], "PERMISSION_DENIED");
    assert!(e["message"].is_string());
    let r = post(sim.addr(), &format!("{GENERATE}?key=invalid-key"), &[], &gemini_body("x")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    let r = post(sim.addr(), GENERATE, &[GEMINI_KEY], &json!({"contents": []})).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn think_adds_thought_parts_and_thoughts_token_count() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let v = post(sim.addr(), GENERATE, &[GEMINI_KEY], &gemini_body("hmm sim:think")).await.json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(parts[1]["text"], "Hello from gemini (gemini-2.5-flash). You said: hmm");
    assert!(v["usageMetadata"]["thoughtsTokenCount"].as_u64().unwrap() > 0);
}
