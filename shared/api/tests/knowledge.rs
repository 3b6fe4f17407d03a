//! The knowledge mode end to end in process: the testkit host (in-memory KV) with its HTTP
//! going to the provider simulator over loopback, so embeddings and answers are the
//! simulator's real wire formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opencode_api::auth;
use opencode_runtime::{Body, HostError};
use opencode_testkit::{TestHost, EPOCH_MS};
use serde_json::{json, Value};

const SECRET: &str = "test-secret-0123456789-0123456789";
const NOTHING: &str = "I found nothing relevant";

const WARRANTY: &str = "The Acme X200 battery warranty lasts two years from the date of purchase. \
Batteries that swell or lose half their capacity are replaced free of charge.";
const BREAD: &str = "Sourdough bread needs a mature starter. Proof the dough overnight in a cool kitchen.";
const TRAIN: &str = "The night train to Vienna departs at eight from platform four. Sleeper cabins hold two people.";

/// Sends a core request to the simulator and reads the whole answer.
async fn forward(addr: SocketAddr, request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| HostError::Connect(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HostError::Connect(e.to_string()))?;
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(http::header::HOST, addr.to_string().parse().unwrap());
    parts.uri = parts.uri.path_and_query().unwrap().as_str().parse().unwrap();
    let response = sender
        .send_request(http::Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|e| HostError::Connect(e.to_string()))?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| HostError::Body(e.to_string()))?.to_bytes();
    Ok(http::Response::from_parts(parts, Body::Full(bytes)))
}

fn platform(sim: &provider_sim::SimHandle) -> TestHost {
    let addr = sim.addr();
    TestHost::new()
        .with_var("OPENAI_API_KEY", "sk-sim")
        .with_var("OPENAI_BASE_URL", &format!("{}/v1", sim.url()))
        .with_var("GEMINI_API_KEY", "g-sim")
        .with_var("GEMINI_BASE_URL", &sim.url())
        .with_var("PROVIDER_ORDER", "openai,gemini")
        .with_var("JWT_SECRET", SECRET)
        .with_var("ATTEMPT_TIMEOUT_MS", "2000")
        .with_var("MAX_RETRIES", "1")
        .with_var("RETRY_BACKOFF_MS", "1")
        .with_upstream(move |req| forward(addr, req))
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// (event, data) pairs of an SSE body.
    fn events(&self) -> Vec<(String, Value)> {
        self.text
            .split("\n\n")
            .filter(|f| !f.trim().is_empty())
            .map(|frame| {
                let name = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap().to_string();
                let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                (name, serde_json::from_str(data).unwrap())
            })
            .collect()
    }
}

async fn call(host: &TestHost, tenant: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    call_with(host, tenant, method, path, body, &[]).await
}

async fn call_with(
    host: &TestHost,
    tenant: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let token = auth::issue(SECRET, "u", tenant, "admin", EPOCH_MS, 3600).unwrap();
    let mut request = http::Request::builder();
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let response = opencode_api::serve_named("knowledge", host.clone(), request).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect(16 << 20).await.unwrap();
    Reply { status: parts.status.as_u16(), headers: parts.headers, text: String::from_utf8(bytes.to_vec()).unwrap() }
}

async fn ingest(host: &TestHost, tenant: &str, id: &str, text: &str) -> Reply {
    call(host, tenant, "POST", "/v1/knowledge/documents", Some(json!({"id": id, "text": text}))).await
}

