#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::*;

const OPENAI: &str = include_str!("../../../tests/fixtures/openai/embeddings.json");
const GEMINI: &str = include_str!("../../../tests/fixtures/gemini/batch_embed_contents.json");

fn config(kind: ProviderKind, key: Option<&str>, base: &str, model: &str) -> ProviderConfig {
    ProviderConfig {
        kind,
        name: "p".into(),
        base_url: base.into(),
        api_key: key.map(str::to_owned),
        model: model.into(),
        price: None,
    }
}

/// The fixture's numbers as the f32 they parse to.
fn f32s(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&x| x as f32).collect()
}

fn inputs() -> Vec<String> {
    vec!["first passage".into(), "second passage".into()]
}

fn body(request: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(request.body()).unwrap()
}

#[test]
fn openai_request_is_the_documented_embeddings_call() {
    let texts = inputs();
    let request = EmbeddingRequest { inputs: &texts, task: EmbeddingTask::Document, dimensions: Some(256) };
    let cfg = config(ProviderKind::OpenAi, Some("sk-test"), "https://api.openai.com/v1", "text-embedding-3-small");
    let wire = build_request(&cfg, &request).unwrap();
    assert_eq!(wire.method(), http::Method::POST);
    assert_eq!(wire.uri().to_string(), "https://api.openai.com/v1/embeddings");
    assert_eq!(wire.headers()["authorization"], "Bearer sk-test");
    assert!(wire.headers()["authorization"].is_sensitive());
    assert_eq!(
        body(&wire),
        json!({"model":"text-embedding-3-small","input":["first passage","second passage"],"encoding_format":"float","dimensions":256})
    );
}

#[test]
fn compat_servers_need_no_key_and_omit_dimensions_when_unset() {
    let texts = inputs();
    let request = EmbeddingRequest { inputs: &texts, task: EmbeddingTask::Query, dimensions: None };
    let cfg = config(ProviderKind::Compat, None, "http://127.0.0.1:11434/v1/", "nomic-embed-text");
    let wire = build_request(&cfg, &request).unwrap();
    assert_eq!(wire.uri().to_string(), "http://127.0.0.1:11434/v1/embeddings");
    assert!(wire.headers().get("authorization").is_none());
    assert!(body(&wire).get("dimensions").is_none());
    let no_key = config(ProviderKind::OpenAi, None, "https://api.openai.com/v1", "m");
    assert!(matches!(build_request(&no_key, &request), Err(ProviderError::Config(_))));
}

#[test]
fn gemini_request_is_batch_embed_contents_with_the_task_type() {
    let texts = inputs();
    let cfg = config(
        ProviderKind::Gemini,
        Some("g-key"),
        "https://generativelanguage.googleapis.com",
        "gemini-embedding-001",
    );
    let request = EmbeddingRequest { inputs: &texts, task: EmbeddingTask::Document, dimensions: Some(768) };
    let wire = build_request(&cfg, &request).unwrap();
    assert_eq!(
        wire.uri().to_string(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(wire.headers()["x-goog-api-key"], "g-key");
    assert!(!wire.uri().to_string().contains("key="));
    assert_eq!(
        body(&wire),
        json!({"requests":[
            {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"first passage"}]},"taskType":"RETRIEVAL_DOCUMENT","outputDimensionality":768},
            {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"second passage"}]},"taskType":"RETRIEVAL_DOCUMENT","outputDimensionality":768}
        ]})
    );
    let query = EmbeddingRequest { inputs: &texts[..1], task: EmbeddingTask::Query, dimensions: None };
    let wire = build_request(&cfg, &query).unwrap();
    assert_eq!(body(&wire)["requests"][0]["taskType"], "RETRIEVAL_QUERY");
    assert!(body(&wire)["requests"][0].get("outputDimensionality").is_none());
}

#[test]
fn bad_configurations_and_batches_are_refused_before_any_io() {
    let texts = inputs();
    let request = EmbeddingRequest { inputs: &texts, task: EmbeddingTask::Query, dimensions: None };
    let anthropic = config(ProviderKind::Anthropic, Some("k"), "https://api.anthropic.com", "m");
    assert!(matches!(build_request(&anthropic, &request), Err(ProviderError::Config(_))));
    let evil = config(ProviderKind::Gemini, Some("k"), "https://g", "../x?y");
    assert!(matches!(build_request(&evil, &request), Err(ProviderError::Config(_))));
    let gemini = config(ProviderKind::Gemini, Some("k"), "https://g", "gemini-embedding-001");
    let many = vec!["x".to_string(); GEMINI_BATCH + 1];
    let too_many = EmbeddingRequest { inputs: &many, task: EmbeddingTask::Query, dimensions: None };
    assert!(matches!(build_request(&gemini, &too_many), Err(ProviderError::Config(_))));
    let none = EmbeddingRequest { inputs: &[], task: EmbeddingTask::Query, dimensions: None };
    assert!(matches!(build_request(&gemini, &none), Err(ProviderError::Config(_))));
}

#[test]
fn openai_response_is_put_back_in_input_order_with_usage() {
    let parsed = parse_response(ProviderKind::OpenAi, OPENAI.as_bytes(), 2).unwrap();
    assert_eq!(parsed.vectors[0], f32s(&[-0.0069305855, 0.0048012412, -0.021183535]));
    assert_eq!(parsed.vectors[1], f32s(&[0.0023064255, -0.009327292, 0.015797347]));
    assert_eq!(parsed.usage.input_tokens, 8);
}

#[test]
fn gemini_response_keeps_request_order_without_usage() {
    let parsed = parse_response(ProviderKind::Gemini, GEMINI.as_bytes(), 2).unwrap();
    assert_eq!(parsed.vectors[0], f32s(&[0.013168523, -0.008711934, -0.046782676]));
    assert_eq!(parsed.vectors.len(), 2);
    assert_eq!(parsed.usage, Usage::default());
}

#[test]
fn mismatched_counts_lengths_and_garbage_are_malformed() {
    let malformed =
        |kind, body: &str, n| matches!(parse_response(kind, body.as_bytes(), n), Err(ProviderError::Malformed(_)));
    assert!(malformed(ProviderKind::OpenAi, OPENAI, 3));
    assert!(malformed(ProviderKind::Gemini, GEMINI, 1));
    assert!(malformed(
        ProviderKind::OpenAi,
        r#"{"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[1,2]}]}"#,
        2
    ));
    assert!(malformed(
        ProviderKind::OpenAi,
        r#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#,
        2
    ));
    assert!(malformed(ProviderKind::OpenAi, r#"{"data":[{"index":0,"embedding":[]}]}"#, 1));
    assert!(malformed(ProviderKind::Gemini, r#"{"embeddings":[{"values":[1.0, "x"]}]}"#, 1));
    assert!(malformed(ProviderKind::Gemini, r#"{"embeddings""#, 1));
}

#[test]
fn vendor_errors_read_through_the_chat_error_parsers() {
    let openai = include_str!("../../../tests/fixtures/openai/error_invalid_api_key.json");
    let err = super::super::parse_error(ProviderKind::OpenAi, 401, openai.as_bytes());
    assert!(matches!(err, ProviderError::Status { status: 401, .. }));
    let gemini = include_str!("../../../tests/fixtures/gemini/error_invalid_api_key.json");
    let err = super::super::parse_error(ProviderKind::Gemini, 400, gemini.as_bytes());
    assert!(err.to_string().contains("INVALID_ARGUMENT") || err.to_string().contains("API key"));
}
