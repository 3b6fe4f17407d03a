//! What every dialect shares: endpoint checks, the JSON request, secret headers, lenient
//! parsing of vendor bodies, and the model and token arithmetic the platform applies the same
//! way to every vendor.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::{join_url, ProviderConfig, ProviderError};
use crate::model::{ChatRequest, ResponseFormat, Role, ToolCall};

/// Answer tokens Anthropic gets when the request sets no limit (the vendor requires one).
pub(super) const DEFAULT_MAX_TOKENS: u32 = 1024;

/// `base` + `path` as an absolute `http(s)` URI. The URL is not echoed in the error: a base URL
/// can carry credentials (`https://user:pass@host`).
pub(crate) fn endpoint(base: &str, path: &str) -> Result<http::Uri, ProviderError> {
    let invalid = || ProviderError::Config("base url is not an absolute http(s) url".to_owned());
    if base.trim().is_empty() {
        return Err(invalid());
    }
    let uri: http::Uri = join_url(base, path).parse().map_err(|_| invalid())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(uri)
}

/// The model to ask for: the request's when it names one, else the configured one.
pub(super) fn model<'a>(config: &'a ProviderConfig, request: &'a ChatRequest) -> Result<&'a str, ProviderError> {
    let model = request.model.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or(config.model.as_str());
    if model.trim().is_empty() {
        return Err(ProviderError::Config(format!("provider {} has no model", config.name)));
    }
    Ok(model)
}

/// The configured key, if any (an empty string counts as none).
pub(super) fn api_key(config: &ProviderConfig) -> Option<&str> {
    config.api_key.as_deref().filter(|key| !key.is_empty())
}

/// The configured key, or a configuration error for vendors that always need one.
pub(super) fn required_key(config: &ProviderConfig) -> Result<&str, ProviderError> {
    api_key(config).ok_or_else(|| ProviderError::Config(format!("provider {} has no api key", config.name)))
}

/// A header value holding a secret: marked sensitive so `http`'s Debug output hides it, and
/// never quoted in the error.
pub(crate) fn secret(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ProviderError::Config("api key contains characters not allowed in a header".to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `POST uri` with a JSON body and the given extra headers.
pub(crate) fn post_json<T: Serialize>(
    uri: http::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: &T,
) -> Result<http::Request<Bytes>, ProviderError> {
    let body =
        serde_json::to_vec(body).map_err(|e| ProviderError::Config(format!("request body does not serialize: {e}")))?;
    let mut request = http::Request::new(Bytes::from(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    let map = request.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        map.insert(name, value);
    }
    Ok(request)
}

/// Output tokens to ask for. Every vendor counts reasoning against its output limit, so when
/// reasoning is on the budget is added: the caller's `max_tokens` stays the room left for the
/// answer itself.
pub(super) fn output_limit(answer: Option<u32>, reasoning_budget: Option<u32>) -> Option<u32> {
    match (answer, reasoning_budget) {
        (Some(answer), Some(budget)) => Some(answer.saturating_add(budget)),
        (answer, _) => answer,
    }
}

/// Parses a vendor body, mapping any mismatch with the documented shape to `Malformed`.
pub(super) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Malformed(format!("invalid json: {e}")))
}

/// `kind: message`, or just the message when the vendor gave no kind.
pub(super) fn describe(kind: Option<&str>, message: &str) -> String {
    match kind.filter(|k| !k.is_empty()) {
        Some(kind) if !message.is_empty() => format!("{kind}: {message}"),
        Some(kind) => kind.to_owned(),
        None => message.to_owned(),
    }
}

/// Deserializes a field that should be a string but that some OpenAI-compatible servers send
/// as another type or `null`: anything but a string becomes `None` instead of failing the body.
pub(super) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// A call's arguments as the JSON object the vendors that take structured input (Anthropic's
/// `input`, Gemini's `args`) need. Empty text means no arguments (`{}`); anything that is not a
/// JSON object cannot be sent there.
pub(super) fn arguments_object(call: &ToolCall) -> Result<serde_json::Value, ProviderError> {
    if call.arguments.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<serde_json::Value>(&call.arguments) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        _ => Err(ProviderError::InvalidRequest(format!(
            "the arguments of tool call `{}` ({}) are not a JSON object",
            call.id, call.name
        ))),
    }
}

/// The name of the call each tool message answers, in message order, for vendors that match
/// results by name (Gemini). A tool message answering no earlier call is refused.
pub(super) fn tool_result_names(request: &ChatRequest) -> Result<Vec<Option<&str>>, ProviderError> {
    let mut calls: Vec<&ToolCall> = Vec::new();
    let mut names = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        calls.extend(message.tool_calls.iter());
        if message.role != Role::Tool {
            names.push(None);
            continue;
        }
        let id = message.tool_call_id.as_deref().unwrap_or_default();
        let call = calls.iter().rev().find(|c| c.id == id).ok_or_else(|| {
            ProviderError::InvalidRequest(format!("the tool result for `{id}` answers no earlier tool call"))
        })?;
        names.push(Some(call.name.as_str()));
    }
    Ok(names)
}