async fn ask(host: &TestHost, tenant: &str, question: &str, extra: Value) -> Reply {
    let mut body = json!({"messages": [{"role": "user", "content": question}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    call(host, tenant, "POST", "/v1/knowledge", Some(body)).await
}

async fn library(host: &TestHost, tenant: &str) {
    for (id, text) in [("warranty", WARRANTY), ("bread", BREAD), ("train", TRAIN)] {
        let r = ingest(host, tenant, id, text).await;
        assert!(r.status == 201 || r.status == 200, "{}", r.text);
    }
}

fn paths(sim: &provider_sim::SimHandle) -> Vec<String> {
    sim.requests().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_ingested_document_answers_a_question_with_numbered_citations() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    let r = ingest(&host, "acme", "warranty", WARRANTY).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let doc = r.json();
    assert_eq!(
        (doc["id"].as_str(), doc["chunks"].as_u64(), doc["replaced"].as_bool()),
        (Some("warranty"), Some(1), Some(false))
    );
    assert_eq!(doc["model"], "openai/text-embedding-3-small");
    assert_eq!(doc["dims"], 1536);
    assert!(doc["usage"]["input_tokens"].as_u64().unwrap() > 10, "the embedding's usage is reported");
    library(&host, "acme").await;

    let r = ask(&host, "acme", "How long does the battery warranty last?", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = r.json();
    assert_eq!(answer["mode"], "knowledge");
    assert_eq!(answer["found"], true);
    assert_eq!(answer["provider"], "openai");
    let citations = answer["citations"].as_array().unwrap();
    assert_eq!(citations[0]["index"], 1);
    assert_eq!(citations[0]["document_id"], "warranty");
    assert_eq!(citations[0]["chunk"], 0);
    assert!(
        citations.iter().all(|c| c["document_id"] == "warranty"),
        "unrelated documents are not cited: {citations:?}"
    );
    assert!(answer["message"]["content"].as_str().unwrap().contains("battery warranty"));
    assert_eq!(answer["retrieval"]["embedding"]["model"], "text-embedding-3-small");
    assert!(answer["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // The model was given the sources, numbered, and told to cite them and not invent.
    let chat = sim.requests().into_iter().rfind(|r| r["path"] == "/v1/chat/completions").unwrap();
    let system = chat["body"]["messages"][0]["content"].as_str().unwrap().to_string();
    assert_eq!(chat["body"]["messages"][0]["role"], "system");
    assert!(system.contains("[1] document \"warranty\", chunk 0\nThe Acme X200 battery warranty"), "{system}");
    assert!(system.contains("square brackets") && system.contains("do not invent"));
    assert!(!system.contains("Sourdough"));
    let embed = sim.requests().into_iter().rfind(|r| r["path"] == "/v1/embeddings").unwrap();
    assert_eq!(embed["body"]["input"], json!(["How long does the battery warranty last?"]));
    assert_eq!(embed["body"]["encoding_format"], "float");
}

#[tokio::test]
async fn system_2_requests_answer_with_the_strong_model() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    library(&host, "acme").await;
    let body = json!({"messages": [{"role": "user", "content": "How long does the battery warranty last?"}]});
    let r = call_with(&host, "acme", "POST", "/v1/knowledge", Some(body), &[("x-opencode-tier", "system2")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "gpt-4.1");
    let r = ask(&host, "acme", "How long does the battery warranty last?", json!({"stream": true})).await;
    assert_eq!(r.events()[0].1["tier"], "system1");
}

#[tokio::test]
async fn an_unrelated_question_finds_nothing_and_calls_no_model() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    library(&host, "acme").await;
    sim.reset();
    let r = ask(&host, "acme", "Who painted the Mona Lisa?", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = r.json();
    assert_eq!(answer["found"], false);
    assert!(answer["message"]["content"].as_str().unwrap().starts_with(NOTHING));
    assert_eq!(answer["citations"], json!([]));
    assert_eq!(answer["attempts"], 0);
    assert!(answer["retrieval"]["best_score"].as_f64().unwrap() < 0.2);
    assert_eq!(paths(&sim), vec!["/v1/embeddings"], "only the question was embedded");

    // An empty knowledge base costs not even an embedding.
    sim.reset();
    let r = ask(&host, "empty-tenant", "How long does the battery warranty last?", json!({})).await;
    assert_eq!(r.json()["found"], false);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn tenants_see_only_their_own_documents() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    library(&host, "acme").await;
    let theirs = ask(&host, "globex", "How long does the battery warranty last?", json!({})).await;
    assert_eq!(theirs.json()["found"], false);
    let listed = call(&host, "globex", "GET", "/v1/knowledge/documents", None).await;
    assert_eq!(listed.json()["data"], json!([]));
    assert_eq!(call(&host, "globex", "GET", "/v1/knowledge/documents/warranty", None).await.status, 404);
    assert_eq!(call(&host, "globex", "DELETE", "/v1/knowledge/documents/warranty", None).await.status, 404);
    // The same id in another tenant is another document.
    assert_eq!(ingest(&host, "globex", "warranty", BREAD).await.status, 201);
    let ours = ask(&host, "acme", "How long does the battery warranty last?", json!({})).await.json();
    assert_eq!(ours["found"], true);
    assert!(ours["retrieval"]["chunks_searched"].as_u64().unwrap() == 3);
}

#[tokio::test]
async fn documents_are_listed_read_replaced_and_deleted() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    let body = json!({"id": "guide", "text": "# Guide\n\nIntro text here.\n\n## Returns\nReturn items within thirty days.",
        "format": "markdown", "metadata": {"source": "wiki", "lang": "en"}});
    let r = call(&host, "acme", "POST", "/v1/knowledge/documents", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["chunks"], 2, "a markdown heading starts a chunk");
    library(&host, "acme").await;

    let list = call(&host, "acme", "GET", "/v1/knowledge/documents", None).await.json();
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["bread", "guide", "train", "warranty"]);
    assert_eq!(list["has_more"], false);
    let page = call(&host, "acme", "GET", "/v1/knowledge/documents?limit=2", None).await.json();
    assert_eq!((page["data"].as_array().unwrap().len(), page["has_more"].as_bool()), (2, Some(true)));
    let guide = call(&host, "acme", "GET", "/v1/knowledge/documents/guide", None).await.json();
    assert_eq!(guide["metadata"], json!({"source": "wiki", "lang": "en"}));
    assert_eq!((guide["format"].as_str(), guide["chunks"].as_u64()), (Some("markdown"), Some(2)));
    assert!(guide["created"].as_u64().unwrap() >= EPOCH_MS / 1000);

    // Re-ingesting an id replaces the document: the old text no longer answers.
    let r = ingest(&host, "acme", "warranty", "Coffee beans keep best in an airtight jar.").await;
    assert_eq!((r.status, r.json()["replaced"].as_bool()), (200, Some(true)));
    assert_eq!(ask(&host, "acme", "How long does the battery warranty last?", json!({})).await.json()["found"], false);

    let r = call(&host, "acme", "DELETE", "/v1/knowledge/documents/train", None).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(call(&host, "acme", "GET", "/v1/knowledge/documents/train", None).await.status, 404);
    assert_eq!(call(&host, "acme", "DELETE", "/v1/knowledge/documents/train", None).await.status, 404);
    assert_eq!(
        ask(&host, "acme", "When does the night train to Vienna depart?", json!({})).await.json()["found"],
        false
    );
    assert!(!host.kv_snapshot("data").keys().any(|k| k.contains("/train")), "every key of the document is gone");
}

#[tokio::test]
async fn changing_the_embedding_model_under_existing_documents_is_refused() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    library(&host, "acme").await;
    let host = host.with_var("EMBEDDING_MODEL", "text-embedding-3-large");
    let r = ingest(&host, "acme", "more", "Another document.").await;
    assert_eq!(r.status, 409, "{}", r.text);
    let err = r.json()["error"].clone();
    assert_eq!(err["code"], "conflict");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("openai/text-embedding-3-small") && message.contains("openai/text-embedding-3-large"),
        "{message}"
    );
    assert_eq!(ask(&host, "acme", "battery warranty", json!({})).await.status, 409);
    // Same model, other dimensions: refused too.
    let host = host.with_var("EMBEDDING_MODEL", "text-embedding-3-small").with_var("EMBEDDING_DIMENSIONS", "256");
    assert_eq!(ingest(&host, "acme", "more", "Another document.").await.status, 409);
    // Once the knowledge base is empty it may be rebuilt with the new model.
    for id in ["warranty", "bread", "train"] {
        assert_eq!(call(&host, "acme", "DELETE", &format!("/v1/knowledge/documents/{id}"), None).await.status, 204);
    }
    let r = ingest(&host, "acme", "warranty", WARRANTY).await;
    assert_eq!((r.status, r.json()["dims"].as_u64()), (201, Some(256)));
    assert_eq!(ask(&host, "acme", "How long does the battery warranty last?", json!({})).await.json()["found"], true);
}

#[tokio::test]
async fn gemini_can_embed_instead() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim).with_var("EMBEDDING_PROVIDER", "gemini");
    library(&host, "acme").await;
    let answer = ask(&host, "acme", "How long does the battery warranty last?", json!({})).await.json();
    assert_eq!(answer["citations"][0]["document_id"], "warranty");
    assert_eq!(answer["retrieval"]["embedding"]["provider"], "gemini");
    let embed = sim.requests().into_iter().rfind(|r| r["provider"] == "gemini").unwrap();
    assert_eq!(embed["path"], "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    assert_eq!(embed["body"]["requests"][0]["taskType"], "RETRIEVAL_QUERY");
}

#[tokio::test]
async fn chinese_documents_and_questions_work() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim).with_var("KNOWLEDGE_CHUNK_CHARS", "100").with_var("KNOWLEDGE_CHUNK_OVERLAP", "20");
    let text = "退货政策：商品在三十天内可以退货，需要保留发票。".repeat(3) + "火车明天早上八点从四号站台出发。";
    assert_eq!(ingest(&host, "acme", "policy", &text).await.status, 201);
    assert_eq!(ingest(&host, "acme", "bread", BREAD).await.status, 201);
    let answer = ask(&host, "acme", "退货政策是什么？", json!({"top_k": 1})).await.json();
    assert_eq!(answer["found"], true, "{answer}");
    assert_eq!(answer["citations"].as_array().unwrap().len(), 1);
    assert_eq!(answer["citations"][0]["document_id"], "policy");
}

