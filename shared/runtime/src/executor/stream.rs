//! Streamed attempts: open a provider stream, read until the first token, then hand the rest
//! over as an [`ProviderStream`] with an idle timeout between events.

use std::collections::VecDeque;
use std::future::Future;

use futures::future::{select, Either, LocalBoxFuture};
use futures::stream::{self, LocalBoxStream, StreamExt};

use super::{read_error_body, status_failure, Failure, Outcome, RetryPolicy};
use opencode_core::model::{ChatRequest, StreamEvent};
use opencode_core::providers::{self, ProviderConfig, ProviderError, SseEvent, StreamDecoder};

use opencode_core::redact::redact;

use crate::host::Host;
use crate::log::Field;
use crate::sse::{self, SseError};

/// A committed provider's events. An `Err` item is terminal: nothing follows it.
pub type ProviderStream = LocalBoxStream<'static, Result<StreamEvent, StreamFailure>>;

/// Why a committed stream ended early. The message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamFailure {
    pub message: String,
}

/// A time limit that events can push back, on one host timer per quiet stretch: the timer is
/// re-armed only when it fires early, never per event. A timer per event cost a host call pair
/// per token (a `wasi:clocks` subtask on Spin, a `setTimeout` on Workers).
struct Deadline<H: Host> {
    host: H,
    timer: LocalBoxFuture<'static, ()>,
    /// When the limit is up, by the host's clock; later than the timer once pushed back.
    due_ms: u64,
    /// Pushed back since the timer was armed. A timer that fires without that means the limit
    /// is up, whatever the clock says (a clock that stands still cannot keep it waiting).
    pushed: bool,
    expired: bool,
}

impl<H: Host> Deadline<H> {
    fn new(host: &H, ms: u64) -> Self {
        Deadline {
            host: host.clone(),
            timer: host.sleep(ms),
            due_ms: host.now_ms().saturating_add(ms),
            pushed: false,
            expired: false,
        }
    }

    /// Moves the limit to `ms` from now.
    fn push_back(&mut self, ms: u64) {
        self.due_ms = self.host.now_ms().saturating_add(ms);
        self.pushed = true;
    }

    fn remaining_ms(&self) -> u64 {
        self.due_ms.saturating_sub(self.host.now_ms())
    }

    /// `fut`'s output, or `None` once the limit is up.
    async fn run<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        while !self.expired {
            match select(fut.as_mut(), &mut self.timer).await {
                Either::Left((value, _)) => return Some(value),
                Either::Right(((), _)) => {
                    let left = self.remaining_ms();
                    if !self.pushed || left == 0 {
                        self.expired = true;
                    } else {
                        self.pushed = false;
                        self.timer = self.host.sleep(left);
                    }
                }
            }
        }
        None
    }
}

/// A provider's stream: read by `open` up to the commit point, then handed to the client.
struct Live<H: Host> {
    host: H,
    /// Who streams, for the log when the stream breaks.
    provider: String,
    model: String,
    events: LocalBoxStream<'static, Result<SseEvent, SseError>>,
    decoder: StreamDecoder,
    pending: VecDeque<StreamEvent>,
    /// Before the commit point, the attempt's limit for the first token; after it, the limit on
    /// silence, pushed back by every event. Both are the attempt timeout, `timeout_ms`; neither
    /// goes past `ends_ms`, when the stream has had all the time a stream may take.
    deadline: Deadline<H>,
    timeout_ms: u64,
    /// `STREAM_MAX_MS` after the request was sent, by the host's clock.
    ends_ms: u64,
    max_ms: u64,
    committed: bool,
    finished: bool,
}

enum Next {
    Event(SseEvent),
    End,
}

impl<H: Host> Live<H> {
    /// The next raw SSE event, within the deadline.
    async fn next_raw(&mut self) -> Result<Next, Failure> {
        let next = match self.deadline.run(self.events.next()).await {
            None if self.host.now_ms() >= self.ends_ms => return Err(too_long(self.max_ms)),
            None => return Err(timed_out(self.timeout_ms, self.committed)),
            Some(None) => Next::End,
            Some(Some(Ok(event))) => Next::Event(event),
            Some(Some(Err(SseError::Transport(err)))) => return Err(Failure::from_host(err)),
            Some(Some(Err(SseError::Malformed(why)))) => return Err(Failure::new(Outcome::Malformed, why)),
        };
        if self.committed {
            self.push_back();
        }
        Ok(next)
    }

    /// The stream is the client's from here on: the limit becomes one on silence.
    fn commit(&mut self) {
        self.committed = true;
        self.push_back();
    }

    /// The limit on silence, from now, but never past the stream's end.
    fn push_back(&mut self) {
        let left = self.ends_ms.saturating_sub(self.host.now_ms());
        self.deadline.push_back(self.timeout_ms.min(left));
    }

