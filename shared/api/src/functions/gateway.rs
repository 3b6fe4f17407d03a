//! The gateway: the public entry point. It routes by path to the function that serves it
//! (a service binding on Cloudflare, `*.spin.internal` on Spin) and passes the answer back
//! untouched, streams included. `/v1/route` and `/v1/process` it answers itself (route.rs).
//! Unknown paths get a 404 here.

use crate::error::ApiError;
use crate::web;
use opencode_runtime::config::DEFAULT_MAX_BODY_BYTES;
use opencode_runtime::host::{Body, Host, HostError};

/// Where a path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Forwarded untouched to the named function.
    Function(&'static str),
    /// `POST /v1/route`: the routing decision alone.
    Route,
    /// `POST /v1/process`: route, then run the chosen mode.
    Process,
    /// `GET /v1/models[/{id}]`: the models a client can name, in OpenAI's shape.
    Models,
    /// A vendor's chat path: to the function of the mode its `model` names (route.rs).
    Vendor,
    /// The seed's document upload and status, over the knowledge function (documents.rs).
    SeedDocuments,
    /// `POST /v1/embeddings` (embeddings.rs).
    Embeddings,
    /// Token estimates (tokens.rs): the platform's and Anthropic's `count_tokens`.
    Estimate,
    CountTokens,
    /// `POST /api/v1/auth/token`: an API key exchanged for a short-lived token (auth_token.rs).
    AuthToken,
}

/// The seed's token path.
pub const AUTH_TOKEN: &str = "/api/v1/auth/token";

/// The routing table.
pub fn route(path: &str) -> Option<Destination> {
    let under = |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    match path {
        "/v1/route" => return Some(Destination::Route),
        "/v1/process" => return Some(Destination::Process),
        _ => {}
    }
    if under(crate::openai::models::MODELS) {
        return Some(Destination::Models);
    }
    match path {
        "/v1/tokens/estimate" => return Some(Destination::Estimate),
        AUTH_TOKEN => return Some(Destination::AuthToken),
        crate::anthropic::COUNT_TOKENS => return Some(Destination::CountTokens),
        _ => {}
    }
    if path == crate::seed::documents::UPLOAD || path.starts_with(crate::seed::documents::STATUS) {
        return Some(Destination::SeedDocuments);
    }
    if under("/health") || path == METRICS || path == SEED_STATUS || path == crate::seed::METRICS || under("/admin") {
        return Some(Destination::Function("admin"));
    }
    if path == crate::openai::embeddings::EMBEDDINGS {
        return Some(Destination::Embeddings);
    }
    // The vendors' chat paths go to the mode their model names; chat has no path below its own.
    if super::dialect::VENDOR_PATHS.contains(&path) {
        return Some(Destination::Vendor);
    }
    if path == "/v1/chat" {
        return Some(Destination::Function("chat"));
    }
    match path {
        crate::seed::SEARCH => return Some(Destination::Function("search")),
        crate::seed::SANDBOX_EXECUTE => return Some(Destination::Function("code")),
        _ => {}
    }
    ["knowledge", "search", "code", "thinking", "research"]
        .into_iter()
        .find(|mode| under(&format!("/v1/{mode}")))
        .map(Destination::Function)
}

/// The seed's status path, answered by the admin function.
pub const SEED_STATUS: &str = "/api/status";

/// Prometheus' scrape path, answered by the admin function.
pub const METRICS: &str = "/metrics";

/// Paths answered without a platform token (the token exchange and `/metrics` check their own
/// credentials).
pub fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/health/ready" | SEED_STATUS | AUTH_TOKEN | METRICS)
}

/// The body limit, read without parsing the rest of the configuration (forwarding is the hot
/// path and must not fail on configuration only the functions read).
pub(super) fn body_limit<H: Host>(host: &H) -> usize {
    host.var("MAX_BODY_BYTES").and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAX_BODY_BYTES)
}

/// Forwards a request to `function` with its body read whole (bounded) and the request id set.
/// The body goes on with its length, whatever framing the caller used (a chunked upload, say),
/// so the function can read it in one go; the caller's connection headers stay behind.
pub(super) async fn forward<H: Host>(
    host: &H,
    function: &str,
    request: http::Request<Body>,
    request_id: &str,
) -> Result<http::Response<Body>, ApiError> {
    let (parts, body) = request.into_parts();
    let body = web::read_body(&parts, body, body_limit(host)).await?;
    forward_read(host, function, parts, body, request_id).await
}

