//! Which client dialect a request speaks, how its body becomes the platform's chat body, and how
//! its answer and its errors are written.
//!
//! A vendor's body is translated once, into the platform's chat body, where it arrives: the
//! gateway for every vendor path, and chat for the two paths Spin routes to it directly (OpenAI's
//! chat completions and Anthropic's messages: the hot path skips the gateway's hop). A mode's
//! function then reads the platform's body alone and learns the dialect to answer in from
//! [`DIALECT_HEADER`], so that it carries the dialects' renderers but none of their parsers.

use serde_json::{Map, Value};

use opencode_core::model::ChatRequest;
use opencode_runtime::host::Body;

use crate::anthropic::{self, request::MessagesOptions};
use crate::error::ApiError;
use crate::openai::responses_request::{self, ResponsesOptions};
use crate::openai::{self, chat_request, chat_request::ChatOptions};
use crate::platform::request::{parse_mode_body, ChatBody};
use crate::seed::{self, request::SeedOptions};
use crate::web;

/// The header naming the dialect a translated body's answer is written in. Set by whoever
/// translated it (the gateway, or chat passing a request to the agent); a caller who sets it
/// only chooses how its own answer is written.
pub const DIALECT_HEADER: &str = "x-opencode-dialect";

/// The vendors' chat paths (OpenAI's two, Anthropic's, the seed's two): the gateway translates
/// them and sends each to the mode its body names.
pub const VENDOR_PATHS: [&str; 5] =
    [openai::CHAT_COMPLETIONS, openai::RESPONSES, anthropic::MESSAGES, seed::CHAT, seed::CHAT_STREAM];

/// The vendor paths the chat function also answers itself (on Spin they are routed to it).
pub const CHAT_VENDOR_PATHS: [&str; 2] = [openai::CHAT_COMPLETIONS, anthropic::MESSAGES];

/// Whose error shape a request's errors take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    Platform,
    OpenAi,
    Anthropic,
    Seed,
}

impl ErrorShape {
    /// The shape of the dialect a request speaks, decided before it is handled: the one
    /// [`DIALECT_HEADER`] names, else its path's.
    pub fn of(path: &str, headers: &http::HeaderMap) -> ErrorShape {
        match Dialect::from_headers(headers, false) {
            Ok(Dialect::OpenAiChat(_) | Dialect::OpenAiResponses(_)) => return ErrorShape::OpenAi,
            Ok(Dialect::AnthropicMessages(_)) => return ErrorShape::Anthropic,
            Ok(Dialect::Seed(_)) => return ErrorShape::Seed,
            Ok(Dialect::Platform { .. }) | Err(_) => {}
        }
        if openai::serves(path) {
            ErrorShape::OpenAi
        } else if path == anthropic::MESSAGES || path == anthropic::COUNT_TOKENS {
            ErrorShape::Anthropic
        } else if seed::serves(path) {
            ErrorShape::Seed
        } else {
            ErrorShape::Platform
        }
    }

    /// The error response for `err`: in the shape, with `retry-after` when waiting helps and
    /// `x-should-retry: false` when repeating the request cannot (the SDKs obey both).
    pub fn response(self, err: &ApiError, request_id: &str) -> http::Response<Body> {
        let mut response = match self {
            ErrorShape::OpenAi => openai::error::response(err),
            ErrorShape::Anthropic => anthropic::error::response(err),
            ErrorShape::Seed => seed::error_response(err, request_id),
            ErrorShape::Platform => web::error(err, request_id),
        };
        if let Some(secs) = err.retry_after_secs() {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        if err.is_final() {
            web::set_header(&mut response, "x-should-retry", "false");
        }
        response
    }
}

/// A vendor's body as the platform's chat body, and the dialect its answer is written in.
pub type Translated = (Map<String, Value>, Dialect);

/// The dialect a chat request came in, which its answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The platform's own (`/v1/chat`, `/v1/<mode>`).
    Platform { stream: bool },
    /// OpenAI's Chat Completions (`/v1/chat/completions`).
    OpenAiChat(ChatOptions),
    /// OpenAI's Responses (`/v1/responses`), stateless.
    OpenAiResponses(ResponsesOptions),
    /// Anthropic's Messages (`/v1/messages`).
    AnthropicMessages(MessagesOptions),
    /// The seed platform's chat (`/api/v1/chat`, `/api/v1/chat/stream`).
    Seed(SeedOptions),
}

impl Dialect {
    /// Whether the client asked for a stream.
    pub fn streams(self) -> bool {
        match self {
            Dialect::Platform { stream } => stream,
            Dialect::OpenAiChat(options) => options.stream,
            Dialect::OpenAiResponses(options) => options.stream,
            Dialect::AnthropicMessages(options) => options.stream,
            Dialect::Seed(options) => options.stream,
        }
    }

