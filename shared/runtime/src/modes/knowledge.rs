//! Knowledge: a question answered from the tenant's documents, citing them as `[n]`.
//!
//! The question retrieves the best chunks ([`crate::knowledge::retrieve`]); the model answers
//! from them alone. When no chunk is relevant no model is called and the answer says so, so
//! nothing can be invented. Retrieval happens before a stream opens (its failures are
//! statuses). Whole answers are read from the model as a stream too, so that the knowledge
//! function links one provider code path instead of two: fallback and retries apply until the
//! first token, and an answer that breaks after it is a failed attempt.
//!
//! System 1 answers are cached as chat's are (`crate::cache`), keyed also by the index's
//! version, which every document added, replaced or deleted changes: a hit skips the
//! question's embedding, the search and the model call.

use futures::StreamExt as _;
use serde_json::{json, Value};

use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, Message, Usage};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::{Mode, Tier};

use super::{Delivery, ModeError};
use crate::answer::{
    event_stream, relay, Answer, CacheStatus, Citation, Details, Event, Failure, Head, Reply, ShowThinking, Start,
    Streamed,
};
use crate::cache::{self, cacheable, CacheKey};
use crate::executor::{self, Answered, Outcome, ProvidersFailed, RetryPolicy};
use crate::host::Host;
use crate::knowledge::{self, Hit, Retrieval};

/// The whole answer when nothing relevant was found.
pub const NOTHING_FOUND: &str =
    "I found nothing relevant to this question in the knowledge base, so I cannot answer it from there.";

const INSTRUCTIONS: &str = "Answer the user's question using only the numbered sources below, \
which come from their knowledge base. Cite every source you use by its number in square brackets, \
like [1] or [2][3]. If the sources do not contain the answer, say that the knowledge base does not \
contain it. Do not use outside knowledge and do not invent facts.";

/// A question, checked.
#[derive(Debug, Clone)]
pub struct AskJob {
    pub request: ChatRequest,
    /// The last user message, trimmed and not empty.
    pub question: String,
    pub top_k: usize,
    pub tenant: String,
    pub chain: Vec<ProviderConfig>,
    pub retry: RetryPolicy,
    pub tier: Tier,
    /// How the System 1 cache is used, when it is on for this request.
    pub cache: Option<CacheSettings>,
}

/// A question's use of the cache (its key is made once the index's version is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Look the answer up first (false on a refresh).
    pub reads: bool,
    pub ttl_secs: u64,
    /// The tenant's cache slots (`system1.cache_max_size`).
    pub slots: u64,
}

/// What a knowledge answer adds: what was retrieved, and whether any of it was relevant.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeDetails {
    pub found: bool,
    pub retrieval: Retrieval,
}

impl Details for KnowledgeDetails {
    type Progress = Retrieval;
}

/// Answers one question from the tenant's documents.
pub async fn run<H: Host>(host: &H, mut job: AskJob, delivery: Delivery) -> Result<Reply<KnowledgeDetails>, ModeError> {
    // Screened before the question is embedded (a provider call) or answered from the cache.
    let model = job.chain.first().map_or("", |p| p.model.as_str()).to_owned();
    if crate::guard::screen_job(host, &model, &mut job.request).await? {
        job.question = super::last_user_text(&job.request).trim().to_owned();
    }
    let mut store = None;
    if let (Some(settings), Some(text)) = (job.cache, key_text(&job.request)) {
        let revision = knowledge::revision(host, &job.tenant).await?;
        let version = format!("{revision}/{}", job.top_k);
        let key = cache::key(&job.tenant, "knowledge", &version, &job.chain, &text, settings.slots);
        if settings.reads {
            if let Some(hit) = cache::get_value(host, &key).await.and_then(|v| Cached::read(&v)) {
                return Ok(replay(hit, delivery, job.tier));
            }
        }
        store = Some((key, settings.ttl_secs));
    }
    let retrieval = knowledge::retrieve(host, &job.tenant, &job.question, job.top_k).await?;
    let citations = citations(&retrieval.hits);
    let details = KnowledgeDetails { found: !retrieval.hits.is_empty(), retrieval };
    if !details.found {
        return Ok(nothing_found(delivery, job.tier, details));
    }
    let grounded = grounded(job.request, &details.retrieval.hits);
    let cached = store.is_some();
    if delivery == Delivery::Whole {
        let started = executor::stream(host, &job.chain, &grounded, &job.retry).await?;
        let mut answered = started.answered;
        let response = match relay::<KnowledgeDetails>(None, started.events, &answered).await {
            Ok(response) => response,
            Err(failure) => {
                if let Some(last) = answered.attempts.last_mut() {
                    last.outcome = Outcome::Malformed;
                    last.detail = failure.message;
                }
                return Err(ProvidersFailed(answered.attempts).into());
            }
        };
        keep(host, store, &answered, &response, &details);
        let mut answer = Answer::new(Mode::Knowledge, answered, response, details);
        answer.citations = citations;
        answer.cache = cached.then_some(CacheStatus::Miss);
        return Ok(Reply::whole(answer));
    }
    let (host, chain, retry) = (host.clone(), job.chain, job.retry);
    let events = event_stream(move |sink| async move {
        sink.send(Event::Start(Box::new(Start::new(Mode::Knowledge, Some(job.tier)))));
        sink.progress(details.retrieval.clone());
        let result = async {
            let started = executor::stream(&host, &chain, &grounded, &retry)
                .await
                .map_err(|failed| Failure::Failed(failed.into()))?;
            let response = relay(Some(&sink), started.events, &started.answered).await.map_err(Failure::Interrupted)?;
            keep(&host, store, &started.answered, &response, &details);
            let mut answer = Answer::new(Mode::Knowledge, started.answered, response, details);
            answer.citations = citations;
            answer.cache = cached.then_some(CacheStatus::Miss);
            // The reasoning, if any, went out as events.
            answer.show_thinking = ShowThinking::Never;
            Ok(answer)
        };
        sink.end(result.await);
    });
    Ok(Reply::Stream(Streamed { head: Head::default(), events }))
}

