//! `POST /v1/embeddings` in OpenAI's shape, through the knowledge function's embedder.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_testkit::{json_response, TestHost};
use serde_json::{json, Value};

fn host() -> TestHost {
    test_host().with_upstream(|req| async move {
        let sent: Value = serde_json::from_slice(req.body()).unwrap();
        let data: Vec<Value> = sent["input"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, _)| json!({"object": "embedding", "index": i, "embedding": [1.0, -2.0]}))
            .collect();
        let body = json!({"object": "list", "data": data, "model": sent["model"], "usage": {"prompt_tokens": 7, "total_tokens": 7}});
        Ok(json_response(200, &body.to_string()))
    })
}

async fn embeddings(host: &TestHost, body: Value) -> (u16, Value) {
    let (status, _, text) = serve(host, "gateway", user_request("/v1/embeddings", &body)).await;
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test(start_paused = true)]
async fn float_and_base64_vectors_in_openai_shape() {
    let host = host();
    let (status, v) = embeddings(&host, json!({"input": ["a", "b"], "model": "text-embedding-3-large"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-large");
    assert_eq!(v["data"][1], json!({"object": "embedding", "index": 1, "embedding": [1.0, -2.0]}));
    assert_eq!(v["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["model"], "text-embedding-3-large", "a bare name is a model of the embedding provider");

    let (status, v) = embeddings(
        &host,
        json!({"input": "one", "model": "openai/text-embedding-3-small", "encoding_format": "base64", "dimensions": 2}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"][0]["embedding"], "AACAPwAAAMA=");
    assert_eq!(v["model"], "text-embedding-3-small");
    let sent: Value = serde_json::from_slice(host.requests()[1].body()).unwrap();
    assert_eq!(sent["dimensions"], 2);
}

#[tokio::test(start_paused = true)]
async fn bad_inputs_are_400s_naming_the_parameter() {
    let host = host();
    for (body, param) in [
        (json!({"input": [[1, 2, 3]], "model": "m"}), "input"),
        (json!({"input": [], "model": "m"}), "input"),
        (json!({"input": ["a", ""], "model": "m"}), "input"),
        (json!({"input": "a", "model": "m", "encoding_format": "hex"}), "encoding_format"),
        (json!({"input": "a", "model": "m", "dimensions": 0}), "dimensions"),
        (json!({"input": "a", "model": "anthropic/claude-x"}), "model"),
    ] {
        let (status, v) = embeddings(&host, body.clone()).await;
        assert!(status == 400 || status == 404, "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    let (status, v) = embeddings(&host, json!({"input": "a"})).await;
    assert_eq!(status, 400, "{v}");
    assert!(host.requests().is_empty());
}