#[tokio::test]
async fn streamed_answers_report_retrieval_then_the_answer() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    library(&host, "acme").await;
    let r = ask(&host, "acme", "How long does the battery warranty last?", json!({"stream": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let events = r.events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..2], ["start", "retrieve"]);
    assert_eq!(names[names.len() - 2..], ["usage", "done"]);
    assert!(names[2..names.len() - 2].iter().all(|n| *n == "delta") && names.len() > 5);
    assert_eq!(events[1].1["chunks"], 1);
    let text: String = events.iter().filter(|(n, _)| n == "delta").map(|(_, d)| d["text"].as_str().unwrap()).collect();
    assert!(text.contains("battery warranty"));
    let done = &events.last().unwrap().1;
    assert_eq!(done["citations"][0]["document_id"], "warranty");
    assert_eq!(
        (done["provider"].as_str(), done["found"].as_bool(), done["finish_reason"].as_str()),
        (Some("openai"), Some(true), Some("stop"))
    );
    assert!(done.get("message").is_none());

    let r = ask(&host, "acme", "Who painted the Mona Lisa?", json!({"stream": true})).await;
    let names: Vec<String> = r.events().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["start", "retrieve", "delta", "usage", "done"]);
    assert!(r.events()[2].1["text"].as_str().unwrap().starts_with(NOTHING));

    // A model failure after the stream opened ends it with an error event. (Gemini embeds, so
    // that the directive fails only the answer; test hosts share their variables with clones.)
    let host = host.with_var("EMBEDDING_PROVIDER", "gemini").with_var("PROVIDER_ORDER", "openai");
    assert_eq!(ingest(&host, "other", "warranty", WARRANTY).await.status, 201);
    let r = ask(&host, "other", "battery warranty last sim:openai:status=400", json!({"stream": true})).await;
    let events = r.events();
    assert_eq!(events.last().unwrap().0, "error", "{}", r.text);
    assert_eq!(events[1].0, "retrieve");
    // JSON answers are read from the model as streams too: a stream cut after its first token
    // is a 502 naming the broken attempt, not a partial answer.
    let r = ask(&host, "other", "battery warranty last sim:openai:cut=3", json!({})).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (502, Some("upstream_failed")), "{}", r.text);
    let r = ask(&host, "other", "battery warranty last", json!({})).await;
    let usage = r.json()["usage"].clone();
    assert_eq!(usage["output_tokens"], 9, "the words of the answer: usage survives the streamed read");
    assert!(usage["input_tokens"].as_u64().unwrap() > 50, "{usage}");
}

