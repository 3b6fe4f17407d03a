//! Streamed attempts: open a provider stream, read until the first token, then hand the rest
//! over as an [`EventStream`] with an idle timeout between events.

use std::collections::VecDeque;

use futures::stream::{self, LocalBoxStream, StreamExt};

use super::{read_error_body, status_failure, with_timeout, Failure, Outcome, RetryPolicy};
use crate::host::{Host, HostError};
use crate::model::{ChatRequest, StreamEvent};
use crate::providers::{self, ProviderConfig, ProviderError, SseEvent, StreamDecoder};
use crate::sse;

/// A committed provider's events. An `Err` item is terminal: nothing follows it.
pub type EventStream = LocalBoxStream<'static, Result<StreamEvent, StreamFailure>>;

/// Why a committed stream ended early. The message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamFailure {
    pub message: String,
}

/// The provider's stream after the commit point.
struct Live<H: Host> {
    host: H,
    events: LocalBoxStream<'static, Result<SseEvent, HostError>>,
    decoder: StreamDecoder,
    pending: VecDeque<StreamEvent>,
    idle_timeout_ms: u64,
    finished: bool,
}

enum Next {
    Event(SseEvent),
    End,
}

impl<H: Host> Live<H> {
    /// The next raw SSE event, within the idle timeout.
    async fn next_raw(&mut self, timeout_ms: u64) -> Result<Next, Failure> {
        match with_timeout(&self.host, timeout_ms, self.events.next()).await {
            None => Err(Failure::new(Outcome::Timeout { after_ms: timeout_ms }, "provider went silent")),
            Some(None) => Ok(Next::End),
            Some(Some(Ok(event))) => Ok(Next::Event(event)),
            Some(Some(Err(err))) => Err(Failure::from_host(err)),
        }
    }

    /// Decodes the next batch of events into `pending`; `Ok(false)` once the stream is over.
    async fn fill(&mut self, timeout_ms: u64) -> Result<bool, Failure> {
        if self.finished {
            return Ok(false);
        }
        let decoded = match self.next_raw(timeout_ms).await? {
            Next::Event(event) => self.decoder.decode(&event),
            Next::End => {
                self.finished = true;
                self.decoder.finish()
            }
        };
        let decoded = decoded.map_err(Failure::from_provider)?;
        if decoded.contains(&StreamEvent::Done) {
            self.finished = true;
        }
        self.pending.extend(decoded);
        Ok(true)
    }
}

/// Opens the stream and reads until the first token (or the end of an empty answer), all
/// within the attempt timeout. Everything read so far is replayed first by the returned stream.
pub(super) async fn open<H: Host>(
    host: &H,
    provider: &ProviderConfig,
    request: &ChatRequest,
    policy: &RetryPolicy,
) -> Result<EventStream, Failure> {
    let wire = providers::build_request(provider, request, true).map_err(Failure::from_provider)?;
    let timeout = policy.attempt_timeout_ms;
    let deadline = host.now_ms().saturating_add(timeout);
    let timed_out = || Failure::new(Outcome::Timeout { after_ms: timeout }, "no first token in time");

    let response = with_timeout(host, timeout, host.fetch(wire))
        .await
        .ok_or_else(timed_out)?
        .map_err(Failure::from_host)?;
    let (parts, body) = response.into_parts();
    if !parts.status.is_success() {
        let remaining = deadline.saturating_sub(host.now_ms());
        let body = read_error_body(host, body, remaining).await;
        return Err(status_failure(host, provider, &parts, &body));
    }
    let events = match body {
        crate::Body::Stream(stream) => sse::decode(stream),
        crate::Body::Full(bytes) => sse::decode(stream::iter([Ok(bytes)]).boxed_local()),
    };
    let mut live = Live {
        host: host.clone(),
        events,
        decoder: StreamDecoder::new(provider.kind),
        pending: VecDeque::new(),
        idle_timeout_ms: timeout,
        finished: false,
    };
    loop {
        if live.pending.iter().any(is_commit_point) {
            return Ok(into_stream(live));
        }
        let remaining = deadline.saturating_sub(host.now_ms());
        if remaining == 0 {
            return Err(timed_out());
        }
        if !live.fill(remaining).await? {
            // Ended cleanly without a token or a Done: the decoder would have said Malformed.
            return Err(Failure::from_provider(ProviderError::Malformed("empty stream".into())));
        }
    }
}

/// The first event that is visible to the client (or proves the answer is complete). A tool
/// call is visible too: an answer may be nothing but calls.
fn is_commit_point(event: &StreamEvent) -> bool {
    matches!(event, StreamEvent::Delta(_) | StreamEvent::Thinking(_) | StreamEvent::ToolCall { .. } | StreamEvent::Done)
}

fn into_stream<H: Host>(live: Live<H>) -> EventStream {
    stream::unfold(Some(live), |state| async move {
        let mut live = state?;
        loop {
            if let Some(event) = live.pending.pop_front() {
                return Some((Ok(event), Some(live)));
            }
            let timeout = live.idle_timeout_ms;
            match live.fill(timeout).await {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(failure) => {
                    let message = match failure.outcome {
                        Outcome::Timeout { after_ms } => format!("provider sent nothing for {after_ms} ms"),
                        Outcome::StreamError => "provider reported an error mid-stream".to_string(),
                        Outcome::Malformed => "provider stream ended early or was malformed".to_string(),
                        _ => "provider connection broke mid-stream".to_string(),
                    };
                    return Some((Err(StreamFailure { message }), None));
                }
            }
        }
    })
    .boxed_local()
}
