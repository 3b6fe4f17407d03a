//! Web search APIs: Tavily `POST /search` and Brave `GET /res/v1/web/search`.
//!
//! Results are derived from the query (directives removed): 3 to 5 pages (fewer if fewer
//! were asked for) at `https://example.com/<slug>/<n>`, whose titles and text repeat the
//! query, so tests can check what reached the model. Keys: Tavily wants
//! `Authorization: Bearer <key>` (or the older `api_key` body field) and answers 401
//! `{"detail":{"error":...}}`; Brave wants `X-Subscription-Token` and, like the real API,
//! answers a missing or wrong one with 422 `SUBSCRIPTION_TOKEN_INVALID`. A key starting with
//! `invalid` is wrong. Faults: the LLM directives (`status`, `retry_after`, `delay_ms`,
//! `hang`, `drop`, `malformed`, `cut`) plus `empty` (a well-formed answer with no results),
//! written in the query text with the label `tavily` or `brave`.

use http::HeaderMap;
use serde_json::{json, Value};

use crate::faults;
use crate::wire::ErrorReply;

/// Which search API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SearchApi {
    Tavily,
    Brave,
}

/// The parts of a search request the answer depends on.
#[derive(Debug, Clone)]
pub(crate) struct SearchCall {
    /// The query as sent (directives included).
    pub query: String,
    /// Results asked for.
    pub count: usize,
    /// Brave's `text_decorations` (default on: matches wrapped in `<strong>`).
    pub decorations: bool,
}

impl SearchApi {
    /// The search endpoint `method path` is for, if any.
    pub fn parse(method: &http::Method, path: &str) -> Option<SearchApi> {
        match (method.as_str(), path) {
            ("POST", "/search") => Some(SearchApi::Tavily),
            ("GET", "/res/v1/web/search") => Some(SearchApi::Brave),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SearchApi::Tavily => "tavily",
            SearchApi::Brave => "brave",
        }
    }

    /// The vendor's check of the key; `Err` is the answer to send.
    pub fn check_auth(self, headers: &HeaderMap, body: &Value) -> Result<(), ErrorReply> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let key = match self {
            SearchApi::Tavily => {
                let bearer = header("authorization").strip_prefix("Bearer ").unwrap_or_default();
                let legacy = body.get("api_key").and_then(Value::as_str).unwrap_or_default();
                if bearer.is_empty() {
                    legacy
                } else {
                    bearer
                }
            }
            SearchApi::Brave => header("x-subscription-token"),
        };
        if key.trim().is_empty() || key.starts_with("invalid") {
            return Err(self.status_error(401));
        }
        Ok(())
    }

    /// Reads the query and the count; a request without a query is the vendor's 400/422.
    pub fn call(self, query: &str, body: &Value) -> Result<SearchCall, ErrorReply> {
        match self {
            SearchApi::Tavily => {
                let text = body.get("query").and_then(Value::as_str).unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(tavily_error(400, "Query is missing."));
                }
                let count = body.get("max_results").and_then(Value::as_u64).unwrap_or(5);
                Ok(SearchCall { query: text.to_owned(), count: clamp(count, 20), decorations: false })
            }
            SearchApi::Brave => {
                let param = |name: &str| {
                    query.split('&').find_map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        (k == name).then(|| decode_component(v))
                    })
                };
                let text = param("q").unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(brave_error(
                        422,
                        "VALIDATION",
                        "Unable to validate request parameter(s)",
                        "validation",
                    ));
                }
                let count = param("count").and_then(|c| c.parse().ok()).unwrap_or(20);
                let decorations = param("text_decorations").is_none_or(|v| v != "false" && v != "0");
                Ok(SearchCall { query: text, count: clamp(count, 20), decorations })
            }
        }
    }

    /// The vendor's error answer for `status`.
    pub fn status_error(self, status: u16) -> ErrorReply {
        match self {
            SearchApi::Tavily => {
                let message = match status {
                    401 => "Unauthorized: missing or invalid API key.",
                    403 => "Forbidden: this request is not allowed for your plan.",
                    429 => "Your request has been blocked due to excessive requests. Please reduce rate of requests.",
                    432 => "This request exceeds your plan's set usage limit. Please upgrade your plan or contact support@tavily.com",
                    433 => "This request exceeds the pay-as-you-go limit. You can increase your limit on the Tavily dashboard.",
                    s if s >= 500 => "Internal Server Error",
                    _ => "Bad Request",
                };
                tavily_error(status, message)
            }
            SearchApi::Brave => match status {
                // Brave refuses keys with 422, not 401.
                401 => brave_error(
                    422,
                    "SUBSCRIPTION_TOKEN_INVALID",
                    "The provided subscription token is invalid.",
                    "authentication",
                ),
                429 => brave_error(429, "RATE_LIMITED", "Request rate limit exceeded for plan.", "rate_limiter"),
                s if s >= 500 => brave_error(s, "INTERNAL_ERROR", "An internal error occurred (simulated).", "search"),
                s => brave_error(s, "VALIDATION", "Unable to validate request parameter(s)", "validation"),
            },
        }
    }

    /// The success body: the results for `call`, or none with `empty`.
    pub fn answer(self, call: &SearchCall, empty: bool, seq: u64) -> Value {
        let query = faults::strip(&call.query);
        let results = if empty { Vec::new() } else { pages(&query, call.count) };
        match self {
            SearchApi::Tavily => json!({
                "query": call.query,
                "follow_up_questions": null,
                "answer": null,
                "images": [],
                "results": results.iter().enumerate().map(|(i, p)| json!({
                    "title": p.title,
                    "url": p.url,
                    "content": p.text,
                    "score": score(i),
                    "raw_content": null,
                })).collect::<Vec<_>>(),
                "response_time": "0.42",
                "request_id": format!("sim-{seq:08}-0000-4000-8000-000000000000"),
            }),
            SearchApi::Brave => {
                let mut body = json!({
                    "type": "search",
                    "query": {"original": call.query, "show_strict_warning": false, "is_navigational": false,
                        "spellcheck_off": true, "country": "us", "bad_results": results.is_empty(),
                        "should_fallback": false, "more_results_available": false},
                    "mixed": {"type": "mixed", "main": results.iter().enumerate()
                        .map(|(i, _)| json!({"type": "web", "index": i, "all": false})).collect::<Vec<_>>(),
                        "top": [], "side": []},
                });
                if !results.is_empty() {
                    let web: Vec<Value> = results
                        .iter()
                        .map(|p| json!({
                            "title": p.title,
                            "url": p.url,
                            "is_source_local": false,
                            "is_source_both": false,
                            "description": if call.decorations { decorate(&p.text, &query) } else { p.text.clone() },
                            "language": "en",
                            "family_friendly": true,
                            "type": "search_result",
                            "subtype": "generic",
                            "meta_url": {"scheme": "https", "netloc": "example.com", "hostname": "example.com", "path": ""},
                        }))
                        .collect();
                    crate::wire::set(
                        &mut body,
                        "web",
                        json!({"type": "search", "results": web, "family_friendly": true}),
                    );
                }
                body
            }
        }
    }
}

