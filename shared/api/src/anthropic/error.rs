//! Errors as Anthropic's API writes them, on every Anthropic-dialect path.

use serde_json::{json, Value};

use opencode_runtime::answer::Failure;
use opencode_runtime::Body;

use crate::error::ApiError;
use crate::web;

/// The error response: `{"type":"error","error":{"type","message"}}` at Anthropic's status (a
/// request the platform refuses is a 400, an unknown model a 404).
pub fn response(err: &ApiError) -> http::Response<Body> {
    let status = err.vendor_status();
    web::error_response(status, &json!({ "type": "error", "error": body(err, status) }))
}

/// The `error` object: Anthropic's type for the status, and the message.
fn body(err: &ApiError, status: http::StatusCode) -> Value {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    json!({ "type": kind, "message": err.to_string() })
}

/// The `error` object of a stream that failed after it started.
pub fn failure(failure: &Failure) -> Value {
    match failure {
        Failure::Interrupted(broken) => json!({ "type": "api_error", "message": broken.message }),
        Failure::Failed(err) => {
            let err = ApiError::from(err.clone());
            body(&err, err.status())
        }
    }
}
