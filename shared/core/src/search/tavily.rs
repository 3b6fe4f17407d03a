//! Tavily Search.
//!
//! Request: `POST {base}/search` with `Authorization: Bearer tvly-...` (Tavily's current API
//! reference; the older `api_key` body field is not sent) and a JSON body: `query`,
//! `max_results`, `search_depth: "basic"`, and no generated answer, raw content or images —
//! the platform writes the answer itself and cites the pages.
//! Response: `{query, answer, images, results: [{title, url, content, score, raw_content}],
//! response_time}`. Errors: `{"detail": {"error": "..."}}` with 400, 401 (missing or invalid
//! key), 429, 432/433 (plan and pay-as-you-go limits), 5xx.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use serde_json::{json, Value};

use super::text::field;
use super::{SearchError, SearchProviderConfig};
use crate::outbound;

pub(super) fn build_request(
    config: &SearchProviderConfig,
    query: &str,
    max_results: usize,
) -> std::result::Result<http::Request<Bytes>, SearchError> {
    let uri = outbound::endpoint(&config.base_url, "search")?;
    let token = outbound::secret(&format!("Bearer {}", config.api_key))?;
    let body = json!({
        "query": query,
        "max_results": max_results,
        "search_depth": "basic",
        "include_answer": false,
        "include_raw_content": false,
        "include_images": false,
    });
    let headers: Vec<(HeaderName, HeaderValue)> =
        vec![(AUTHORIZATION, token), (ACCEPT, HeaderValue::from_static("application/json"))];
    Ok(outbound::post_json(uri, headers, &body)?)
}

/// `(title, url, content)` per result, in Tavily's order (by relevance). Read through
/// `serde_json::Value` rather than derived types: the Wasm already carries its parser.
pub(super) fn parse_response(body: &[u8]) -> std::result::Result<Vec<(String, String, String)>, SearchError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| SearchError::Malformed(format!("invalid json: {e}")))?;
    let results = value
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| SearchError::Malformed("no `results` list".into()))?;
    Ok(results.iter().map(|r| (field(r, "title"), field(r, "url"), field(r, "content"))).collect())
}

/// The vendor's message (`detail.error`, or `detail` itself when it is not that object), and
/// whether the key was refused.
pub(super) fn error(status: u16, body: &[u8]) -> (Option<String>, bool) {
    let detail = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("detail").cloned());
    let message = detail.map(|detail| match detail.get("error").and_then(Value::as_str) {
        Some(error) => error.to_string(),
        None => detail.as_str().map_or_else(|| detail.to_string(), str::to_string),
    });
    (message, status == 401)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::{self as search, SearchProviderKind, SearchResult};
    use super::*;

    const RESPONSE: &str = include_str!("../../tests/fixtures/tavily/search.json");
    const EMPTY: &str = include_str!("../../tests/fixtures/tavily/search_empty.json");
    const UNAUTHORIZED: &str = include_str!("../../tests/fixtures/tavily/error_unauthorized.json");
    const RATE_LIMITED: &str = include_str!("../../tests/fixtures/tavily/error_rate_limited.json");

    fn config(base: &str) -> SearchProviderConfig {
        SearchProviderConfig { kind: SearchProviderKind::Tavily, base_url: base.into(), api_key: "tvly-abc".into() }
    }

    #[test]
    fn the_request_is_a_bearer_authenticated_json_post_to_search() {
        let request = search::build_request(&config("https://api.tavily.com/"), "Who is Leo Messi?", 3).unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri().to_string(), "https://api.tavily.com/search");
        assert_eq!(request.headers()["authorization"], "Bearer tvly-abc");
        assert!(request.headers()["authorization"].is_sensitive());
        assert_eq!(request.headers()["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"query": "Who is Leo Messi?", "max_results": 3, "search_depth": "basic",
                "include_answer": false, "include_raw_content": false, "include_images": false})
        );
        assert!(!String::from_utf8_lossy(request.body()).contains("tvly-abc"), "the key stays out of the body");
    }

    #[test]
    fn max_results_is_clamped_to_the_platform_range() {
        let request = search::build_request(&config("https://api.tavily.com"), "q", 50).unwrap();
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(body["max_results"], 10);
    }

    #[test]
    fn a_bad_base_url_or_key_is_a_configuration_error() {
        assert!(matches!(search::build_request(&config("api.tavily.com"), "q", 3), Err(SearchError::Config(_))));
        let mut bad_key = config("https://api.tavily.com");
        bad_key.api_key = "tvly\nabc".into();
        assert!(matches!(search::build_request(&bad_key, "q", 3), Err(SearchError::Config(_))));
    }

    #[test]
    fn results_keep_web_pages_in_order_and_drop_the_rest() {
        let results = search::parse_response(SearchProviderKind::Tavily, RESPONSE.as_bytes()).unwrap();
        assert_eq!(results.len(), 2, "the ftp:// result is dropped");
        assert_eq!(
            results[0],
            SearchResult {
                title: "Lionel Messi Facts | Britannica".into(),
                url: "https://www.britannica.com/facts/Lionel-Messi".into(),
                snippet: "Lionel Messi, an Argentine footballer, is widely regarded as one of the greatest football players of his generation.".into(),
            }
        );
        assert!(results[1].snippet.starts_with("Lionel Andrés \"Leo\" Messi"));
        assert!(search::parse_response(SearchProviderKind::Tavily, EMPTY.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn bodies_not_in_tavilys_shape_are_malformed() {
        for body in ["", "{\"results\": [", "{\"answer\": \"no results field\"}", "[]"] {
            let err = search::parse_response(SearchProviderKind::Tavily, body.as_bytes()).unwrap_err();
            assert!(matches!(err, SearchError::Malformed(_)), "{body:?}: {err:?}");
        }
    }

    #[test]
    fn errors_carry_the_detail_and_say_when_the_key_was_refused() {
        let err = search::parse_error(SearchProviderKind::Tavily, 401, UNAUTHORIZED.as_bytes());
        assert_eq!(
            err,
            SearchError::Status {
                status: 401,
                message: "Unauthorized: missing or invalid API key.".into(),
                rejected_key: true
            }
        );
        let err = search::parse_error(SearchProviderKind::Tavily, 429, RATE_LIMITED.as_bytes());
        assert!(
            matches!(err, SearchError::Status { status: 429, rejected_key: false, ref message } if message.contains("excessive requests"))
        );
        let err = search::parse_error(SearchProviderKind::Tavily, 502, b"<html>bad gateway</html>");
        assert!(matches!(err, SearchError::Status { status: 502, ref message, .. } if message == "http status 502"));
    }
}
