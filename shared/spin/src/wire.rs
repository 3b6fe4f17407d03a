//! Pure translations between the core's names and Spin's: no I/O, so they build and are tested
//! on every target.

use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH};
use http::{Method, StatusCode};

const HTTP2_SETTINGS: http::HeaderName = http::HeaderName::from_static("http2-settings");

/// Removes what `wasi:http` refuses on requests and responses a guest builds (the runtime owns
/// framing and takes the authority from the URL): the hop-by-hop headers, and `host` and
/// `http2-settings`. Dropping them beats failing the whole request.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    opencode_api::web::strip_hop_by_hop(headers);
    headers.remove(http::header::HOST);
    headers.remove(HTTP2_SETTINGS);
}

/// Declares the length of a body held whole, so the runtime frames the message with
/// `content-length` rather than chunked encoding: the peer then reads it in one go instead of
/// waiting for a terminating chunk. Responses that have no body by definition and requests
/// without a body are left alone.
pub fn declare_response_length(headers: &mut HeaderMap, status: StatusCode, len: usize) {
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    if !bodiless {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
}

/// [`declare_response_length`] for a request: bodies of methods that carry one (an empty POST is
/// declared `0`), and any non-empty body.
pub fn declare_request_length(headers: &mut HeaderMap, method: &Method, len: usize) {
    let carries_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if carries_body || len > 0 {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
}

/// A body stream that ends as soon as `declared` bytes have arrived. Reading on would cost two
/// more trips through the runtime (a read that finds the stream closed, then the trailers,
/// which a body framed by `content-length` cannot have); the runtime itself refuses a body
/// longer than its declared length.
pub fn until_declared<S, E>(stream: S, declared: Option<u64>) -> impl futures::Stream<Item = Result<bytes::Bytes, E>>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let remaining = declared.unwrap_or(u64::MAX);
    futures::stream::unfold((stream, remaining), |(mut stream, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let chunk = futures::StreamExt::next(&mut stream).await?;
        let left = match &chunk {
            Ok(bytes) => remaining.saturating_sub(bytes.len() as u64),
            Err(_) => 0,
        };
        Some((chunk, (stream, left)))
    })
}

/// Whether `name` is a Spin component id: kebab-case ASCII, starting with a letter.
pub fn is_component_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// The URL of a sibling component through Spin's service chaining:
/// `http://{name}.spin.internal{path_and_query}`. `None` when `name` is not a component id.
pub fn function_url(name: &str, path_and_query: &str) -> Option<String> {
    if !is_component_name(name) {
        return None;
    }
    let path = if path_and_query.starts_with('/') { path_and_query.to_owned() } else { format!("/{path_and_query}") };
    Some(format!("http://{name}.spin.internal{path}"))
}

/// The Spin variable behind the core's upper-case configuration name: `OPENAI_API_KEY` becomes
/// `openai_api_key`. `None` when the result is not a valid Spin variable name (lower-case ASCII
/// letters, digits and single underscores, starting with a letter), since Spin would refuse it.
pub fn variable_name(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let mut chars = lower.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !lower.ends_with('_')
        && !lower.contains("__");
    valid.then_some(lower)
}

/// Milliseconds since the Unix epoch from a `wasi:clocks` instant; times before the epoch are 0.
pub fn epoch_millis(seconds: i64, nanoseconds: u32) -> u64 {
    let Ok(seconds) = u64::try_from(seconds) else {
        return 0;
    };
    seconds.saturating_mul(1000).saturating_add(u64::from(nanoseconds / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencode_api::web::declared_length;

    #[test]
    fn function_urls_use_spin_service_chaining() {
        assert_eq!(function_url("chat", "/v1/chat?x=1").as_deref(), Some("http://chat.spin.internal/v1/chat?x=1"));
        assert_eq!(function_url("admin", "health").as_deref(), Some("http://admin.spin.internal/health"));
        assert_eq!(function_url("my-fn2", "/").as_deref(), Some("http://my-fn2.spin.internal/"));
    }

    #[test]
    fn function_urls_refuse_names_that_are_not_component_ids() {
        for bad in ["", "Chat", "chat.evil.com", "chat/x", "-chat", "chat-", "a--b", "1chat", "chat@x"] {
            assert_eq!(function_url(bad, "/"), None, "{bad:?}");
        }
    }

    #[test]
    fn variable_names_are_lower_cased_and_validated() {
        assert_eq!(variable_name("OPENAI_API_KEY").as_deref(), Some("openai_api_key"));
        assert_eq!(variable_name("max_retries").as_deref(), Some("max_retries"));
        for bad in ["", "_X", "A-B", "A__B", "A_", "1A", "A.B", "ÄB"] {
            assert_eq!(variable_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_stripped_and_others_kept() {
        let mut headers = HeaderMap::new();
        for name in
            ["connection", "transfer-encoding", "upgrade", "host", "content-type", "content-length", "authorization"]
        {
            headers.insert(http::HeaderName::from_static(name), http::HeaderValue::from_static("x"));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(http::HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "content-length", "content-type"]);
    }

    #[test]
    fn a_declared_body_ends_at_its_length_without_another_read() {
        use futures::{stream, StreamExt};
        let chunks = |parts: &[&'static str]| {
            parts.iter().map(|p| Ok::<_, ()>(bytes::Bytes::from_static(p.as_bytes()))).collect::<Vec<_>>()
        };
        // The source never ends: only the declared length can stop the reading.
        let endless = || stream::iter(chunks(&["ab", "cd"])).chain(stream::pending());
        let read = futures::executor::block_on(until_declared(endless(), Some(4)).collect::<Vec<_>>());
        assert_eq!(read, chunks(&["ab", "cd"]));
        let read = futures::executor::block_on(until_declared(stream::iter(chunks(&["ab"])), None).collect::<Vec<_>>());
        assert_eq!(read, chunks(&["ab"]), "an undeclared body reads to its end");
        let empty = futures::executor::block_on(until_declared(endless(), Some(0)).collect::<Vec<_>>());
        assert!(empty.is_empty());
    }

    #[test]
    fn whole_bodies_are_declared_with_their_length() {
        use http::{Method, StatusCode};
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        declare_response_length(&mut headers, StatusCode::OK, 12);
        assert_eq!(declared_length(&headers), Some(12), "a stale length is replaced");
        let mut headers = HeaderMap::new();
        declare_response_length(&mut headers, StatusCode::NO_CONTENT, 0);
        declare_response_length(&mut headers, StatusCode::NOT_MODIFIED, 0);
        assert_eq!(declared_length(&headers), None);

        let mut headers = HeaderMap::new();
        declare_request_length(&mut headers, &Method::GET, 0);
        assert_eq!(declared_length(&headers), None, "a GET without a body says nothing");
        declare_request_length(&mut headers, &Method::POST, 0);
        assert_eq!(declared_length(&headers), Some(0));
        declare_request_length(&mut headers, &Method::DELETE, 7);
        assert_eq!(declared_length(&headers), Some(7));
    }

    #[test]
    fn epoch_millis_saturates_and_clamps() {
        assert_eq!(epoch_millis(1_700_000_000, 123_456_789), 1_700_000_000_123);
        assert_eq!(epoch_millis(-5, 0), 0);
        assert_eq!(epoch_millis(i64::MAX, 999_999_999), u64::MAX);
    }
}
