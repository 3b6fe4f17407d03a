//! Metering of mode requests, read off the typed reply so that no mode has to report: whether
//! the cache was consulted and hit, the answer's usage and cost, and whether it failed. A stream
//! is recorded when it ends; when the client goes away first, the rest of the upstream's stream
//! is read in the background, so its usage (what the vendor bills), not the client's, is
//! recorded. Each request is then written to the usage ledger and its limits' reservations
//! settled to what it used, after the response.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::stream::{Stream, StreamExt as _};

use opencode_core::model::Usage;
use opencode_core::routing::{Mode, Tier};
use opencode_core::webhooks::{EventType, Webhooks};
use opencode_runtime::answer::{Answer, CacheStatus, Details, Event, EventStream, Reply, Streamed};
use opencode_runtime::control::counters::{self, Admission};
use opencode_runtime::control::ledger::{self, UsageRow};
use opencode_runtime::host::Host;
use opencode_runtime::log::{self, Field};
use opencode_runtime::metrics::{self, Sample};
use opencode_runtime::webhooks;
use serde_json::json;

/// The tier a mode runs on unless the gateway decided otherwise.
pub fn default_tier(mode: Mode) -> Tier {
    match mode {
        Mode::Code | Mode::Research => Tier::System2,
        Mode::Chat | Mode::Knowledge | Mode::Search | Mode::Thinking => Tier::System1,
    }
}

/// A mode request waiting for its answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub mode: Mode,
    pub tier: Tier,
    pub started_ms: u64,
    /// Whose request it is, for the ledger; `None` for an unauthenticated one.
    pub account: Option<Rc<Account>>,
}

/// Who a request is billed to, and what it reserved.
#[derive(Debug, Default)]
pub struct Account {
    pub request_id: String,
    pub tenant: String,
    pub subject: String,
    pub key_id: Option<String>,
    /// Written once the request is admitted; settled after the answer.
    pub admission: RefCell<Option<Admission>>,
    /// Where `request.completed` and `request.failed` go.
    pub webhooks: Option<Rc<Webhooks>>,
}

/// What one request came to.
struct Outcome {
    sample: Sample,
    model: Option<String>,
    provider: Option<String>,
    /// The error's stable code, when it failed.
    error: Option<&'static str>,
    /// The answer's text, kept only for a webhook receiver trusted with content.
    text: Option<String>,
}

impl Pending {
    fn outcome(&self) -> Outcome {
        let sample = Sample {
            mode: self.mode,
            tier: self.tier,
            latency_ms: 0,
            cache: None,
            usage: Usage::default(),
            cost_usd: 0.0,
            error: false,
        };
        let content = self.account.as_ref().and_then(|a| a.webhooks.as_ref()).is_some_and(|hooks| hooks.content);
        Outcome { sample, model: None, provider: None, error: None, text: content.then(String::new) }
    }
}

/// Records `reply` once it has been delivered; a stream is watched until it ends.
pub fn metered<H: Host, D: Details>(host: &H, pending: &Pending, reply: Reply<D>) -> Reply<D> {
    let mut outcome = pending.outcome();
    match reply {
        Reply::Whole(answer) => {
            count(&mut outcome, &answer);
            finish(host, pending, outcome);
            Reply::Whole(answer)
        }
        Reply::Stream(Streamed { head, events }) => {
            outcome.sample.cache = head.cache.map(|status| status == CacheStatus::Hit);
            let watch = StreamWatch {
                host: host.clone(),
                pending: pending.clone(),
                outcome: Some(outcome),
                events: Some(events),
            };
            Reply::Stream(Streamed { head, events: watch.boxed_local() })
        }
    }
}

/// What the answer reports: cache, tokens, dollars and who answered.
fn count<D>(outcome: &mut Outcome, answer: &Answer<D>) {
    outcome.sample.cache = answer.cache.map(|status| status == CacheStatus::Hit);
    if outcome.text.is_some() {
        outcome.text = Some(answer.response.text.clone());
    }
    outcome.sample.usage = answer.response.usage;
    outcome.sample.cost_usd = answer.cost_usd.unwrap_or_default();
    if let Some(answered) = &answer.answered {
        outcome.model = Some(answered.model.clone());
        outcome.provider = Some(answered.provider.clone());
    }
}

/// Records a request that failed before it had a reply, with the error's code.
pub fn record_error<H: Host>(host: &H, pending: &Pending, code: &'static str) {
    let mut outcome = pending.outcome();
    outcome.sample.error = true;
    outcome.error = Some(code);
    finish(host, pending, outcome);
}