/// Forwards a request whose body has been read.
pub(super) async fn forward_read<H: Host>(
    host: &H,
    function: &str,
    mut parts: http::request::Parts,
    body: bytes::Bytes,
    request_id: &str,
) -> Result<http::Response<Body>, ApiError> {
    web::strip_hop_by_hop(&mut parts.headers);
    if body.is_empty() {
        parts.headers.remove(http::header::CONTENT_LENGTH);
    } else {
        parts.headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    }
    if let Ok(id) = http::HeaderValue::from_str(request_id) {
        parts.headers.insert(web::REQUEST_ID, id);
    }
    call(host, function, http::Request::from_parts(parts, body)).await
}

/// The caller's headers a sibling function needs when the gateway or a function relays a request
/// on the caller's behalf.
const ON_BEHALF: [http::HeaderName; 3] =
    [http::header::AUTHORIZATION, http::header::CACHE_CONTROL, http::header::ACCEPT];

/// A JSON `POST` of `body` to `path` of a sibling function on the caller's behalf, on `tier`
/// when one was decided:
/// with the caller's credentials and preferences ([`ON_BEHALF`]) and the request id.
pub(super) fn on_behalf(
    caller: &http::HeaderMap,
    request_id: &str,
    path: &str,
    tier: Option<opencode_core::routing::Tier>,
    body: bytes::Bytes,
) -> Result<http::Request<bytes::Bytes>, ApiError> {
    let mut request = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(web::REQUEST_ID, request_id)
        .body(body)
        .map_err(|err| ApiError::Internal(format!("could not build the request for {path}: {err}")))?;
    if let Some(tier) = tier {
        let tier = http::HeaderValue::from_static(tier.as_str());
        request.headers_mut().insert(crate::platform::request::TIER_HEADER, tier);
    }
    for name in ON_BEHALF {
        if let Some(value) = caller.get(&name) {
            request.headers_mut().insert(name, value.clone());
        }
    }
    Ok(request)
}

/// Calls a sibling function, mapping a missing binding to 503.
pub(super) async fn call<H: Host>(
    host: &H,
    function: &str,
    request: http::Request<bytes::Bytes>,
) -> Result<http::Response<Body>, ApiError> {
    host.call_function(function, request).await.map_err(|err| match err {
        HostError::NoService(name) => ApiError::NotConfigured(format!("the {name} function is not bound")),
        other => ApiError::Internal(format!("the {function} function did not answer: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::{route, Destination};

    #[test]
    fn paths_route_by_whole_segments() {
        let to = |name| Some(Destination::Function(name));
        assert_eq!(route("/health"), to("admin"));
        assert_eq!(route("/health/ready"), to("admin"));
        assert_eq!(route("/metrics"), to("admin"));
        assert_eq!(route("/admin/keys"), to("admin"));
        assert_eq!(route("/v1/chat"), to("chat"));
        assert_eq!(route("/v1/chat/completions"), Some(Destination::Vendor));
        assert_eq!(route("/v1/chat/x"), None);
        assert_eq!(route("/v1/chatty"), None);
        assert_eq!(route("/v1/research"), to("research"));
        assert_eq!(route("/v1/knowledge/documents"), to("knowledge"));
        assert_eq!(route("/v1/route"), Some(Destination::Route));
        assert_eq!(route("/v1/process"), Some(Destination::Process));
        assert_eq!(route("/v1/models"), Some(Destination::Models));
        assert_eq!(route("/v1/embeddings"), Some(Destination::Embeddings));
        assert_eq!(route("/v1/messages"), Some(Destination::Vendor));
        assert_eq!(route("/v1/responses"), Some(Destination::Vendor));
        assert_eq!(route("/api/v1/chat/stream"), Some(Destination::Vendor));
        assert_eq!(route("/api/status"), to("admin"));
        assert_eq!(route("/api/v1/metrics"), to("admin"));
        assert_eq!(route("/v1/tokens/estimate"), Some(Destination::Estimate));
        assert_eq!(route("/v1/messages/count_tokens"), Some(Destination::CountTokens));
        assert_eq!(route("/api/v1/documents/upload"), Some(Destination::SeedDocuments));
        assert_eq!(route("/api/v1/documents/status/upload-1"), Some(Destination::SeedDocuments));
        assert_eq!(route("/api/v1/search"), to("search"));
        assert_eq!(route("/api/v1/auth/token"), Some(Destination::AuthToken));
        assert_eq!(route("/api/v1/sandbox/execute"), to("code"));
        assert_eq!(route("/v1/models/openai%2Fgpt-x"), Some(Destination::Models));
        assert_eq!(route("/v1/process/x"), None);
        assert_eq!(route("/administrator"), None);
        assert_eq!(route("/"), None);
    }
}
