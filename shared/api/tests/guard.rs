//! Guard hooks (`GUARD_URL`): screened before any provider call in every mode and dialect and
//! on the agent's own model calls; deny (403 `blocked_by_guard` in the client's dialect),
//! modify, and a slow guard with `GUARD_FAIL` closed (503) and open (served).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{hanging_response, json_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};

type Seen = Rc<RefCell<Vec<Value>>>;

/// A host whose guard (`http://guard/screen`) answers with `policy(body)` (`None`: hangs), and
/// whose model (and Tavily) answer: the model calls `web_search` once when tools are offered,
/// then answers with what the last message said. Returns what the guard and the model saw.
fn guarded_host(policy: fn(&Value) -> Option<Value>, extra: &[(&str, &str)]) -> (TestHost, Seen, Seen) {
    let (guarded, modelled): (Seen, Seen) = Default::default();
    let (g, m) = (Rc::clone(&guarded), Rc::clone(&modelled));
    let mut host = test_host().with_upstream(move |req: http::Request<Bytes>| {
        let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let host = req.uri().host().unwrap_or_default().to_owned();
        let answer = match host.as_str() {
            "guard" => {
                g.borrow_mut().push(body.clone());
                policy(&body).map(|verdict| json_response(200, &verdict.to_string()))
            }
            "tavily.test" => Some(json_response(200, &json!({"query": "q", "results": [{"title": "T", "url": "https://t.example/1", "content": "the moon pulls the sea", "score": 0.9}]}).to_string())),
            _ => {
                m.borrow_mut().push(body.clone());
                let last = body["messages"].as_array().unwrap().last().unwrap().clone();
                let message = if body.get("tools").is_some() && last["role"] != "tool" {
                    json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "web_search", "arguments": "{\"query\":\"tides\"}"}}]})
                } else {
                    json!({"role": "assistant", "content": format!("you said: {}", last["content"].as_str().unwrap_or_default())})
                };
                let finish = if message["tool_calls"].is_null() { "stop" } else { "tool_calls" };
                Some(json_response(200, &json!({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-x", "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}).to_string()))
            }
        };
        async move { Ok(answer.unwrap_or_else(hanging_response)) }
    });
    host = host
        .with_var("GUARD_URL", "http://guard/screen")
        .with_var("PROVIDER_ORDER", "openai")
        .with_var("TAVILY_API_KEY", "tvly")
        .with_var("TAVILY_BASE_URL", "http://tavily.test");
    for (name, value) in extra {
        host = host.with_var(name, value);
    }
    in_process(&host, &["agent", "search", "knowledge", "code", "chat"]);
    (host, guarded, modelled)
}

fn deny_secrets(body: &Value) -> Option<Value> {
    Some(if body.to_string().contains("secret") {
        json!({"action": "deny", "reason": "no secrets here"})
    } else {
        json!({"action": "allow"})
    })
}

