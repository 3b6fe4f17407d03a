//! Which client dialect a request speaks, by its path: how its body is read into the
//! runtime's request, and how its answer and its errors are written.

use opencode_core::model::ChatRequest;
use opencode_core::routing::Mode;
use opencode_runtime::host::Body;

use crate::anthropic::{self, request::MessagesOptions};
use crate::error::ApiError;
use crate::openai::responses_request::{self, ResponsesOptions};
use crate::openai::{self, chat_request, chat_request::ChatOptions};
use crate::platform::request::{parse_mode_body, ChatBody};
use crate::seed::{self, request::SeedOptions};
use crate::web;

/// The vendors' chat paths (OpenAI's two, Anthropic's, the seed's two): each mode's function
/// answers them, the gateway routes them by the mode their body names.
pub const VENDOR_PATHS: [&str; 5] =
    [openai::CHAT_COMPLETIONS, openai::RESPONSES, anthropic::MESSAGES, seed::CHAT, seed::CHAT_STREAM];

/// Whose error shape a path's errors take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    Platform,
    OpenAi,
    Anthropic,
    Seed,
}

impl ErrorShape {
    /// The shape of the dialect `path` speaks, decided before the request is handled.
    pub fn of(path: &str) -> ErrorShape {
        if openai::serves(path) {
            ErrorShape::OpenAi
        } else if path == anthropic::MESSAGES {
            ErrorShape::Anthropic
        } else if seed::serves(path) {
            ErrorShape::Seed
        } else {
            ErrorShape::Platform
        }
    }

    /// The error response for `err`.
    pub fn response(self, err: &ApiError, request_id: &str) -> http::Response<Body> {
        match self {
            ErrorShape::OpenAi => openai::error::response(err),
            ErrorShape::Anthropic => anthropic::error::response(err),
            ErrorShape::Seed => seed::error_response(err, request_id),
            ErrorShape::Platform => web::error(err, request_id),
        }
    }
}

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

    /// A chat body in the dialect its path speaks: the request and the dialect.
    /// A chat body: on chat's own path, `/v1/chat`, the platform's; on a vendor's path, the
    /// vendor's. Any other path is a 404.
    pub fn parse_chat(parts: &http::request::Parts, bytes: &[u8]) -> Result<(ChatRequest, Dialect), ApiError> {
        if let Some(parsed) = Dialect::parse_vendor(parts, bytes, Mode::Chat)? {
            return Ok(parsed);
        }
        match parts.uri.path() {
            "/v1/chat" => {
                let (request, stream) = web::parse_json::<ChatBody>(parts, bytes)?.validate()?;
                Ok((request, Dialect::Platform { stream }))
            }
            other => Err(ApiError::NotFound(other.chars().take(256).collect())),
        }
    }

    /// A vendor dialect's body on its path, for the function of `mode`: the request, with the
    /// `opencode/<mode>` model that named the mode taken off, and the dialect. `None` on any
    /// other path.
    pub fn parse_vendor(
        parts: &http::request::Parts,
        bytes: &[u8],
        mode: Mode,
    ) -> Result<Option<(ChatRequest, Dialect)>, ApiError> {
        let Some((mut request, dialect)) = Dialect::parse_any_vendor(parts, bytes)? else { return Ok(None) };
        if let Some(alias) = request.model.as_deref().and_then(|model| model.strip_prefix("opencode/")) {
            if alias != mode.as_str() {
                let alias: String = alias.chars().take(32).collect();
                return Err(ApiError::param(
                    "model",
                    format!("`opencode/{alias}` is not served by the {mode} function: send it to the gateway, which routes each mode's alias"),
                ));
            }
            request.model = None;
        }
        Ok(Some((request, dialect)))
    }

    /// A vendor dialect's body on its path, whatever its model; `None` on any other path.
    pub fn parse_any_vendor(
        parts: &http::request::Parts,
        bytes: &[u8],
    ) -> Result<Option<(ChatRequest, Dialect)>, ApiError> {
        Ok(Some(match parts.uri.path() {
            openai::CHAT_COMPLETIONS => {
                let (request, options) = chat_request::parse(parts, bytes)?;
                (request, Dialect::OpenAiChat(options))
            }
            openai::RESPONSES => {
                let (request, options) = responses_request::parse(parts, bytes)?;
                (request, Dialect::OpenAiResponses(options))
            }
            anthropic::MESSAGES => {
                let (request, options) = anthropic::request::parse(parts, bytes)?;
                (request, Dialect::AnthropicMessages(options))
            }
            seed::CHAT | seed::CHAT_STREAM => {
                let (request, options) = seed::request::parse(parts, bytes)?;
                (request, Dialect::Seed(options))
            }
            _ => return Ok(None),
        }))
    }
}

/// A mode function's body in the dialect its path speaks: on the platform's own path, the chat
/// body plus the mode's own fields (`E`, named in `fields`); on a vendor's path, where the
/// client named the mode as the model `opencode/<mode>`, the vendor's body with the mode's own
/// fields at their defaults.
pub fn parse_mode<E: serde::de::DeserializeOwned + Default>(
    parts: &http::request::Parts,
    bytes: &[u8],
    fields: &[&str],
    mode: Mode,
) -> Result<(ChatRequest, E, Dialect), ApiError> {
    if let Some((request, dialect)) = Dialect::parse_vendor(parts, bytes, mode)? {
        return Ok((request, E::default(), dialect));
    }
    let (chat, own) = parse_mode_body::<E>(parts, bytes, fields)?;
    let (request, stream) = chat.validate()?;
    Ok((request, own, Dialect::Platform { stream }))
}
