//! Tools and `response_format` in Gemini's `generateContent` format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::super::fixtures::{collect, decode_all, tool_conversation};
use super::super::{ProviderConfig, ProviderError, ProviderKind};
use super::*;
use crate::model::{Message, ResponseFormat};

const FUNCTION_CALL: &str = include_str!("../../../tests/fixtures/gemini/generate_content_function_call.json");
const STREAM_FUNCTION_CALL: &str = include_str!("../../../tests/fixtures/gemini/stream_function_call.sse");

fn config() -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Gemini,
        name: "gemini".into(),
        base_url: "https://generativelanguage.googleapis.com".into(),
        api_key: Some("AIza-test".into()),
        model: "gemini-2.5-flash".into(),
        price: None,
    }
}

fn body(request: &ChatRequest) -> Value {
    let wire = build_request(&config(), request, false).unwrap();
    serde_json::from_slice(wire.body()).unwrap()
}

#[test]
fn calls_become_function_call_parts_and_results_function_responses_named_after_their_call() {
    let body = body(&tool_conversation());
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"location": "Paris"}},
                 "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"id": "call_2", "name": "get_time", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"temp_c": 18}}},
                {"functionResponse": {"id": "call_2", "name": "get_time", "response": {"output": "10:00"}}},
                {"text": "And tomorrow?"}
            ]}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Current weather for a place",
             "parametersJsonSchema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}},
            {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {}}}
        ]}])
    );
    assert_eq!(body["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "Be brief."}]}));
}

#[test]
fn a_call_s_own_signature_goes_back_instead_of_the_placeholder() {
    let mut request = tool_conversation();
    request.messages[2].tool_calls[1].signature = Some("c2lnbmF0dXJl".into());
    let parts = &body(&request)["contents"][1]["parts"];
    assert!(parts[0].get("thoughtSignature").is_none(), "{parts}");
    assert_eq!(parts[1]["thoughtSignature"], "c2lnbmF0dXJl");
}

#[test]
fn a_result_answering_no_call_and_arguments_that_are_no_object_are_refused() {
    let mut request = tool_conversation();
    request.messages[3].tool_call_id = Some("call_9".into());
    let err = build_request(&config(), &request, false).unwrap_err();
    assert!(matches!(&err, ProviderError::InvalidRequest(m) if m.contains("call_9")), "{err:?}");

    let mut request = tool_conversation();
    request.messages[2].tool_calls[0].arguments = "not json".into();
    let err = build_request(&config(), &request, false).unwrap_err();
    assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err:?}");
}

#[test]
fn every_tool_choice_has_its_function_calling_mode() {
    let mut request = tool_conversation();
    let cases = [
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (ToolChoice::Function("get_time".into()), json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]})),
    ];
    for (choice, wire) in cases {
        request.tool_choice = Some(choice);
        assert_eq!(body(&request)["toolConfig"]["functionCallingConfig"], wire);
    }
}

#[test]
fn response_format_sets_the_json_mime_type_and_the_json_schema() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let with = |format| ChatRequest {
        messages: vec![Message::user("hi")],
        response_format: Some(format),
        ..ChatRequest::default()
    };
    let config =
        &body(&with(ResponseFormat::JsonSchema { name: "place".into(), schema: schema.clone(), strict: false }))
            ["generationConfig"];
    assert_eq!(config, &json!({"responseMimeType": "application/json", "responseJsonSchema": schema}));
    let config = &body(&with(ResponseFormat::JsonObject))["generationConfig"];
    assert_eq!(config, &json!({"responseMimeType": "application/json"}));
    assert!(body(&with(ResponseFormat::Text)).get("generationConfig").is_none());
}

#[test]
fn a_documented_function_call_answer_gives_calls_with_made_ids_and_the_signature_kept() {
    let answer = parse_response(FUNCTION_CALL.as_bytes()).unwrap();
    assert_eq!(
        answer.tool_calls,
        vec![
            ToolCall {
                signature: Some("CiQB0e2Kb7sL4xj9ZyW0bq3vOp1Yk5Jt8Rz2MfQ6vA==".into()),
                ..ToolCall::new(
                    "call_fV9BaNjgBqC5nvgPm5vqoQs_0",
                    "set_light_values",
                    r#"{"brightness":25,"color_temp":"warm"}"#
                )
            },
            ToolCall::new("call_fV9BaNjgBqC5nvgPm5vqoQs_1", "get_weather", r#"{"location":"Paris"}"#),
        ]
    );
    // Gemini says STOP after calls; the platform says what it means.
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.usage, Usage { input_tokens: 75, output_tokens: 20, reasoning_tokens: 0, cached_tokens: 0 });
}

#[test]
fn streamed_calls_arrive_whole_one_piece_each_with_gemini_s_id_and_signature_when_it_gives_them() {
    let events = decode_all(ProviderKind::Gemini, STREAM_FUNCTION_CALL).unwrap();
    let pieces: Vec<&StreamEvent> = events.iter().filter(|e| matches!(e, StreamEvent::ToolCall(_))).collect();
    assert_eq!(
        pieces,
        vec![
            &StreamEvent::ToolCall(ToolCallPiece {
                index: 0,
                id: Some("fc_7x2k".into()),
                name: Some("get_weather".into()),
                arguments: r#"{"location":"Paris"}"#.into(),
                // Only the first of parallel calls carries the signature.
                signature: Some("CiQB0e2Kb7sL4xj9ZyW0bq3vOp1Yk5Jt8Rz2MfQ6vA==".into()),
            }),
            &StreamEvent::ToolCall(ToolCallPiece {
                index: 1,
                id: Some("call_Qm9BaK2xC4mKnvgP1b2pqQs_1".into()),
                name: Some("get_time".into()),
                arguments: "{}".into(),
                signature: None,
            }),
        ]
    );
    let c = collect(&events);
    let signatures: Vec<Option<&str>> = c.tool_calls.iter().map(|call| call.signature.as_deref()).collect();
    assert_eq!(signatures, [Some("CiQB0e2Kb7sL4xj9ZyW0bq3vOp1Yk5Jt8Rz2MfQ6vA=="), None]);
    assert_eq!(c.finishes, vec![FinishReason::ToolCalls]);
    assert_eq!(c.usage, Usage { input_tokens: 40, output_tokens: 14, reasoning_tokens: 0, cached_tokens: 0 });
    assert_eq!(c.done, 1);
}