#[tokio::test]
async fn embedding_failures_are_upstream_errors_not_internal_ones() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    library(&host, "acme").await;
    // Overloaded twice: retried once, then a 503 naming both attempts, with a Retry-After
    // (the simulator said none: a second); nothing stored.
    let r = ingest(&host, "acme", "flaky", "Flaky text sim:openai:status=503").await;
    assert_eq!((r.status, r.headers.get("retry-after").map(|v| v.to_str().unwrap())), (503, Some("1")), "{}", r.text);
    let err = r.json()["error"].clone();
    assert_eq!(err["code"], "upstream_overloaded");
    assert_eq!(err["attempts"].as_array().unwrap().len(), 2);
    assert!(!host.kv_snapshot("data").keys().any(|k| k.contains("flaky")));
    // A 503 once, then it works: the retry hides it.
    assert_eq!(ingest(&host, "acme", "flaky", "Flaky text sim:openai:status=503*1").await.status, 201);
    // The question's embedding failing is the same.
    let r = ask(&host, "acme", "battery warranty sim:openai:malformed", json!({})).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (502, Some("upstream_failed")));
    let r = ask(&host, "acme", "battery warranty sim:openai:drop", json!({})).await;
    assert_eq!(r.status, 502);
    // A rejected key is not retried (MAX_RETRIES is 1). Test hosts share variables with
    // their clones, so each change below lasts.
    let host = host.with_var("OPENAI_API_KEY", "invalid-key");
    let r = ask(&host, "acme", "battery warranty", json!({})).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["attempts"].as_array().unwrap().len(), 1);
    assert!(!r.text.contains("invalid-key"));
    let host =
        host.with_var("OPENAI_API_KEY", "sk-sim").with_var("ATTEMPT_TIMEOUT_MS", "200").with_var("MAX_RETRIES", "0");
    let r = ask(&host, "acme", "battery warranty sim:openai:delay_ms=1000", json!({})).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (504, Some("upstream_timeout")));
    // No provider that can embed: 503, before anything else happens.
    let none = TestHost::new().with_var("JWT_SECRET", SECRET).with_var("ANTHROPIC_API_KEY", "a");
    let r = ingest(&none, "acme", "x", "text").await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (503, Some("not_configured")));
    let anthropic = none.clone().with_var("EMBEDDING_PROVIDER", "anthropic");
    assert_eq!(ingest(&anthropic, "acme", "x", "text").await.status, 503);
}

