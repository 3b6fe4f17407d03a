//! Images in every dialect: OpenAI's `image_url` parts, Anthropic's `image` blocks and the
//! Responses API's `input_image` reach each vendor in its own format; a vendor that cannot read
//! one is a failed attempt and the chain moves on; the modes that read only the text refuse them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use bytes::Bytes;
use common::*;
use opencode_testkit::{json_response, TestHost};
use serde_json::{json, Value};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// Both vendors answer; each request is recorded.
fn host(order: &str) -> TestHost {
    let host = test_host().with_var("PROVIDER_ORDER", order).with_upstream(|req: http::Request<Bytes>| async move {
        Ok(if is_openai(&req) {
            json_response(200, &openai_ok("A pixel."))
        } else {
            json_response(200, &anthropic_ok("A pixel."))
        })
    });
    in_process(&host, &["chat"]);
    host
}

fn sent(host: &TestHost, index: usize) -> Value {
    serde_json::from_slice(host.requests()[index].body()).unwrap()
}

fn png_url() -> String {
    format!("data:image/png;base64,{PNG}")
}

#[tokio::test(start_paused = true)]
async fn openai_image_parts_reach_anthropic_as_image_blocks() {
    let host = host("anthropic,openai");
    let content = json!([
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": png_url(), "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://img.example/cat.jpg"}},
    ]);
    let body = json!({"model": "opencode/chat", "messages": [{"role": "user", "content": content}]});
    let (status, _, text) = serve(&host, "chat", user_request("/v1/chat/completions", &body)).await;
    assert_eq!(status, 200, "{text}");
    let upstream = sent(&host, 0);
    assert_eq!(
        upstream["messages"][0]["content"],
        json!([
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://img.example/cat.jpg"}},
            {"type": "text", "text": "What is this?"},
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn anthropic_image_blocks_reach_openai_as_image_url_parts() {
    let host = host("openai");
    let content = json!([
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is this?"},
    ]);
    let body = json!({"model": "opencode/chat", "max_tokens": 64, "messages": [{"role": "user", "content": content}]});
    let (status, _, text) = serve(&host, "chat", user_request("/v1/messages", &body)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        sent(&host, 0)["messages"][0]["content"],
        json!([{"type": "image_url", "image_url": {"url": png_url()}}, {"type": "text", "text": "What is this?"}])
    );
}

#[tokio::test(start_paused = true)]
async fn responses_input_images_reach_the_vendor() {
    let host = host("openai");
    let input = json!([{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "https://img.example/cat.jpg", "detail": "high"},
    ]}]);
    let body = json!({"model": "opencode/chat", "input": input});
    let (status, _, text) = serve(&host, "gateway", user_request("/v1/responses", &body)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        sent(&host, 0)["messages"][0]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "https://img.example/cat.jpg", "detail": "high"}},
            {"type": "text", "text": "What is this?"},
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn a_vendor_that_cannot_read_an_image_is_skipped() {
    let host = host("anthropic,openai");
    let content = json!([{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}, {"type": "text", "text": "?"}]);
    let body = json!({"messages": [{"role": "user", "content": content}]});
    let (status, _, text) = send(&host, body).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["provider"], "openai", "{v}");
    assert_eq!(v["attempt_log"][0]["outcome"], "invalid_request", "{v}");
    assert_eq!(host.requests().len(), 1, "nothing was sent to Anthropic");
}

#[tokio::test(start_paused = true)]
async fn modes_that_read_only_the_text_refuse_images() {
    let host = host("openai");
    in_process(&host, &["search"]);
    let content = json!([{"type": "image_url", "image_url": {"url": png_url()}}, {"type": "text", "text": "?"}]);
    let body = json!({"model": "opencode/search", "messages": [{"role": "user", "content": content}]});
    let (status, _, text) = serve(&host, "gateway", user_request("/v1/chat/completions", &body)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("does not take images"), "{text}");
}
