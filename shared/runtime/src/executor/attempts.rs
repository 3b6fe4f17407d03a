//! The one attempt loop: each target in turn (a provider of the chain, a search provider),
//! retrying retryable failures on the same target with backoff or a capped `Retry-After`, then
//! moving on. Chat, streams, embeddings and web search all run through it.

use std::future::Future;

use opencode_core::providers::{ProviderConfig, ProviderError};
use opencode_core::redact::redact;
use opencode_core::search::{SearchError, SearchProviderConfig};

use super::{Attempt, Outcome, RetryPolicy};
use crate::host::{Host, HostError};
use crate::log::{self, Field};

/// What the loop tries: a provider of some kind, by name and model.
pub(crate) trait Target {
    /// What it is, for logs: `provider` (of models), `search`.
    const KIND: &'static str;
    fn name(&self) -> &str;
    /// The model asked of it; empty where there is none (web search).
    fn model(&self) -> &str {
        ""
    }
}

impl Target for ProviderConfig {
    const KIND: &'static str = "provider";

    fn name(&self) -> &str {
        &self.name
    }

    fn model(&self) -> &str {
        &self.model
    }
}

impl Target for SearchProviderConfig {
    const KIND: &'static str = "search";

    fn name(&self) -> &str {
        self.kind.name()
    }
}

/// A failed attempt, with what the loop needs to decide what to do next.
pub(crate) struct Failure {
    pub outcome: Outcome,
    /// The upstream's own words, for logs only.
    pub detail: String,
    pub retry_after_ms: Option<u64>,
    /// The vendor said the key is missing or wrong.
    pub rejected_key: bool,
}

impl Failure {
    pub fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        Failure { outcome, detail: detail.into(), retry_after_ms: None, rejected_key: false }
    }

    pub fn from_host(err: HostError) -> Self {
        let outcome = match err {
            HostError::Refused(_) => Outcome::Refused,
            _ => Outcome::Connect,
        };
        Failure::new(outcome, err.to_string())
    }

    pub fn from_provider(err: ProviderError) -> Self {
        let outcome = match err {
            ProviderError::Status { status, .. } => Outcome::Status { status },
            ProviderError::StreamError { .. } => Outcome::StreamError,
            ProviderError::Malformed(_) => Outcome::Malformed,
            ProviderError::Config(_) => Outcome::Misconfigured,
            ProviderError::InvalidRequest(_) => Outcome::InvalidRequest,
        };
        Failure::new(outcome, err.to_string())
    }

    pub fn from_search(err: SearchError) -> Self {
        let mut failure = Failure::new(Outcome::Malformed, err.to_string());
        match err {
            SearchError::Status { status, rejected_key, .. } => {
                failure.outcome = Outcome::Status { status };
                failure.rejected_key = rejected_key;
            }
            SearchError::Config(_) => failure.outcome = Outcome::Misconfigured,
            SearchError::Malformed(_) => {}
        }
        failure
    }
}

/// Tries `targets` in turn until `attempt` succeeds on one: its value, the target and every
/// attempt in order (the successful one last); or every attempt when none did.
pub(crate) async fn in_turn<'a, H, P, T, F, Fut>(
    host: &H,
    targets: &'a [P],
    policy: &RetryPolicy,
    mut attempt: F,
) -> Result<(T, &'a P, Vec<Attempt>), Vec<Attempt>>
where
    H: Host,
    P: Target,
    F: FnMut(&'a P) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempts = Vec::new();
    for target in targets {
        for retry in 0..=policy.max_retries {
            let started = host.now_ms();
            let result = attempt(target).await;
            let elapsed_ms = host.now_ms().saturating_sub(started);
            let record = |outcome, detail, rejected_key, retry_after_ms| Attempt {
                provider: target.name().to_owned(),
                model: target.model().to_owned(),
                outcome,
                elapsed_ms,
                rejected_key,
                retry_after_ms,
                detail,
            };
            match result {
                Ok(value) => {
                    attempts.push(record(Outcome::Ok, String::new(), false, None));
                    return Ok((value, target, attempts));
                }
                Err(failure) => {
                    let retryable = failure.outcome.is_retryable();
                    let attempt = record(failure.outcome, failure.detail, failure.rejected_key, failure.retry_after_ms);
                    log_failure::<H, P>(host, &attempt, retryable && retry < policy.max_retries);
                    attempts.push(attempt);
                    if !retryable || retry == policy.max_retries {
                        break;
                    }
                    let Some(delay) = policy.retry_delay_ms(retry, failure.retry_after_ms, host) else { break };
                    host.sleep(delay).await;
                }
            }
        }
    }
    Err(attempts)
}

/// Every failed attempt is logged where it fails, with the vendor's words redacted: an
/// attempt record keeps them from clients, and this is where an operator reads them.
fn log_failure<H: Host, P: Target>(host: &H, attempt: &Attempt, will_retry: bool) {
    let (outcome, detail) = (attempt.outcome.to_string(), redact(&attempt.detail));
    let mut fields = Vec::with_capacity(9);
    fields.push(("kind", Field::Text(P::KIND)));
    fields.push(("provider", Field::Text(&attempt.provider)));
    if !attempt.model.is_empty() {
        fields.push(("model", Field::Text(&attempt.model)));
    }
    fields.push(("outcome", Field::Text(&outcome)));
    if let Outcome::Status { status } = attempt.outcome {
        fields.push(("status", Field::Number(u64::from(status))));
    }
    fields.push(("elapsed_ms", Field::Number(attempt.elapsed_ms)));
    if attempt.rejected_key {
        fields.push(("rejected_key", Field::Flag(true)));
    }
    fields.push(("retry", Field::Flag(will_retry)));
    fields.push(("detail", Field::Text(&detail)));
    log::warn(host, "attempt failed", &fields);
}
