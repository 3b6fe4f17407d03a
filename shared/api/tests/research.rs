//! `POST /v1/research` on the test host: plan, concurrent searches, a cited report, within the
//! agent's limits; every step visible in the stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use common::*;
use opencode_api::auth;
use opencode_runtime::{Body, HostError};
use opencode_testkit::{json_response, streamed_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};

fn research_host() -> TestHost {
    test_host()
        .with_var("TAVILY_API_KEY", "tvly-key")
        .with_var("TAVILY_BASE_URL", "http://tavily.test")
        .with_var("BRAVE_API_KEY", "brave-key")
        .with_var("BRAVE_BASE_URL", "http://brave.test")
}

/// The model plans three sub-questions and writes "report [1] [2]"; Tavily answers each query
/// with one page of its own and one shared page (so dedupe has work), unless `tavily_down`.
fn upstream(req: http::Request<Bytes>, tavily_down: bool) -> Result<http::Response<Body>, HostError> {
    let host = req.uri().host().unwrap_or("").to_string();
    let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
    if host == "tavily.test" {
        if tavily_down {
            return Ok(json_response(503, r#"{"detail":{"error":"down"}}"#));
        }
        let q = body["query"].as_str().unwrap();
        let results = json!([
            {"title": format!("On {q}"), "url": format!("https://t.example/{}", q.len()), "content": "c", "score": 0.9},
            {"title": "Shared", "url": "https://t.example/shared", "content": "s", "score": 0.5},
        ]);
        return Ok(json_response(200, &json!({"query": q, "results": results}).to_string()));
    }
    if host == "brave.test" {
        let results = json!([{"title": "Brave page", "url": "https://b.example/1", "description": "b"}]);
        return Ok(json_response(200, &json!({"type": "search", "web": {"results": results}}).to_string()));
    }
    let planning = body["messages"][0]["content"].as_str().unwrap_or("").contains("JSON array of sub-questions");
    let text = if planning { r#"["first?", "second one?", "third q?"]"# } else { "report [1] [2]" };
    Ok(if body["stream"] == json!(true) {
        streamed_response(openai_chunks(&["report ", "[1] ", "[2]"]), 0, false)
    } else {
        json_response(200, &openai_ok(text))
    })
}

async fn research(host: &TestHost, body: Value) -> (u16, String) {
    let token = auth::issue(SECRET, "u", "t", "member", EPOCH_MS, 3600).unwrap();
    let request = http::Request::post("/v1/research")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = opencode_api::serve_named("research", host.clone(), request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect(1 << 20).await.unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn question(extra: Value) -> Value {
    let mut body = json!({"messages":[{"role":"user","content":"How do tides work?"}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test(start_paused = true)]
async fn plans_searches_every_sub_question_and_writes_a_cited_report() {
    let in_flight = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let (now, top) = (Rc::clone(&in_flight), Rc::clone(&peak));
    let host = research_host().with_upstream(move |req| {
        let (now, top) = (Rc::clone(&now), Rc::clone(&top));
        async move {
            now.set(now.get() + 1);
            top.set(top.get().max(now.get()));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            now.set(now.get() - 1);
            upstream(req, false)
        }
    });
    let (status, body) = research(&host, question(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["object"], "research.answer");
    assert_eq!(answer["message"]["content"], "report [1] [2]");
    assert_eq!(answer["sub_questions"], json!(["first?", "second one?", "third q?"]));
    assert_eq!(answer["searches"].as_array().unwrap().len(), 3);
    assert!(answer["searches"].as_array().unwrap().iter().all(|s| s["provider"] == "tavily"));
    let urls: Vec<&str> = answer["citations"].as_array().unwrap().iter().map(|c| c["url"].as_str().unwrap()).collect();
    assert_eq!(urls.len(), 4, "three own pages and the shared one once: {urls:?}");
    assert_eq!(answer["citations"][0]["index"], 1);
    let steps = answer["agent"]["steps"].as_array().unwrap();
    assert_eq!(
        steps.iter().map(|s| s["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["plan", "search", "search", "search", "write"]
    );
    assert_eq!(answer["usage"]["total_tokens"], 10, "plan and report, 5 tokens each");
    assert!(peak.get() >= 3, "the three searches ran at once (peak {})", peak.get());
    assert_eq!(answer["tier"], "system2");
}

#[tokio::test(start_paused = true)]
async fn a_failed_search_provider_falls_back_and_limits_end_the_run_with_what_it_has() {
    let host = research_host().with_upstream(|req| async move { upstream(req, true) });
    let (status, body) = research(&host, question(json!({"max_sub_questions": 2}))).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["sub_questions"].as_array().unwrap().len(), 2);
    assert!(answer["searches"].as_array().unwrap().iter().all(|s| s["provider"] == "brave"), "{body}");

    let host =
        research_host().with_var("AGENT_MAX_STEPS", "3").with_upstream(|req| async move { upstream(req, false) });
    let (status, body) = research(&host, question(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["agent"]["stopped"]["limit"], "steps");
    assert_eq!(answer["searches"][2]["skipped"], "limit reached");
    assert!(answer["message"]["content"].as_str().unwrap().contains("stopped before the report"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn every_step_streams_in_order() {
    let host = research_host().with_upstream(|req| async move { upstream(req, false) });
    let (status, body) = research(&host, question(json!({"stream": true}))).await;
    assert_eq!(status, 200);
    let events: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    let first =
        |name: &str| events.iter().position(|e| *e == name).unwrap_or_else(|| panic!("no {name} in {events:?}"));
    assert_eq!(events[0], "start");
    assert!(first("plan") < first("search") && first("search") < first("read"));
    assert!(first("read") < first("write") && first("write") < first("delta"));
    assert_eq!(
        events.iter().filter(|e| **e == "step").count(),
        4,
        "plan and three searches; the report streams as deltas"
    );
    assert_eq!(&events[events.len() - 2..], ["usage", "done"]);
    let done: Value = serde_json::from_str(body.rsplit("data: ").next().unwrap().trim()).unwrap();
    assert_eq!(done["citations"].as_array().unwrap().len(), 4);
    assert!(done.get("message").is_none());
}

#[tokio::test(start_paused = true)]
async fn bad_bodies_and_missing_search_are_clear_errors() {
    let host = research_host().with_upstream(|req| async move { upstream(req, false) });
    let (status, body) = research(&host, question(json!({"max_sub_questions": 9}))).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = research(&host, question(json!({"depth": 2}))).await;
    assert_eq!(status, 422);
    let bare = test_host().with_upstream(|req| async move { upstream(req, false) });
    let (status, body) = research(&bare, question(json!({}))).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TAVILY_API_KEY"), "{body}");
    let down = research_host().with_upstream(|req| async move {
        if req.uri().host() == Some("brave.test") {
            return Ok(json_response(500, "{}"));
        }
        upstream(req, true)
    });
    let (status, body) = research(&down, question(json!({}))).await;
    assert_eq!(status, 502, "{body}");
}