#[tokio::test]
async fn bad_input_gets_4xx() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim).with_var("MAX_BODY_BYTES", "4096");
    let docs = "/v1/knowledge/documents";
    let cases: Vec<(&str, &str, Option<Value>, u16)> = vec![
        ("POST", docs, Some(json!({"text": "no id"})), 422),
        ("POST", docs, Some(json!({"id": "a/b", "text": "x"})), 422),
        ("POST", docs, Some(json!({"id": "x".repeat(129), "text": "x"})), 422),
        ("POST", docs, Some(json!({"id": "ok", "text": "  \n "})), 422),
        ("POST", docs, Some(json!({"id": "ok", "text": "x", "format": "pdf"})), 422),
        ("POST", docs, Some(json!({"id": "ok", "text": "x", "metadata": [1]})), 422),
        ("POST", docs, Some(json!({"id": "ok", "text": "x", "extra": 1})), 422),
        ("POST", docs, Some(json!({"id": "ok", "text": "x".repeat(5000)})), 413),
        ("PUT", docs, None, 405),
        ("GET", "/v1/knowledge/documents?limit=0", None, 422),
        ("GET", "/v1/knowledge/documents/bad%20id", None, 422),
        ("GET", "/v1/knowledge/elsewhere", None, 404),
        ("GET", "/v1/knowledge", None, 405),
        ("POST", "/v1/knowledge", Some(json!({"messages": [{"role": "user", "content": "q"}], "top_k": 0})), 422),
        ("POST", "/v1/knowledge", Some(json!({"messages": [{"role": "user", "content": "q"}], "top_k": 21})), 422),
        ("POST", "/v1/knowledge", Some(json!({"messages": [{"role": "user", "content": "q"}], "top_k": "4"})), 422),
        ("POST", "/v1/knowledge", Some(json!({"messages": [{"role": "user", "content": "  "}]})), 422),
        ("POST", "/v1/knowledge", Some(json!({"messages": []})), 422),
        ("POST", "/v1/knowledge", Some(json!([1, 2])), 422),
    ];
    for (method, path, body, status) in cases {
        let r = call(&host, "acme", method, path, body.clone()).await;
        assert_eq!(r.status, status, "{method} {path} {body:?}: {}", r.text);
        assert!(r.json()["error"]["code"].is_string());
    }
    let request = http::Request::post("/v1/knowledge/documents").body(Body::from("{}".to_string())).unwrap();
    let response = opencode_api::serve_named("knowledge", host.clone(), request).await;
    assert_eq!(response.status(), 401);
    assert!(sim.requests().is_empty(), "no bad request reached a provider");
}

