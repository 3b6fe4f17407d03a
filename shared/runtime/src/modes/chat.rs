//! Chat: one conversation turn through the provider chain, answered from the System 1 cache
//! when it can be.
//!
//! Whole answers come from one non-streamed call; streamed ones pass the provider's events on
//! as they arrive, with `Start` just before the first one the client sees (when the model the
//! provider names is known). A complete answer is cached after the response, streamed or not;
//! a hit replays the answer as it first came, in the same pieces, with no attempts and no cost.
//! (Chat on System 2 without the caller's tools is the agent's, not this module's.)

use futures::stream::{self, StreamExt};

use opencode_core::model::{ChatRequest, StreamEvent, ToolCallPiece};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::Mode;

use super::{Delivery, ModeError};
use crate::answer::{Answer, AnswerFold, CacheStatus, Event, Failure, Head, Reply, Start, Streamed};
use crate::cache::{self, cacheable, CachedAnswer};
use crate::executor::{self, Answered, ProviderStream, RetryPolicy, StartedStream};
use crate::host::Host;

/// A chat turn, checked.
#[derive(Debug, Clone)]
pub struct ChatJob {
    pub request: ChatRequest,
    pub chain: Vec<ProviderConfig>,
    pub retry: RetryPolicy,
    /// The cache entry to use, when the cache is on for this request.
    pub cache: Option<CacheUse>,
}

/// How one request uses the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUse {
    pub key: cache::CacheKey,
    /// Look the key up first (false on a refresh: the answer is made anew and stored).
    pub reads: bool,
    pub ttl_secs: u64,
}

/// The most an answer may hold (text, reasoning, call arguments) to be cached: a longer one is
/// streamed on, not kept.
pub const MAX_CACHED_BYTES: usize = 1 << 20;

/// Answers one chat turn.
pub async fn run<H: Host>(host: &H, mut job: ChatJob, delivery: Delivery) -> Result<Reply<()>, ModeError> {
    // Screened before the cache: a conversation the guard refuses gets no cached answer either.
    let model = job.chain.first().map_or("", |p| p.model.as_str()).to_owned();
    crate::guard::screen_job(host, &model, &mut job.request).await?;
    if let Some(use_) = job.cache.as_ref().filter(|c| c.reads) {
        if let Some(hit) = cache::get(host, &use_.key).await {
            return Ok(replay(hit, delivery));
        }
    }
    match delivery {
        Delivery::Stream => {
            let started = executor::stream(host, &job.chain, &job.request, &job.retry).await?;
            Ok(Reply::Stream(live(host, started, job.cache)))
        }
        Delivery::Whole => {
            let (response, answered) = executor::complete(host, &job.chain, &job.request, &job.retry).await?;
            let size = response.tool_calls.iter().fold(response.text.len(), |n, c| n.saturating_add(c.arguments.len()));
            if let Some(use_) = job.cache.filter(|_| cacheable(&response.finish_reason) && size <= MAX_CACHED_BYTES) {
                let pieces = vec![response.text.clone()];
                let entry =
                    CachedAnswer { provider: answered.provider.clone(), response: response.clone(), deltas: pieces };
                cache::put_later(host, use_.key, entry, use_.ttl_secs);
            }
            let mut answer = Answer::new(Mode::Chat, answered, response, ());
            answer.cache = Some(CacheStatus::Miss);
            Ok(Reply::whole(answer))
        }
    }
}

/// A committed provider stream as the reply's events, cached at its end when it completes.
fn live<H: Host>(host: &H, started: StartedStream, cache: Option<CacheUse>) -> Streamed<()> {
    let head = Head { answered: Some(started.answered.clone()), cache: Some(CacheStatus::Miss) };
    let state = Live {
        host: host.clone(),
        events: started.events,
        fold: if cache.is_some() { AnswerFold::keeping(MAX_CACHED_BYTES) } else { AnswerFold::passing() },
        answered: started.answered,
        cache,
        started: false,
        over: false,
    };
    let events = stream::unfold(state, |mut live| async move {
        let batch = live.next().await?;
        Some((stream::iter(batch), live))
    })
    .flatten()
    .boxed_local();
    Streamed { head, events }
}