    /// Decodes the next batch of events into `pending`; `Ok(false)` once the stream is over.
    async fn fill(&mut self) -> Result<bool, Failure> {
        if self.finished {
            return Ok(false);
        }
        let decoded = match self.next_raw().await? {
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

impl<H: Host> Live<H> {
    /// A committed stream that broke is logged where it broke, with the vendor's words redacted.
    fn log_broken(&self, failure: &Failure) {
        let (outcome, detail) = (failure.outcome.to_string(), redact(&failure.detail));
        let fields = [
            ("provider", Field::Text(&self.provider)),
            ("model", Field::Text(&self.model)),
            ("outcome", Field::Text(&outcome)),
            ("detail", Field::Text(&detail)),
        ];
        crate::log::warn(&self.host, "stream broke after its first token", &fields);
    }
}

/// Opens the stream and reads until the first token (or the end of an empty answer), all
/// within the attempt timeout. Everything read so far is replayed first by the returned stream.
pub(super) async fn open<H: Host>(
    host: &H,
    provider: &ProviderConfig,
    request: &ChatRequest,
    policy: &RetryPolicy,
) -> Result<ProviderStream, Failure> {
    let wire = providers::build_request(provider, request, true).map_err(Failure::from_provider)?;
    let timeout = policy.attempt_timeout_ms.min(policy.stream_max_ms);
    let ends_ms = host.now_ms().saturating_add(policy.stream_max_ms);
    // One timer for the whole way to the first token: the answer's head, then its events.
    let mut deadline = Deadline::new(host, timeout);
    let response =
        deadline.run(host.fetch(wire)).await.ok_or_else(|| timed_out(timeout, false))?.map_err(Failure::from_host)?;
    let (parts, body) = response.into_parts();
    if !parts.status.is_success() {
        let body = read_error_body(host, body, deadline.remaining_ms()).await;
        return Err(status_failure(host, provider, &parts, &body));
    }
    let events = match body {
        crate::Body::Stream(stream) => sse::decode(stream),
        crate::Body::Full(bytes) => sse::decode(stream::iter([Ok(bytes)]).boxed_local()),
    };
    let mut live = Live {
        host: host.clone(),
        provider: provider.name.clone(),
        model: provider.model.clone(),
        events,
        decoder: StreamDecoder::new(provider.kind),
        pending: VecDeque::new(),
        deadline,
        timeout_ms: timeout,
        ends_ms,
        max_ms: policy.stream_max_ms,
        committed: false,
        finished: false,
    };
    loop {
        if live.pending.iter().any(is_commit_point) {
            live.commit();
            return Ok(into_stream(live));
        }
        if !live.fill().await? {
            // Ended cleanly without a token or a Done: the decoder would have said Malformed.
            return Err(Failure::from_provider(ProviderError::Malformed("empty stream".into())));
        }
    }
}

/// A timeout before the commit point (no first token) or after it (silence).
fn timed_out(after_ms: u64, committed: bool) -> Failure {
    let what = if committed { "provider went silent" } else { "no first token in time" };
    Failure::new(Outcome::Timeout { after_ms }, what)
}

/// The stream took all the time a stream may take (`STREAM_MAX_MS`).
fn too_long(max_ms: u64) -> Failure {
    Failure::new(Outcome::Timeout { after_ms: max_ms }, format!("the stream passed STREAM_MAX_MS ({max_ms} ms)"))
}

/// The first event that is visible to the client (or proves the answer is complete). A tool
/// call is visible too: an answer may be nothing but calls.
fn is_commit_point(event: &StreamEvent) -> bool {
    matches!(event, StreamEvent::Delta(_) | StreamEvent::Thinking(_) | StreamEvent::ToolCall(_) | StreamEvent::Done)
}

fn into_stream<H: Host>(live: Live<H>) -> ProviderStream {
    stream::unfold(Some(live), |state| async move {
        let mut live = state?;
        loop {
            if let Some(event) = live.pending.pop_front() {
                return Some((Ok(event), Some(live)));
            }
            match live.fill().await {
                Ok(true) => continue,
                Ok(false) => return None,
                Err(failure) => {
                    let message = match failure.outcome {
                        Outcome::Timeout { .. } if failure.detail.contains("STREAM_MAX_MS") => failure.detail.clone(),
                        Outcome::Timeout { after_ms } => format!("provider sent nothing for {after_ms} ms"),
                        Outcome::StreamError => "provider reported an error mid-stream".to_string(),
                        Outcome::Malformed => "provider stream ended early or was malformed".to_string(),
                        _ => "provider connection broke mid-stream".to_string(),
                    };
                    live.log_broken(&failure);
                    return Some((Err(StreamFailure { message }), None));
                }
            }
        }
    })
    .boxed_local()
}
