//! The executor: the only code that does I/O with providers.
//!
//! It walks the fallback chain: per-attempt timeout, bounded retries with backoff (honouring
//! a capped `Retry-After`) on retryable failures, then the next provider. A streamed answer
//! is committed to one provider when its first token arrives; from then on a failure ends
//! the stream with an error item, never a switch to another provider.

mod attempt;
mod attempts;
mod embed;
mod observe;
mod stream;

pub use attempt::{parse_retry_after, Attempt, Outcome, RetryPolicy};
pub(crate) use attempts::{in_turn, Failure, Operation};
pub use embed::embed;
pub use stream::{ProviderStream, StreamFailure};

use bytes::Bytes;
use futures::future::{select, Either};
use std::future::Future;

use opencode_core::model::{ChatRequest, ChatResponse, Usage};
use opencode_core::pricing::Price;
use opencode_core::providers::{self, ProviderConfig};

use crate::host::{Body, Host};

/// Largest provider body the executor reads whole (non-streamed answers and error bodies).
const MAX_UPSTREAM_BODY: usize = 16 * 1024 * 1024;

/// Who answered, and what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    pub provider: String,
    pub model: String,
    /// Every attempt in order, the successful one last.
    pub attempts: Vec<Attempt>,
    /// The answering model's list price, when known.
    pub price: Option<Price>,
}

impl Answered {
    /// For an answer no model call made (a run that stopped first): the chain's first provider.
    pub fn nobody(chain: &[ProviderConfig]) -> Answered {
        let first = chain.first();
        Answered {
            provider: first.map(|p| p.name.clone()).unwrap_or_default(),
            model: first.map(|p| p.model.clone()).unwrap_or_default(),
            attempts: vec![],
            price: None,
        }
    }

    /// What `usage` cost on the model that answered, when its price is known.
    pub fn cost_usd(&self, usage: &Usage) -> Option<f64> {
        self.price.map(|price| price.cost(usage))
    }
}

/// Every provider of the chain failed: each attempt in order. No attempt at all means no
/// provider was configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("every provider failed ({})", summarize(.0))]
pub struct ProvidersFailed(pub Vec<Attempt>);

impl ProvidersFailed {
    /// Every attempt timed out: the caller waited in vain rather than being refused.
    pub fn all_timed_out(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|a| a.outcome.is_timeout())
    }
}

fn summarize(attempts: &[Attempt]) -> String {
    if attempts.is_empty() {
        return "no provider is configured".to_string();
    }
    attempts.iter().map(|a| format!("{}: {}", a.provider, a.outcome)).collect::<Vec<_>>().join("; ")
}

/// A streamed answer committed to one provider.
pub struct StartedStream {
    pub answered: Answered,
    /// The provider's events, starting with those read before the commit.
    pub events: ProviderStream,
}

/// Runs `fut` for at most `ms` milliseconds of the host's time.
pub async fn with_timeout<H: Host, F: Future>(host: &H, ms: u64, fut: F) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    match select(fut, host.sleep(ms)).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}

/// Gets a complete answer from the first provider in `chain` that gives one.
pub async fn complete<H: Host>(
    host: &H,
    chain: &[ProviderConfig],
    request: &ChatRequest,
    policy: &RetryPolicy,
) -> Result<(ChatResponse, Answered), ProvidersFailed> {
    let model = chain.first().map_or("", |p| p.model.as_str());
    let request = &*crate::guard::screen(host, model, request).await?;
    let operation = observe::chat_operation(request);
    let (response, answered, span) =
        run_chain(host, chain, policy, &operation, |provider| complete_once(host, provider, request, policy)).await?;
    observe::whole(host, span, &answered, request, &response);
    Ok((response, answered))
}