async fn post(host: &TestHost, function: &str, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let token = auth::issue(SECRET, "u", "acme", "member", EPOCH_MS, 3600).unwrap();
    let mut request = http::Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (status, _, text) = serve(host, function, request.body(Body::from(body.to_string())).unwrap()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn ask(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

#[tokio::test(start_paused = true)]
async fn a_denial_comes_before_any_provider_call_in_every_dialect() {
    let (host, guarded, modelled) = guarded_host(deny_secrets, &[]);
    let (status, body) = post(&host, "chat", "/v1/chat", ask("tell me the secret"), &[]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("blocked_by_guard")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no secrets here"));
    let openai = json!({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "the secret"}]});
    let (status, body) = post(&host, "gateway", "/v1/chat/completions", openai, &[]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("blocked_by_guard")), "OpenAI's shape: {body}");
    let anthropic =
        json!({"model": "gpt-4.1-mini", "max_tokens": 9, "messages": [{"role": "user", "content": "the secret"}]});
    let (status, body) = post(&host, "gateway", "/v1/messages", anthropic, &[]).await;
    assert_eq!(
        (status, body["type"].as_str(), body["error"]["type"].as_str()),
        (403, Some("error"), Some("permission_error")),
        "{body}"
    );
    let (status, _) = post(&host, "search", "/v1/search", ask("the secret news"), &[]).await;
    assert_eq!(status, 403, "before the web search too");
    assert!(modelled.borrow().is_empty(), "no provider saw a request");
    let first = guarded.borrow()[0].clone();
    assert_eq!((first["mode"].as_str(), first["tenant"].as_str()), (Some("chat"), Some("acme")));
    assert_eq!(first["model"], "gpt-4.1-mini");
    assert_eq!(first["messages"], json!([{"role": "user", "content": "tell me the secret"}]));

    let (status, body) = post(&host, "chat", "/v1/chat", ask("hello"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(guarded.borrow().len(), 5, "the allowed conversation was screened once, not again by the executor");
}

#[tokio::test(start_paused = true)]
async fn a_modification_is_what_the_model_sees() {
    fn redact(body: &Value) -> Option<Value> {
        let text = body["messages"][0]["content"].as_str().unwrap().replace("4111-1111", "[card]");
        Some(json!({"action": "modify", "messages": [{"role": "user", "content": text}]}))
    }
    let (host, _, modelled) = guarded_host(redact, &[]);
    let (status, body) = post(&host, "chat", "/v1/chat", ask("my card is 4111-1111"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(modelled.borrow()[0]["messages"], json!([{"role": "user", "content": "my card is [card]"}]));
    assert_eq!(body["message"]["content"], "you said: my card is [card]");
}

#[tokio::test(start_paused = true)]
async fn the_agents_own_calls_are_screened() {
    fn no_tides(body: &Value) -> Option<Value> {
        let last = body["messages"].as_array().unwrap().last().unwrap();
        Some(if last["role"] == "tool" {
            json!({"action": "deny", "reason": "tool output refused"})
        } else {
            json!({"action": "allow"})
        })
    }
    let (host, guarded, modelled) = guarded_host(no_tides, &[]);
    let (status, body) =
        post(&host, "chat", "/v1/chat", ask("why are there tides?"), &[("x-opencode-tier", "system2")]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("blocked_by_guard")), "{body}");
    assert_eq!(modelled.borrow().len(), 1, "the first step ran, the one after the tool result did not");
    assert!(guarded.borrow().iter().any(|g| g["messages"].as_array().unwrap().last().unwrap()["role"] == "tool"));
}

#[tokio::test(start_paused = true)]
async fn a_slow_guard_fails_closed_or_open_as_configured() {
    let hang = |_: &Value| None;
    let (host, _, modelled) = guarded_host(hang, &[("GUARD_TIMEOUT_MS", "300")]);
    let (status, body) = post(&host, "chat", "/v1/chat", ask("hello"), &[]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("guard_unavailable")), "{body}");
    assert!(modelled.borrow().is_empty());
    let (host, _, modelled) = guarded_host(hang, &[("GUARD_TIMEOUT_MS", "300"), ("GUARD_FAIL", "open")]);
    let (status, body) = post(&host, "chat", "/v1/chat", ask("hello"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(modelled.borrow().len(), 1);
    let logged = host.logs();
    assert!(logged.iter().any(|l| l["msg"] == "guard failed" && l["error"] == "no answer within 300 ms"), "{logged:?}");
    // A guard that answers nonsense is a failing guard too.
    let (host, _, _) = guarded_host(|_| Some(json!({"verdict": "ok"})), &[]);
    let (status, _) = post(&host, "chat", "/v1/chat", ask("hello"), &[]).await;
    assert_eq!(status, 503);
    let (status, body) =
        post(&host.clone().with_var("GUARD_FAIL", "maybe"), "chat", "/v1/chat", ask("hello"), &[]).await;
    assert_eq!(status, 503);
    assert!(body["error"]["message"].as_str().unwrap().contains("GUARD_FAIL must be"), "{body}");
}
