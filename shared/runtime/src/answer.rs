//! The one answer and the one event stream every mode produces, whatever the client speaks.
//!
//! A mode ends in a [`Reply`]: a whole [`Answer`], or a [`Streamed`] reply whose events arrive as
//! the mode works (`Start`, its progress, the model's text as it is written, then `Done` with the
//! answer or `Failed`). Each dialect of `opencode-api` renders these and nothing else, so no mode
//! logic lives in a renderer and every mode speaks every dialect.
//!
//! What is mode-specific (a search's sources, a code run, an agent's steps) is the answer's
//! `details`, of a type each mode picks ([`Details`]); its progress events are
//! [`Details::Progress`]. Generic rather than one enum of every mode, so that a function's Wasm
//! links the rendering of its own mode only. Nothing here is JSON: the dialects write it.
//!
//! [`AnswerFold`] is the one place a provider's stream adds up to an answer, and [`relay`] the
//! one loop that passes a committed model stream on to a sink while folding it.

use std::future::Future;

use futures::channel::mpsc;
use futures::stream::{self, LocalBoxStream, StreamExt};
use opencode_core::model::{
    add_tool_call_piece, ChatResponse, Effort, FinishReason, StreamEvent, ToolCall, ToolCallPiece, Usage,
};
use opencode_core::routing::{Mode, Tier};

use crate::executor::{Answered, ProviderStream, StreamFailure};
use crate::modes::ModeError;

/// What a mode reports besides the common fields (the platform's answer carries it flat, the
/// vendors' dialects in an extension field).
pub trait Details: 'static {
    /// The events the mode sends while it works.
    type Progress: 'static;
    /// Plain chat: the answer of one model call, which the platform's dialect writes in its
    /// historic `chat.completion` shape rather than a mode answer's.
    const PLAIN_CHAT: bool = false;
}

/// No details and no progress: chat on System 1.
impl Details for () {
    type Progress = NoProgress;
    const PLAIN_CHAT: bool = true;
}

/// The progress of a mode that reports none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoProgress {}

/// A source the answer may cite as `[index]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Citation {
    /// A web page.
    Web { index: usize, url: String, title: String },
    /// A passage of one of the tenant's documents.
    Passage { index: usize, document_id: String, chunk: u32, score: f64 },
}

/// Whether the reasoning text is part of the answer a client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShowThinking {
    /// When the provider returned some.
    #[default]
    IfAny,
    /// Always, `null` when the provider returned none (thinking mode, when asked for).
    Always,
    /// Never (thinking mode, unless asked for).
    Never,
}

/// Whether the System 1 cache served the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
}

/// The answer of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<D> {
    pub mode: Mode,
    /// The tier the answer reports, when it reports one.
    pub tier: Option<Tier>,
    /// Who wrote the answer (the last model call); `None` when no model was called.
    pub answered: Option<Answered>,
    /// The text, reasoning, calls, finish and tokens. In a stream's `Done` the text has already
    /// gone out as deltas: renderers never send it again.
    pub response: ChatResponse,
    /// What every model call of the answer cost at list prices; `None` when some model has no
    /// price (or nothing was paid for: a cache hit).
    pub cost_usd: Option<f64>,
    /// Sources the text cites as `[n]`, numbered as the model saw them.
    pub citations: Vec<Citation>,
    pub show_thinking: ShowThinking,
    pub cache: Option<CacheStatus>,
    pub details: D,
}

impl<D> Answer<D> {
    /// An answer of `mode` written by `answered`: the answer's cost is its usage at the model's
    /// price.
    pub fn new(mode: Mode, answered: Answered, response: ChatResponse, details: D) -> Self {
        let cost_usd = answered.cost_usd(&response.usage);
        Answer {
            mode,
            tier: None,
            answered: Some(answered),
            response,
            cost_usd,
            citations: Vec::new(),
            show_thinking: ShowThinking::IfAny,
            cache: None,
            details,
        }
    }

    /// The model that answered: the one the provider named, else the one asked for.
    pub fn model(&self) -> &str {
        match (&self.answered, self.response.model.is_empty()) {
            (Some(answered), true) => &answered.model,
            _ => &self.response.model,
        }
    }

    /// The finish reason a client is told: some compatible servers finish with `stop` after
    /// tool calls.
    pub fn finish_reason(&self) -> FinishReason {
        match &self.response.finish_reason {
            FinishReason::Stop if !self.response.tool_calls.is_empty() => FinishReason::ToolCalls,
            other => other.clone(),
        }
    }
}

/// The reasoning a thinking request asked the providers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasoningAsked {
    pub effort: Effort,
    pub budget_tokens: u32,
}

/// The head of a stream: what is known when it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub mode: Mode,
    pub tier: Option<Tier>,
    /// Who answers, when the provider is committed before the stream opens (chat, thinking).
    pub answered: Option<Answered>,
    /// The model the provider says is answering, when it said so before the first token.
    pub model: Option<String>,
    /// What a search mode searches for.
    pub query: Option<String>,
    pub reasoning: Option<ReasoningAsked>,
    /// The platform's tools an agent may call.
    pub tools: Option<Vec<String>>,
}

