//! The platform's request bodies: the chat body every mode takes (plus each mode's own fields),
//! checked field by field into the provider-independent [`ChatRequest`].

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use opencode_core::model::{ChatRequest, Effort, Image, ImageSource, Message, Reasoning, Role, ThinkingBlock};
use opencode_core::routing::{Mode, Tier};

use super::tool_fields;
use crate::error::ApiError;
use crate::web;

const MAX_MESSAGES: usize = 1_000;
const MAX_STOP: usize = 4;

/// The header the gateway sets when `/v1/process` forwards a request: the tier it decided.
pub const TIER_HEADER: &str = "x-opencode-tier";

/// The chat body, exactly as documented in the README.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    pub messages: Vec<MessageBody>,
    #[serde(default)]
    pub stream: bool,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// For the vendors that take it (Anthropic, Gemini, compatible servers). On
    /// `/v1/knowledge`, `top_k` is the mode's own field: how many chunks to retrieve.
    pub top_k: Option<u32>,
    pub max_tokens: Option<u32>,
    pub model: Option<String>,
    /// One string or a list of them, as in OpenAI's API (read as a value: an untagged enum
    /// would cost Wasm size).
    pub stop: Option<Value>,
    pub seed: Option<u64>,
    /// Checked field by field in `tool_fields.rs`, for errors that name the field.
    pub tools: Option<Value>,
    pub tool_choice: Option<Value>,
    pub response_format: Option<Value>,
    /// -2 to 2, for the vendors that take them (OpenAI, Gemini).
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    /// Token id to bias (-100 to 100), for OpenAI and compatible servers.
    pub logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    /// The thinking controls, `{"effort"}` or `{"budget_tokens"}`: what every dialect's own
    /// control (`reasoning_effort`, `thinking`, `reasoning.effort`) is translated to.
    pub reasoning: Option<ReasoningBody>,
}

/// `{"effort": "low"|"medium"|"high"}` or `{"budget_tokens": n}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasoningBody {
    pub effort: Option<Effort>,
    pub budget_tokens: Option<u32>,
}

impl ReasoningBody {
    /// `{"effort": ...}`: a dialect's level (`reasoning_effort`, ...) in the chat body.
    pub fn effort_value(effort: Effort) -> Value {
        let mut reasoning = Map::new();
        reasoning.insert("effort".into(), Value::String(effort.as_str().into()));
        Value::Object(reasoning)
    }

    /// The level and budget asked for: exactly one of the two fields, a budget of at least `min`.
    pub fn asked(&self, min: u32, max: u32) -> Result<(Effort, u32), ApiError> {
        match (self.effort, self.budget_tokens) {
            (Some(effort), None) => Ok((effort, effort.budget_tokens())),
            (None, Some(budget)) if (min..=max).contains(&budget) => Ok((Effort::from_budget(budget), budget)),
            (None, Some(budget)) => Err(ApiError::Validation(format!(
                "`reasoning.budget_tokens` must be between {min} and {max}, got {budget}"
            ))),
            _ => Err(ApiError::Validation(
                "`reasoning` takes exactly one of `effort` (low, medium, high) or `budget_tokens`".into(),
            )),
        }
    }
}

/// A message: `content` may be `null` only on an assistant message with `tool_calls`;
/// `tool_call_id` only on a `tool` message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub role: String,
    /// A string, or (as OpenAI's) a list of `text` and `image_url` parts.
    #[serde(default)]
    pub content: Option<Value>,
    /// Checked in `tool_fields.rs`, like the body's tool fields.
    #[serde(default)]
    pub tool_calls: Option<Value>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// An assistant message's signed reasoning, as Anthropic writes it: a list of
    /// `{"type":"thinking","thinking","signature"}` and `{"type":"redacted_thinking","data"}`.
    #[serde(default)]
    pub thinking: Option<Value>,
}

impl ChatBody {
    /// A chat body built as JSON (a vendor dialect's body, translated), checked as a client's
    /// is: its shape by serde, then every field by [`ChatBody::validate`].
    pub fn check_object(object: Map<String, Value>) -> Result<ChatRequest, ApiError> {
        Ok(ChatBody::from_object(object)?.validate()?.0)
    }

    /// A chat body's shape, read from a parsed object. Every chat body (the platform's own and
    /// each dialect's translation) is read this way, so that each Wasm carries one copy of its
    /// deserializer rather than one per JSON source.
    pub fn from_object(object: Map<String, Value>) -> Result<ChatBody, ApiError> {
        serde_json::from_value(Value::Object(object)).map_err(|err| ApiError::Validation(err.to_string()))
    }

    /// Checks every field and builds the provider-independent request; the second value says
    /// whether the client streams.
    pub fn validate(self) -> Result<(ChatRequest, bool), ApiError> {
        self.validate_with::<true, true>()
    }

