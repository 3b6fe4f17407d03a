//! `POST /v1/chat/completions` in OpenAI's dialect, end to end through `serve("chat", ...)` on
//! the test host: the request fields OpenAI's clients send, the answer and the stream as the
//! SDKs read them, and errors in OpenAI's shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_testkit::{json_response, streamed_response, TestHost};
use serde_json::{json, Value};

const PATH: &str = "/v1/chat/completions";

async fn completions(host: &TestHost, body: Value) -> (u16, http::HeaderMap, String) {
    serve(host, "chat", user_request(PATH, &body)).await
}

fn ask(extra: Value) -> Value {
    let mut body = json!({"model": "opencode/chat", "messages": [{"role": "user", "content": "hi"}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// The `data:` lines of a stream, parsed (`[DONE]` as a string); comment lines skipped.
fn data_lines(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .map(|data| if data == "[DONE]" { json!("[DONE]") } else { serde_json::from_str(data).unwrap() })
        .collect()
}

fn openai_upstream() -> TestHost {
    test_host().with_upstream(|_| async move { Ok(json_response(200, &openai_ok("Hello there"))) })
}

#[tokio::test(start_paused = true)]
async fn a_whole_answer_is_a_chat_completion() {
    let host = openai_upstream();
    let (status, headers, body) = completions(&host, ask(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-req_"));
    assert_eq!(v["created"], opencode_testkit::EPOCH_MS / 1000);
    assert_eq!(v["model"], "gpt-x");
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "logprobs": null, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hello there", "refusal": null, "annotations": []}}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
            "completion_tokens_details": {"reasoning_tokens": 0}, "prompt_tokens_details": {"cached_tokens": 0}})
    );
    assert_eq!(v["opencode"]["provider"], "openai");
    assert_eq!(v["opencode"]["attempts"], 1);
    assert!(v["opencode"].get("message").is_none());
    assert_eq!(headers["x-provider"], "openai");
}

#[tokio::test(start_paused = true)]
async fn openai_only_fields_reach_the_provider_translated() {
    let host = openai_upstream();
    let body = ask(json!({
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "name": "ann", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            // An answer's message sent back as the SDKs return it.
            {"role": "assistant", "content": "Hi", "refusal": null, "annotations": [], "audio": null, "function_call": null},
            {"role": "user", "content": "three"}
        ],
        "max_completion_tokens": 50, "n": 1, "user": "u-1", "metadata": {"k": "v"}, "store": false,
        "parallel_tool_calls": true, "logprobs": false, "modalities": ["text"], "reasoning_effort": "high",
        "frequency_penalty": 0.5, "presence_penalty": 0.25, "logit_bias": {"50256": -100}
    }));
    let (status, _, text) = completions(&host, body).await;
    assert_eq!(status, 200, "{text}");
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(sent["messages"][1]["content"], "one\ntwo");
    assert_eq!(sent["messages"][2], json!({"role": "assistant", "content": "Hi"}));
    assert!(sent.get("user").is_none() && sent.get("metadata").is_none() && sent.get("store").is_none());
    assert_eq!(sent["reasoning_effort"], "high", "{sent}");
    assert_eq!((sent["frequency_penalty"].as_f64(), sent["presence_penalty"].as_f64()), (Some(0.5), Some(0.25)));
    assert_eq!(sent["logit_bias"], json!({"50256": -100.0}));
}

#[tokio::test(start_paused = true)]
async fn bad_requests_are_400s_in_openai_shape_naming_the_parameter() {
    let host = openai_upstream();
    for (extra, param, needle) in [
        (json!({"n": 2}), "n", "`n` must be 1"),
        (json!({"bogus": 1}), "bogus", "Unrecognized request argument supplied: bogus"),
        (json!({"logprobs": true}), "logprobs", "not supported"),
        (json!({"frequency_penalty": 5}), "frequency_penalty", "between -2 and 2"),
        (json!({"logit_bias": {"x": 1}}), "logit_bias", "token ids"),
        (json!({"stream_options": {"include_usage": true}}), "stream_options", "only allowed when `stream` is true"),
        (json!({"max_tokens": 10, "max_completion_tokens": 20}), "max_tokens", "disagree"),
        (json!({"reasoning_effort": "extreme"}), "reasoning_effort", "must be one of"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
            "messages[0].content[0]",
            "only `text`",
        ),
    ] {
        let (status, headers, body) = completions(&host, ask(extra.clone())).await;
        assert_eq!(status, 400, "{extra}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["param"], param, "{extra}: {body}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{extra}: {body}");
        assert!(headers.contains_key("x-request-id"));
    }
    // A check shared with the platform's dialect: a 400 there too (the platform says 422).
    let (status, _, body) = completions(&host, ask(json!({"temperature": 3}))).await;
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "validation_failed");
    assert_eq!(v["error"]["param"], Value::Null);
    let (status, _, body) = completions(&host, json!({"messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!((status, body.contains("`model` is required")), (400, true), "{body}");
    assert!(host.requests().is_empty(), "no bad request may reach a provider");
}

#[tokio::test(start_paused = true)]
async fn auth_and_model_errors_keep_openai_statuses() {
    let host = openai_upstream();
    let request = http::Request::post(PATH)
        .header("content-type", "application/json")
        .body(opencode_runtime::Body::from(ask(json!({})).to_string()))
        .unwrap();
    let (status, headers, body) = serve(&host, "chat", request).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "missing_token");
    assert_eq!(v["error"]["type"], "authentication_error");

    let (status, _, body) = completions(&host, ask(json!({"model": "gemini-9-ultra"}))).await;
    assert_eq!(status, 404, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["error"]["code"].as_str(), v["error"]["param"].as_str()), (Some("model_not_found"), Some("model")));

    // No provider configured: no retry can help.
    let host = TestHost::new().with_var("JWT_SECRET", SECRET);
    let (status, headers, body) = completions(&host, ask(json!({}))).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["x-should-retry"], "false");
}

#[tokio::test(start_paused = true)]
async fn a_stream_opens_with_the_role_and_ends_with_done() {
    let host =
        test_host().with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["Hel", "lo"]), 1, false)) });
    for (options, with_usage) in
        [(json!(null), false), (json!({"include_usage": false}), false), (json!({"include_usage": true}), true)]
    {
        let mut body = ask(json!({"stream": true}));
        if !options.is_null() {
            body["stream_options"] = options.clone();
        }
        let (status, headers, text) = completions(&host, body).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(headers["content-type"], "text/event-stream");
        let lines = data_lines(&text);
        assert_eq!(
            lines[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "", "refusal": null}),
            "{text}"
        );
        assert!(lines.iter().take(lines.len() - 1).all(|l| l["object"] == "chat.completion.chunk"));
        let content: String = lines.iter().filter_map(|l| l["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(content, "Hello");
        let finish = lines.iter().position(|l| l["choices"][0]["finish_reason"] == "stop").expect(&text);
        assert_eq!(lines[finish]["opencode"]["provider"], "openai");
        assert_eq!(lines.last().unwrap(), "[DONE]");
        let usage: Vec<&Value> = lines.iter().filter(|l| l["usage"].is_object()).collect();
        if with_usage {
            assert_eq!(usage.len(), 1, "{text}");
            assert_eq!(usage[0]["choices"], json!([]));
            assert_eq!(usage[0]["usage"]["total_tokens"], 5);
            assert_eq!(lines[lines.len() - 2], *usage[0], "the usage chunk comes last");
        } else {
            assert!(usage.is_empty(), "usage only when asked: {text}");
            assert!(lines.iter().all(|l| l.get("usage").is_none()), "{text}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn streamed_tool_calls_carry_their_index_and_the_first_piece_its_id() {
    let chunks = openai_call_chunks(None);
    let host = test_host().with_upstream(move |_| {
        let chunks = chunks.clone();
        async move { Ok(streamed_response(chunks, 1, false)) }
    });
    let tools = json!([{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}]);
    let (status, _, text) = completions(&host, ask(json!({"stream": true, "tools": tools}))).await;
    assert_eq!(status, 200, "{text}");
    let lines = data_lines(&text);
    let calls: Vec<&Value> = lines.iter().filter_map(|l| l["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert_eq!(
        calls[0],
        &json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}})
    );
    assert_eq!(calls[1], &json!({"index": 0, "function": {"arguments": "{}"}}));
    assert!(text.contains(r#""finish_reason":"tool_calls""#), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_the_first_token_ends_the_stream_with_an_error_line() {
    let host = broken_stream_host();
    let (status, _, text) = completions(&host, ask(json!({"stream": true}))).await;
    assert_eq!(status, 200);
    let lines = data_lines(&text);
    let last = lines.last().unwrap();
    assert_eq!(last["error"]["code"], "stream_interrupted", "{text}");
    assert!(!text.contains("[DONE]"), "a broken stream must not end as a complete one: {text}");
}

#[tokio::test(start_paused = true)]
async fn the_platform_chat_path_is_unchanged_and_other_chat_paths_are_404s() {
    let host = openai_upstream();
    let (status, _, body) = send(&host, hello()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["message"]["content"], "Hello there");
    let (status, _, body) = serve(&host, "chat", user_request("/v1/chat/other", &hello())).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_long_silence_is_filled_with_keepalive_comments() {
    // 20 s between the upstream's chunks: longer than the 15 s a client or proxy may wait.
    let host = test_host()
        .with_var("ATTEMPT_TIMEOUT_MS", "60000")
        .with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["Hel", "lo"]), 20_000, false)) });
    let (status, _, text) = completions(&host, ask(json!({"stream": true}))).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\n\n: keepalive\n\n") || text.starts_with(": keepalive\n\n"), "{text}");
    let lines = data_lines(&text);
    assert_eq!(lines.last().unwrap(), "[DONE]");
    let content: String = lines.iter().filter_map(|l| l["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "Hello", "the comments leave the stream whole");
    // The platform's own stream is unchanged.
    let (_, _, own) = send(&host, json!({"messages": [{"role": "user", "content": "hi"}], "stream": true})).await;
    assert!(!own.contains("keepalive"), "{own}");
}

#[tokio::test(start_paused = true)]
async fn cached_prompt_tokens_survive_into_every_dialects_usage() {
    let answer = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32, "prompt_tokens_details": {"cached_tokens": 24}}});
    let host = test_host().with_upstream(move |_| {
        let answer = answer.to_string();
        async move { Ok(json_response(200, &answer)) }
    });
    in_process(&host, &["chat"]);
    let (_, _, body) = completions(&host, ask(json!({}))).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 24, "{body}");
    assert_eq!(v["usage"]["prompt_tokens"], 30);
    let body = json!({"model": "opencode/chat", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    let (_, _, text) = serve(&host, "chat", user_request("/v1/messages", &body)).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 24, "output_tokens": 2}),
        "{text}"
    );
    let (_, _, text) =
        serve(&host, "gateway", user_request("/v1/responses", &json!({"model": "opencode/chat", "input": "hi"}))).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 24, "{text}");
}

