//! Tools and `response_format` in Anthropic's Messages format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::super::fixtures::{collect, decode_all, tool_conversation};
use super::super::{ProviderConfig, ProviderError, ProviderKind};
use super::*;
use crate::model::{Message, ResponseFormat};

const TOOL_USE: &str = include_str!("../../../tests/fixtures/anthropic/message_tool_use.json");
const STREAM_TOOL_USE: &str = include_str!("../../../tests/fixtures/anthropic/stream_tool_use.sse");

fn config() -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Anthropic,
        name: "anthropic".into(),
        base_url: "https://api.anthropic.com".into(),
        api_key: Some("sk-ant-test".into()),
        model: "claude-sonnet-4-5".into(),
        price: None,
    }
}

fn body(request: &ChatRequest) -> Value {
    let wire = build_request(&config(), request, false).unwrap();
    serde_json::from_slice(wire.body()).unwrap()
}

#[test]
fn calls_become_tool_use_blocks_and_results_one_user_turn_of_tool_result_blocks() {
    let body = body(&tool_conversation());
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "{\"temp_c\": 18}"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "10:00"},
                {"type": "text", "text": "And tomorrow?"}
            ]}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([
            {"name": "get_weather", "description": "Current weather for a place", "strict": true,
             "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
}

#[test]
fn an_assistant_turn_with_text_keeps_it_before_its_calls() {
    let mut request = tool_conversation();
    request.messages[2].content = "Let me look.".into();
    let blocks = &body(&request)["messages"][1]["content"];
    assert_eq!(blocks[0], json!({"type": "text", "text": "Let me look."}));
    assert_eq!(blocks[1]["type"], "tool_use");
}

#[test]
fn every_tool_choice_has_its_anthropic_value_and_none_goes_without_tools() {
    let mut request = tool_conversation();
    let cases = [
        (ToolChoice::None, json!({"type": "none"})),
        (ToolChoice::Required, json!({"type": "any"})),
        (ToolChoice::Function("get_time".into()), json!({"type": "tool", "name": "get_time"})),
    ];
    for (choice, wire) in cases {
        request.tool_choice = Some(choice);
        assert_eq!(body(&request)["tool_choice"], wire);
    }
    let plain = ChatRequest {
        messages: vec![Message::user("hi")],
        tool_choice: Some(ToolChoice::Required),
        ..ChatRequest::default()
    };
    let plain = body(&plain);
    assert!(plain.get("tools").is_none() && plain.get("tool_choice").is_none(), "{plain}");
}

#[test]
fn arguments_that_are_not_a_json_object_are_refused_not_sent() {
    for bad in ["{\"location\":", "[1,2]", "\"Paris\""] {
        let mut request = tool_conversation();
        request.messages[2].tool_calls[0].arguments = bad.into();
        let err = build_request(&config(), &request, false).unwrap_err();
        assert!(matches!(&err, ProviderError::InvalidRequest(m) if m.contains("call_1")), "{bad}: {err:?}");
    }
}

#[test]
fn response_format_is_asked_for_in_the_system_prompt_with_the_schema() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let request = ChatRequest {
        messages: vec![Message::system("Be brief."), Message::user("Where is the Louvre?")],
        response_format: Some(ResponseFormat::JsonSchema {
            name: "place".into(),
            schema: schema.clone(),
            strict: true,
        }),
        ..ChatRequest::default()
    };
    let system = body(&request)["system"].as_str().unwrap().to_owned();
    assert!(system.starts_with("Be brief.\n\nAnswer with a single JSON object and nothing else"), "{system}");
    assert!(system.contains("named `place`") && system.contains(&schema.to_string()), "{system}");

    let request = ChatRequest {
        messages: vec![Message::user("hi")],
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    assert_eq!(
        body(&request)["system"],
        "Answer with a single JSON object and nothing else: no prose, no code fences."
    );
    let request = ChatRequest { response_format: Some(ResponseFormat::Text), ..request };
    assert!(body(&request).get("system").is_none());
}

#[test]
fn a_documented_tool_use_answer_gives_text_and_the_call_with_its_input_as_json_text() {
    let answer = parse_response(TOOL_USE.as_bytes()).unwrap();
    assert_eq!(answer.text, "I'll check the current weather in San Francisco for you.");
    assert_eq!(
        answer.tool_calls,
        vec![ToolCall::new(
            "toolu_01A09q90qw90lq917835lq9",
            "get_weather",
            r#"{"location":"San Francisco, CA","unit":"celsius"}"#
        )]
    );
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.usage, Usage { input_tokens: 384, output_tokens: 79, reasoning_tokens: 0, cached_tokens: 0 });
}

#[test]
fn a_streamed_tool_use_comes_as_pieces_numbered_by_call_not_by_block() {
    let events = decode_all(ProviderKind::Anthropic, STREAM_TOOL_USE).unwrap();
    let first = events.iter().find(|e| matches!(e, StreamEvent::ToolCall(_))).unwrap();
    assert_eq!(
        first,
        &StreamEvent::ToolCall(ToolCallPiece {
            index: 0,
            id: Some("toolu_01T1x1fJ34qAmk2tNTrN7Up6".into()),
            name: Some("get_weather".into()),
            arguments: String::new(),
            signature: None,
        })
    );
    let c = collect(&events);
    assert_eq!(c.text, "Okay, let's check the weather for San Francisco, CA:");
    assert_eq!(
        c.tool_calls,
        vec![
            ToolCall::new(
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "get_weather",
                r#"{"location": "San Francisco, CA", "unit": "fahrenheit"}"#
            ),
            // A call that streamed no input piece: `{}`, as a whole answer would give.
            ToolCall::new("toolu_01Hv8cKbHWXnbwmfUnKQxfyk", "get_time", "{}"),
        ]
    );
    assert_eq!(c.finishes, vec![FinishReason::ToolCalls]);
    assert_eq!(c.usage, Usage { input_tokens: 472, output_tokens: 89, reasoning_tokens: 0, cached_tokens: 0 });
    assert_eq!(c.done, 1);
}
