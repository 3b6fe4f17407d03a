//! Tool calling and `response_format` on `POST /v1/chat`, end to end in process: the test host's
//! outbound HTTP goes to a real provider simulator, which calls the first tool it is offered
//! and quotes tool results back (see tests/provider-sim/src/tools.rs). Validation errors name
//! the field; answers carry `message.tool_calls`; streams send `tool_call` pieces; the cache
//! keys on the tools and replays calls. Real time: the simulator is real I/O.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{serve, sim_host, sse_frames, user_request};
use opencode_testkit::TestHost;
use provider_sim::SimHandle;
use serde_json::{json, Value};

fn host(sim: &SimHandle, order: &str) -> TestHost {
    sim_host(sim, order)
}

async fn send(host: &TestHost, path: &str, body: &Value) -> (u16, http::HeaderMap, String) {
    serve(host, path.trim_start_matches("/v1/"), user_request(path, body)).await
}

async fn answer(host: &TestHost, body: &Value) -> Value {
    let (status, _, text) = send(host, "/v1/chat", body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

fn ask_with_tools(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}], "tools": [weather_tool()]})
}

#[tokio::test]
async fn bad_tool_fields_are_refused_naming_the_field() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "openai");
    let user = json!([{"role": "user", "content": "hi"}]);
    let tool = |name: &str| json!({"type": "function", "function": {"name": name}});
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"messages": user, "tools": [{"type": "retrieval"}]}),
            "`tools[0].type` must be `function`, got `retrieval`",
        ),
        (json!({"messages": user, "tools": [tool("bad name")]}), "`tools[0].function.name` `bad name` must be 1 to 64"),
        (json!({"messages": user, "tools": [tool(&"n".repeat(65))]}), "`tools[0].function.name`"),
        (
            json!({"messages": user, "tools": [tool("a"), tool("a")]}),
            "`tools[1].function.name` `a` is already the name",
        ),
        (
            json!({"messages": user, "tools": [{"type": "function", "function": {"name": "a", "parameters": "x"}}]}),
            "`tools[0].function.parameters` must be a JSON Schema object",
        ),
        (
            json!({"messages": user, "tools": [{"type": "function", "function": {"name": "a", "strict": "yes"}}]}),
            "`tools[0].function.strict` must be a boolean",
        ),
        (
            json!({"messages": user, "tools": [{"type": "function", "function": {"name": "a", "cache": true}}]}),
            "`tools[0].function` has an unknown field `cache`",
        ),
        (
            json!({"messages": user, "tools": (0..129).map(|i| tool(&format!("t{i}"))).collect::<Vec<_>>()}),
            "more than 128 tools",
        ),
        (json!({"messages": user, "tools": "get_weather"}), "`tools` must be an array"),
        (
            json!({"messages": user, "tools": [tool("a")], "tool_choice": {"type": "function", "function": {"name": "b"}}}),
            "`tool_choice.function.name` `b` is not one of `tools`",
        ),
        (json!({"messages": user, "tool_choice": "auto"}), "`tool_choice` needs `tools`"),
        (json!({"messages": user, "tools": [tool("a")], "tool_choice": "always"}), "`tool_choice` must be"),
        (json!({"messages": user, "response_format": {"type": "xml"}}), "`response_format.type` `xml` is not one of"),
        (
            json!({"messages": user, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
            "`response_format.json_schema.schema` is required",
        ),
        (
            json!({"messages": user, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": []}}}),
            "`response_format.json_schema.schema` must be a JSON Schema object",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "18"}]}),
            "`messages[1].tool_call_id` is required",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_9", "content": "18"}]}),
            "`messages[1].tool_call_id` `call_9` answers no tool call",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi", "tool_calls": [call]}]}),
            "`messages[0].tool_calls` is only allowed on assistant messages",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [call]}]}),
            "`messages[1]` calls `get_weather` (id `call_1`) but no tool message answers it",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}, {"role": "tool", "tool_call_id": "c", "content": "x"}]}),
            "`messages[1].tool_calls[0].function.arguments` must be the JSON text of an object",
        ),
        (
            json!({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null}]}),
            "`messages[1].content` is required",
        ),
    ];
    for (body, needle) in cases {
        let (status, _, text) = send(&host, "/v1/chat", &body).await;
        assert_eq!(status, 422, "{body}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["error"]["code"], "validation_failed");
        assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{needle} not in {text}");
    }
    assert!(sim.requests().is_empty(), "a refused request reached a provider");
}

