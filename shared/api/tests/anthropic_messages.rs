//! `POST /v1/messages` in Anthropic's dialect, end to end through `serve("chat", ...)` on the
//! test host: the body Anthropic's clients send, the `message` and the typed event stream, and
//! errors in Anthropic's shape; the token as `x-api-key` too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{json_response, streamed_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};

const PATH: &str = "/v1/messages";

fn ask(extra: Value) -> Value {
    let mut body =
        json!({"model": "opencode/chat", "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

async fn messages(host: &TestHost, body: Value) -> (u16, http::HeaderMap, String) {
    serve(host, "chat", user_request(PATH, &body)).await
}

#[tokio::test(start_paused = true)]
async fn a_whole_answer_is_a_message() {
    let host = test_host().with_upstream(|_| async move { Ok(json_response(200, &openai_ok("Hello there"))) });
    let (status, headers, body) = messages(&host, ask(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert!(v["id"].as_str().unwrap().starts_with("msg_req_"));
    assert_eq!(v["model"], "gpt-x");
    assert_eq!(v["content"], json!([{"type": "text", "text": "Hello there"}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 3, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 2})
    );
    assert_eq!(v["opencode"]["provider"], "openai");
    assert_eq!(headers["x-provider"], "openai");
}

#[tokio::test(start_paused = true)]
async fn system_tools_and_tool_results_are_translated() {
    let host = test_host().with_upstream(|_| async move { Ok(json_response(200, &openai_ok("done"))) });
    let body = ask(json!({
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
        ],
        "tools": [{"name": "get_weather", "description": "now", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u"},
        "temperature": 0.5
    }));
    let (status, _, text) = messages(&host, body).await;
    assert_eq!(status, 200, "{text}");
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        sent["messages"][2]["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(sent["messages"][3], json!({"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}));
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], "required");
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(sent["max_completion_tokens"], 256);
}

#[tokio::test(start_paused = true)]
async fn a_call_in_the_answer_is_a_tool_use_block() {
    let answer = json!({"id":"c","object":"chat.completion","created":1,"model":"gpt-x",
        "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
            "finish_reason":"tool_calls"}],
        "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}});
    let host = test_host().with_upstream(move |_| {
        let answer = answer.to_string();
        async move { Ok(json_response(200, &answer)) }
    });
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let (status, _, body) = messages(&host, ask(json!({"tools": tools}))).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}])
    );
    assert_eq!(v["stop_reason"], "tool_use");
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_anthropics_typed_events() {
    let host =
        test_host().with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["Hel", "lo"]), 1, false)) });
    let (status, headers, body) = messages(&host, ask(json!({"stream": true}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let events = sse_frames(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(events.iter().all(|(name, data)| data["type"] == name.as_str()), "each event's data names its type");
    assert_eq!(events[0].1["message"]["role"], "assistant");
    assert_eq!(events[2].1["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(events[3].1["delta"], json!({"type": "text_delta", "text": "Hel"}));
    assert_eq!(events[6].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[6].1["usage"]["output_tokens"], 2);
}

#[tokio::test(start_paused = true)]
async fn streamed_calls_are_tool_use_blocks_with_input_json_deltas() {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-x",
                "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
        )
    };
    let chunks = vec![
        chunk(json!({"content": "Let me look."}), Value::Null),
        chunk(
            json!({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"now","arguments":""}}]}),
            Value::Null,
        ),
        chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}), Value::Null),
        chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}), Value::Null),
        chunk(
            json!({"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"now","arguments":"{}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        "data: [DONE]\n\n".into(),
    ];
    let host = test_host().with_upstream(move |_| {
        let chunks = chunks.clone();
        async move { Ok(streamed_response(chunks, 1, false)) }
    });
    let tools = json!([{"name": "now", "input_schema": {"type": "object"}}]);
    let (status, _, body) = messages(&host, ask(json!({"stream": true, "tools": tools}))).await;
    assert_eq!(status, 200, "{body}");
    let events = sse_frames(&body);
    let starts: Vec<&Value> = events.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| d).collect();
    assert_eq!(starts.len(), 3, "{body}");
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(starts[1]["content_block"], json!({"type": "tool_use", "id": "call_1", "name": "now", "input": {}}));
    assert_eq!(starts[2]["content_block"]["id"], "call_2");
    let json: String = events
        .iter()
        .filter(|(_, d)| d["index"] == 1 && d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(json, "{\"a\":1}");
    let stops = events.iter().filter(|(n, _)| n == "content_block_stop").count();
    assert_eq!(stops, 3, "every block is closed: {body}");
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test(start_paused = true)]
async fn a_failure_after_the_first_token_is_an_error_event() {
    let host = broken_stream_host();
    let (_, _, body) = messages(&host, ask(json!({"stream": true}))).await;
    let events = sse_frames(&body);
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error", "{body}");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
}

#[tokio::test(start_paused = true)]
async fn errors_are_anthropics_shape_and_the_key_header_authenticates() {
    let host = test_host().with_upstream(|_| async move { Ok(json_response(200, &openai_ok("ok"))) });
    for (body, field) in [
        (json!({"model": "opencode/chat", "messages": [{"role": "user", "content": "hi"}]}), "max_tokens"),
        (ask(json!({"top_k": 0})), "top_k"),
        (ask(json!({"mcp_servers": []})), "mcp_servers"),
        (ask(json!({"bogus": 1})), "bogus"),
        (ask(json!({"thinking": {"type": "enabled", "budget_tokens": 10}})), "thinking.budget_tokens"),
        (
            ask(json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]})),
            "messages.0.content.0",
        ),
    ] {
        let (status, _, text) = messages(&host, body.clone()).await;
        assert_eq!(status, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"].as_str().unwrap().contains(field), "{field}: {text}");
    }
    let (status, _, text) = messages(&host, ask(json!({"model": "gemini-9-ultra"}))).await;
    assert_eq!(status, 404, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["type"], "not_found_error");

    let unauthenticated = http::Request::post(PATH)
        .header("content-type", "application/json")
        .body(Body::from(ask(json!({})).to_string()))
        .unwrap();
    let (status, _, text) = serve(&host, "chat", unauthenticated).await;
    assert_eq!(status, 401);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["type"], "authentication_error");

    let token = auth::issue(SECRET, "u", "t", "member", EPOCH_MS, 3600).unwrap();
    let with_key = http::Request::post(PATH)
        .header("content-type", "application/json")
        .header("x-api-key", token)
        .header("anthropic-version", "2023-06-01")
        .body(Body::from(ask(json!({})).to_string()))
        .unwrap();
    let (status, _, text) = serve(&host, "chat", with_key).await;
    assert_eq!(status, 200, "{text}");
}