    /// [`ChatBody::validate`] for a mode without tool calling: `tools`, `tool_choice` and tool
    /// turns are refused by name before anything is parsed, and so is `response_format` unless
    /// the mode hands the conversation to the model as it is (`TO_MODEL`, as [`refuse_tools`]
    /// says), so its Wasm links none of their checks.
    pub fn validate_without_tools<const TO_MODEL: bool>(self, mode: Mode) -> Result<(ChatRequest, bool), ApiError> {
        let refuse =
            |what: &str| Err(ApiError::Validation(format!("the {mode} mode does not take {what}; use /v1/chat")));
        let given = |value: &Option<Value>| match value {
            None | Some(Value::Null) => false,
            Some(Value::Array(items)) => !items.is_empty(),
            Some(_) => true,
        };
        if given(&self.tools) {
            return refuse("`tools`");
        }
        if self.tool_choice.as_ref().is_some_and(|choice| !choice.is_null()) {
            return refuse("`tool_choice`");
        }
        if self.messages.iter().any(|m| m.role == "tool" || given(&m.tool_calls)) {
            return refuse("tool calls or tool messages in `messages`");
        }
        if !TO_MODEL && given(&self.response_format) {
            return refuse("`response_format`");
        }
        self.validate_with::<false, TO_MODEL>()
    }

    fn validate_with<const TOOLS: bool, const FORMAT: bool>(self) -> Result<(ChatRequest, bool), ApiError> {
        let invalid = |msg: String| Err(ApiError::Validation(msg));
        let messages = validate_messages_with::<TOOLS>(self.messages)?;
        if let Some(t) = self.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return invalid(format!("`temperature` must be between 0 and 2, got {}", serde_json::json!(t)));
        }
        if let Some(p) = self.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
            return invalid(format!("`top_p` must be between 0 and 1, got {}", serde_json::json!(p)));
        }
        if self.top_k == Some(0) {
            return invalid("`top_k` must be at least 1".into());
        }
        if self.max_tokens == Some(0) {
            return invalid("`max_tokens` must be at least 1".into());
        }
        if let Some(model) = &self.model {
            if model.trim().is_empty() || model.len() > 256 {
                return invalid("`model` must be a non-empty name of at most 256 characters".into());
            }
        }
        let stop = match self.stop {
            None => vec![],
            Some(Value::String(one)) => vec![one],
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
                list.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            Some(_) => return invalid("`stop` must be a string or a list of strings".into()),
        };
        if stop.len() > MAX_STOP || stop.iter().any(String::is_empty) {
            return invalid(format!("`stop` takes at most {MAX_STOP} non-empty strings"));
        }
        for (name, value) in
            [("frequency_penalty", self.frequency_penalty), ("presence_penalty", self.presence_penalty)]
        {
            if let Some(v) = value.filter(|v| !(-2.0..=2.0).contains(v)) {
                return Err(ApiError::param(
                    name,
                    format!("`{name}` must be between -2 and 2, got {}", serde_json::json!(v)),
                ));
            }
        }
        let logit_bias = logit_bias(self.logit_bias.unwrap_or_default())?;
        let reasoning = match &self.reasoning {
            Some(asked) => Some(Reasoning { budget_tokens: asked.asked(1, u32::MAX)?.1 }),
            None => None,
        };
        let (tools, tool_choice) = if TOOLS {
            let tools = tool_fields::parse_tools(self.tools)?;
            let tool_choice = tool_fields::parse_tool_choice(self.tool_choice, &tools)?;
            (tools, tool_choice)
        } else {
            (Vec::new(), None)
        };
        let response_format = if FORMAT { tool_fields::parse_response_format(self.response_format)? } else { None };
        let request = ChatRequest {
            messages,
            model: self.model,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            max_tokens: self.max_tokens,
            stop,
            seed: self.seed,
            reasoning,
            tools,
            tool_choice,
            response_format,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            logit_bias,
        };
        Ok((request, self.stream))
    }
}

/// `logit_bias`: token ids (as JSON keys) to a bias from -100 to 100, at most 300 of them.
fn logit_bias(
    asked: std::collections::BTreeMap<String, f32>,
) -> Result<std::collections::BTreeMap<u32, f32>, ApiError> {
    if asked.len() > 300 {
        return Err(ApiError::param("logit_bias", "`logit_bias` takes at most 300 tokens".into()));
    }
    asked
        .into_iter()
        .map(|(token, bias)| match token.parse::<u32>() {
            Ok(id) if (-100.0..=100.0).contains(&bias) => Ok((id, bias)),
            _ => Err(ApiError::param(
                "logit_bias",
                "`logit_bias` maps token ids (whole numbers) to a bias from -100 to 100".into(),
            )),
        })
        .collect()
}