/// Call, run the tool, send the result, get the final answer, for one vendor.
async fn two_turns(provider: &str) {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, provider);
    let first = answer(&host, &ask_with_tools("Weather in Paris")).await;
    assert_eq!(first["provider"], provider);
    assert_eq!(first["finish_reason"], "tool_calls", "{first}");
    let calls = first["message"]["tool_calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 1, "{first}");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Weather in Paris"}));
    assert!(first["message"]["content"].is_null(), "{first}");
    assert!(
        first["usage"]["input_tokens"].as_u64().unwrap() > 0 && first["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{first}"
    );

    let id = calls[0]["id"].as_str().unwrap();
    let second = json!({
        "messages": [
            {"role": "user", "content": "Weather in Paris"},
            first["message"].clone(),
            {"role": "tool", "tool_call_id": id, "content": "18 degrees and sunny"}
        ],
        "tools": [weather_tool()]
    });
    let last = answer(&host, &second).await;
    assert_eq!(last["finish_reason"], "stop", "{last}");
    assert!(last["message"].get("tool_calls").is_none(), "{last}");
    let text = last["message"]["content"].as_str().unwrap();
    assert!(text.ends_with("Tool results: 18 degrees and sunny"), "{text}");
}

#[tokio::test]
async fn openai_call_then_result_then_answer() {
    two_turns("openai").await;
}

#[tokio::test]
async fn anthropic_call_then_result_then_answer() {
    two_turns("anthropic").await;
}

#[tokio::test]
async fn gemini_call_then_result_then_answer() {
    two_turns("gemini").await;
}

#[tokio::test]
async fn each_vendor_gets_the_tools_in_its_own_format() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let mut body = ask_with_tools("Weather in Paris");
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    for provider in ["openai", "anthropic", "gemini"] {
        answer(&host(&sim, provider), &body).await;
    }
    let wire: Vec<Value> = sim.requests().into_iter().map(|r| r["body"].clone()).collect();
    assert_eq!(wire[0]["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(wire[0]["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
    assert_eq!(wire[1]["tools"][0]["input_schema"]["required"], json!(["city"]));
    assert_eq!(wire[1]["tool_choice"], json!({"type": "tool", "name": "get_weather"}));
    assert_eq!(wire[2]["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["required"], json!(["city"]));
    assert_eq!(
        wire[2]["toolConfig"]["functionCallingConfig"],
        json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
    );
}

#[tokio::test]
async fn a_stream_sends_tool_call_pieces_and_done_carries_the_assembled_calls() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    for provider in ["openai", "anthropic", "gemini"] {
        let host = host(&sim, provider);
        let mut body = ask_with_tools("Weather in Paris");
        body["stream"] = json!(true);
        let (status, _, text) = send(&host, "/v1/chat", &body).await;
        assert_eq!(status, 200, "{text}");
        let events = sse_frames(&text);
        let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(names.first(), Some(&"start"), "{provider}: {names:?}");
        assert!(!names.contains(&"delta"), "{provider}: {names:?}");
        let pieces: Vec<&Value> = events.iter().filter(|(e, _)| e == "tool_call").map(|(_, d)| d).collect();
        assert!(!pieces.is_empty(), "{provider}: {names:?}");
        assert_eq!(pieces[0]["index"], 0);
        assert_eq!(pieces[0]["name"], "get_weather");
        let id = pieces[0]["id"].as_str().unwrap().to_owned();
        assert!(
            pieces.iter().skip(1).all(|p| p.get("name").is_none() && p.get("id").is_none()),
            "{provider}: {pieces:?}"
        );
        let arguments: String = pieces.iter().map(|p| p["arguments"].as_str().unwrap()).collect();
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).unwrap(),
            json!({"city": "Weather in Paris"}),
            "{provider}"
        );
        if provider != "gemini" {
            // OpenAI and Anthropic stream arguments in pieces; Gemini sends a call whole.
            assert!(pieces.len() > 2, "{provider}: {pieces:?}");
        }
        let (_, done) = events.last().unwrap();
        assert_eq!(events.last().unwrap().0, "done");
        assert_eq!(done["finish_reason"], "tool_calls", "{provider}: {done}");
        let mut call =
            json!({"id": id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}});
        if provider == "gemini" {
            // Gemini's thought signature streams with its call and stays on the assembled one.
            assert_eq!(pieces[0]["signature"], "sim-thought-signature/get_weather");
            call["signature"] = json!("sim-thought-signature/get_weather");
        }
        assert_eq!(done["tool_calls"], json!([call]), "{provider}");
    }
}