/// Caches a complete answer after the response.
fn keep<H: Host>(
    host: &H,
    store: Option<(CacheKey, u64)>,
    answered: &Answered,
    response: &ChatResponse,
    details: &KnowledgeDetails,
) {
    let Some((key, ttl_secs)) = store.filter(|_| cacheable(&response.finish_reason)) else { return };
    let usage = response.usage;
    let hits: Vec<Value> = details
        .retrieval
        .hits
        .iter()
        .map(|h| json!({ "document_id": h.document_id, "chunk": h.chunk, "score": f64::from(h.score), "text": h.text }))
        .collect();
    let retrieval = &details.retrieval;
    let value = json!({
        "provider": answered.provider,
        "model": response.model,
        "text": response.text,
        "thinking": response.thinking,
        "finish": response.finish_reason.as_str(),
        "usage": [usage.input_tokens, usage.output_tokens, usage.reasoning_tokens, usage.cached_tokens],
        "hits": hits,
        "top_score": retrieval.top_score.map(f64::from),
        "threshold": f64::from(retrieval.threshold),
        "chunks_searched": retrieval.chunks_searched,
        "truncated": retrieval.truncated,
    });
    cache::put_later(host, key, value, ttl_secs);
}

/// The request's text for the cache key: everything a knowledge answer depends on (the mode
/// takes no tools or response format). A question with images is not cached.
fn key_text(request: &ChatRequest) -> Option<String> {
    if request.messages.iter().any(|m| !m.images.is_empty()) {
        return None;
    }
    let sampling = [request.temperature, request.top_p, request.frequency_penalty, request.presence_penalty];
    let value = json!({
        "messages": opencode_core::guard::messages_json(&request.messages),
        "sampling": sampling.map(|x| x.map(f64::from)),
        "top_k": request.top_k,
        "max_tokens": request.max_tokens,
        "stop": request.stop,
        "seed": request.seed,
        "reasoning": request.reasoning.map(|r| r.budget_tokens),
        "logit_bias": request.logit_bias.iter().map(|(token, bias)| (token.to_string(), Value::from(f64::from(*bias)))).collect::<serde_json::Map<_, _>>(),
    });
    Some(value.to_string())
}

/// A cached knowledge answer, read by hand from its JSON (serde's derives for the response and
/// the retrieval cost the knowledge function kilobytes of Wasm).
struct Cached {
    provider: String,
    response: ChatResponse,
    retrieval: Retrieval,
}

