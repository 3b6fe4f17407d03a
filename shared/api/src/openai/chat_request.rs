//! `POST /v1/chat/completions`: OpenAI's Chat Completions body, translated into the platform's
//! chat body. What the platform's own chat body shares with it (messages, sampling, tools) is
//! left for the same checks ([`crate::platform::request::ChatBody::validate`]); what only
//! OpenAI's clients send is read here. Errors name the parameter, as OpenAI's do.

use serde_json::{Map, Value};

use opencode_core::model::Effort;

use crate::error::ApiError;
use crate::platform::request::ReasoningBody;
use crate::web;

/// Fields the platform's chat body reads as they are.
const SHARED: [&str; 13] = [
    "messages",
    "model",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "stream",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
];

/// Fields read here.
const OWN: [&str; 6] =
    ["n", "stream_options", "max_tokens", "max_completion_tokens", "reasoning_effort", "parallel_tool_calls"];

/// Fields accepted and not acted on: they label the request (`user`, `metadata`,
/// `safety_identifier`, `prompt_cache_key`) or ask OpenAI to store it (`store`: nothing is
/// stored here).
const IGNORED: [&str; 5] = ["user", "metadata", "store", "safety_identifier", "prompt_cache_key"];

/// OpenAI's parameters the platform cannot honour: refused by name rather than ignored, each
/// unless it has the value that asks for nothing.
const UNSUPPORTED: [&str; 10] = [
    "logprobs",
    "top_logprobs",
    "audio",
    "modalities",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "service_tier",
    "verbosity",
];

/// How the client wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChatOptions {
    pub stream: bool,
    /// `stream_options.include_usage`: one more chunk with the usage before `[DONE]`.
    pub include_usage: bool,
}

/// A Chat Completions body as the platform's chat body, and how to answer it.
pub fn translate(parts: &http::request::Parts, bytes: &[u8]) -> Result<(Map<String, Value>, ChatOptions), ApiError> {
    let mut body = web::parse_object(parts, bytes)?;
    for (name, value) in &body {
        let name = name.as_str();
        let unsupported = UNSUPPORTED.contains(&name);
        if unsupported && !asks_nothing(name, value) {
            return Err(ApiError::param(name, format!("`{name}` is not supported by this platform")));
        }
        if !unsupported && !SHARED.contains(&name) && !OWN.contains(&name) && !IGNORED.contains(&name) {
            let name: String = name.chars().take(64).collect();
            return Err(ApiError::param(&name, format!("Unrecognized request argument supplied: {name}")));
        }
    }
    if !matches!(body.get("model"), Some(Value::String(_))) {
        return Err(ApiError::param("model", "`model` is required: a model name or `opencode/chat`".into()));
    }
    match body.remove("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(_) => return Err(ApiError::param("n", "`n` must be 1: the platform returns one choice".into())),
    }
    let max_tokens = max_tokens(&mut body)?;
    let effort = reasoning_effort(body.remove("reasoning_effort"))?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = include_usage(body.remove("stream_options"), stream)?;
    if !matches!(body.remove("parallel_tool_calls"), None | Some(Value::Null | Value::Bool(_))) {
        return Err(ApiError::param("parallel_tool_calls", "`parallel_tool_calls` must be a boolean".into()));
    }
    for name in IGNORED.iter().chain(UNSUPPORTED.iter()) {
        body.remove(*name);
    }
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        messages.iter_mut().for_each(normalize_message);
    }
    if let Some(max_tokens) = max_tokens {
        body.insert("max_tokens".into(), Value::from(max_tokens));
    }
    if let Some(effort) = effort {
        body.insert("reasoning".into(), ReasoningBody::effort_value(effort));
    }
    Ok((body, ChatOptions { stream, include_usage }))
}

/// Whether an unsupported parameter's value asks for nothing (`logprobs: false`,
/// `modalities: ["text"]`, `service_tier: "auto"`, ...), so a client that always sends it works.
fn asks_nothing(name: &str, value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => name == "top_logprobs" && n.as_u64() == Some(0),
        Value::Object(_) => false,
        Value::String(s) => {
            matches!((name, s.as_str()), ("service_tier", "auto" | "default") | ("verbosity", "medium"))
        }
        Value::Array(list) => {
            name == "modalities" && list.len() == 1 && list.first().and_then(Value::as_str) == Some("text")
        }
        Value::Bool(true) => false,
    }
}

/// `max_completion_tokens` (or the older `max_tokens`); both only when they agree.
fn max_tokens(body: &mut Map<String, Value>) -> Result<Option<u32>, ApiError> {
    let mut read = |name: &str| match body.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| ApiError::param(name, format!("`{name}` must be a whole number of at least 1"))),
    };
    match (read("max_completion_tokens")?, read("max_tokens")?) {
        (Some(a), Some(b)) if a != b => Err(ApiError::param(
            "max_tokens",
            "`max_tokens` and `max_completion_tokens` disagree: send `max_completion_tokens` alone".into(),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// `reasoning_effort`: OpenAI's levels, mapped onto the platform's three (a budget each).
pub(crate) fn reasoning_effort(value: Option<Value>) -> Result<Option<Effort>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    match value.as_str() {
        Some("none") => Ok(None),
        Some("minimal" | "low") => Ok(Some(Effort::Low)),
        Some("medium") => Ok(Some(Effort::Medium)),
        Some("high" | "xhigh") => Ok(Some(Effort::High)),
        _ => Err(ApiError::param(
            "reasoning_effort",
            "`reasoning_effort` must be one of none, minimal, low, medium, high, xhigh".into(),
        )),
    }
}

/// `stream_options.include_usage`, which only a streamed request may send.
fn include_usage(value: Option<Value>, stream: bool) -> Result<bool, ApiError> {
    let options = match value {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Object(options)) => options,
        Some(_) => return Err(ApiError::param("stream_options", "`stream_options` must be an object".into())),
    };
    if !stream {
        return Err(ApiError::param("stream_options", "`stream_options` is only allowed when `stream` is true".into()));
    }
    let mut include_usage = false;
    for (key, value) in options {
        match (key.as_str(), value) {
            ("include_usage", Value::Bool(flag)) => include_usage = flag,
            ("include_usage", Value::Null) | ("include_obfuscation", Value::Bool(_) | Value::Null) => {}
            (key, _) => {
                let key: String = key.chars().take(64).collect();
                let param = format!("stream_options.{key}");
                return Err(ApiError::param(
                    &param,
                    format!("`{param}` is not a known stream option or not a boolean"),
                ));
            }
        }
    }
    Ok(include_usage)
}

/// What an answer's message carries besides its content and calls: clients send the message
/// back as they got it, and no vendor reads these from a conversation.
const ANSWER_ONLY: [&str; 6] = ["name", "refusal", "annotations", "audio", "function_call", "reasoning_content"];

/// Brings one OpenAI message to the platform's shape: `developer` is `system`, and what only an
/// answer carries ([`ANSWER_ONLY`]) is dropped. Content parts (text and images) are the
/// platform's own.
fn normalize_message(message: &mut Value) {
    let Some(message) = message.as_object_mut() else { return };
    if message.get("role").and_then(Value::as_str) == Some("developer") {
        message.insert("role".into(), Value::String("system".into()));
    }
    for field in ANSWER_ONLY {
        message.remove(field);
    }
}
