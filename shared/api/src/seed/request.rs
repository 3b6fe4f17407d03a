//! The seed's chat body: `{"query", "mode"?, "temperature"?, "max_tokens"?, "stream"?,
//! "metadata"?}`, with its limits, into the platform's request.

use serde::Deserialize;
use serde_json::{Map, Value};

use opencode_core::model::{ChatRequest, Message};

use super::CHAT_STREAM;
use crate::error::ApiError;
use crate::web;

/// The seed's limits: the query's length in characters, and `max_tokens`.
const MAX_QUERY_CHARS: usize = 50_000;
const MAX_TOKENS: u32 = 128_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    query: String,
    mode: Option<String>,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    /// Accepted: as in the seed, `/api/v1/chat` answers whole and `/api/v1/chat/stream` streams.
    #[allow(dead_code)]
    stream: Option<bool>,
    /// Accepted, not stored.
    #[allow(dead_code)]
    metadata: Option<Map<String, Value>>,
}

/// How the client wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeedOptions {
    pub stream: bool,
}

/// A seed chat body: the request, its `model` set to the mode's alias (`opencode/<mode>`, as
/// every dialect names a mode), and how to answer: `/api/v1/chat/stream` streams.
pub fn parse(parts: &http::request::Parts, bytes: &[u8]) -> Result<(ChatRequest, SeedOptions), ApiError> {
    let body: Body = web::parse_json(parts, bytes)?;
    if body.query.trim().is_empty() || body.query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::param("query", format!("`query` must hold 1 to {MAX_QUERY_CHARS} characters")));
    }
    let mode = match body.mode.as_deref().unwrap_or("auto") {
        name @ ("auto" | "chat" | "knowledge" | "search" | "code" | "thinking" | "deep_research") => {
            super::platform_mode(name)
        }
        _ => {
            return Err(ApiError::param(
                "mode",
                "`mode` must be one of auto, chat, knowledge, search, code, thinking, deep_research".into(),
            ))
        }
    };
    if let Some(t) = body.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return Err(ApiError::param("temperature", format!("`temperature` must be between 0 and 2, got {t}")));
    }
    if body.max_tokens.is_some_and(|n| !(1..=MAX_TOKENS).contains(&n)) {
        return Err(ApiError::param("max_tokens", format!("`max_tokens` must be from 1 to {MAX_TOKENS}")));
    }
    let request = ChatRequest {
        messages: vec![Message::user(body.query)],
        model: Some(format!("opencode/{mode}")),
        temperature: body.temperature,
        max_tokens: body.max_tokens,
        ..ChatRequest::default()
    };
    Ok((request, SeedOptions { stream: parts.uri.path() == CHAT_STREAM }))
}
