//! OpenAI's dialect: the Chat Completions request (`chat_request`), its answer and stream
//! (`chat_render`), the model list (`models`), embeddings (`embeddings`) and OpenAI's error shape (`error`), over the same runtime reply every
//! dialect renders.

pub mod chat_render;
pub mod chat_request;
pub mod embeddings;
pub mod error;
pub mod models;

/// The Chat Completions path.
pub const CHAT_COMPLETIONS: &str = "/v1/chat/completions";

/// Whether `path` speaks OpenAI's dialect (its errors included).
pub fn serves(path: &str) -> bool {
    path == CHAT_COMPLETIONS
        || path == embeddings::EMBEDDINGS
        || path == models::MODELS
        || path.starts_with("/v1/models/")
}
