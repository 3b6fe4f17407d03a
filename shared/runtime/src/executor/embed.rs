//! Embedding calls: the same per-attempt timeout, retries, backoff and `Retry-After` as chat,
//! on ONE provider. There is no fallback to another embedding provider: vectors of different
//! models cannot be compared, so an index is built and searched with one model only.

use opencode_core::model::Usage;
use opencode_core::providers::embeddings::{self, EmbeddingRequest, Embeddings};
use opencode_core::providers::{ProviderConfig, ProviderError};

use super::{fetch_whole, run_chain, Answered, Failure, Operation, ProvidersFailed, RetryPolicy};
use crate::host::Host;

/// Embeds every input, in batches the vendor accepts, one batch after another. Fails as a
/// whole (nothing partial) with the attempts of the batch that failed.
pub async fn embed<H: Host>(
    host: &H,
    provider: &ProviderConfig,
    request: &EmbeddingRequest<'_>,
    policy: &RetryPolicy,
) -> Result<(Embeddings, Answered), ProvidersFailed> {
    let mut vectors = Vec::with_capacity(request.inputs.len());
    let mut usage = Usage::default();
    let mut attempts = Vec::new();
    for batch in request.inputs.chunks(embeddings::max_batch(provider.kind)) {
        let one = EmbeddingRequest { inputs: batch, ..*request };
        let chain = std::slice::from_ref(provider);
        let operation = Operation::named("embeddings");
        let result = run_chain(host, chain, policy, &operation, |p| embed_once(host, p, &one, policy)).await;
        let (answer, answered, span) = match result {
            Ok(ok) => ok,
            Err(ProvidersFailed(failed)) => {
                attempts.extend(failed);
                return Err(ProvidersFailed(attempts));
            }
        };
        span.set("gen_ai.usage.input_tokens", answer.usage.input_tokens);
        drop(span);
        attempts.extend(answered.attempts);
        vectors.extend(answer.vectors);
        usage.input_tokens = usage.input_tokens.saturating_add(answer.usage.input_tokens);
    }
    let answered = Answered { provider: provider.name.clone(), model: provider.model.clone(), attempts, price: None };
    Ok((Embeddings { vectors, usage }, answered))
}

async fn embed_once<H: Host>(
    host: &H,
    provider: &ProviderConfig,
    request: &EmbeddingRequest<'_>,
    policy: &RetryPolicy,
) -> Result<Embeddings, Failure> {
    let wire = embeddings::build_request(provider, request).map_err(Failure::from_provider)?;
    let body = fetch_whole(host, provider, wire, policy.attempt_timeout_ms).await?;
    embeddings::parse_response(provider.kind, &body, request.inputs.len())
        .map_err(|err: ProviderError| Failure::from_provider(err))
}
