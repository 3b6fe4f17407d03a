//! The search I/O: one provider after the other until one gives usable results.
//!
//! The rules are the chat executor's, applied to search: a per-attempt timeout (the whole
//! exchange), retries on the same provider for retryable failures (connect errors, timeouts,
//! 408/409/429/5xx, malformed bodies) with backoff or a capped `Retry-After`, then the next
//! provider. Failures that would repeat — a refused key, other 4xx, no usable results — move
//! on to the next provider at once: the other vendor may well answer. Every attempt is kept.

use opencode_core::search::{build_request, normalize_query, parse_error, parse_response};
use opencode_core::search::{providers_from_vars, SearchProviderConfig, SearchResult, MAX_RESULTS};

use crate::config::ConfigError;
use crate::executor::{exchange, in_turn, retry_after_ms, Attempt, Failure, Operation, Outcome, RetryPolicy};
use crate::host::Host;

/// Which search providers to try, in order, and how hard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchConfig {
    /// The provider `SEARCH_PROVIDER` names first (when it has a key), then the other one
    /// (when it has a key). Empty when no search provider is configured.
    pub providers: Vec<SearchProviderConfig>,
    /// Per-attempt timeout, retries on the same provider and backoff: the platform's
    /// `ATTEMPT_TIMEOUT_MS`, `MAX_RETRIES`, `RETRY_BACKOFF_MS`, `RETRY_AFTER_CAP_MS`.
    pub policy: RetryPolicy,
}

impl SearchConfig {
    /// Reads `SEARCH_PROVIDER`, `TAVILY_*` and `BRAVE_*`. An unknown `SEARCH_PROVIDER` is a
    /// configuration error; missing keys just leave providers out.
    pub fn from_host<H: Host>(host: &H, policy: RetryPolicy) -> Result<SearchConfig, ConfigError> {
        let providers = providers_from_vars(|name| host.var(name)).map_err(ConfigError::NotConfigured)?;
        Ok(SearchConfig { providers, policy })
    }

    /// The configuration error a mode answers with when no provider can be called.
    pub fn require(&self) -> Result<(), ConfigError> {
        if self.providers.is_empty() {
            return Err(ConfigError::NotConfigured(opencode_core::search::NOT_CONFIGURED.into()));
        }
        Ok(())
    }
}

/// Largest search body read (Brave's full pages are ~100 KiB).
const MAX_SEARCH_BODY: usize = 4 * 1024 * 1024;

/// A successful search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchOutcome {
    /// The provider that answered (`tavily`, `brave`).
    pub provider: String,
    /// The query as sent (normalized and capped).
    pub query: String,
    /// At least one, at most the number asked for, in the provider's order.
    pub results: Vec<SearchResult>,
    /// Every attempt in order, the successful one last.
    pub attempts: Vec<Attempt>,
}

/// Why no results came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchFailure {
    /// No search provider has a key.
    #[error("{}", opencode_core::search::NOT_CONFIGURED)]
    NotConfigured,
    /// The query is empty once whitespace is removed.
    #[error("the search query is empty")]
    EmptyQuery,
    /// Every configured provider was tried and none gave usable results.
    #[error("every web search provider failed ({})", summarize(.0))]
    AllFailed(Vec<Attempt>),
}

fn summarize(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}: {}{}", a.provider, a.outcome, if a.rejected_key { " (key refused)" } else { "" }))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Searches the web for `query` (normalized and capped here) and returns up to
/// `max_results` results (1..=10) from the first provider in `config` that has any.
///
/// Safe to run several at once on one host (the `research` mode does): it keeps no state.
pub async fn search<H: Host>(
    host: &H,
    config: &SearchConfig,
    query: &str,
    max_results: usize,
) -> Result<SearchOutcome, SearchFailure> {
    if config.providers.is_empty() {
        return Err(SearchFailure::NotConfigured);
    }
    let query = normalize_query(query).ok_or(SearchFailure::EmptyQuery)?;
    let max_results = max_results.clamp(1, MAX_RESULTS);
    let timeout_ms = config.policy.attempt_timeout_ms;
    let operation = Operation::named("search");
    let tried = in_turn(host, &config.providers, &config.policy, &operation, |provider| {
        attempt(host, provider, &query, max_results, timeout_ms)
    })
    .await;
    let (results, provider, attempts, span) = tried.map_err(SearchFailure::AllFailed)?;
    span.set("opencode.search.results", results.len() as u64);
    Ok(SearchOutcome { provider: provider.kind.name().to_string(), query, results, attempts })
}

/// One try: the whole exchange within the attempt timeout, then at least one usable result.
async fn attempt<H: Host>(
    host: &H,
    provider: &SearchProviderConfig,
    query: &str,
    max_results: usize,
    timeout_ms: u64,
) -> Result<Vec<SearchResult>, Failure> {
    let request = build_request(provider, query, max_results).map_err(Failure::from_search)?;
    let (parts, body) = exchange(host, request, timeout_ms, MAX_SEARCH_BODY).await?;
    if !parts.status.is_success() {
        let mut failure = Failure::from_search(parse_error(provider.kind, parts.status.as_u16(), &body));
        failure.retry_after_ms = retry_after_ms(host, &parts);
        return Err(failure);
    }
    let mut results = parse_response(provider.kind, &body).map_err(Failure::from_search)?;
    if results.is_empty() {
        return Err(Failure::new(Outcome::NoResults, "no usable results"));
    }
    results.truncate(max_results);
    Ok(results)
}