#[tokio::test]
async fn large_documents_are_split_into_parts_within_the_stores_limits() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim)
        .with_var("MAX_BODY_BYTES", "4000000")
        .with_var("KNOWLEDGE_CHUNK_CHARS", "100")
        .with_var("KNOWLEDGE_CHUNK_OVERLAP", "0");
    let sentence = "Item number {n} of the long catalogue is a plain sentence.";
    let text: String = (0..1600).map(|n| sentence.replace("{n}", &n.to_string()) + " ").collect();
    let r = ingest(&host, "acme", "catalogue", &text).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let chunks = r.json()["chunks"].as_u64().unwrap();
    assert!(chunks >= 800, "{chunks}");
    let embed_calls = paths(&sim).iter().filter(|p| *p == "/v1/embeddings").count();
    assert!(embed_calls >= 7, "batched within the vendor's limit: {embed_calls} calls");
    let kv = host.kv_snapshot("data");
    let parts: Vec<_> = kv.iter().filter(|(k, _)| k.contains("/vec/catalogue/")).collect();
    assert!(parts.len() >= 2, "{} parts", parts.len());
    for (key, value) in &kv {
        assert!(key.len() <= 256, "{key}");
        assert!(value.len() <= 1_000_000, "{key}: {} bytes", value.len());
    }
    let answer = ask(&host, "acme", "What is item number 1234 of the catalogue?", json!({"top_k": 3})).await.json();
    assert_eq!(answer["found"], true);
    assert_eq!(answer["retrieval"]["chunks_searched"].as_u64(), Some(chunks));
    // A shorter replacement leaves no stale parts behind.
    assert_eq!(ingest(&host, "acme", "catalogue", "Now short.").await.status, 200);
    let left = host.kv_snapshot("data").keys().filter(|k| k.contains("/vec/catalogue/")).count();
    assert_eq!(left, 1);
}