impl Start {
    pub fn new(mode: Mode, tier: Option<Tier>) -> Start {
        Start { mode, tier, answered: None, model: None, query: None, reasoning: None, tools: None }
    }

    /// The answering model, when known: the one the provider named, else the one asked for.
    pub fn model_name(&self) -> Option<&str> {
        self.model.as_deref().or(self.answered.as_ref().map(|a| a.model.as_str()))
    }
}

/// Why a stream ended without its answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The model's stream broke after its first token (no fallback can happen then).
    #[error(transparent)]
    Interrupted(StreamFailure),
    /// Anything else, once the stream had opened.
    #[error(transparent)]
    Failed(ModeError),
}

/// One event of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<D: Details> {
    /// First, once.
    Start(Box<Start>),
    Progress(D::Progress),
    /// The next piece of the answer text.
    Delta(String),
    /// The next piece of reasoning.
    Thinking(String),
    /// The signature of the reasoning so far (Anthropic's), which a client sends back with it.
    ThinkingSignature(String),
    /// The next piece of a call to one of the caller's tools.
    ToolCall(ToolCallPiece),
    /// Last: the answer, its text already sent as deltas.
    Done(Box<Answer<D>>),
    /// Last: what went wrong.
    Failed(Failure),
}

/// A reply's events, as they happen; it ends after `Done` or `Failed`.
pub type EventStream<D> = LocalBoxStream<'static, Event<D>>;

/// What is known before a stream's first event, for the response head.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Head {
    /// Who answers, when already committed.
    pub answered: Option<Answered>,
    pub cache: Option<CacheStatus>,
}

impl Head {
    /// The model asked of the committed provider, or empty when none is committed yet.
    pub fn model_name(&self) -> String {
        self.answered.as_ref().map(|a| a.model.clone()).unwrap_or_default()
    }
}

/// A streamed reply.
pub struct Streamed<D: Details> {
    pub head: Head,
    pub events: EventStream<D>,
}

/// What a mode answers with.
pub enum Reply<D: Details> {
    Whole(Box<Answer<D>>),
    Stream(Streamed<D>),
}

impl<D: Details> Reply<D> {
    pub fn whole(answer: Answer<D>) -> Self {
        Reply::Whole(Box::new(answer))
    }
}

/// Where a mode sends its events while it works. Sending never fails: a client that went away
/// just stops reading.
pub struct Sink<D: Details> {
    tx: mpsc::UnboundedSender<Event<D>>,
}

impl<D: Details> Sink<D> {
    pub fn send(&self, event: Event<D>) {
        let _ = self.tx.unbounded_send(event);
    }

    pub fn progress(&self, progress: impl Into<D::Progress>) {
        self.send(Event::Progress(progress.into()));
    }

    pub fn delta(&self, text: impl Into<String>) {
        self.send(Event::Delta(text.into()));
    }

    /// The last event: the answer, or why there is none.
    pub fn end(&self, result: Result<Answer<D>, Failure>) {
        self.send(match result {
            Ok(answer) => Event::Done(Box::new(answer)),
            Err(failure) => Event::Failed(failure),
        });
    }
}

/// A stream whose events `task` sends as it works: the task runs while the client reads, and
/// the stream ends once the task has finished and every event is out.
pub fn event_stream<D, Fut>(task: impl FnOnce(Sink<D>) -> Fut) -> EventStream<D>
where
    D: Details,
    Fut: Future<Output = ()> + 'static,
{
    let (tx, rx) = mpsc::unbounded();
    let work = task(Sink { tx });
    // The task drops its sink when it finishes, which ends `rx` once drained.
    let driver = stream::once(work).filter_map(|()| async { None });
    stream::select(rx, driver).boxed_local()
}

/// A provider stream adding up to an answer: text, reasoning, calls, the model it named, its
/// usage and finish. The one place streamed events are folded.
#[derive(Debug, Default)]
pub struct AnswerFold {
    /// Keep the text and reasoning (a relay keeps them for the answer; chat only to cache it).
    keep_text: bool,
    /// The most text, reasoning and call arguments kept, in bytes.
    limit: usize,
    /// The text kept, piece by piece as it came (a cache replays those pieces).
    pub pieces: Vec<String>,
    kept_bytes: usize,
    /// More came than the limit: what is kept is not the whole answer.
    pub overflowed: bool,
    thinking: String,
    thinking_signature: Option<String>,
    pub model: Option<String>,
    pub usage: Usage,
    finish: FinishReason,
    pub tool_calls: Vec<ToolCall>,
}

impl AnswerFold {
    /// A fold that passes the text on and keeps none of it.
    pub fn passing() -> Self {
        AnswerFold::default()
    }

    /// A fold that keeps the text while it stays within `limit` bytes (with the reasoning and
    /// the calls' arguments); past it, it keeps nothing more and says so (`overflowed`).
    pub fn keeping(limit: usize) -> Self {
        AnswerFold { keep_text: true, limit, ..AnswerFold::default() }
    }

