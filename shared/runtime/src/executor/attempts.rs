//! The one attempt loop: each target in turn (a provider of the chain, a search provider),
//! retrying retryable failures on the same target with backoff or a capped `Retry-After`, then
//! moving on. Chat, streams, embeddings and web search all run through it.

use std::future::Future;

use opencode_core::providers::{ProviderConfig, ProviderError, ProviderKind};
use opencode_core::redact::redact;
use opencode_core::search::{SearchError, SearchProviderConfig};
use opencode_core::telemetry::{AttrValue, SpanKind};

use super::{Attempt, Outcome, RetryPolicy};
use crate::host::{Host, HostError};
use crate::log::{self, Field};
use crate::trace::{self, AttemptFact, SpanGuard};

/// What the loop tries: a provider of some kind, by name and model.
pub(crate) trait Target {
    /// What it is, for logs: `provider` (of models), `search`.
    const KIND: &'static str;
    fn name(&self) -> &str;
    /// The model asked of it; empty where there is none (web search).
    fn model(&self) -> &str {
        ""
    }
    /// The model has a list price (so its name is a bounded metrics label).
    fn priced(&self) -> bool {
        false
    }
    /// Opens the span of one attempt of `operation`.
    fn span<H: Host>(&self, host: &H, operation: &Operation) -> SpanGuard<H>;
}

/// What the attempts are for, as their spans say it: the GenAI operation (`chat`, `embeddings`)
/// or `search`, and the request's own parameters (`gen_ai.request.max_tokens`, ...).
#[derive(Default)]
pub(crate) struct Operation {
    pub name: &'static str,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
}

impl Operation {
    pub fn named(name: &'static str) -> Operation {
        Operation { name, ..Operation::default() }
    }
}

/// The GenAI conventions' `gen_ai.provider.name` of a provider.
fn genai_provider(provider: &ProviderConfig) -> &str {
    match provider.kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gcp.gemini",
        // A compatible server is named as configured (`compat`, or the operator's name).
        ProviderKind::Compat => &provider.name,
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

    fn priced(&self) -> bool {
        self.price.is_some()
    }

    fn span<H: Host>(&self, host: &H, operation: &Operation) -> SpanGuard<H> {
        let span = SpanGuard::start(host, SpanKind::Client, format!("{} {}", operation.name, self.model));
        if span.recording() {
            span.set("gen_ai.operation.name", operation.name);
            span.set("gen_ai.provider.name", genai_provider(self));
            span.set("gen_ai.request.model", self.model.as_str());
            if let Some(max_tokens) = operation.max_tokens {
                span.set("gen_ai.request.max_tokens", AttrValue::Int(i64::from(max_tokens)));
            }
            for (key, value) in
                [("gen_ai.request.temperature", operation.temperature), ("gen_ai.request.top_p", operation.top_p)]
            {
                if let Some(value) = value {
                    span.set(key, AttrValue::Float(f64::from(value)));
                }
            }
        }
        span
    }
}

impl Target for SearchProviderConfig {
    const KIND: &'static str = "search";

    fn name(&self) -> &str {
        self.kind.name()
    }

    fn span<H: Host>(&self, host: &H, _operation: &Operation) -> SpanGuard<H> {
        let span = SpanGuard::start(host, SpanKind::Client, format!("search {}", self.kind.name()));
        span.set("opencode.search.provider", self.kind.name());
        span
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

/// A success: the value, the target that gave it, every attempt in order (the successful one
/// last), and the successful attempt's span, still open for the caller to complete.
pub(crate) type Tried<'a, T, P, H> = (T, &'a P, Vec<Attempt>, SpanGuard<H>);

/// Tries `targets` in turn until `attempt` succeeds on one; or every attempt when none did.
/// Each attempt is a span of `operation` and a fact of the request's log line.
pub(crate) async fn in_turn<'a, H, P, T, F, Fut>(
    host: &H,
    targets: &'a [P],
    policy: &RetryPolicy,
    operation: &Operation,
    mut attempt: F,
) -> Result<Tried<'a, T, P, H>, Vec<Attempt>>
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
            let span = target.span(host, operation);
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
                    let attempt = record(Outcome::Ok, String::new(), false, None);
                    note::<H, P>(host, target, &attempt, "");
                    attempts.push(attempt);
                    return Ok((value, target, attempts, span));
                }
                Err(failure) => {
                    let retryable = failure.outcome.is_retryable();
                    let attempt = record(failure.outcome, failure.detail, failure.rejected_key, failure.retry_after_ms);
                    let detail = redact(&attempt.detail);
                    span.fail(trace::outcome_label(&attempt.outcome), &attempt.outcome.to_string());
                    if let Outcome::Status { status } = attempt.outcome {
                        span.set("http.response.status_code", u64::from(status));
                    }
                    drop(span);
                    log_failure::<H, P>(host, &attempt, &detail, retryable && retry < policy.max_retries);
                    note::<H, P>(host, target, &attempt, &detail);
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

/// The attempt as a fact of the request (its log line, metrics, `server-timing`).
fn note<H: Host, P: Target>(host: &H, target: &P, attempt: &Attempt, detail: &str) {
    trace::note(host, |facts| {
        if P::KIND == ProviderConfig::KIND {
            facts.upstream_ms = facts.upstream_ms.saturating_add(attempt.elapsed_ms);
        }
        facts.attempts.push(AttemptFact {
            kind: P::KIND,
            provider: attempt.provider.clone(),
            model: attempt.model.clone(),
            priced: target.priced(),
            outcome: trace::outcome_label(&attempt.outcome),
            status: match attempt.outcome {
                Outcome::Status { status } => Some(status),
                _ => None,
            },
            elapsed_ms: attempt.elapsed_ms,
            ttft_ms: None,
            detail: detail.to_owned(),
        });
    });
}

/// Every failed attempt is logged where it fails, with the vendor's words redacted: an
/// attempt record keeps them from clients, and this is where an operator reads them.
fn log_failure<H: Host, P: Target>(host: &H, attempt: &Attempt, detail: &str, will_retry: bool) {
    let outcome = attempt.outcome.to_string();
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
    fields.push(("detail", Field::Text(detail)));
    log::warn(host, "attempt failed", &fields);
}