/// Checks a conversation: 1 to `MAX_MESSAGES` messages with known roles, at least one of them
/// from the user; tool calls only on assistant messages, each answered by a `tool` message
/// before the conversation goes on, and every `tool` message answering a call.
pub fn validate_messages(bodies: Vec<MessageBody>) -> Result<Vec<Message>, ApiError> {
    validate_messages_with::<true>(bodies)
}

fn validate_messages_with<const TOOLS: bool>(bodies: Vec<MessageBody>) -> Result<Vec<Message>, ApiError> {
    let invalid = |msg: String| Err(ApiError::Validation(msg));
    if bodies.is_empty() {
        return invalid("`messages` must contain at least one message".into());
    }
    if bodies.len() > MAX_MESSAGES {
        return invalid(format!("`messages` has more than {MAX_MESSAGES} messages"));
    }
    let mut messages = Vec::with_capacity(bodies.len());
    for (i, m) in bodies.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return invalid(format!(
                    "messages[{i}].role `{}` is not one of system, user, assistant, tool",
                    other.chars().take(32).collect::<String>()
                ))
            }
        };
        let tool_calls =
            if TOOLS { tool_fields::validate_calls(m.tool_calls.unwrap_or_default(), i)? } else { Vec::new() };
        if role != Role::Assistant && !tool_calls.is_empty() {
            return invalid(format!("`messages[{i}].tool_calls` is only allowed on assistant messages"));
        }
        let (content, images) = match m.content {
            Some(Value::String(content)) => (content, Vec::new()),
            Some(Value::Array(parts)) => content_parts(parts, i)?,
            None | Some(Value::Null) if !tool_calls.is_empty() => (String::new(), Vec::new()),
            None | Some(Value::Null) => return invalid(format!("`messages[{i}].content` is required")),
            Some(_) => return invalid(format!("`messages[{i}].content` must be a string or a list of parts")),
        };
        if role != Role::User && !images.is_empty() {
            return Err(ApiError::param(
                &format!("messages[{i}].content"),
                format!("`messages[{i}].content`: images are only allowed in user messages"),
            ));
        }
        let tool_call_id = match (role, m.tool_call_id) {
            (Role::Tool, Some(id)) if !id.is_empty() => Some(id),
            (Role::Tool, _) => return invalid(format!("`messages[{i}].tool_call_id` is required on a tool message")),
            (_, Some(_)) => return invalid(format!("`messages[{i}].tool_call_id` is only allowed on tool messages")),
            (_, None) => None,
        };
        let thinking = match m.thinking {
            None | Some(Value::Null) => Vec::new(),
            Some(_) if role != Role::Assistant => {
                return invalid(format!("`messages[{i}].thinking` is only allowed on assistant messages"))
            }
            Some(blocks) => serde_json::from_value::<Vec<ThinkingBlock>>(blocks).map_err(|err| {
                ApiError::Validation(format!(
                    "`messages[{i}].thinking` must be a list of thinking and redacted_thinking blocks: {err}"
                ))
            })?,
        };
        messages.push(Message { role, content, tool_calls, tool_call_id, images, thinking });
    }
    if TOOLS {
        tool_fields::check_tool_turns(&messages)?;
    }
    if !messages.iter().any(|m| m.role == Role::User) {
        return invalid("`messages` must contain a user message".into());
    }
    Ok(messages)
}

/// A message's content parts: its text (the `text` parts, joined by new lines) and its images
/// (`image_url` parts: an `https` URL or a base64 `data:` URL, and an optional `detail`).
fn content_parts(parts: Vec<Value>, index: usize) -> Result<(String, Vec<Image>), ApiError> {
    let mut texts = Vec::with_capacity(parts.len());
    let mut images = Vec::new();
    for (j, part) in parts.into_iter().enumerate() {
        let param = format!("messages[{index}].content[{j}]");
        let Value::Object(mut part) = part else {
            return Err(ApiError::param(&param, format!("`{param}` must be an object with a `type`")));
        };
        match part.get("type").and_then(Value::as_str) {
            Some("text") => match part.remove("text") {
                Some(Value::String(text)) => texts.push(text),
                _ => return Err(ApiError::param(&param, format!("`{param}.text` must be a string"))),
            },
            Some("image_url") => {
                // `{"url", "detail"?}`, or the URL alone as some clients send it.
                let (url, detail) = match part.remove("image_url") {
                    Some(Value::String(url)) => (Some(url), None),
                    Some(Value::Object(mut image)) => (
                        image.remove("url").and_then(|u| u.as_str().map(str::to_owned)),
                        image.remove("detail").and_then(|d| d.as_str().map(str::to_owned)),
                    ),
                    _ => (None, None),
                };
                let source = url.as_deref().and_then(ImageSource::from_url).ok_or_else(|| {
                    ApiError::param(
                        &param,
                        format!("`{param}.image_url.url` must be an https URL or a base64 `data:` URL"),
                    )
                })?;
                if detail.as_deref().is_some_and(|d| !matches!(d, "auto" | "low" | "high")) {
                    return Err(ApiError::param(
                        &param,
                        format!("`{param}.image_url.detail` must be auto, low or high"),
                    ));
                }
                images.push(Image { source, detail });
            }
            Some(kind) => {
                let kind: String = kind.chars().take(32).collect();
                return Err(ApiError::param(
                    &param,
                    format!("`{param}` has type `{kind}`; only `text` and `image_url` parts are supported"),
                ));
            }
            None => return Err(ApiError::param(&param, format!("`{param}` must be an object with a `type`"))),
        }
    }
    Ok((texts.join("\n"), images))
}

