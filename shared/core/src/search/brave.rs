//! Brave Web Search.
//!
//! Request: `GET {base}/res/v1/web/search?q=...&count=N&result_filter=web&text_decorations=false`
//! with `X-Subscription-Token: <key>` and `Accept: application/json` (no `Accept-Encoding`:
//! the runtimes' fetch decodes what it asked for, and nothing is asked for here).
//! Response: `{type: "search", query: {...}, web: {results: [{title, url, description, ...}]}}`;
//! `web` is absent when nothing matched. Errors: `{type: "ErrorResponse", error: {id, status,
//! code, detail, meta}}` — a wrong or missing key is 422 `SUBSCRIPTION_TOKEN_INVALID`
//! (component `authentication`), rate limits 429 `RATE_LIMITED`. Some documented examples
//! carry an `errors` list instead of one `error`: both are read.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT};
use serde_json::Value;

use super::text::{field, percent_encode};
use super::{SearchError, SearchProviderConfig};
use crate::outbound;

pub(super) fn build_request(
    config: &SearchProviderConfig,
    query: &str,
    max_results: usize,
) -> Result<http::Request<Bytes>, SearchError> {
    let path = format!(
        "res/v1/web/search?q={}&count={max_results}&result_filter=web&text_decorations=false",
        percent_encode(query)
    );
    let uri = outbound::endpoint(&config.base_url, &path)?;
    let token = outbound::secret(&config.api_key)?;
    let mut request = http::Request::new(Bytes::new());
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(HeaderName::from_static("x-subscription-token"), token);
    Ok(request)
}

/// `(title, url, description)` per web result, in Brave's order.
pub(super) fn parse_response(body: &[u8]) -> Result<Vec<(String, String, String)>, SearchError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| SearchError::Malformed(format!("invalid json: {e}")))?;
    let kind = value.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind != "search" {
        return Err(SearchError::Malformed(format!("response type `{kind}`, not `search`")));
    }
    let results = match value.get("web") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(web) => web
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| SearchError::Malformed("`web` without a `results` list".into()))?,
    };
    Ok(results.iter().map(|r| (field(r, "title"), field(r, "url"), field(r, "description"))).collect())
}

/// The vendor's `code: detail`, and whether the key was refused (401/403, or any error from
/// the `authentication` component such as 422 `SUBSCRIPTION_TOKEN_INVALID`).
pub(super) fn error(status: u16, body: &[u8]) -> (Option<String>, bool) {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let error = parsed.as_ref().and_then(|v| {
        v.get("error").filter(|e| e.is_object()).or_else(|| v.get("errors").and_then(|list| list.get(0)))
    });
    let Some(error) = error else {
        return (None, matches!(status, 401 | 403));
    };
    let component = error.get("meta").map(|m| field(m, "component")).unwrap_or_default();
    let code = field(error, "code");
    let detail = field(error, "detail");
    let rejected_key =
        matches!(status, 401 | 403) || component == "authentication" || code.starts_with("SUBSCRIPTION_TOKEN");
    let message = match (code.is_empty(), detail.is_empty()) {
        (false, false) => format!("{code}: {detail}"),
        (true, false) => detail,
        (false, true) => code,
        (true, true) => return (None, rejected_key),
    };
    (Some(message), rejected_key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::{self as search, SearchProviderKind};
    use super::*;

    const RESPONSE: &str = include_str!("../../tests/fixtures/brave/web_search.json");
    const NO_WEB: &str = include_str!("../../tests/fixtures/brave/web_search_no_web.json");
    const TOKEN_INVALID: &str = include_str!("../../tests/fixtures/brave/error_token_invalid.json");
    const RATE_LIMITED: &str = include_str!("../../tests/fixtures/brave/error_rate_limited.json");

    fn config() -> SearchProviderConfig {
        SearchProviderConfig {
            kind: SearchProviderKind::Brave,
            base_url: "https://api.search.brave.com".into(),
            api_key: "BSA-key".into(),
        }
    }

    #[test]
    fn the_request_is_a_get_with_the_query_encoded_and_the_token_in_a_header() {
        let request = search::build_request(&config(), "rust & wasm: edge?", 4).unwrap();
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(
            request.uri().to_string(),
            "https://api.search.brave.com/res/v1/web/search?q=rust%20%26%20wasm%3A%20edge%3F&count=4&result_filter=web&text_decorations=false"
        );
        assert_eq!(request.headers()["x-subscription-token"], "BSA-key");
        assert!(request.headers()["x-subscription-token"].is_sensitive());
        assert_eq!(request.headers()["accept"], "application/json");
        assert!(request.body().is_empty());
        assert!(!request.uri().to_string().contains("BSA-key"), "the key stays out of the url");
    }

    #[test]
    fn web_results_are_read_with_markup_removed_and_duplicates_dropped() {
        let results = search::parse_response(SearchProviderKind::Brave, RESPONSE.as_bytes()).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].title, "Private Search Engine - Brave Search");
        assert_eq!(results[0].url, "https://search.brave.com/");
        assert_eq!(
            results[0].snippet,
            "Search the web privately. Brave Search is an independent index & it doesn't track you."
        );
        assert_eq!(results[1].url, "https://brave.com/search/api/");
    }

    #[test]
    fn no_web_section_means_no_results() {
        assert!(search::parse_response(SearchProviderKind::Brave, NO_WEB.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn bodies_not_in_braves_shape_are_malformed() {
        for body in ["", "{\"type\":\"search\",\"web\":", "{\"web\":{\"results\":[]}}", TOKEN_INVALID] {
            let err = search::parse_response(SearchProviderKind::Brave, body.as_bytes()).unwrap_err();
            assert!(matches!(err, SearchError::Malformed(_)), "{body:?}: {err:?}");
        }
    }

    #[test]
    fn a_refused_token_is_a_422_from_the_authentication_component() {
        let err = search::parse_error(SearchProviderKind::Brave, 422, TOKEN_INVALID.as_bytes());
        assert_eq!(
            err,
            SearchError::Status {
                status: 422,
                message: "SUBSCRIPTION_TOKEN_INVALID: The provided subscription token is invalid.".into(),
                rejected_key: true,
            }
        );
        let err = search::parse_error(SearchProviderKind::Brave, 429, RATE_LIMITED.as_bytes());
        assert_eq!(
            err,
            SearchError::Status {
                status: 429,
                message: "RATE_LIMITED: Request rate limit exceeded for plan.".into(),
                rejected_key: false,
            }
        );
    }

    #[test]
    fn the_errors_list_form_and_bare_statuses_are_read_too() {
        let listed = r#"{"type":"ErrorResponse","errors":[{"id":"x","code":"SUBSCRIPTION_NOT_FOUND","detail":"No subscription found.","status":404,"meta":{"component":"subscriptions"}}],"time":1}"#;
        let err = search::parse_error(SearchProviderKind::Brave, 404, listed.as_bytes());
        assert!(
            matches!(err, SearchError::Status { status: 404, rejected_key: false, ref message } if message == "SUBSCRIPTION_NOT_FOUND: No subscription found.")
        );
        let err = search::parse_error(SearchProviderKind::Brave, 401, b"");
        assert!(matches!(err, SearchError::Status { status: 401, rejected_key: true, .. }));
    }
}
