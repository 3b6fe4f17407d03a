//! HTTP plumbing shared by every function: request ids, body reading, JSON, SSE and error
//! responses.

use bytes::Bytes;
use futures::stream::{LocalBoxStream, StreamExt};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorBody};
use opencode_runtime::host::{Body, Host, HostError};

pub const REQUEST_ID: &str = "x-request-id";

/// The caller's `x-request-id` when it is a sane token, else a fresh `req_<hex>`.
pub fn request_id<H: Host>(host: &H, headers: &http::HeaderMap) -> String {
    let caller = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| {
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    });
    match caller {
        Some(id) => id.to_string(),
        None => {
            let mut bytes = [0u8; 12];
            host.random_bytes(&mut bytes);
            format!("req_{}", opencode_core::hex(&bytes))
        }
    }
}

/// The length a message declares (`content-length`), when it declares a valid one.
pub fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Reads the whole body, refusing more than `limit` bytes (early, from `content-length`, when
/// the client declared it).
pub async fn read_body(parts: &http::request::Parts, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if declared_length(&parts.headers).is_some_and(|len| len > limit as u64) {
        // Read what a reasonable client is still sending, so it gets the 413, not a reset.
        body.drain_oversized(limit).await;
        return Err(ApiError::PayloadTooLarge { limit });
    }
    body.collect(limit).await.map_err(|err| match err {
        HostError::TooLarge => ApiError::PayloadTooLarge { limit },
        other => ApiError::InvalidRequest(format!("could not read the request body: {other}")),
    })
}

/// The body of a POST request, read within `limit`; any other method is a 405.
pub async fn read_post(parts: &http::request::Parts, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    if parts.method != http::Method::POST {
        return Err(ApiError::MethodNotAllowed { method: parts.method.to_string(), path: parts.uri.path().into() });
    }
    read_body(parts, body, limit).await
}

/// Parses a JSON body: syntax errors are 400 `malformed_json`, shape errors (wrong types,
/// missing or unknown fields) 422 `validation_failed`.
pub fn parse_json<T: DeserializeOwned>(parts: &http::request::Parts, body: &[u8]) -> Result<T, ApiError> {
    let content_type =
        parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson("the body is empty".into()));
    }
    serde_json::from_slice(body).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => ApiError::Validation(err.to_string()),
        _ => ApiError::MalformedJson(err.to_string()),
    })
}

/// Makes an `x-api-key` header (Anthropic's clients send the token there) the request's bearer
/// token, unless it has an `authorization` header already; the key header is removed so it is
/// never forwarded.
pub fn bearer_from_api_key(headers: &mut http::HeaderMap) {
    let Some(key) = headers.remove("x-api-key") else { return };
    if headers.contains_key(http::header::AUTHORIZATION) {
        return;
    }
    let bearer = key.to_str().ok().and_then(|key| http::HeaderValue::from_str(&format!("Bearer {}", key.trim())).ok());
    if let Some(mut bearer) = bearer {
        bearer.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, bearer);
    }
}

/// Parses a JSON body that must be an object (every request body is), as [`parse_json`] does.
pub fn parse_object(
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match parse_json(parts, body)? {
        serde_json::Value::Object(object) => Ok(object),
        _ => Err(ApiError::Validation("the body must be a JSON object".into())),
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): a relay must not
/// pass them on.
const HOP_BY_HOP: [http::HeaderName; 9] = [
    http::header::CONNECTION,
    http::HeaderName::from_static("keep-alive"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// Removes the hop-by-hop headers from `headers`, and those the `connection` header names.
pub fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Most messages carry none, and one look at each name tells; removing by name hashes it.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    for name in &named {
        headers.remove(name.as_str());
    }
}

/// A JSON response.
pub fn json<T: serde::Serialize + ?Sized>(status: http::StatusCode, value: &T) -> http::Response<Body> {
    // Straight into bytes: `Value`'s `Display` goes through the formatting machinery, which was
    // a measurable part of a short answer's cost. Only a map with non-string keys could fail,
    // and the platform writes none.
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = http::Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// The JSON error response for `err`, in the platform's dialect.
pub fn error(err: &ApiError, request_id: &str) -> http::Response<Body> {
    error_response(err.status(), &ErrorBody { error: err.to_json(request_id) })
}

/// An error response in any dialect: a 401 says which scheme to use.
pub fn error_response<T: serde::Serialize + ?Sized>(status: http::StatusCode, body: &T) -> http::Response<Body> {
    let mut response = json(status, body);
    if status == http::StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
    }
    response
}

/// A streamed `text/event-stream` response; every frame is flushed as produced.
pub fn sse(frames: LocalBoxStream<'static, Bytes>) -> http::Response<Body> {
    let mut response = http::Response::new(Body::Stream(frames.map(Ok).boxed_local()));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    response
}

/// A streamed response with an SSE comment line (`: keepalive`) every `every_ms` until its last
/// frame; a whole response as it is.
pub fn with_keepalive<H: Host>(host: &H, response: http::Response<Body>, every_ms: u64) -> http::Response<Body> {
    enum Item {
        Frame(Result<Bytes, HostError>),
        Tick,
        End,
    }
    let (parts, body) = response.into_parts();
    let Body::Stream(frames) = body else { return http::Response::from_parts(parts, body) };
    let frames = frames.map(Item::Frame).chain(futures::stream::once(async { Item::End }));
    let ticks = futures::stream::unfold(host.clone(), move |host| async move {
        host.sleep(every_ms).await;
        Some((Item::Tick, host))
    });
    let merged = futures::stream::select(frames, ticks)
        .take_while(|item| std::future::ready(!matches!(item, Item::End)))
        .map(|item| match item {
            Item::Frame(frame) => frame,
            Item::Tick | Item::End => Ok(Bytes::from_static(b": keepalive\n\n")),
        });
    http::Response::from_parts(parts, Body::Stream(merged.boxed_local()))
}

/// Sets a header from text that may not be a valid header value (skipped if not).
pub fn set_header(response: &mut http::Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = http::HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// A query parameter's value as sent (still percent-encoded); `None` when absent.
pub fn query_raw<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// A query parameter's value, percent-decoded; `None` when absent.
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    let value = query_raw(query, name)?;
    Some(percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hop_by_hop_headers_and_those_connection_names_are_stripped() {
        let mut plain = http::HeaderMap::new();
        plain.insert("x-private", http::HeaderValue::from_static("kept: no connection names it"));
        plain.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        let before = plain.clone();
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain, before);

        let mut relayed = before;
        relayed.insert(http::header::CONNECTION, http::HeaderValue::from_static("Keep-Alive, X-Private"));
        relayed.insert("keep-alive", http::HeaderValue::from_static("timeout=5"));
        relayed.insert(http::header::TRANSFER_ENCODING, http::HeaderValue::from_static("chunked"));
        strip_hop_by_hop(&mut relayed);
        let left: Vec<&str> = relayed.keys().map(http::HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);
    }
}
