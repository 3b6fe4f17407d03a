//! The seed platform's own API (`/api/v1/...`), for the clients of the platform this one
//! replaces: its chat body and answer, its chat stream, and its error shape. Chat goes through
//! the same modes as every dialect; `mode` picks the mode as `opencode/<mode>` does elsewhere.

pub mod render;
pub mod request;

use serde_json::json;

use opencode_runtime::Body;

use crate::error::ApiError;
use crate::web;

/// The seed's chat paths: a whole answer, and a stream.
pub const CHAT: &str = "/api/v1/chat";
pub const CHAT_STREAM: &str = "/api/v1/chat/stream";
/// The seed's search (the search function) and sandbox run (the code function).
pub const SEARCH: &str = "/api/v1/search";
pub const SANDBOX_EXECUTE: &str = "/api/v1/sandbox/execute";

/// Whether `path` is one of the seed's.
pub fn serves(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The platform's name for a seed mode name (its `deep_research` is `research`).
pub fn platform_mode(name: &str) -> &str {
    match name {
        "deep_research" => "research",
        other => other,
    }
}

/// The seed's mode name for a platform mode (`research` is its `deep_research`).
pub fn mode_name(mode: opencode_core::routing::Mode) -> &'static str {
    match mode {
        opencode_core::routing::Mode::Research => "deep_research",
        other => other.as_str(),
    }
}

/// The error response: `{"error_code","message","trace_id"}` at the platform's status, the
/// code upper-cased as the seed's are.
pub fn error_response(err: &ApiError, request_id: &str) -> http::Response<Body> {
    let body =
        json!({ "error_code": err.code().to_ascii_uppercase(), "message": err.to_string(), "trace_id": request_id });
    web::error_response(err.status(), &body)
}
