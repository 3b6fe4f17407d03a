//! Errors as OpenAI's API writes them, on every OpenAI-dialect path.

use serde_json::{json, Value};

use opencode_runtime::answer::Failure;
use opencode_runtime::Body;

use crate::error::{ApiError, LimitKind};
use crate::web;

/// The error response: `{"error":{"message","type","param","code"}}` at OpenAI's status (a
/// request the platform refuses is a 400, as OpenAI's are; the SDKs raise `BadRequestError`).
pub fn response(err: &ApiError) -> http::Response<Body> {
    web::error_response(err.vendor_status(), &json!({ "error": body(err) }))
}

/// The `error` object.
pub fn body(err: &ApiError) -> Value {
    let code = match err {
        ApiError::UnknownModel(_) => "model_not_found",
        // The platform's own limits keep their codes (which limit); an upstream's 429 is OpenAI's.
        ApiError::LimitReached { .. } => err.code(),
        other if other.status() == http::StatusCode::TOO_MANY_REQUESTS => "rate_limit_exceeded",
        other => other.code(),
    };
    // OpenAI answers a spent quota with this type, and its SDKs and users know it.
    let kind = match err {
        ApiError::LimitReached { limit: LimitKind::Budget, .. } => "insufficient_quota",
        other => other.kind(),
    };
    json!({ "message": err.to_string(), "type": kind, "param": err.param_name(), "code": code })
}

/// The `error` object of a stream that failed after it started.
pub fn failure(failure: &Failure) -> Value {
    match failure {
        Failure::Interrupted(broken) => json!({
            "message": broken.message,
            "type": "upstream_error",
            "param": null,
            "code": "stream_interrupted",
        }),
        Failure::Failed(err) => body(&ApiError::from(err.clone())),
    }
}
