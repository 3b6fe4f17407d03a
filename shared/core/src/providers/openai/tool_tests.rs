//! Tools and `response_format` in OpenAI's chat-completions format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::super::fixtures::{collect, decode_all, tool_conversation};
use super::super::{ProviderConfig, ProviderKind};
use super::*;

const TOOL_CALLS: &str = include_str!("../../../tests/fixtures/openai/chat_completion_tool_calls.json");
const STREAM_TOOL_CALLS: &str = include_str!("../../../tests/fixtures/openai/stream_tool_calls.sse");

fn config(kind: ProviderKind) -> ProviderConfig {
    ProviderConfig {
        kind,
        name: "openai".into(),
        base_url: "https://api.openai.com/v1".into(),
        api_key: Some("sk-test".into()),
        model: "gpt-4o-mini".into(),
        price: None,
    }
}

fn body(request: &ChatRequest) -> Value {
    let wire = build_request(&config(ProviderKind::OpenAi), request, false).unwrap();
    serde_json::from_slice(wire.body()).unwrap()
}

#[test]
fn tools_calls_and_results_go_out_in_openai_shapes() {
    let body = body(&tool_conversation());
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "content": "{\"temp_c\": 18}", "tool_call_id": "call_1"},
            {"role": "tool", "content": "10:00", "tool_call_id": "call_2"},
            {"role": "user", "content": "And tomorrow?"}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a place",
             "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
             "strict": true}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
        ])
    );
    assert_eq!(body["tool_choice"], "auto");
    assert!(body.get("response_format").is_none());
}

#[test]
fn every_tool_choice_and_response_format_has_its_openai_value() {
    let mut request = tool_conversation();
    let cases = [
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (ToolChoice::Function("get_time".into()), json!({"type": "function", "function": {"name": "get_time"}})),
    ];
    for (choice, wire) in cases {
        request.tool_choice = Some(choice);
        assert_eq!(body(&request)["tool_choice"], wire);
    }
    let formats = [
        (ResponseFormat::Text, json!({"type": "text"})),
        (ResponseFormat::JsonObject, json!({"type": "json_object"})),
        (
            ResponseFormat::JsonSchema { name: "weather".into(), schema: json!({"type": "object"}), strict: true },
            json!({"type": "json_schema", "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": true}}),
        ),
    ];
    for (format, wire) in formats {
        let request = ChatRequest {
            messages: vec![Message::user("hi")],
            response_format: Some(format),
            ..ChatRequest::default()
        };
        assert_eq!(body(&request)["response_format"], wire);
        assert!(body(&request).get("tools").is_none());
    }
}

#[test]
fn a_documented_tool_call_answer_gives_the_calls_in_order() {
    let answer = parse_response(TOOL_CALLS.as_bytes()).unwrap();
    assert_eq!(
        answer.tool_calls,
        vec![
            ToolCall::new("call_abc123", "get_current_weather", "{\n\"location\": \"Boston, MA\"\n}"),
            ToolCall::new("call_def456", "get_current_time", "{\"timezone\": \"America/New_York\"}"),
        ]
    );
    assert_eq!(answer.text, "");
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.usage, Usage { input_tokens: 82, output_tokens: 17, reasoning_tokens: 0, cached_tokens: 0 });
}

#[test]
fn a_streamed_call_comes_in_pieces_with_id_and_name_first() {
    let events = decode_all(ProviderKind::OpenAi, STREAM_TOOL_CALLS).unwrap();
    let pieces: Vec<&StreamEvent> = events.iter().filter(|e| matches!(e, StreamEvent::ToolCall(_))).collect();
    assert_eq!(pieces.len(), 8);
    assert_eq!(
        pieces[0],
        &StreamEvent::ToolCall(ToolCallPiece {
            index: 0,
            id: Some("call_DdmO9pD3xa9XTPNJ32zg2hcA".into()),
            name: Some("get_weather".into()),
            arguments: String::new(),
            signature: None,
        })
    );
    assert_eq!(
        pieces[1],
        &StreamEvent::ToolCall(ToolCallPiece {
            index: 0,
            id: None,
            name: None,
            arguments: "{\"".into(),
            signature: None
        })
    );
    let c = collect(&events);
    assert_eq!(
        c.tool_calls,
        vec![
            ToolCall::new("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", "{\"location\":\"Paris\"}"),
            ToolCall::new("call_Zq8VRx4uxbDQoTGGWFzJmnQO", "get_time", "{}"),
        ]
    );
    assert_eq!(c.text, "");
    assert_eq!(c.finishes, vec![FinishReason::ToolCalls]);
    assert_eq!(c.usage, Usage { input_tokens: 81, output_tokens: 31, reasoning_tokens: 0, cached_tokens: 0 });
    assert_eq!(c.done, 1);
}

#[test]
fn compatible_servers_with_object_arguments_no_id_or_a_stop_finish_still_give_calls() {
    // Ollama's compatible API: arguments as an object, no id, `finish_reason: stop`.
    let body = json!({
        "model": "llama3.2",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"location": "Paris"}}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3}
    });
    let answer = parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(answer.tool_calls, vec![ToolCall::new("call_0", "get_weather", "{\"location\":\"Paris\"}")]);
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
}

#[test]
fn compat_sends_the_same_tool_shapes() {
    let wire = build_request(&config(ProviderKind::Compat), &tool_conversation(), true).unwrap();
    let body: Value = serde_json::from_slice(wire.body()).unwrap();
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["messages"][3]["tool_call_id"], "call_1");
}