#[tokio::test]
async fn a_streamed_gemini_call_s_signature_goes_back_with_it() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "gemini");
    let mut body = ask_with_tools("Weather in Paris");
    body["stream"] = json!(true);
    let (status, _, text) = send(&host, "/v1/chat", &body).await;
    assert_eq!(status, 200, "{text}");
    let done = sse_frames(&text).pop().unwrap().1;
    let call = done["tool_calls"][0].clone();
    let second = json!({
        "messages": [
            {"role": "user", "content": "Weather in Paris"},
            {"role": "assistant", "content": null, "tool_calls": [call.clone()]},
            {"role": "tool", "tool_call_id": call["id"], "content": "18 degrees and sunny"}
        ],
        "tools": [weather_tool()],
        "stream": true
    });
    let (status, _, text) = send(&host, "/v1/chat", &second).await;
    assert_eq!(status, 200, "{text}");
    let wire = sim.requests().pop().unwrap()["body"].clone();
    let part = &wire["contents"][1]["parts"][0];
    assert_eq!(part["functionCall"]["name"], "get_weather", "{wire}");
    // Its own signature, not Google's placeholder for calls whose signature is unknown.
    assert_eq!(part["thoughtSignature"], "sim-thought-signature/get_weather", "{wire}");
}

#[tokio::test]
async fn the_cache_keys_on_the_tools_and_replays_calls_as_json_and_as_a_stream() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "openai");
    let body = ask_with_tools("Weather in Paris");
    let (_, headers, first) = send(&host, "/v1/chat", &body).await;
    assert_eq!(headers["x-cache"], "miss");
    // The cache is written after the response, in the background.
    host.run_background().await;
    let (_, headers, again) = send(&host, "/v1/chat", &body).await;
    assert_eq!(headers["x-cache"], "hit");
    let (first, again): (Value, Value) = (serde_json::from_str(&first).unwrap(), serde_json::from_str(&again).unwrap());
    assert_eq!(again["message"], first["message"]);
    assert_eq!(again["finish_reason"], "tool_calls");
    assert_eq!(sim.requests().len(), 1);

    // Same messages, other tools (or another tool_choice, or a response_format): another answer.
    let mut other = body.clone();
    other["tools"][0]["function"]["description"] = json!("Weather now");
    let (_, headers, _) = send(&host, "/v1/chat", &other).await;
    assert_eq!(headers["x-cache"], "miss");
    let mut other = body.clone();
    other["tool_choice"] = json!("required");
    let (_, headers, _) = send(&host, "/v1/chat", &other).await;
    assert_eq!(headers["x-cache"], "miss");
    let plain = json!({"messages": [{"role": "user", "content": "Weather in Paris"}], "response_format": {"type": "json_object"}});
    let (_, headers, _) = send(&host, "/v1/chat", &plain).await;
    assert_eq!(headers["x-cache"], "miss");
    assert_eq!(sim.requests().len(), 4);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let (_, headers, text) = send(&host, "/v1/chat", &streamed).await;
    assert_eq!(headers["x-cache"], "hit");
    let events = sse_frames(&text);
    let piece = &events.iter().find(|(e, _)| e == "tool_call").unwrap().1;
    let call = &first["message"]["tool_calls"][0];
    assert_eq!(
        piece,
        &json!({"index": 0, "id": call["id"], "name": "get_weather", "arguments": call["function"]["arguments"]})
    );
    assert_eq!(events.last().unwrap().1["tool_calls"], first["message"]["tool_calls"]);
    assert_eq!(sim.requests().len(), 4);
}

