//! Tool calling and JSON answers in each vendor's format: a request offering tools gets a call
//! of the first (or the forced) tool with the user's text as its string argument; a request
//! ending in tool results gets text quoting them; a request asking for JSON gets a JSON object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use serde_json::{json, Value};

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"days": {"type": "integer"}, "city": {"type": "string"}}, "required": ["city"]})
}

fn openai_tools(extra: Value, stream: bool) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Weather in Paris"}],
        "tools": [
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
            {"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}
        ],
        "stream": stream,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn openai_calls_the_first_tool_or_the_forced_one_and_none_when_off() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_tools(json!({}), false)).await;
    let choice = &r.json()["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!((call["type"].as_str(), call["function"]["name"].as_str()), (Some("function"), Some("get_time")));
    assert_eq!(call["function"]["arguments"], "{}");

    let forced = json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}});
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_tools(forced, false)).await;
    let call = &r.json()["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"city":"Weather in Paris"}"#);

    let off = openai_tools(json!({"tool_choice": "none"}), false);
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &off).await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from openai (gpt-4o-mini). You said: Weather in Paris"
    );
}

#[tokio::test]
async fn openai_streams_a_call_as_an_id_and_name_then_argument_pieces() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let forced = json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "stream_options": {"include_usage": true}});
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &openai_tools(forced, true)).await;
    let chunks: Vec<Value> = r.events().iter().filter_map(SseEvent::json).collect();
    let calls: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"][0]["delta"].get("tool_calls")).collect();
    assert!(calls.len() > 2, "{chunks:?}");
    assert_eq!(calls[0][0]["function"]["name"], "get_weather");
    assert!(calls[0][0]["id"].as_str().unwrap().starts_with("call_"));
    let arguments: String = calls.iter().map(|c| c[0]["function"]["arguments"].as_str().unwrap()).collect();
    assert_eq!(arguments, r#"{"city":"Weather in Paris"}"#);
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert!(r.text().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn openai_quotes_the_tool_results_the_conversation_ends_with() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let mut body = openai_tools(json!({}), false);
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sunny"}
    ]);
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &body).await;
    let choice = &r.json()["choices"][0];
    assert_eq!(choice["message"]["content"], "Hello from openai (gpt-4o-mini). Tool results: 18 degrees | sunny");
    assert_eq!(choice["finish_reason"], "stop");
}

#[tokio::test]
async fn openai_answers_json_when_asked() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}});
    let r = post(sim.addr(), "/v1/chat/completions", &[OPENAI_KEY], &body).await;
    let text = r.json()["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer, json!({"provider": "openai", "model": "gpt-4o-mini", "echo": "hi"}));
}

fn anthropic_tools(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
        "messages": [{"role": "user", "content": "Weather in Paris"}],
        "tools": [{"name": "get_weather", "input_schema": weather_schema()}],
    })
}

#[tokio::test]
async fn anthropic_answers_with_a_tool_use_block_and_streams_its_input_in_pieces() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_tools(false)).await;
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!((block["type"].as_str(), block["name"].as_str()), (Some("tool_use"), Some("get_weather")));
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["input"], json!({"city": "Weather in Paris"}));

    let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &anthropic_tools(true)).await;
    let events: Vec<Value> = r.events().iter().filter_map(SseEvent::json).collect();
    let start = events.iter().find(|e| e["type"] == "content_block_start").unwrap();
    assert_eq!(start["content_block"]["type"], "tool_use");
    let input: String = events
        .iter()
        .filter(|e| e["delta"]["type"] == "input_json_delta")
        .map(|e| e["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(input, r#"{"city":"Weather in Paris"}"#);
    assert!(events.iter().any(|e| e["type"] == "message_delta" && e["delta"]["stop_reason"] == "tool_use"));
}

#[tokio::test]
async fn anthropic_quotes_tool_results_and_refuses_tool_blocks_without_tools() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let mut body = anthropic_tools(false);
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 degrees"}]}
    ]);
    let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &body).await;
    assert_eq!(r.json()["content"][0]["text"], "Hello from anthropic (claude-sonnet-4-5). Tool results: 18 degrees");

    body.as_object_mut().unwrap().remove("tools");
    let r = post(sim.addr(), "/v1/messages", &ANTHROPIC_HEADERS, &body).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("must define tools"), "{}", r.text());
}

fn gemini_tools() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": weather_schema()}]}],
    })
}

#[tokio::test]
async fn gemini_answers_with_a_function_call_part_whole_in_a_stream_too() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let r = post(sim.addr(), path, &[GEMINI_KEY], &gemini_tools()).await;
    let candidate = &r.json()["candidates"][0];
    assert_eq!(
        candidate["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": {"city": "Weather in Paris"}})
    );
    assert_eq!(candidate["finishReason"], "STOP");

    let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    let r = post(sim.addr(), path, &[GEMINI_KEY], &gemini_tools()).await;
    let chunks: Vec<Value> = r.events().iter().filter_map(SseEvent::json).collect();
    let calls: Vec<&Value> =
        chunks.iter().filter_map(|c| c["candidates"][0]["content"]["parts"][0].get("functionCall")).collect();
    assert_eq!(calls, vec![&json!({"name": "get_weather", "args": {"city": "Weather in Paris"}})]);
    assert_eq!(chunks.last().unwrap()["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn gemini_quotes_function_responses_and_answers_json_for_the_json_mime_type() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    let mut body = gemini_tools();
    body["contents"] = json!([
        {"role": "user", "parts": [{"text": "Weather in Paris"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "18 degrees"}}}]}
    ]);
    let r = post(sim.addr(), path, &[GEMINI_KEY], &body).await;
    assert_eq!(
        r.json()["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from gemini (gemini-2.5-flash). Tool results: 18 degrees"
    );

    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"responseMimeType": "application/json"}});
    let r = post(sim.addr(), path, &[GEMINI_KEY], &body).await;
    let text = r.json()["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"provider": "gemini", "model": "gemini-2.5-flash", "echo": "hi"})
    );
}