/// The request is over: its metrics now, its ledger row and settlement after the response.
fn finish<H: Host>(host: &H, pending: &Pending, mut outcome: Outcome) {
    outcome.sample.latency_ms = host.now_ms().saturating_sub(pending.started_ms);
    // `metrics.cognitive_metrics` off leaves it out (the ledger still has its row).
    if host.trace().is_none_or(|trace| !trace.facts.borrow().uncounted) {
        metrics::record(host, &outcome.sample);
    }
    if outcome.sample.error {
        opencode_runtime::trace::note(host, |facts| facts.failed = true);
    }
    let Some(account) = pending.account.clone() else { return };
    let task_host = host.clone();
    host.spawn_background(Box::pin(async move { account_for(&task_host, &account, &outcome).await }));
}

async fn account_for<H: Host>(host: &H, account: &Account, outcome: &Outcome) {
    let sample = &outcome.sample;
    let admission = account.admission.borrow_mut().take();
    if let Some(admission) = admission {
        let tokens = sample.usage.input_tokens.saturating_add(sample.usage.output_tokens);
        counters::settle(host, &admission, tokens, opencode_core::limits::micros(sample.cost_usd)).await;
    }
    let row = UsageRow {
        id: 0,
        request_id: account.request_id.clone(),
        ts: host.now_ms(),
        tenant: account.tenant.clone(),
        key_id: account.key_id.clone(),
        subject: account.subject.clone(),
        mode: sample.mode.as_str().to_owned(),
        tier: sample.tier.as_str().to_owned(),
        model: outcome.model.clone(),
        provider: outcome.provider.clone(),
        status: if sample.error { "error" } else { "ok" }.to_owned(),
        cache_hit: sample.cache,
        input_tokens: sample.usage.input_tokens,
        output_tokens: sample.usage.output_tokens,
        reasoning_tokens: sample.usage.reasoning_tokens,
        cost_usd: sample.cost_usd,
        latency_ms: sample.latency_ms,
    };
    if let Err(err) = ledger::record(host, &row).await {
        let error = err.to_string();
        log::warn(host, "could not write the usage ledger", &[("error", Field::Text(&error))]);
    }
    let hooks = account.webhooks.as_ref();
    let event = if sample.error { EventType::RequestFailed } else { EventType::RequestCompleted };
    if hooks.is_some_and(|hooks| hooks.wants(event)) {
        // The ledger's row, as `/admin/usage/requests` shows it (before it has an id).
        let mut data = serde_json::to_value(&row).unwrap_or_default();
        if let Some(map) = data.as_object_mut() {
            map.remove("id");
            if sample.error {
                map.insert("error".into(), json!(outcome.error.unwrap_or("failed")));
            }
            if let Some(text) = outcome.text.clone().filter(|_| hooks.is_some_and(|h| h.content)) {
                map.insert("answer".into(), json!(text));
            }
        }
        webhooks::send(host, hooks, event, data);
    }
}

/// Passes a stream's events on, counting them; records the request when the stream ends, or,
/// when the client went away first, after reading the rest of it in the background.
struct StreamWatch<H: Host, D: Details> {
    host: H,
    pending: Pending,
    /// `None` once recorded.
    outcome: Option<Outcome>,
    events: Option<EventStream<D>>,
}

impl<H: Host, D: Details> StreamWatch<H, D> {
    fn see(outcome: &mut Outcome, event: &Event<D>) -> bool {
        match event {
            Event::Done(answer) => {
                count(outcome, answer);
                true
            }
            Event::Failed(_) => {
                outcome.sample.error = true;
                outcome.error = Some("stream_failed");
                true
            }
            _ => false,
        }
    }
}

// No field is pinned: the event stream is boxed.
impl<H: Host, D: Details> Unpin for StreamWatch<H, D> {}

impl<H: Host, D: Details> Stream for StreamWatch<H, D> {
    type Item = Event<D>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<D>>> {
        let this = self.get_mut();
        let Some(events) = this.events.as_mut() else { return Poll::Ready(None) };
        let polled = events.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(event)) => {
                if let Some(outcome) = this.outcome.as_mut() {
                    if Self::see(outcome, event) {
                        if let Some(outcome) = this.outcome.take() {
                            finish(&this.host, &this.pending, outcome);
                        }
                    }
                }
            }
            Poll::Ready(None) => {
                this.events = None;
                if let Some(outcome) = this.outcome.take() {
                    finish(&this.host, &this.pending, outcome);
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl<H: Host, D: Details> Drop for StreamWatch<H, D> {
    fn drop(&mut self) {
        let Some(mut outcome) = self.outcome.take() else { return };
        let Some(mut events) = self.events.take() else {
            finish(&self.host, &self.pending, outcome);
            return;
        };
        // The client left mid-stream: the upstream's own end says what was used.
        let (host, pending) = (self.host.clone(), self.pending.clone());
        self.host.spawn_background(Box::pin(async move {
            while let Some(event) = events.next().await {
                if Self::see(&mut outcome, &event) {
                    break;
                }
            }
            finish(&host, &pending, outcome);
        }));
    }
}