impl Cached {
    fn read(value: &Value) -> Option<Cached> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let number = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        let usage = value.get("usage");
        let usage = Usage {
            input_tokens: number(usage.and_then(|u| u.get(0))),
            output_tokens: number(usage.and_then(|u| u.get(1))),
            reasoning_tokens: number(usage.and_then(|u| u.get(2))),
            cached_tokens: number(usage.and_then(|u| u.get(3))),
        };
        let finish_reason = match value.get("finish").and_then(Value::as_str)? {
            "length" => FinishReason::Length,
            _ => FinishReason::Stop,
        };
        let response = ChatResponse {
            text: text("text")?,
            thinking: text("thinking"),
            thinking_signature: None,
            model: text("model").unwrap_or_default(),
            finish_reason,
            usage,
            tool_calls: Vec::new(),
        };
        let mut hits = Vec::new();
        for hit in value.get("hits").and_then(Value::as_array)? {
            hits.push(Hit {
                document_id: hit.get("document_id").and_then(Value::as_str)?.to_owned(),
                chunk: u32::try_from(hit.get("chunk").and_then(Value::as_u64)?).ok()?,
                score: hit.get("score").and_then(Value::as_f64)? as f32,
                text: hit.get("text").and_then(Value::as_str)?.to_owned(),
            });
        }
        let retrieval = Retrieval {
            hits,
            top_score: value.get("top_score").and_then(Value::as_f64).map(|s| s as f32),
            threshold: value.get("threshold").and_then(Value::as_f64).unwrap_or_default() as f32,
            chunks_searched: usize::try_from(number(value.get("chunks_searched"))).unwrap_or(0),
            truncated: value.get("truncated").and_then(Value::as_bool).unwrap_or(false),
            // A hit embeds nothing.
            usage: Usage::default(),
            embedding: None,
        };
        Some(Cached { provider: text("provider")?, response, retrieval })
    }
}

/// A cached answer, whole or as a stream; no embedding, search or model call was made.
fn replay(hit: Cached, delivery: Delivery, tier: Tier) -> Reply<KnowledgeDetails> {
    let Cached { provider, response, retrieval } = hit;
    let answered = Answered { provider, model: response.model.clone(), attempts: vec![], price: None };
    let citations = citations(&retrieval.hits);
    let details = KnowledgeDetails { found: true, retrieval };
    let progress = details.retrieval.clone();
    let text = response.text.clone();
    let mut answer = Answer::new(Mode::Knowledge, answered.clone(), response, details);
    answer.citations = citations;
    answer.cache = Some(CacheStatus::Hit);
    if delivery == Delivery::Whole {
        return Reply::whole(answer);
    }
    answer.show_thinking = ShowThinking::Never;
    let mut start = Start::new(Mode::Knowledge, Some(tier));
    start.model = Some(answer.response.model.clone());
    start.answered = Some(answered.clone());
    let mut events = vec![Event::Start(Box::new(start)), Event::Progress(progress)];
    events.push(Event::Delta(text));
    events.push(Event::Done(Box::new(answer)));
    let head = Head { answered: Some(answered), cache: Some(CacheStatus::Hit) };
    Reply::Stream(Streamed { head, events: futures::stream::iter(events).boxed_local() })
}

/// The numbered sources, in the order the model sees them.
fn citations(hits: &[Hit]) -> Vec<Citation> {
    let hits = (1..).zip(hits);
    hits.map(|(index, h)| Citation::Passage {
        index,
        document_id: h.document_id.clone(),
        chunk: h.chunk,
        score: round(h.score),
    })
    .collect()
}

/// Scores as answers show them: four decimals.
pub fn round(score: f32) -> f64 {
    (f64::from(score) * 10_000.0).round() / 10_000.0
}

/// The request with the sources and the rules for using them in front.
fn grounded(mut request: ChatRequest, hits: &[Hit]) -> ChatRequest {
    let mut system = format!("{INSTRUCTIONS}\n\nSources:");
    for (n, hit) in (1usize..).zip(hits) {
        system.push_str(&format!("\n\n[{n}] document \"{}\", chunk {}\n{}", hit.document_id, hit.chunk, hit.text));
    }
    request.messages.insert(0, Message::system(system));
    request
}

/// Nothing relevant: said so, without calling a model (nothing to pay for).
fn nothing_found(delivery: Delivery, tier: Tier, details: KnowledgeDetails) -> Reply<KnowledgeDetails> {
    let response = ChatResponse {
        text: NOTHING_FOUND.to_owned(),
        thinking: None,
        thinking_signature: None,
        model: String::new(),
        finish_reason: FinishReason::Stop,
        usage: Usage::default(),
        tool_calls: Vec::new(),
    };
    let answer = Answer {
        mode: Mode::Knowledge,
        tier: None,
        answered: None,
        response,
        cost_usd: Some(0.0),
        citations: Vec::new(),
        show_thinking: ShowThinking::IfAny,
        cache: None,
        details,
    };
    if delivery == Delivery::Whole {
        return Reply::whole(answer);
    }
    let events = vec![
        Event::Start(Box::new(Start::new(Mode::Knowledge, Some(tier)))),
        Event::Progress(answer.details.retrieval.clone()),
        Event::Delta(NOTHING_FOUND.to_owned()),
        Event::Done(Box::new(answer)),
    ];
    Reply::Stream(Streamed { head: Head::default(), events: futures::stream::iter(events).boxed_local() })
}