fn clamp(count: u64, max: u64) -> usize {
    usize::try_from(count.clamp(1, max)).unwrap_or(1)
}

fn tavily_error(status: u16, message: &str) -> ErrorReply {
    ErrorReply { status, body: json!({"detail": {"error": message}}) }
}

fn brave_error(status: u16, code: &str, detail: &str, component: &str) -> ErrorReply {
    ErrorReply {
        status,
        body: json!({
            "type": "ErrorResponse",
            "error": {"id": "00000000-0000-4000-8000-000000000000", "status": status, "code": code,
                "detail": detail, "meta": {"component": component}},
            "time": 1_700_000_000u64,
        }),
    }
}

struct Page {
    title: String,
    url: String,
    text: String,
}

/// 3 to 5 pages for `query` (a stable function of its text), at most `count`.
fn pages(query: &str, count: usize) -> Vec<Page> {
    let n = 3 + (fnv(query) % 3) as usize;
    let slug = slug(query);
    let shown = if query.is_empty() { "nothing" } else { query };
    (1..=n.min(count))
        .map(|i| Page {
            title: format!("{shown} — result {i}"),
            url: format!("https://example.com/{slug}/{i}"),
            text: format!("Page {i} about {shown}. It explains {shown} in simulated detail."),
        })
        .collect()
}

fn score(index: usize) -> f64 {
    0.9 - 0.1 * index as f64
}

/// Wraps the first word of the query in `<strong>`, as Brave's text decorations do.
fn decorate(text: &str, query: &str) -> String {
    match query.split_whitespace().next() {
        Some(word) => text.replacen(word, &format!("<strong>{word}</strong>"), 1),
        None => text.to_owned(),
    }
}

fn slug(query: &str) -> String {
    let words: Vec<String> =
        query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let mut slug = words.join("-");
    if slug.is_empty() {
        slug = "query".to_owned();
    }
    slug.chars().take(60).collect::<String>().trim_end_matches('-').to_owned()
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space, `%XX` a byte).
pub(crate) fn decode_component(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|c| char::from(*c).to_digit(16));
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                    out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_decode() {
        assert_eq!(decode_component("rust%20%26+wasm%3F"), "rust & wasm?");
        assert_eq!(decode_component("caf%C3%A9%"), "café%");
    }

    #[test]
    fn pages_are_stable_and_bounded() {
        let a = pages("edge wasm", 10);
        assert!((3..=5).contains(&a.len()));
        assert_eq!(a.len(), pages("edge wasm", 10).len());
        assert_eq!(a.first().map(|p| p.url.as_str()), Some("https://example.com/edge-wasm/1"));
        assert_eq!(pages("edge wasm", 2).len(), 2);
    }
}
