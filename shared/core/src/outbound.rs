//! The outbound requests every translation builds (providers, web search, the sandbox):
//! checked endpoints, header values that hold secrets, and JSON posts.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use serde::Serialize;

/// A request that cannot be built from the configuration. The message quotes no URL and no
/// key: a base URL can carry credentials (`https://user:pass@host`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unbuildable(pub String);

/// Joins a base URL and a path with exactly one slash between them.
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// `base` + `path` as an absolute `http(s)` URI.
pub fn endpoint(base: &str, path: &str) -> Result<http::Uri, Unbuildable> {
    let invalid = || Unbuildable("base url is not an absolute http(s) url".to_owned());
    if base.trim().is_empty() {
        return Err(invalid());
    }
    let uri: http::Uri = join_url(base, path).parse().map_err(|_| invalid())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(uri)
}

/// `text` as an absolute `http(s)` URI with a host, as given (no path added).
pub fn absolute_url(text: &str) -> Option<http::Uri> {
    let uri = text.parse::<http::Uri>().ok()?;
    (matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|h| !h.is_empty())).then_some(uri)
}

/// A header value holding a secret: marked sensitive so `http`'s Debug output hides it, and
/// never quoted in the error.
pub fn secret(value: &str) -> Result<HeaderValue, Unbuildable> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| Unbuildable("api key contains characters not allowed in a header".to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `POST uri` with a JSON body and the given extra headers.
pub fn post_json<T: Serialize>(
    uri: http::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: &T,
) -> Result<http::Request<Bytes>, Unbuildable> {
    let body = serde_json::to_vec(body).map_err(|e| Unbuildable(format!("request body does not serialize: {e}")))?;
    let mut request = http::Request::new(Bytes::from(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    let map = request.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        map.insert(name, value);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn endpoint_accepts_http_and_https_and_joins_with_one_slash() {
        let uri = endpoint("https://api.openai.com/v1/", "/chat/completions").unwrap();
        assert_eq!(uri.to_string(), "https://api.openai.com/v1/chat/completions");
        let uri = endpoint("http://localhost:11434/v1", "chat/completions").unwrap();
        assert_eq!(uri.to_string(), "http://localhost:11434/v1/chat/completions");
    }

    #[test]
    fn endpoint_rejects_relative_empty_and_non_http_urls() {
        for base in ["", "   ", "api.openai.com/v1", "ftp://host/v1", "not a url", "https://"] {
            assert!(endpoint(base, "chat/completions").is_err(), "{base:?}");
        }
    }

    #[test]
    fn endpoint_error_does_not_echo_credentials_in_the_url() {
        let err = endpoint("https://user:hunter2@ bad host", "x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
