//! Metering of mode requests, read off the typed reply so that no mode has to report: whether
//! the cache was consulted and hit, the answer's usage and cost, and whether it failed. A stream
//! is recorded when it ends (or the client goes away), so its latency is the whole answer's.

use futures::stream::StreamExt as _;

use opencode_core::model::Usage;
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::answer::{Answer, CacheStatus, Details, Event, Reply, Streamed};
use opencode_runtime::host::Host;
use opencode_runtime::metrics::{self, Sample};

/// The tier a mode runs on unless the gateway decided otherwise.
pub fn default_tier(mode: Mode) -> Tier {
    match mode {
        Mode::Code | Mode::Research => Tier::System2,
        Mode::Chat | Mode::Knowledge | Mode::Search | Mode::Thinking => Tier::System1,
    }
}

/// A mode request waiting for its answer.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub mode: Mode,
    pub tier: Tier,
    pub started_ms: u64,
}

impl Pending {
    fn sample(&self) -> Sample {
        Sample {
            mode: self.mode,
            tier: self.tier,
            latency_ms: 0,
            cache: None,
            usage: Usage::default(),
            cost_usd: 0.0,
            error: false,
        }
    }
}

/// Records `reply` once it has been delivered; a stream is watched until it ends.
pub fn metered<H: Host, D: Details>(host: &H, pending: &Pending, reply: Reply<D>) -> Reply<D> {
    let mut sample = pending.sample();
    match reply {
        Reply::Whole(answer) => {
            count(&mut sample, &answer);
            sample.latency_ms = host.now_ms().saturating_sub(pending.started_ms);
            metrics::record(host, &sample);
            Reply::Whole(answer)
        }
        Reply::Stream(Streamed { head, events }) => {
            sample.cache = head.cache.map(|status| status == CacheStatus::Hit);
            let mut watch = StreamWatch { host: host.clone(), sample, started_ms: pending.started_ms };
            // A method call, so that the closure owns the whole watch (and its `Drop`), not a
            // copy of its sample.
            let events = events.map(move |event| watch.see(event)).boxed_local();
            Reply::Stream(Streamed { head, events })
        }
    }
}

/// What the answer reports: cache, tokens and dollars.
fn count<D>(sample: &mut Sample, answer: &Answer<D>) {
    sample.cache = answer.cache.map(|status| status == CacheStatus::Hit);
    let usage = answer.response.usage;
    sample.usage = Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, ..Usage::default() };
    sample.cost_usd = answer.cost_usd.unwrap_or_default();
}

/// Records a request that failed before it had a reply.
pub fn record_error<H: Host>(host: &H, pending: &Pending) {
    let mut sample = pending.sample();
    sample.error = true;
    sample.latency_ms = host.now_ms().saturating_sub(pending.started_ms);
    metrics::record(host, &sample);
}

/// Records the sample when dropped, which is when the stream ended or the client went away.
struct StreamWatch<H: Host> {
    host: H,
    sample: Sample,
    started_ms: u64,
}

impl<H: Host> StreamWatch<H> {
    fn see<D: Details>(&mut self, event: Event<D>) -> Event<D> {
        match &event {
            Event::Done(answer) => count(&mut self.sample, answer),
            Event::Failed(_) => self.sample.error = true,
            _ => {}
        }
        event
    }
}

impl<H: Host> Drop for StreamWatch<H> {
    fn drop(&mut self) {
        self.sample.latency_ms = self.host.now_ms().saturating_sub(self.started_ms);
        metrics::record(&self.host, &self.sample);
    }
}