/// The instruction that asks for JSON on vendors without a JSON mode (Anthropic): the answer
/// must be only the JSON, matching the schema when there is one.
pub(super) fn json_instruction(format: Option<&ResponseFormat>) -> Option<String> {
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => {
            Some("Answer with a single JSON object and nothing else: no prose, no code fences.".to_owned())
        }
        ResponseFormat::JsonSchema { name, schema, .. } => Some(format!(
            "Answer with a single JSON object and nothing else: no prose, no code fences. \
             It must match this JSON Schema (named `{name}`):\n{schema}"
        )),
    }
}

/// A conversation that used tools, for every dialect's tests: two calls in one assistant turn,
/// both answered, then a new question.
#[cfg(test)]
pub(crate) fn tool_conversation() -> ChatRequest {
    use crate::model::{Message, Tool, ToolChoice};
    let calls = vec![
        ToolCall::new("call_1", "get_weather", r#"{"location":"Paris"}"#),
        ToolCall::new("call_2", "get_time", ""),
    ];
    ChatRequest {
        messages: vec![
            Message::system("Be brief."),
            Message::user("Weather in Paris?"),
            Message { tool_calls: calls, ..Message::assistant("") },
            Message::tool_result("call_1", r#"{"temp_c": 18}"#),
            Message::tool_result("call_2", "10:00"),
            Message::user("And tomorrow?"),
        ],
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: "Current weather for a place".into(),
                parameters: serde_json::json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
                strict: true,
            },
            Tool {
                name: "get_time".into(),
                description: String::new(),
                parameters: serde_json::json!({"type": "object", "properties": {}}),
                strict: false,
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        ..ChatRequest::default()
    }
}

/// Splits an SSE text into events the way the executor's reader does (test fixtures only).
#[cfg(test)]
pub(crate) fn sse_events(text: &str) -> Vec<super::SseEvent> {
    let mut events = Vec::new();
    let mut current = super::SseEvent::default();
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                current.data = data.join("\n");
                events.push(std::mem::take(&mut current));
            }
            data.clear();
            current = super::SseEvent::default();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        } else if let Some(value) = line.strip_prefix("event:") {
            current.event = value.trim().to_owned();
        }
    }
    events
}

/// Decodes every event of a fixture, then calls `finish`; stops at the first error.
#[cfg(test)]
pub(crate) fn decode_all(
    kind: super::ProviderKind,
    text: &str,
) -> Result<Vec<crate::model::StreamEvent>, ProviderError> {
    let mut decoder = super::StreamDecoder::new(kind);
    let mut out = Vec::new();
    for event in sse_events(text) {
        out.extend(decoder.decode(&event)?);
    }
    out.extend(decoder.finish()?);
    Ok(out)
}

/// What a stream adds up to, for checking a whole fixture at once.
#[cfg(test)]
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Collected {
    pub text: String,
    pub thinking: String,
    pub models: Vec<String>,
    pub usage: crate::model::Usage,
    pub finishes: Vec<crate::model::FinishReason>,
    pub done: usize,
    pub tool_calls: Vec<crate::model::ToolCall>,
}

#[cfg(test)]
pub(crate) fn collect(events: &[crate::model::StreamEvent]) -> Collected {
    use crate::model::StreamEvent;
    let mut c = Collected::default();
    for event in events {
        match event {
            StreamEvent::Delta(t) => c.text.push_str(t),
            StreamEvent::Thinking(t) => c.thinking.push_str(t),
            StreamEvent::Model(m) => c.models.push(m.clone()),
            StreamEvent::Usage(u) => c.usage.merge(*u),
            StreamEvent::Finish(f) => c.finishes.push(f.clone()),
            StreamEvent::Done => c.done += 1,
            StreamEvent::ToolCall(piece) => crate::model::add_tool_call_piece(&mut c.tool_calls, piece),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn endpoint_accepts_http_and_https_and_joins_with_one_slash() {
        let uri = endpoint("https://api.openai.com/v1/", "/chat/completions").unwrap();
        assert_eq!(uri.to_string(), "https://api.openai.com/v1/chat/completions");
        let uri = endpoint("http://localhost:11434/v1", "chat/completions").unwrap();
        assert_eq!(uri.to_string(), "http://localhost:11434/v1/chat/completions");
    }

    #[test]
    fn endpoint_rejects_relative_empty_and_non_http_urls() {
        for base in ["", "   ", "api.openai.com/v1", "ftp://host/v1", "not a url", "https://"] {
            let err = endpoint(base, "chat/completions").unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{base:?} gave {err:?}");
        }
    }

    #[test]
    fn endpoint_error_does_not_echo_credentials_in_the_url() {
        let err = endpoint("https://user:hunter2@ bad host", "x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn output_limit_adds_the_reasoning_budget_only_when_both_are_set() {
        assert_eq!(output_limit(None, None), None);
        assert_eq!(output_limit(Some(100), None), Some(100));
        assert_eq!(output_limit(None, Some(4096)), None);
        assert_eq!(output_limit(Some(100), Some(4096)), Some(4196));
        assert_eq!(output_limit(Some(u32::MAX), Some(4096)), Some(u32::MAX));
    }

    #[test]
    fn sse_splitter_joins_data_lines_and_keeps_event_names() {
        let events = sse_events("event: a\ndata: 1\ndata: 2\n\n: comment\n\ndata:3\n");
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].event.as_str(), events[0].data.as_str()), ("a", "1\n2"));
        assert_eq!((events[1].event.as_str(), events[1].data.as_str()), ("", "3"));
    }
}
