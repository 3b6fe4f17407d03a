//! Anthropic's dialect: the Messages request (`request`), its answer and stream (`render`)
//! and Anthropic's error shape (`error`), over the same runtime reply every dialect renders.

pub mod error;
pub mod render;
pub mod request;

/// The Messages path.
pub const MESSAGES: &str = "/v1/messages";
/// Counting a Messages body's input tokens (answered by the gateway).
pub const COUNT_TOKENS: &str = "/v1/messages/count_tokens";
