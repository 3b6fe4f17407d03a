//! OpenAI `/v1/embeddings` and Gemini `:embedContent` / `:batchEmbedContents`, as the vendors
//! document them, with vectors that rank shared words above unrelated text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::{json, Value};

const BATCH: &str = "/v1beta/models/gemini-embedding-001:batchEmbedContents";

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn openai_embeddings_have_the_documented_shape_and_meaning() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = json!({"model": "text-embedding-3-small", "encoding_format": "float",
        "input": ["The battery warranty lasts two years.", "Sourdough needs a mature starter.", "battery warranty"]});
    let r = post(sim.addr(), "/v1/embeddings", &[OPENAI_KEY], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    assert_eq!(v["usage"]["prompt_tokens"], 13, "words of every input");
    assert_eq!(v["usage"]["total_tokens"], 13);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        assert_eq!(d["embedding"].as_array().unwrap().len(), 1536);
    }
    let (doc, other, question) =
        (floats(&data[0]["embedding"]), floats(&data[1]["embedding"]), floats(&data[2]["embedding"]));
    assert!(cosine(&doc, &question) > 0.5);
    assert!(cosine(&other, &question).abs() < 0.1);

    let one = post(
        sim.addr(),
        "/v1/embeddings",
        &[OPENAI_KEY],
        &json!({"model": "text-embedding-3-small", "input": "hi", "dimensions": 64}),
    )
    .await;
    assert_eq!(one.json()["data"][0]["embedding"].as_array().unwrap().len(), 64);
}

#[tokio::test]
async fn openai_refuses_what_the_api_refuses() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let cases = [
        (json!({"model": "text-embedding-3-small", "input": ""}), 400),
        (json!({"model": "text-embedding-3-small", "input": []}), 400),
        (json!({"input": ["x"]}), 400),
        (json!({"model": "text-embedding-ada-002", "input": ["x"], "dimensions": 8}), 400),
    ];
    for (body, status) in cases {
        let r = post(sim.addr(), "/v1/embeddings", &[OPENAI_KEY], &body).await;
        assert_eq!(r.status, status, "{body}");
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    }
    let r = post(sim.addr(), "/v1/embeddings", &[], &json!({"model": "m", "input": "x"})).await;
    assert_eq!(r.status, 401);
    let r = post(
        sim.addr(),
        "/v1/embeddings",
        &[("authorization", "Bearer invalid-key")],
        &json!({"model": "m", "input": "x"}),
    )
    .await;
    assert_eq!(r.status, 401);
    // A compatible server under a prefix needs no key.
    let r = post(sim.addr(), "/ollama/v1/embeddings", &[], &json!({"model": "nomic-embed-text", "input": ["x"]})).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn gemini_batch_and_single_embeddings_have_the_documented_shape() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let request = |text: &str| {
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]},
        "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 768})
    };
    let body = json!({"requests": [request("退货政策：三十天内可以退货"), request("火车八点出发")]});
    let r = post(sim.addr(), BATCH, &[GEMINI_KEY], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let list = v["embeddings"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["values"].as_array().unwrap().len(), 768);
    assert!(v.get("usageMetadata").is_none());

    let single = json!({"content": {"parts": [{"text": "退货政策是什么"}]}});
    let r = post(sim.addr(), "/v1beta/models/gemini-embedding-001:embedContent", &[GEMINI_KEY], &single).await;
    assert_eq!(r.status, 200);
    let q = floats(&r.json()["embedding"]["values"]);
    assert_eq!(q.len(), 3072);
    let again = post(
        sim.addr(),
        BATCH,
        &[GEMINI_KEY],
        &json!({"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "退货政策：三十天内可以退货"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "火车八点出发"}]}}]}),
    )
    .await;
    let full = again.json();
    let (doc, other) = (floats(&full["embeddings"][0]["values"]), floats(&full["embeddings"][1]["values"]));
    assert!(cosine(&doc, &q) > cosine(&other, &q) + 0.2);
}

#[tokio::test]
async fn gemini_refuses_mismatched_models_oversized_batches_and_missing_keys() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let wrong = json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]});
    let r = post(sim.addr(), BATCH, &[GEMINI_KEY], &wrong).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");
    let one = json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "x"}]}});
    let big = json!({"requests": vec![one.clone(); 101]});
    assert_eq!(post(sim.addr(), BATCH, &[GEMINI_KEY], &big).await.status, 400);
    let ok = json!({"requests": vec![one; 100]});
    assert_eq!(post(sim.addr(), BATCH, &[GEMINI_KEY], &ok).await.status, 200);
    assert_eq!(post(sim.addr(), BATCH, &[], &wrong).await.status, 403);
}

#[tokio::test]
async fn fault_directives_work_on_embeddings_too() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = |text: &str| json!({"model": "text-embedding-3-small", "input": [text]});
    let r = post(sim.addr(), "/v1/embeddings", &[OPENAI_KEY], &body("flaky sim:openai:status=503*1 a")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "server_error");
    let r = post(sim.addr(), "/v1/embeddings", &[OPENAI_KEY], &body("flaky sim:openai:status=503*1 a")).await;
    assert_eq!(r.status, 200, "the second request passes");
    let r = post(sim.addr(), "/v1/embeddings", &[OPENAI_KEY], &body("sim:openai:retry_after=2 b")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    let r = post(sim.addr(), "/v1/embeddings", &[OPENAI_KEY], &body("sim:openai:malformed c")).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes()).is_err());
    let gem = json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "sim:gemini:status=500 d"}]}}]});
    let r = post(sim.addr(), BATCH, &[GEMINI_KEY], &gem).await;
    assert_eq!((r.status, r.json()["error"]["status"].as_str()), (500, Some("INTERNAL")));
    let dropped = try_send(sim.addr(), "POST", "/v1/embeddings", &[OPENAI_KEY], Some(&body("sim:any:drop e"))).await;
    assert!(dropped.is_err(), "drop closes the connection without a response");
    let logged = sim.requests();
    assert!(logged.iter().any(|e| e["path"] == "/v1/embeddings" && e["headers"]["authorization"] == "***"));
}
