//! OpenAI's dialect: the Chat Completions request (`chat_request`), its answer and stream
//! (`chat_render`), the same for Responses (`responses_request`, `responses_render`), the model list (`models`), embeddings (`embeddings`) and OpenAI's error shape (`error`), over the same runtime reply every
//! dialect renders.

pub mod chat_render;
pub mod chat_request;
pub mod embeddings;
pub mod error;
pub mod models;
pub mod responses_render;
pub mod responses_request;

/// The Chat Completions path.
pub const CHAT_COMPLETIONS: &str = "/v1/chat/completions";

/// The Responses path.
pub const RESPONSES: &str = "/v1/responses";

/// Whether `path` speaks OpenAI's dialect (its errors included).
pub fn serves(path: &str) -> bool {
    path == CHAT_COMPLETIONS
        || path == RESPONSES
        || path == embeddings::EMBEDDINGS
        || path == models::MODELS
        || path.starts_with("/v1/models/")
}