    /// The [`DIALECT_HEADER`] value that names this dialect (none for the platform's own).
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Dialect::Platform { .. } => None,
            Dialect::OpenAiChat(ChatOptions { include_usage: true, .. }) => Some("openai-chat; include_usage"),
            Dialect::OpenAiChat(_) => Some("openai-chat"),
            Dialect::OpenAiResponses(_) => Some("openai-responses"),
            Dialect::AnthropicMessages(_) => Some("anthropic-messages"),
            Dialect::Seed(_) => Some("seed"),
        }
    }

    /// The dialect a platform body's answer is written in: the one [`DIALECT_HEADER`] names,
    /// else the platform's own.
    pub fn from_headers(headers: &http::HeaderMap, stream: bool) -> Result<Dialect, ApiError> {
        let Some(value) = headers.get(DIALECT_HEADER) else { return Ok(Dialect::Platform { stream }) };
        Ok(match value.as_bytes() {
            b"openai-chat" => Dialect::OpenAiChat(ChatOptions { stream, include_usage: false }),
            b"openai-chat; include_usage" => Dialect::OpenAiChat(ChatOptions { stream, include_usage: true }),
            b"openai-responses" => Dialect::OpenAiResponses(ResponsesOptions { stream }),
            b"anthropic-messages" => Dialect::AnthropicMessages(MessagesOptions { stream }),
            b"seed" => Dialect::Seed(SeedOptions { stream }),
            _ => {
                return Err(ApiError::Validation(format!(
                    "`{DIALECT_HEADER}` must be one of openai-chat, openai-chat; include_usage, openai-responses, anthropic-messages, seed"
                )))
            }
        })
    }

    /// [`Dialect::translate`] on [`CHAT_VENDOR_PATHS`] alone: chat links only these two.
    pub fn translate_for_chat(parts: &http::request::Parts, bytes: &[u8]) -> Result<Option<Translated>, ApiError> {
        Ok(Some(match parts.uri.path() {
            openai::CHAT_COMPLETIONS => {
                let (body, options) = chat_request::translate(parts, bytes)?;
                (body, Dialect::OpenAiChat(options))
            }
            anthropic::MESSAGES => {
                let (body, options) = anthropic::request::translate(parts, bytes)?;
                (body, Dialect::AnthropicMessages(options))
            }
            _ => return Ok(None),
        }))
    }

    /// A vendor's body on its path as the platform's chat body, and the dialect; `None` on any
    /// other path.
    pub fn translate(parts: &http::request::Parts, bytes: &[u8]) -> Result<Option<Translated>, ApiError> {
        if let Some(translated) = Dialect::translate_for_chat(parts, bytes)? {
            return Ok(Some(translated));
        }
        Ok(Some(match parts.uri.path() {
            openai::RESPONSES => {
                let (body, options) = responses_request::translate(parts, bytes)?;
                (body, Dialect::OpenAiResponses(options))
            }
            seed::CHAT | seed::CHAT_STREAM => {
                let (body, options) = seed::request::translate(parts, bytes)?;
                (body, Dialect::Seed(options))
            }
            _ => return Ok(None),
        }))
    }
}

/// Takes the mode alias off a translated body: `Some("search")` for `model: "opencode/search"`
/// (the model names the mode, not a model); `None`, the body untouched, for any other model.
pub fn take_alias(body: &mut Map<String, Value>) -> Option<String> {
    let alias = body.get("model").and_then(Value::as_str)?.strip_prefix("opencode/")?.to_owned();
    body.remove("model");
    Some(alias)
}

/// A chat body on `/v1/chat` (the platform's, answered in the dialect the header names), as its
/// request and dialect. Any other path is a 404.
pub fn parse_chat(parts: &http::request::Parts, bytes: &[u8]) -> Result<(ChatRequest, Dialect), ApiError> {
    if parts.uri.path() != "/v1/chat" {
        return Err(ApiError::NotFound(parts.uri.path().chars().take(256).collect()));
    }
    let (request, stream) = ChatBody::from_object(web::parse_object(parts, bytes)?)?.validate()?;
    Ok((request, Dialect::from_headers(&parts.headers, stream)?))
}

/// A mode function's body: the platform's chat body plus the mode's own fields (`E`, named in
/// `fields`), `TO_MODEL` when the mode hands the conversation to the model as it is (thinking:
/// `response_format` and images go through), answered in the dialect the header names. A vendor's body, translated by the
/// gateway, carries none of the mode's own fields (they keep their defaults): its fields are
/// all the chat body's, even one a mode also names (`top_k`, sampling there, retrieval in
/// knowledge's own body).
pub fn parse_mode<E: serde::de::DeserializeOwned + Default, const TO_MODEL: bool>(
    parts: &http::request::Parts,
    bytes: &[u8],
    mode: opencode_core::routing::Mode,
    fields: &[&str],
) -> Result<(ChatRequest, E, Dialect), ApiError> {
    let fields = if parts.headers.contains_key(DIALECT_HEADER) { &[][..] } else { fields };
    let (chat, own) = parse_mode_body::<E>(parts, bytes, fields)?;
    // Every mode but chat (and the agent, which reads chat's bodies) runs without tool calling.
    let (request, stream) = chat.validate_without_tools::<TO_MODEL>(mode)?;
    Ok((request, own, Dialect::from_headers(&parts.headers, stream)?))
}
