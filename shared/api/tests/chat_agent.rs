//! Chat on System 2 (`x-opencode-tier: system2`): the agent loop with the platform's tools,
//! through OpenAI's native tool calling on the test host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use opencode_runtime::{Body, HostError};
use opencode_testkit::{json_response, streamed_response, TestHost};
use serde_json::{json, Value};

/// The agent function chat forwards to, and the functions its tools call, served by the real
/// handlers on the same test host.
fn with_siblings(host: TestHost) -> TestHost {
    ["agent", "search", "knowledge", "code"].into_iter().fold(host, |host, name| {
        host.with_function(name, move |host, req| async move {
            opencode_api::serve_named(name, host, req.map(Body::from)).await
        })
    })
}

fn agent_host() -> TestHost {
    with_siblings(test_host())
        .with_var("PROVIDER_ORDER", "openai")
        .with_var("TAVILY_API_KEY", "tvly-key")
        .with_var("TAVILY_BASE_URL", "http://tavily.test")
}

fn completion(message: Value, finish: &str) -> String {
    json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-strong",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })
    .to_string()
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-strong","choices":[{"index":0,"delta":delta,"finish_reason":finish}]});
    format!("data: {body}\n\n")
}

/// The model: while the conversation's last message is not a tool result and tools are
/// offered, it calls `web_search` with the user's question (`calls` times at once); after tool
/// results it answers by quoting them. Tavily returns one page per query (or fails when `search_down`).
fn upstream(req: http::Request<Bytes>, calls: usize, search_down: bool) -> Result<http::Response<Body>, HostError> {
    let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
    if req.uri().host() == Some("tavily.test") {
        if search_down {
            return Ok(json_response(503, r#"{"detail":{"error":"down"}}"#));
        }
        let q = body["query"].as_str().unwrap();
        let results = json!([{"title": format!("On {q}"), "url": format!("https://t.example/{}", q.rsplit(' ').next().unwrap()), "content": "the moon pulls the sea", "score": 0.9}]);
        return Ok(json_response(200, &json!({"query": q, "results": results}).to_string()));
    }
    let messages = body["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    let stream = body["stream"] == json!(true);
    let forced_answer = body["tool_choice"] == json!("none");
    let offered = body.get("tools").is_some();
    if last["role"] != json!("tool") && !forced_answer && offered {
        let question = messages.iter().rev().find(|m| m["role"] == json!("user")).unwrap()["content"].as_str().unwrap();
        let tool_calls: Vec<Value> = (0..calls)
            .map(|i| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": "web_search", "arguments": json!({"query": format!("{question} {i}")}).to_string()}}))
            .collect();
        if stream {
            let mut chunks: Vec<String> = tool_calls
                .iter()
                .enumerate()
                .map(|(i, c)| chunk(json!({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": {"name": "web_search", "arguments": c["function"]["arguments"]}}]}), None))
                .collect();
            chunks.push(chunk(json!({}), Some("tool_calls")));
            chunks.push("data: [DONE]\n\n".into());
            return Ok(streamed_response(chunks, 0, false));
        }
        return Ok(json_response(
            200,
            &completion(json!({"role": "assistant", "content": null, "tool_calls": tool_calls}), "tool_calls"),
        ));
    }
    let results: Vec<&str> =
        messages.iter().filter(|m| m["role"] == json!("tool")).map(|m| m["content"].as_str().unwrap()).collect();
    let text = format!("From the tools: {}", results.join(" | "));
    if stream {
        return Ok(streamed_response(
            vec![
                chunk(json!({"content": "From "}), None),
                chunk(json!({"content": text.trim_start_matches("From ")}), None),
                chunk(json!({}), Some("stop")),
                "data: [DONE]\n\n".into(),
            ],
            0,
            false,
        ));
    }
    Ok(json_response(200, &completion(json!({"role": "assistant", "content": text}), "stop")))
}

async fn system2(host: &TestHost, body: Value) -> (u16, String) {
    post_as_user(host, "chat", "/v1/chat", &body, &[("x-opencode-tier", "system2")]).await
}

fn question(stream: bool) -> Value {
    json!({"messages": [{"role": "user", "content": "Why are there tides?"}], "stream": stream})
}

fn model_calls(host: &TestHost) -> Vec<Value> {
    host.requests().iter().filter(|r| is_openai(r)).map(|r| serde_json::from_slice(r.body()).unwrap()).collect()
}

#[tokio::test(start_paused = true)]
async fn the_model_searches_and_answers_from_the_results_with_citations() {
    let host = agent_host().with_upstream(|req| async move { upstream(req, 2, false) });
    let (status, body) = system2(&host, question(false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["tier"], "system2");
    // Both searches ran and their numbered results reached the model.
    let text = answer["message"]["content"].as_str().unwrap();
    assert!(text.contains("[1] On Why are there tides? 0"), "{text}");
    assert!(text.contains("[2] On Why are there tides? 1"), "{text}");
    assert_eq!(answer["citations"].as_array().unwrap().len(), 2);
    assert_eq!(answer["citations"][0]["url"], "https://t.example/0");
    let steps = answer["agent"]["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["model", "tool", "tool", "model"]);
    assert_eq!(steps[0]["tool_calls"], json!(["web_search", "web_search"]));
    // The strong model was asked, with the tool offered, and the second call carried the
    // assistant's calls and one result per call.
    let calls = model_calls(&host);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["tools"][0]["function"]["name"], "web_search");
    let second = calls[1]["messages"].as_array().unwrap();
    assert_eq!(second.iter().filter(|m| m["role"] == "tool").count(), 2);
    assert!(second.iter().any(|m| m["tool_calls"].as_array().is_some_and(|c| c.len() == 2)));
    // Usage adds up both model calls.
    assert_eq!(answer["usage"]["total_tokens"], 30);
}

#[tokio::test(start_paused = true)]
async fn a_failed_search_is_a_result_the_model_reads_not_an_error() {
    let host = agent_host().with_upstream(|req| async move { upstream(req, 1, true) });
    let (status, body) = system2(&host, question(false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["message"]["content"].as_str().unwrap().contains("The tool failed"), "{body}");
    assert_eq!(answer["agent"]["steps"][1]["ok"], false);
    assert_eq!(answer["citations"], json!([]));
}

#[tokio::test(start_paused = true)]
async fn the_last_step_the_limits_allow_must_answer() {
    // Three steps: a model call that searches, the search, and a final call that may not
    // call tools (this model would otherwise search forever).
    let host = agent_host().with_var("AGENT_MAX_STEPS", "3").with_upstream(|req| async move {
        let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        if req.uri().host() == Some("tavily.test") || body["tool_choice"] == json!("none") {
            return upstream(req, 1, false);
        }
        let call = json!([{"id": "again", "type": "function", "function": {"name": "web_search", "arguments": "{\"query\":\"more\"}"}}]);
        Ok(json_response(200, &completion(json!({"role": "assistant", "content": null, "tool_calls": call}), "tool_calls")))
    });
    let (status, body) = system2(&host, question(false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["agent"]["steps"].as_array().unwrap().len(), 3);
    assert_eq!(model_calls(&host).last().unwrap()["tool_choice"], "none");
    assert!(answer["message"]["content"].as_str().unwrap().starts_with("From the tools"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_run_stopped_before_any_answer_still_answers_200_and_says_why() {
    let host =
        agent_host().with_var("AGENT_MAX_STEPS", "1").with_upstream(|req| async move { upstream(req, 1, false) });
    let (status, body) = system2(&host, question(false)).await;
    // One step: it must answer at once (tool_choice none), so the run ends with text.
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(model_calls(&host)[0]["tool_choice"], "none");
    assert_eq!(answer["agent"]["steps"].as_array().unwrap().len(), 1);

    let host =
        agent_host().with_var("AGENT_MAX_TOKENS", "1").with_upstream(|req| async move { upstream(req, 1, false) });
    let (status, body) = system2(&host, question(false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["finish_reason"], "limit");
    assert_eq!(answer["agent"]["stopped"]["limit"], "tokens");
    assert!(answer["message"]["content"].as_str().unwrap().starts_with("The agent stopped"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_shows_each_step_then_the_answer() {
    let host = agent_host().with_upstream(|req| async move { upstream(req, 1, false) });
    let (status, body) = system2(&host, question(true)).await;
    assert_eq!(status, 200, "{body}");
    let events: Vec<(String, Value)> = body
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let event = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap().to_string();
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (event, serde_json::from_str(data).unwrap())
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"start"));
    assert_eq!(events[0].1["tools"], json!(["web_search"]));
    let first_delta = names.iter().position(|n| *n == "delta").unwrap();
    assert_eq!(&names[1..3], ["step", "step"], "{names:?}");
    assert!(first_delta > 2);
    assert_eq!(names[names.len() - 2..], ["usage", "done"]);
    // Platform tools' calls are the agent's business: no `tool_call` events reach the client.
    assert!(!names.contains(&"tool_call"), "{names:?}");
    let streamed: String =
        events.iter().filter(|(e, _)| e == "delta").map(|(_, d)| d["text"].as_str().unwrap()).collect();
    assert!(streamed.contains("[1] On Why are there tides? 0"), "{streamed}");
    let done = &events.last().unwrap().1;
    assert_eq!(done["citations"][0]["index"], 1);
    assert!(done.get("message").is_none());
}

#[tokio::test(start_paused = true)]
async fn without_configured_tools_it_is_one_strong_call_and_the_callers_own_tools_skip_the_agent() {
    // No tool's upstream configured: the loop is one call on the strong model, offering none.
    let host = with_siblings(test_host())
        .with_var("PROVIDER_ORDER", "openai")
        .with_upstream(|req| async move { upstream(req, 1, false) });
    let (status, body) = system2(&host, question(false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["agent"]["steps"].as_array().unwrap().len(), 1);
    assert_eq!(model_calls(&host)[0].get("tools"), None);
    assert_eq!(model_calls(&host)[0]["model"], "gpt-4.1");

    // The caller's own tools: their calls go back to the caller.
    let host = agent_host().with_upstream(|req| async move { upstream(req, 1, false) });
    let mut body = question(false);
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]);
    let (status, text) = system2(&host, body).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["finish_reason"], "tool_calls");
    assert!(answer.get("agent").is_none());
    assert_eq!(model_calls(&host)[0]["tools"][0]["function"]["name"], "lookup");
}

#[tokio::test(start_paused = true)]
async fn the_model_runs_code_in_the_sandbox_and_bad_arguments_come_back_as_results() {
    // The model asks for two runs: a good one and one in a language the sandbox lacks.
    let host = with_siblings(test_host()).with_var("PROVIDER_ORDER", "openai").with_var("SANDBOX_URL", "http://sandbox.test").with_upstream(|req| async move {
        let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        if req.uri().host() == Some("sandbox.test") {
            assert_eq!(req.uri().path(), "/api/v2/execute");
            assert_eq!(body["files"][0]["content"], "print(6*7)");
            let run = json!({"language": "python", "version": "3.12.0", "run": {"stdout": "42\n", "stderr": "", "code": 0, "signal": null, "output": "42\n"}});
            return Ok(json_response(200, &run.to_string()));
        }
        if body["messages"].as_array().unwrap().last().unwrap()["role"] == json!("tool") {
            return upstream(req, 0, false);
        }
        let calls = json!([
            {"id": "a", "type": "function", "function": {"name": "run_code", "arguments": "{\"language\":\"python\",\"code\":\"print(6*7)\"}"}},
            {"id": "b", "type": "function", "function": {"name": "run_code", "arguments": "{\"language\":\"cobol\",\"code\":\"x\"}"}},
        ]);
        Ok(json_response(200, &completion(json!({"role": "assistant", "content": null, "tool_calls": calls}), "tool_calls")))
    });
    let (status, body) = system2(&host, question(false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let text = answer["message"]["content"].as_str().unwrap();
    assert!(text.contains(r#""stdout":"42\n""#), "{text}");
    assert!(
        text.contains("The tool failed: code answered 422: `language` must be `python` or `javascript`, got `cobol`"),
        "{text}"
    );
    let sandbox_calls = host.requests().iter().filter(|r| r.uri().host() == Some("sandbox.test")).count();
    assert_eq!(sandbox_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn the_run_is_priced_and_stops_at_its_cost_limit() {
    // The strong model is gpt-4.1 ($2 / $8 per million tokens); each call reports 10 + 5 tokens.
    let host = agent_host().with_upstream(|req| async move { upstream(req, 1, false) });
    let (_, body) = system2(&host, question(false)).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["usage"]["cost_usd"], 0.00012, "two calls of $0.00006: {body}");
    assert_eq!(answer["agent"]["steps"][0]["usage"]["cost_usd"], 0.00006);

    let host = agent_host()
        .with_var("AGENT_MAX_COST_USD", "0.00005")
        .with_upstream(|req| async move { upstream(req, 1, false) });
    let (status, body) = system2(&host, question(false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["agent"]["stopped"]["limit"], "cost", "{body}");
    assert_eq!(answer["agent"]["limits"]["max_cost_usd"], 0.00005);
    assert_eq!(model_calls(&host).len(), 1);

    // A model without a price: tokens are counted, the cost is left out, the limit cannot bite.
    let host = agent_host()
        .with_var("OPENAI_STRONG_MODEL", "house-model")
        .with_var("AGENT_MAX_COST_USD", "0.00005")
        .with_upstream(|req| async move { upstream(req, 1, false) });
    let (_, body) = system2(&host, question(false)).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer["usage"].get("cost_usd").is_none(), "{body}");
    assert!(answer["agent"].get("stopped").is_none(), "{body}");
}
