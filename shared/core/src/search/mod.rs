//! Web search: Tavily and Brave as pure translations and one normalized result.
//!
//! Like `providers`, the vendor modules build the `http::Request` and read the response and
//! never touch the network; every function is tested against fixtures in the vendor's
//! documented format (`tests/fixtures/{tavily,brave}`). The I/O (timeouts, retries, fallback
//! to the other provider) is `opencode_runtime::search`.

mod brave;
mod tavily;
mod text;

use bytes::Bytes;
use serde::Serialize;

pub use text::normalize_query;

/// The longest query sent upstream, in characters (Brave refuses more than 400).
pub const MAX_QUERY_CHARS: usize = 400;
/// The most words sent upstream (Brave's documented limit is 50).
pub const MAX_QUERY_WORDS: usize = 50;
/// The most results one search asks for (both vendors allow more; prompts stay small).
pub const MAX_RESULTS: usize = 10;

/// Why a search cannot run when no provider has a key.
pub const NOT_CONFIGURED: &str =
    "no web search provider: set TAVILY_API_KEY or BRAVE_API_KEY (SEARCH_PROVIDER picks the first)";

/// The web search APIs the platform speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchProviderKind {
    /// Tavily `POST /search`, key as a bearer token.
    Tavily,
    /// Brave Web Search `GET /res/v1/web/search`, key in `X-Subscription-Token`.
    Brave,
}

impl SearchProviderKind {
    pub const ALL: [SearchProviderKind; 2] = [SearchProviderKind::Tavily, SearchProviderKind::Brave];

    /// The name used in configuration (`SEARCH_PROVIDER`), answers and attempt records.
    pub fn name(self) -> &'static str {
        match self {
            SearchProviderKind::Tavily => "tavily",
            SearchProviderKind::Brave => "brave",
        }
    }

    pub fn parse(name: &str) -> Option<SearchProviderKind> {
        Self::ALL.into_iter().find(|kind| kind.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The prefix of its variables: `TAVILY_API_KEY`, `BRAVE_BASE_URL`, ...
    fn prefix(self) -> &'static str {
        match self {
            SearchProviderKind::Tavily => "TAVILY",
            SearchProviderKind::Brave => "BRAVE",
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            SearchProviderKind::Tavily => "https://api.tavily.com",
            SearchProviderKind::Brave => "https://api.search.brave.com",
        }
    }

    fn other(self) -> SearchProviderKind {
        match self {
            SearchProviderKind::Tavily => SearchProviderKind::Brave,
            SearchProviderKind::Brave => SearchProviderKind::Tavily,
        }
    }
}

/// One configured search provider.
#[derive(Clone, PartialEq, Eq)]
pub struct SearchProviderConfig {
    pub kind: SearchProviderKind,
    /// Host root, e.g. `https://api.tavily.com`; no trailing slash needed.
    pub base_url: String,
    pub api_key: String,
}

impl std::fmt::Debug for SearchProviderConfig {
    // Keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchProviderConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &"<set>")
            .finish()
    }
}

/// The configured search providers in the order to try them: the one `SEARCH_PROVIDER` names
/// first (when it has a key), then the other (when it has a key); empty when none has a key.
/// An unknown `SEARCH_PROVIDER` is an error naming the variable.
pub fn providers_from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Vec<SearchProviderConfig>, String> {
    let first = match var("SEARCH_PROVIDER") {
        None => SearchProviderKind::Tavily,
        Some(name) => {
            SearchProviderKind::parse(&name).ok_or_else(|| "SEARCH_PROVIDER must be `tavily` or `brave`".to_string())?
        }
    };
    Ok([first, first.other()]
        .into_iter()
        .filter_map(|kind| {
            let var = |suffix: &str| var(&format!("{}_{suffix}", kind.prefix()));
            let api_key = var("API_KEY").filter(|key| !key.trim().is_empty())?;
            let base_url = var("BASE_URL").unwrap_or_else(|| kind.default_base_url().to_string());
            Some(SearchProviderConfig { kind, base_url, api_key })
        })
        .collect())
}

/// One web page a search found, the same whoever found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    pub title: String,
    /// An absolute `http(s)` URL.
    pub url: String,
    /// Plain text (vendor markup removed), at most a few hundred characters.
    pub snippet: String,
}

/// What a search provider said went wrong. Messages are for attempt records and logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Exhaustive: the executor and search decide per variant what happens next.
pub enum SearchError {
    /// An error status. `rejected_key` when the vendor says the key is missing or wrong.
    #[error("status {status}: {message}")]
    Status { status: u16, message: String, rejected_key: bool },
    /// The body was not in the vendor's documented format.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The request could not be built (for example an invalid base URL or key).
    #[error("invalid search provider configuration: {0}")]
    Config(String),
}

/// Builds the vendor's request for `query` asking for `max_results` results.
pub fn build_request(
    config: &SearchProviderConfig,
    query: &str,
    max_results: usize,
) -> Result<http::Request<Bytes>, SearchError> {
    let max_results = max_results.clamp(1, MAX_RESULTS);
    match config.kind {
        SearchProviderKind::Tavily => tavily::build_request(config, query, max_results),
        SearchProviderKind::Brave => brave::build_request(config, query, max_results),
    }
}

/// Reads a successful (2xx) body into usable results: absolute http(s) URLs only, each URL
/// once, markup stripped, in the vendor's order. An empty list is not an error here.
pub fn parse_response(kind: SearchProviderKind, body: &[u8]) -> Result<Vec<SearchResult>, SearchError> {
    let raw = match kind {
        SearchProviderKind::Tavily => tavily::parse_response(body)?,
        SearchProviderKind::Brave => brave::parse_response(body)?,
    };
    let mut results: Vec<SearchResult> = Vec::with_capacity(raw.len());
    for (title, url, snippet) in raw {
        let url = url.trim();
        if !text::is_web_url(url) || results.iter().any(|r| r.url == url) {
            continue;
        }
        let title = text::plain(&title, text::MAX_TITLE_CHARS);
        results.push(SearchResult {
            title: if title.is_empty() { url.to_string() } else { title },
            url: url.to_string(),
            snippet: text::plain(&snippet, text::MAX_SNIPPET_CHARS),
        });
    }
    Ok(results)
}

/// Reads an error (non-2xx) body into [`SearchError::Status`] with the vendor's message.
pub fn parse_error(kind: SearchProviderKind, status: u16, body: &[u8]) -> SearchError {
    let (message, rejected_key) = match kind {
        SearchProviderKind::Tavily => tavily::error(status, body),
        SearchProviderKind::Brave => brave::error(status, body),
    };
    SearchError::Status { status, message: message.unwrap_or_else(|| format!("http status {status}")), rejected_key }
}

impl From<crate::outbound::Unbuildable> for SearchError {
    fn from(crate::outbound::Unbuildable(message): crate::outbound::Unbuildable) -> Self {
        SearchError::Config(message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn provider_names_parse_case_insensitively() {
        assert_eq!(SearchProviderKind::parse(" Brave "), Some(SearchProviderKind::Brave));
        assert_eq!(SearchProviderKind::parse("tavily"), Some(SearchProviderKind::Tavily));
        assert_eq!(SearchProviderKind::parse("google"), None);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = SearchProviderConfig {
            kind: SearchProviderKind::Brave,
            base_url: "https://api.search.brave.com".into(),
            api_key: "BSA-secret".into(),
        };
        assert!(!format!("{config:?}").contains("BSA-secret"));
    }
}
