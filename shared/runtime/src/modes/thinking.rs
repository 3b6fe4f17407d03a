//! Thinking: one turn with deliberate reasoning, asked of each provider through its own control
//! (the translations live in `opencode_core::providers`; the request arrives with `reasoning`
//! set).
//!
//! The reasoning never enters the answer text: it is the answer's `thinking`, shown when the
//! request asked for it ([`ShowThinking`]), and in a stream its own events unless the request
//! turned them off. Answers are never cached: the cache is for System 1 answers, and a client
//! asking for deliberation wants it done.

use futures::StreamExt;

use opencode_core::model::{ChatRequest, StreamEvent};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::{Mode, Tier};

use super::{Delivery, ModeError};
use crate::answer::{
    event_stream, relay, Answer, Details, Failure, Head, NoProgress, ReasoningAsked, Reply, ShowThinking, Start,
    Streamed,
};
use crate::executor::{self, Answered, RetryPolicy};
use crate::host::Host;

/// A thinking turn, checked.
#[derive(Debug, Clone)]
pub struct ThinkingJob {
    /// With `reasoning` set.
    pub request: ChatRequest,
    pub chain: Vec<ProviderConfig>,
    pub retry: RetryPolicy,
    pub tier: Tier,
    pub reasoning: ReasoningAsked,
    /// As asked: in a whole answer the reasoning shows only when `Some(true)`; a stream sends
    /// it unless `Some(false)`.
    pub include_thinking: Option<bool>,
}

/// What a thinking answer adds: the reasoning asked of the providers.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinkingDetails {
    pub reasoning: ReasoningAsked,
}

impl Details for ThinkingDetails {
    type Progress = NoProgress;
}

/// Answers one thinking turn.
pub async fn run<H: Host>(host: &H, job: ThinkingJob, delivery: Delivery) -> Result<Reply<ThinkingDetails>, ModeError> {
    let details = ThinkingDetails { reasoning: job.reasoning };
    if delivery == Delivery::Whole {
        let (response, answered) = executor::complete(host, &job.chain, &job.request, &job.retry).await?;
        let mut answer = Answer::new(Mode::Thinking, answered, response, details);
        answer.show_thinking =
            if job.include_thinking == Some(true) { ShowThinking::Always } else { ShowThinking::Never };
        return Ok(Reply::whole(answer));
    }
    let started = executor::stream(host, &job.chain, &job.request, &job.retry).await?;
    let answered = started.answered;
    let events = if job.include_thinking == Some(false) {
        started.events.filter(|e| futures::future::ready(!matches!(e, Ok(StreamEvent::Thinking(_))))).boxed_local()
    } else {
        started.events
    };
    let head = Head { answered: Some(answered.clone()), cache: None };
    let events = event_stream(move |sink| async move {
        let mut start = Start::new(Mode::Thinking, Some(job.tier));
        start.answered = Some(answered.clone());
        start.reasoning = Some(job.reasoning);
        sink.send(crate::answer::Event::Start(Box::new(start)));
        let result = relay(Some(&sink), events, &answered).await.map_err(Failure::Interrupted);
        sink.end(result.map(|response| finished(answered, response, details)));
    });
    Ok(Reply::Stream(Streamed { head, events }))
}

/// The answer at the end of a stream: its reasoning already went out as events.
fn finished(
    answered: Answered,
    response: opencode_core::model::ChatResponse,
    details: ThinkingDetails,
) -> Answer<ThinkingDetails> {
    let mut answer = Answer::new(Mode::Thinking, answered, response, details);
    answer.show_thinking = ShowThinking::Never;
    answer
}