/// Opens a streamed answer from the first provider in `chain` whose stream reaches its first
/// token; failures before that fall back like [`complete`].
pub async fn stream<H: Host>(
    host: &H,
    chain: &[ProviderConfig],
    request: &ChatRequest,
    policy: &RetryPolicy,
) -> Result<StartedStream, ProvidersFailed> {
    let model = chain.first().map_or("", |p| p.model.as_str());
    let request = &*crate::guard::screen(host, model, request).await?;
    let operation = observe::chat_operation(request);
    let (events, answered, span) =
        run_chain(host, chain, policy, &operation, |provider| stream::open(host, provider, request, policy)).await?;
    let events = observe::stream(host, span, &answered, request, events);
    Ok(StartedStream { answered, events })
}

/// The chain's loop: the first provider that answers, who it was, and its attempt's span.
async fn run_chain<'a, H, T, F, Fut>(
    host: &H,
    chain: &'a [ProviderConfig],
    policy: &RetryPolicy,
    operation: &Operation,
    attempt: F,
) -> Result<(T, Answered, crate::trace::SpanGuard<H>), ProvidersFailed>
where
    H: Host,
    F: FnMut(&'a ProviderConfig) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let (value, provider, attempts, span) =
        attempts::in_turn(host, chain, policy, operation, attempt).await.map_err(ProvidersFailed)?;
    let answered =
        Answered { provider: provider.name.clone(), model: provider.model.clone(), attempts, price: provider.price };
    Ok((value, answered, span))
}

/// One non-streamed try: the whole exchange must finish within the attempt timeout.
async fn complete_once<H: Host>(
    host: &H,
    provider: &ProviderConfig,
    request: &ChatRequest,
    policy: &RetryPolicy,
) -> Result<ChatResponse, Failure> {
    let wire = providers::build_request(provider, request, false).map_err(Failure::from_provider)?;
    let body = fetch_whole(host, provider, wire, policy.attempt_timeout_ms).await?;
    providers::parse_response(provider.kind, &body).map_err(Failure::from_provider)
}

/// Sends `wire` and reads the whole success body, the exchange within `timeout_ms`; an error
/// status is a failure carrying the vendor's message and `Retry-After`.
async fn fetch_whole<H: Host>(
    host: &H,
    provider: &ProviderConfig,
    wire: http::Request<Bytes>,
    timeout_ms: u64,
) -> Result<Bytes, Failure> {
    let (parts, body) = exchange(host, wire, timeout_ms, MAX_UPSTREAM_BODY).await?;
    if !parts.status.is_success() {
        return Err(status_failure(host, provider, &parts, &body));
    }
    Ok(body)
}

/// Sends `wire` and reads the whole answer, at most `limit` bytes, all within `timeout_ms`.
pub(crate) async fn exchange<H: Host>(
    host: &H,
    wire: http::Request<Bytes>,
    timeout_ms: u64,
    limit: usize,
) -> Result<(http::response::Parts, Bytes), Failure> {
    let exchange = async {
        let response = host.fetch(wire).await.map_err(Failure::from_host)?;
        let (parts, body) = response.into_parts();
        let body = body.collect(limit).await.map_err(Failure::from_host)?;
        Ok::<_, Failure>((parts, body))
    };
    with_timeout(host, timeout_ms, exchange)
        .await
        .ok_or_else(|| Failure::new(Outcome::Timeout { after_ms: timeout_ms }, "no answer in time"))?
}

/// Turns an error status into a failure, keeping the vendor's message and `Retry-After`.
fn status_failure<H: Host>(
    host: &H,
    provider: &ProviderConfig,
    parts: &http::response::Parts,
    body: &Bytes,
) -> Failure {
    let err = providers::parse_error(provider.kind, parts.status.as_u16(), body);
    Failure { retry_after_ms: retry_after_ms(host, parts), ..Failure::from_provider(err) }
}

/// The wait an answer's `Retry-After` asks for, from now.
pub(crate) fn retry_after_ms<H: Host>(host: &H, parts: &http::response::Parts) -> Option<u64> {
    let value = parts.headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, host.now_ms())
}

/// Reads an error body without waiting forever or reading without bound.
async fn read_error_body<H: Host>(host: &H, body: Body, timeout_ms: u64) -> Bytes {
    with_timeout(host, timeout_ms, body.collect(64 * 1024)).await.and_then(Result::ok).unwrap_or_default()
}
