//! `POST /v1/responses` (stateless) in OpenAI's dialect, end to end through the gateway to chat:
//! input items, the `response` object, the typed stream with sequence numbers, and refusals of
//! what needs state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_testkit::{json_response, streamed_response, TestHost};
use serde_json::{json, Value};

const PATH: &str = "/v1/responses";

async fn responses(host: &TestHost, body: Value) -> (u16, String) {
    in_process(host, &["chat"]);
    let (status, _, text) = serve(host, "gateway", user_request(PATH, &body)).await;
    (status, text)
}

#[tokio::test(start_paused = true)]
async fn a_whole_answer_is_a_completed_response() {
    let host = test_host().with_upstream(|_| async move { Ok(json_response(200, &openai_ok("Hello there"))) });
    let (status, body) =
        responses(&host, json!({"model": "opencode/chat", "input": "hi", "instructions": "be brief"})).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["object"].as_str(), v["status"].as_str()), (Some("response"), Some("completed")));
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["output"][0]["content"][0], json!({"type": "output_text", "text": "Hello there", "annotations": []}));
    assert_eq!(v["usage"]["input_tokens"], 3);
    assert_eq!(v["usage"]["output_tokens"], 2);
    assert_eq!(v["usage"]["total_tokens"], 5);
    assert_eq!(v["opencode"]["provider"], "openai");
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "be brief"}));
}

#[tokio::test(start_paused = true)]
async fn function_calls_and_their_outputs_go_back_as_a_tool_turn() {
    let host = test_host().with_upstream(|_| async move { Ok(json_response(200, &openai_ok("It is sunny."))) });
    let body = json!({
        "model": "opencode/chat",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": "rain"}
        ],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
        "max_output_tokens": 64, "store": false, "reasoning": {"effort": "low"}
    });
    let (status, text) = responses(&host, body).await;
    assert_eq!(status, 200, "{text}");
    let sent: Value = serde_json::from_slice(host.requests()[0].body()).unwrap();
    assert_eq!(sent["messages"][1]["tool_calls"].as_array().unwrap().len(), 2, "{sent}");
    assert_eq!(sent["messages"][2], json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"}));
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["response_format"]["type"], "json_schema");
}

#[tokio::test(start_paused = true)]
async fn stored_state_and_built_in_tools_are_400s() {
    let host = test_host();
    for (body, param) in [
        (json!({"model": "opencode/chat", "input": "hi", "previous_response_id": "resp_1"}), "previous_response_id"),
        (json!({"model": "opencode/chat", "input": "hi", "tools": [{"type": "web_search"}]}), "tools[0].type"),
        (json!({"model": "opencode/chat", "input": "hi", "nonsense": 1}), "nonsense"),
        (json!({"model": "opencode/chat"}), "input"),
    ] {
        let (status, text) = responses(&host, body.clone()).await;
        assert_eq!(status, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["param"], param, "{text}");
    }
    let (_, text) =
        responses(&host, json!({"model": "opencode/chat", "input": "hi", "previous_response_id": "resp_1"})).await;
    assert!(text.contains("keeps no state"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_typed_events_with_sequence_numbers() {
    let host =
        test_host().with_upstream(|_| async move { Ok(streamed_response(openai_chunks(&["Hel", "lo"]), 1, false)) });
    let (status, body) = responses(&host, json!({"model": "opencode/chat", "input": "hi", "stream": true})).await;
    assert_eq!(status, 200, "{body}");
    let events = sse_frames(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (n, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], n);
    }
    assert_eq!(events[6].1["text"], "Hello");
    let done = &events[9].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["total_tokens"], 5);
}

#[tokio::test(start_paused = true)]
async fn a_streamed_call_is_a_function_call_item_and_a_break_is_response_failed() {
    let chunks = openai_call_chunks(None);
    let host = test_host().with_upstream(move |_| {
        let chunks = chunks.clone();
        async move { Ok(streamed_response(chunks, 1, false)) }
    });
    let tools = json!([{"type": "function", "name": "now", "parameters": {"type": "object"}}]);
    let (_, body) =
        responses(&host, json!({"model": "opencode/chat", "input": "now?", "stream": true, "tools": tools})).await;
    let events = sse_frames(&body);
    let added = events.iter().find(|(n, _)| n == "response.output_item.added").unwrap();
    assert_eq!(added.1["item"]["type"], "function_call");
    assert_eq!(added.1["item"]["call_id"], "call_1");
    let done = events.iter().find(|(n, _)| n == "response.function_call_arguments.done").unwrap();
    assert_eq!(done.1["arguments"], "{}");
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["output"][0]["name"], "now");

    let host = broken_stream_host();
    let (_, body) = responses(&host, json!({"model": "opencode/chat", "input": "hi", "stream": true})).await;
    let broken = sse_frames(&body);
    let (name, data) = broken.last().unwrap();
    assert_eq!(name, "response.failed", "{body}");
    assert_eq!(data["response"]["error"]["code"], "stream_interrupted");
    assert_eq!(data["response"]["output"][0]["content"][0]["text"], "Hello");
}