struct Live<H: Host> {
    host: H,
    events: ProviderStream,
    fold: AnswerFold,
    answered: Answered,
    cache: Option<CacheUse>,
    started: bool,
    over: bool,
}

impl<H: Host> Live<H> {
    /// The next events the client sees, `Start` first; `None` once the stream is over.
    async fn next(&mut self) -> Option<Vec<Event<()>>> {
        if self.over {
            return None;
        }
        loop {
            let event = match self.events.next().await {
                Some(Ok(StreamEvent::Done)) | None => {
                    self.over = true;
                    let mut out = self.start();
                    out.push(Event::Done(Box::new(self.finish())));
                    return Some(out);
                }
                Some(Ok(event)) => event,
                Some(Err(failure)) => {
                    self.over = true;
                    let mut out = self.start();
                    out.push(Event::Failed(Failure::Interrupted(failure)));
                    return Some(out);
                }
            };
            if let Some(visible) = self.fold.push(event) {
                let mut out = self.start();
                out.push(visible);
                return Some(out);
            }
        }
    }

    /// `Start`, once: it goes out just before the first visible event, when the model the
    /// provider names is known.
    fn start(&mut self) -> Vec<Event<()>> {
        if std::mem::replace(&mut self.started, true) {
            return Vec::new();
        }
        let mut start = Start::new(Mode::Chat, None);
        start.answered = Some(self.answered.clone());
        start.model = Some(self.fold.model.clone().unwrap_or_else(|| self.answered.model.clone()));
        vec![Event::Start(Box::new(start))]
    }

    /// The answer the stream added up to; cached when it is complete and was kept whole.
    fn finish(&mut self) -> Answer<()> {
        let response = self.fold.response(&self.answered);
        if let Some(use_) = self.cache.take().filter(|_| cacheable(&response.finish_reason) && !self.fold.overflowed) {
            let pieces = std::mem::take(&mut self.fold.pieces);
            let entry =
                CachedAnswer { provider: self.answered.provider.clone(), response: response.clone(), deltas: pieces };
            cache::put_later(&self.host, use_.key, entry, use_.ttl_secs);
        }
        let mut answer = Answer::new(Mode::Chat, self.answered.clone(), response, ());
        answer.cache = Some(CacheStatus::Miss);
        answer
    }
}

/// A cache hit, whole or replayed in the pieces it first arrived in. No provider was called:
/// no attempts, and no cost (`usage` is what the answer cost when it was made).
fn replay(hit: CachedAnswer, delivery: Delivery) -> Reply<()> {
    let answered =
        Answered { provider: hit.provider, model: hit.response.model.clone(), attempts: vec![], price: None };
    let mut answer = Answer::new(Mode::Chat, answered.clone(), hit.response, ());
    answer.cache = Some(CacheStatus::Hit);
    if delivery == Delivery::Whole {
        return Reply::whole(answer);
    }
    let mut start = Start::new(Mode::Chat, None);
    start.model = Some(answer.response.model.clone());
    start.answered = Some(answered.clone());
    let mut events = vec![Event::Start(Box::new(start))];
    events.extend(answer.response.thinking.clone().map(Event::Thinking));
    events.extend(answer.response.thinking_signature.clone().map(Event::ThinkingSignature));
    events.extend(hit.deltas.into_iter().map(Event::Delta));
    // Each call in one piece, as a vendor that sends calls whole would.
    let calls = answer.response.tool_calls.iter().cloned().enumerate();
    events.extend(calls.map(|(index, call)| Event::ToolCall(ToolCallPiece::whole(index, call))));
    events.push(Event::Done(Box::new(answer)));
    let head = Head { answered: Some(answered), cache: Some(CacheStatus::Hit) };
    Reply::Stream(Streamed { head, events: stream::iter(events).boxed_local() })
}