/// Extended thinking with tools, as Claude Code runs it: the answer's thinking block carries
/// Anthropic's signature (whole and as a `signature_delta`), and the conversation sent back
/// with it reaches Anthropic with the signed block first, which it requires.
#[tokio::test]
async fn signed_thinking_survives_a_tool_loop() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = sim_host(&sim, "anthropic");
    let tools = json!([{"name": "get_weather", "description": "now", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let question = json!({"role": "user", "content": "Weather in Oslo"});
    let ask = |messages: Value, stream: bool| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 1024},
               "tools": tools, "messages": messages, "stream": stream})
    };
    let (status, _, text) = serve(&host, "chat", user_request("/v1/messages", &ask(json!([question]), false))).await;
    assert_eq!(status, 200, "{text}");
    let first: Value = serde_json::from_str(&text).unwrap();
    let content = first["content"].as_array().unwrap().clone();
    assert_eq!(
        (content[0]["type"].as_str(), content[0]["signature"].as_str()),
        (Some("thinking"), Some("c2ltLXNpZ25hdHVyZQ==")),
        "{first}"
    );
    let call = content.iter().find(|b| b["type"] == "tool_use").unwrap().clone();
    let result =
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}]});
    let turn = json!({"role": "assistant", "content": content});
    let (status, _, text) =
        serve(&host, "chat", user_request("/v1/messages", &ask(json!([question, turn, result]), false))).await;
    assert_eq!(status, 200, "the signed block went back first: {text}");
    // Without it, Anthropic refuses the turn.
    let unsigned = json!({"role": "assistant", "content": [call]});
    let (status, _, text) =
        serve(&host, "chat", user_request("/v1/messages", &ask(json!([question, unsigned, result]), false))).await;
    assert_ne!(status, 200, "{text}");
    // Streamed, the signature closes the thinking block.
    let (status, _, text) = serve(&host, "chat", user_request("/v1/messages", &ask(json!([question]), true))).await;
    assert_eq!(status, 200, "{text}");
    let signature =
        sse_frames(&text).into_iter().find(|(_, data)| data["delta"]["type"] == "signature_delta").unwrap().1;
    assert_eq!(
        (signature["index"].as_u64(), signature["delta"]["signature"].as_str()),
        (Some(0), Some("c2ltLXNpZ25hdHVyZQ=="))
    );
}

/// `top_k` reaches Anthropic as it was sent.
#[tokio::test(start_paused = true)]
async fn top_k_reaches_anthropic() {
    let host = test_host()
        .with_var("PROVIDER_ORDER", "anthropic")
        .with_upstream(|_| async move { Ok(json_response(200, &anthropic_ok("ok"))) });
    let (status, _, text) = messages(&host, ask(json!({"top_k": 7}))).await;
    assert_eq!(status, 200, "{text}");
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["top_k"], 7, "{sent}");
}
