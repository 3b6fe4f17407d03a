//! The seed's chat body: `{"query", "mode"?, "temperature"?, "max_tokens"?, "stream"?,
//! "metadata"?}`, with its limits, as the platform's chat body.

use serde::Deserialize;
use serde_json::{Map, Value};

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

/// A seed chat body as the platform's chat body, its `model` the mode's alias
/// (`opencode/<mode>`, as every dialect names a mode), and how to answer:
/// `/api/v1/chat/stream` streams.
pub fn translate(parts: &http::request::Parts, bytes: &[u8]) -> Result<(Map<String, Value>, SeedOptions), ApiError> {
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
    let stream = parts.uri.path() == CHAT_STREAM;
    let mut chat = Map::new();
    chat.insert("messages".into(), serde_json::json!([{ "role": "user", "content": body.query }]));
    chat.insert("model".into(), Value::String(format!("opencode/{mode}")));
    if let Some(t) = body.temperature {
        chat.insert("temperature".into(), Value::from(t));
    }
    if let Some(n) = body.max_tokens {
        chat.insert("max_tokens".into(), Value::from(n));
    }
    chat.insert("stream".into(), Value::Bool(stream));
    Ok((chat, SeedOptions { stream }))
}