/// Splits a mode's body into the chat body and the mode's own fields, those named in `fields`
/// (deserialized as `E`). Unknown fields are still refused, by name.
pub fn parse_mode_body<E: DeserializeOwned>(
    parts: &http::request::Parts,
    bytes: &[u8],
    fields: &[&str],
) -> Result<(ChatBody, E), ApiError> {
    let mut object = web::parse_object(parts, bytes)?;
    let own: Map<String, Value> =
        fields.iter().filter_map(|name| object.remove(*name).map(|v| ((*name).to_string(), v))).collect();
    let own = serde_json::from_value(Value::Object(own)).map_err(|err| ApiError::Validation(err.to_string()))?;
    let chat = serde_json::from_value(Value::Object(object)).map_err(|err| ApiError::Validation(err.to_string()))?;
    Ok((chat, own))
}

/// Tool calling is a chat feature: the other modes run their own pipeline (sources, a sandbox, a
/// plan) and cannot hand calls back to the caller, so `tools`, `tool_choice` and tool messages
/// are refused by name rather than ignored. `response_format` and images are refused too unless
/// the mode passes the conversation to the model as it is (`to_model`: thinking); the others
/// read the question's text alone.
pub fn refuse_tools(request: &ChatRequest, mode: Mode, to_model: bool) -> Result<(), ApiError> {
    let refuse = |what: &str| Err(ApiError::Validation(format!("the {mode} mode does not take {what}; use /v1/chat")));
    if !request.tools.is_empty() {
        return refuse("`tools`");
    }
    if request.tool_choice.is_some() {
        return refuse("`tool_choice`");
    }
    if request.messages.iter().any(|m| m.role == Role::Tool || !m.tool_calls.is_empty()) {
        return refuse("tool calls or tool messages in `messages`");
    }
    if request.response_format.is_some() && !to_model {
        return refuse("`response_format`");
    }
    if request.messages.iter().any(|m| !m.images.is_empty()) && !to_model {
        return refuse("images");
    }
    Ok(())
}

/// A count field of a body (`max_results`, `top_k`, ...): a whole number from 1 to `max`,
/// `default` when absent or null.
pub fn count(name: &str, value: Option<&Value>, default: usize, max: usize) -> Result<usize, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::Validation(format!("`{name}` must be a whole number from 1 to {max}"))),
    }
}

/// The tier the gateway decided for this request, if it came through `/v1/process`.
pub fn requested_tier(headers: &http::HeaderMap) -> Option<Tier> {
    match headers.get(TIER_HEADER)?.to_str().ok()?.trim() {
        "system1" => Some(Tier::System1),
        "system2" => Some(Tier::System2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn parts() -> http::request::Parts {
        http::Request::post("/v1/x").header("content-type", "application/json").body(()).unwrap().into_parts().0
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Own {
        top_k: Option<u32>,
    }

    #[test]
    fn a_mode_body_splits_its_own_fields_from_the_chat_body() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],"top_k":3,"stream":true}"#;
        let (chat, own) = parse_mode_body::<Own>(&parts(), body, &["top_k"]).unwrap();
        assert_eq!(own.top_k, Some(3));
        assert!(chat.stream);

        let body = br#"{"messages":[{"role":"user","content":"hi"}],"top_kk":3}"#;
        let err = parse_mode_body::<Own>(&parts(), body, &["top_k"]).unwrap_err();
        assert!(matches!(&err, ApiError::Validation(m) if m.contains("top_kk")), "{err:?}");

        let err = parse_mode_body::<Own>(
            &parts(),
            br#"{"messages":[{"role":"user","content":"hi"}],"top_k":"x"}"#,
            &["top_k"],
        )
        .unwrap_err();
        assert_eq!(err.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn the_tier_header_is_read_strictly() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(requested_tier(&headers), None);
        headers.insert(TIER_HEADER, http::HeaderValue::from_static("system2"));
        assert_eq!(requested_tier(&headers), Some(Tier::System2));
        headers.insert(TIER_HEADER, http::HeaderValue::from_static("fast"));
        assert_eq!(requested_tier(&headers), None);
    }
}