/// Every provider rate limited: a 429 in each dialect's shape with the shortest `Retry-After`
/// an upstream asked for, which the SDKs wait out; a 503 from every provider is a 503.
#[tokio::test(start_paused = true)]
async fn every_provider_rate_limited_is_a_429_with_the_shortest_retry_after() {
    let host = test_host().with_upstream(|req| async move {
        let wait = if is_openai(&req) { "7" } else { "3" };
        let mut response = json_response(429, r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#);
        response.headers_mut().insert("retry-after", http::HeaderValue::from_static(wait));
        Ok(response)
    });
    in_process(&host, &["chat"]);
    let (status, headers, body) = completions(&host, ask(json!({}))).await;
    assert_eq!((status, headers.get("retry-after").map(|v| v.to_str().unwrap())), (429, Some("3")), "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["error"]["type"].as_str(), v["error"]["code"].as_str()),
        (Some("rate_limit_error"), Some("rate_limit_exceeded"))
    );
    assert!(headers.get("x-should-retry").is_none(), "waiting helps");
    let body = json!({"model": "opencode/chat", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, text) = serve(&host, "chat", user_request("/v1/messages", &body)).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, v["error"]["type"].as_str()), (429, Some("rate_limit_error")), "{text}");
    assert_eq!(headers["retry-after"], "3");
    let (status, headers, text) =
        serve(&host, "gateway", user_request("/api/v1/chat", &json!({"query": "hi", "mode": "chat"}))).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (429, "3"), "{text}");
    assert!(text.contains("RATE_LIMITED"), "{text}");

    let overloaded =
        test_host().with_upstream(|_| async move { Ok(json_response(503, r#"{"error":{"message":"busy"}}"#)) });
    let (status, headers, body) = completions(&overloaded, ask(json!({}))).await;
    assert_eq!((status, headers.get("retry-after").map(|v| v.to_str().unwrap())), (503, Some("1")), "{body}");
}
