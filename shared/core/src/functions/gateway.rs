//! The gateway: the public entry point. It routes by path to the function that serves it
//! (a service binding on Cloudflare, `*.spin.internal` on Spin) and passes the answer back
//! untouched, streams included. Unknown paths get a 404 here.

use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::host::{Body, Host, HostError};
use crate::web;

/// Which function serves `path`.
pub fn route(path: &str) -> Option<&'static str> {
    let under = |prefix: &str| {
        path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if path == "/health" || under("/admin") {
        return Some("admin");
    }
    ["chat", "knowledge", "search", "code", "thinking", "research"]
        .into_iter()
        .find(|mode| under(&format!("/v1/{mode}")))
}

pub(super) async fn handle<H: Host>(
    host: &H,
    request: http::Request<Body>,
    request_id: &str,
) -> Result<http::Response<Body>, ApiError> {
    let path = request.uri().path().to_string();
    let function = route(&path).ok_or_else(|| ApiError::NotFound(path.clone()))?;
    let limit = host
        .var("MAX_BODY_BYTES")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let (mut parts, body) = request.into_parts();
    let body = web::read_body(&parts, body, limit).await?;
    if let Ok(id) = http::HeaderValue::from_str(request_id) {
        parts.headers.insert(web::REQUEST_ID, id);
    }
    let forwarded = http::Request::from_parts(parts, body);
    host.call_function(function, forwarded).await.map_err(|err| match err {
        HostError::NoService(name) => ApiError::NotConfigured(format!("the {name} function is not bound")),
        other => ApiError::Internal(format!("the {function} function did not answer: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn paths_route_by_whole_segments() {
        assert_eq!(route("/health"), Some("admin"));
        assert_eq!(route("/admin/keys"), Some("admin"));
        assert_eq!(route("/v1/chat"), Some("chat"));
        assert_eq!(route("/v1/chat/x"), Some("chat"));
        assert_eq!(route("/v1/chatty"), None);
        assert_eq!(route("/v1/research"), Some("research"));
        assert_eq!(route("/v1/knowledge/documents"), Some("knowledge"));
        assert_eq!(route("/administrator"), None);
        assert_eq!(route("/"), None);
    }
}