    /// Adds one event; returns the piece the client sees, if the event is one.
    pub fn push<D: Details>(&mut self, event: StreamEvent) -> Option<Event<D>> {
        match event {
            StreamEvent::Delta(text) => {
                self.keep(&text, false);
                Some(Event::Delta(text))
            }
            StreamEvent::Thinking(text) => {
                self.keep(&text, true);
                Some(Event::Thinking(text))
            }
            StreamEvent::ThinkingSignature(signature) => {
                self.thinking_signature = Some(signature.clone());
                Some(Event::ThinkingSignature(signature))
            }
            StreamEvent::ToolCall(piece) => {
                // The calls are kept whatever their size (the answer needs them), but count
                // against what a kept answer may hold.
                self.count(piece.arguments.len());
                add_tool_call_piece(&mut self.tool_calls, &piece);
                Some(Event::ToolCall(piece))
            }
            StreamEvent::Model(name) => {
                self.model = Some(name);
                None
            }
            StreamEvent::Usage(more) => {
                self.usage.merge(more);
                None
            }
            StreamEvent::Finish(reason) => {
                self.finish = reason;
                None
            }
            StreamEvent::Done => None,
        }
    }

    fn keep(&mut self, text: &str, thinking: bool) {
        if !self.keep_text || self.overflowed {
            return;
        }
        self.count(text.len());
        if self.overflowed {
            return;
        }
        if thinking {
            self.thinking.push_str(text);
        } else {
            self.pieces.push(text.to_owned());
        }
    }

    /// Counts `bytes` more against the limit; past it, drops what was kept: a partial answer is
    /// worth nothing, and its memory is the client's stream, not ours.
    fn count(&mut self, bytes: usize) {
        if !self.keep_text || self.overflowed {
            return;
        }
        self.kept_bytes = self.kept_bytes.saturating_add(bytes);
        if self.kept_bytes > self.limit {
            self.overflowed = true;
            self.pieces = Vec::new();
            self.thinking = String::new();
        }
    }

    /// The finish reason so far.
    pub fn finish_reason(&self) -> &FinishReason {
        &self.finish
    }

    /// The answer the events added up to (its text only if kept).
    pub fn response(&self, answered: &Answered) -> ChatResponse {
        ChatResponse {
            text: self.pieces.concat(),
            thinking: (!self.thinking.is_empty()).then(|| self.thinking.clone()),
            thinking_signature: self.thinking_signature.clone(),
            model: self.model.clone().unwrap_or_else(|| answered.model.clone()),
            finish_reason: self.finish.clone(),
            usage: self.usage,
            tool_calls: self.tool_calls.clone(),
        }
    }
}

/// Passes a committed model stream's text and reasoning on to `sink` as they come and returns
/// the whole answer; without a sink it only reads it. Tool calls are folded into the answer,
/// not sent: a mode's model calls only the platform's own tools, which the mode runs. A broken
/// stream is the failure, with which the caller ends its reply.
pub async fn relay<D: Details>(
    sink: Option<&Sink<D>>,
    mut events: ProviderStream,
    answered: &Answered,
) -> Result<ChatResponse, StreamFailure> {
    let mut fold = AnswerFold::keeping(usize::MAX);
    while let Some(event) = events.next().await {
        let event = event?;
        let done = event == StreamEvent::Done;
        match (fold.push::<D>(event), sink) {
            (Some(Event::ToolCall(_)) | None, _) | (_, None) => {}
            (Some(visible), Some(sink)) => sink.send(visible),
        }
        if done {
            break;
        }
    }
    Ok(fold.response(answered))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_fold_keeps_pieces_until_the_bound_then_keeps_nothing() {
        let mut fold = AnswerFold::keeping(100);
        let _ = fold.push::<()>(StreamEvent::Delta("a".into()));
        let _ = fold.push::<()>(StreamEvent::Thinking("t".into()));
        assert_eq!(fold.pieces, ["a"]);
        let _ = fold.push::<()>(StreamEvent::Delta("x".repeat(99)));
        assert!(fold.overflowed);
        assert!(fold.pieces.is_empty());
        let _ = fold.push::<()>(StreamEvent::Delta("b".into()));
        assert!(fold.pieces.is_empty(), "nothing is kept after an overflow");

        let mut calls = AnswerFold::keeping(10);
        let piece = ToolCallPiece { index: 0, arguments: "{".repeat(11), ..ToolCallPiece::default() };
        let _ = calls.push::<()>(StreamEvent::ToolCall(piece));
        assert!(calls.overflowed, "call arguments count too");
        assert_eq!(calls.tool_calls.len(), 1, "but the calls are kept");

        let mut fold = AnswerFold::passing();
        assert!(matches!(fold.push::<()>(StreamEvent::Delta("a".into())), Some(Event::Delta(t)) if t == "a"));
        assert!(fold.pieces.is_empty());
    }

    #[test]
    fn events_arrive_in_order_and_the_stream_ends_with_the_task() {
        let events: EventStream<()> = event_stream(|sink: Sink<()>| async move {
            sink.delta("a");
            futures::future::ready(()).await;
            sink.delta("b");
        });
        let got: Vec<Event<()>> = futures::executor::block_on(events.collect());
        assert_eq!(got, [Event::Delta("a".into()), Event::Delta("b".into())]);
    }
}