#[tokio::test]
async fn a_strict_tool_stays_strict_where_the_vendor_has_strict_mode() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let mut tool = weather_tool();
    tool["function"]["strict"] = json!(true);
    let body = json!({"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [tool]});
    for provider in ["openai", "anthropic", "gemini"] {
        let (status, _, text) = send(&host(&sim, provider), "/v1/chat", &body).await;
        assert_eq!(status, 200, "{provider}: {text}");
    }
    let wire: Vec<Value> = sim.requests().into_iter().map(|r| r["body"].clone()).collect();
    assert_eq!(wire[0]["tools"][0]["function"]["strict"], json!(true), "{}", wire[0]);
    assert_eq!(wire[1]["tools"][0]["strict"], json!(true), "{}", wire[1]);
    // Gemini has no strict mode: the schema goes alone.
    let declaration = &wire[2]["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "get_weather", "{}", wire[2]);
    assert!(!wire[2].to_string().contains("strict"), "{}", wire[2]);
}

#[tokio::test]
async fn json_answers_on_every_vendor_and_anthropic_is_asked_in_its_system_prompt() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let schema = json!({"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]});
    let body = json!({"messages": [{"role": "user", "content": "hello"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "echo", "schema": schema, "strict": true}}});
    for provider in ["openai", "anthropic", "gemini"] {
        let answer = answer(&host(&sim, provider), &body).await;
        let json: Value = serde_json::from_str(answer["message"]["content"].as_str().unwrap()).unwrap();
        assert_eq!(json["echo"], "hello", "{provider}: {answer}");
    }
    let wire: Vec<Value> = sim.requests().into_iter().map(|r| r["body"].clone()).collect();
    assert_eq!(wire[0]["response_format"]["json_schema"]["schema"], schema);
    assert!(wire[1]["system"].as_str().unwrap().contains(&schema.to_string()), "{}", wire[1]);
    assert_eq!(wire[2]["generationConfig"]["responseJsonSchema"], schema);
}

#[tokio::test]
async fn other_modes_refuse_tools_by_name_and_thinking_keeps_response_format() {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let host = host(&sim, "openai");
    for path in ["/v1/search", "/v1/knowledge", "/v1/code", "/v1/research", "/v1/thinking"] {
        let (status, _, text) = send(&host, path, &ask_with_tools("hi")).await;
        assert_eq!(status, 422, "{path}: {text}");
        assert!(text.contains("does not take `tools`; use /v1/chat"), "{path}: {text}");
    }
    let format = json!({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}});
    let (status, _, text) = send(&host, "/v1/search", &format).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("does not take `response_format`"), "{text}");
    let mut thinking = format.clone();
    thinking["model"] = json!("o3-mini");
    let (status, _, text) = send(&host, "/v1/thinking", &thinking).await;
    assert_eq!(status, 200, "{text}");
    let last = sim.requests().last().unwrap()["body"].clone();
    assert_eq!(last["response_format"], json!({"type": "json_object"}));
}