/// The seed's document upload at the gateway: a multipart text file is indexed in the caller's
/// tenant as the document `task_id`, which its status reports and the knowledge mode cites.
#[tokio::test]
async fn the_seeds_upload_indexes_a_multipart_file_and_reports_its_status() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim).with_function("knowledge", |host, req| async move {
        opencode_api::serve_named("knowledge", host, req.map(Body::Full)).await
    });
    let token = auth::issue(SECRET, "u", "acme", "admin", EPOCH_MS, 3600).unwrap();
    let send = |request: http::request::Builder, body: Bytes| {
        let request = request.header("authorization", format!("Bearer {token}")).body(Body::Full(body)).unwrap();
        let host = host.clone();
        async move {
            let response = opencode_api::serve_named("gateway", host, request).await;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect(1 << 20).await.unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let file = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"warranty.md\"\r\nContent-Type: text/markdown\r\n\r\n# Warranty\n{WARRANTY}\r\n--b0undary--\r\n"
    );
    let upload = http::Request::post("/api/v1/documents/upload")
        .header("content-type", "multipart/form-data; boundary=b0undary");
    let (status, v) = send(upload, Bytes::from(file)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["filename"].as_str(), v["status"].as_str()), (Some("warranty.md"), Some("completed")), "{v}");
    let task_id = v["task_id"].as_str().unwrap().to_owned();
    let (status, v) = send(http::Request::get(format!("/api/v1/documents/status/{task_id}")), Bytes::new()).await;
    assert_eq!((status, v["status"].as_str(), v["progress"].as_f64()), (200, Some("completed"), Some(1.0)), "{v}");
    let listed = call(&host, "acme", "GET", &format!("/v1/knowledge/documents/{task_id}"), None).await;
    assert_eq!(listed.json()["metadata"]["filename"], "warranty.md", "{}", listed.text);
    // A task that never was is a 404 in the seed's shape, an upload without a file a 422.
    let (status, v) = send(http::Request::get("/api/v1/documents/status/upload-nope"), Bytes::new()).await;
    assert_eq!((status, v["error_code"].as_str()), (404, Some("NOT_FOUND")), "{v}");
    let (status, v) = send(
        upload_without_file(),
        Bytes::from("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--b--\r\n"),
    )
    .await;
    assert_eq!((status, v["error_code"].as_str()), (422, Some("VALIDATION_FAILED")), "{v}");
}

fn upload_without_file() -> http::request::Builder {
    http::Request::post("/api/v1/documents/upload").header("content-type", "multipart/form-data; boundary=b")
}

#[tokio::test]
async fn system_1_answers_are_cached_until_a_document_is_added_or_deleted() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = platform(&sim);
    ingest(&host, "acme", "warranty", WARRANTY).await;
    const QUESTION: &str = "How long does the battery warranty last?";
    let first = ask(&host, "acme", QUESTION, json!({})).await;
    host.run_background().await;
    assert_eq!(first.headers["x-cache"], "miss", "{}", first.text);
    let seen = sim.requests().len();

    let hit = ask(&host, "acme", QUESTION, json!({})).await;
    assert_eq!(hit.headers["x-cache"], "hit", "{}", hit.text);
    assert_eq!(sim.requests().len(), seen, "no embedding, no model call");
    let (a, b) = (first.json(), hit.json());
    assert_eq!(a["message"], b["message"]);
    assert_eq!(a["citations"], b["citations"]);
    assert_eq!(b["found"], true);
    let streamed = ask(&host, "acme", QUESTION, json!({"stream": true})).await;
    let events = streamed.events();
    assert_eq!(events.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>()[..2], ["start", "retrieve"]);
    assert_eq!(events.last().unwrap().1["citations"], a["citations"]);
    assert_eq!(sim.requests().len(), seen, "a streamed hit calls nothing either");
    // Another tenant's same question is its own.
    ingest(&host, "globex", "warranty", WARRANTY).await;
    assert_eq!(ask(&host, "globex", QUESTION, json!({})).await.headers["x-cache"], "miss");

    // A new document changes the index's version: answered afresh, then cached again.
    ingest(&host, "acme", "bread", BREAD).await;
    let after_add = ask(&host, "acme", QUESTION, json!({})).await;
    host.run_background().await;
    assert_eq!(after_add.headers["x-cache"], "miss");
    assert_eq!(ask(&host, "acme", QUESTION, json!({})).await.headers["x-cache"], "hit");
    assert_eq!(call(&host, "acme", "DELETE", "/v1/knowledge/documents/bread", None).await.status, 204);
    assert_eq!(ask(&host, "acme", QUESTION, json!({})).await.headers["x-cache"], "miss", "a deletion too");

    // The cache flag off for the tenant: never served from the cache.
    let off = json!({"cognitive_features": {"system1": {"enable_cache": false}}});
    opencode_runtime::flags::update(&host, opencode_runtime::flags::Scope::Tenant("acme"), &off).await.unwrap();
    let uncached = ask(&host, "acme", QUESTION, json!({})).await;
    assert!(uncached.headers.get("x-cache").is_none(), "{:?}", uncached.headers);
}
