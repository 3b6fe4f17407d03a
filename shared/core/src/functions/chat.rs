//! `POST /v1/chat`: one conversation turn through the provider chain, as JSON or SSE. On
//! System 2 (`/v1/process` decided so) it runs the agent loop of chat_agent.rs instead.
//!
//! SSE events: `start` (who answers), `delta` and `thinking` (text as it arrives), `usage`,
//! `done`, and `error` (terminal; after it nothing follows).

use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::chat_agent;
use super::mode::requested_tier;
use super::toolbox::Toolbox;
use super::Ctx;
use crate::error::ApiError;
use crate::cache::{self, CachePolicy, CachedAnswer};
use crate::executor::{self, Answered, EventStream};
use crate::host::{Body, Host};
use crate::routing::Tier;
use crate::model::{ChatRequest, ChatResponse, FinishReason, Message, Role, StreamEvent, Usage};
use crate::{sse, web};

const MAX_MESSAGES: usize = 1_000;
const MAX_STOP: usize = 4;

/// The request body, exactly as documented in the README.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    pub messages: Vec<MessageBody>,
    #[serde(default)]
    pub stream: bool,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub model: Option<String>,
    pub stop: Option<Stop>,
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub role: String,
    pub content: String,
}

/// `stop` may be one string or a list, as in OpenAI's API.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl ChatBody {
    /// Checks every field and builds the provider-independent request.
    pub fn validate(self) -> Result<(ChatRequest, bool), ApiError> {
        let invalid = |msg: String| Err(ApiError::Validation(msg));
        let messages = validate_messages(self.messages)?;
        if let Some(t) = self.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return invalid(format!("`temperature` must be between 0 and 2, got {t}"));
        }
        if let Some(p) = self.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
            return invalid(format!("`top_p` must be between 0 and 1, got {p}"));
        }
        if self.max_tokens == Some(0) {
            return invalid("`max_tokens` must be at least 1".into());
        }
        if let Some(model) = &self.model {
            if model.trim().is_empty() || model.len() > 256 {
                return invalid("`model` must be a non-empty name of at most 256 characters".into());
            }
        }
        let stop = match self.stop {
            None => vec![],
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(list)) => list,
        };
        if stop.len() > MAX_STOP || stop.iter().any(String::is_empty) {
            return invalid(format!("`stop` takes at most {MAX_STOP} non-empty strings"));
        }
        let request = ChatRequest {
            messages,
            model: self.model,
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            stop,
            seed: self.seed,
            reasoning: None,
        };
        Ok((request, self.stream))
    }
}

/// Checks a conversation: 1 to `MAX_MESSAGES` messages with known roles, at least one of
/// them from the user.
pub fn validate_messages(bodies: Vec<MessageBody>) -> Result<Vec<Message>, ApiError> {
    let invalid = |msg: String| Err(ApiError::Validation(msg));
    if bodies.is_empty() {
        return invalid("`messages` must contain at least one message".into());
    }
    if bodies.len() > MAX_MESSAGES {
        return invalid(format!("`messages` has more than {MAX_MESSAGES} messages"));
    }
    let mut messages = Vec::with_capacity(bodies.len());
    for (i, m) in bodies.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return invalid(format!(
                    "messages[{i}].role `{}` is not one of system, user, assistant",
                    other.chars().take(32).collect::<String>()
                ))
            }
        };
        messages.push(Message::new(role, m.content));
    }
    if !messages.iter().any(|m| m.role == Role::User) {
        return invalid("`messages` must contain a user message".into());
    }
    Ok(messages)
}

pub(super) async fn handle<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, stream) = web::parse_json::<ChatBody>(&parts, &bytes)?.validate()?;
    // System 1 is one fast, cached call; System 2 (when /v1/process decided so) runs the strong
    // models and is never served from the cache.
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System1);
    // The chain pins a named model on its provider; left on the request, it would also be
    // asked of every fallback provider.
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    // System 2 runs the agent loop with the platform's tools, unless the caller brought its
    // own tools (their calls go back to the caller) or no tool's upstream is configured.
    if tier == Tier::System2 && request.tools.is_empty() {
        let tenant = ctx.principal.as_ref().map(|p| p.tenant.as_str());
        let toolbox = Toolbox::from_host(&ctx.host, ctx.config.retry.clone(), tenant);
        if !toolbox.is_empty() {
            return chat_agent::handle(ctx, request, chain, toolbox, stream).await;
        }
    }
    let ttl = ctx.config.cache_ttl_secs;
    let policy = if ttl == 0 || tier == Tier::System2 { CachePolicy::Bypass } else { CachePolicy::from_headers(&parts.headers) };
    // The key (a hash over the whole request) is only worth computing when the cache is used.
    let key = policy.writes().then(|| {
        let tenant = ctx.principal.as_ref().map_or("", |p| p.tenant.as_str());
        cache::key(tenant, "chat", &chain, &request)
    });
    if let Some(key) = key.as_deref().filter(|_| policy.reads()) {
        if let Some(hit) = cache::get(&ctx.host, key).await {
            return Ok(replay(ctx, hit, stream));
        }
    }
    let mut response = if stream {
        let started = executor::stream(&ctx.host, &chain, &request, &ctx.config.retry).await?;
        let on_complete = key.map(|key| {
            let host = ctx.host.clone();
            Box::new(move |answer| cache::put_later(&host, key, answer, ttl)) as OnComplete
        });
        let frames = sse_frames(ctx.request_id.clone(), started.answered.clone(), started.events, on_complete);
        let mut response = web::sse(frames);
        answered_headers(&mut response, &started.answered, None);
        response
    } else {
        let (answer, answered) = executor::complete(&ctx.host, &chain, &request, &ctx.config.retry).await?;
        let response = answer_json(ctx, &answer, &answered);
        if let Some(key) = key.filter(|_| cacheable(&answer.finish_reason)) {
            let deltas = vec![answer.text.clone()];
            cache::put_later(&ctx.host, key, CachedAnswer { provider: answered.provider, response: answer, deltas }, ttl);
        }
        response
    };
    web::set_header(&mut response, "x-cache", "miss");
    Ok(response)
}

/// Only complete answers are worth serving again.
fn cacheable(finish: &FinishReason) -> bool {
    matches!(finish, FinishReason::Stop | FinishReason::Length)
}

/// The JSON answer for a completed call.
fn answer_json<H: Host>(ctx: &Ctx<H>, answer: &ChatResponse, answered: &Answered) -> http::Response<Body> {
    let model = if answer.model.is_empty() { answered.model.clone() } else { answer.model.clone() };
    let mut body = json!({
        "id": ctx.request_id,
        "object": "chat.completion",
        "provider": answered.provider,
        "model": model,
        "attempts": answered.attempts.len(),
        "attempt_log": answered.attempts,
        "message": {"role": "assistant", "content": answer.text},
        "finish_reason": finish_name(&answer.finish_reason),
        "usage": usage_json(&answer.usage),
    });
    if let (Some(thinking), Some(map)) = (&answer.thinking, body.as_object_mut()) {
        map.insert("thinking".into(), json!(thinking));
    }
    let mut response = web::json(http::StatusCode::OK, &body);
    answered_headers(&mut response, answered, Some(&model));
    response
}

/// A cache hit, as JSON or replayed as a stream in the pieces it first arrived in. No provider
/// was called: `attempts` is 0; `usage` is what the answer cost when it was made.
fn replay<H: Host>(ctx: &Ctx<H>, hit: CachedAnswer, stream: bool) -> http::Response<Body> {
    let answered = Answered { provider: hit.provider, model: hit.response.model.clone(), attempts: vec![] };
    let mut response = if stream {
        let answer = hit.response;
        let mut events = vec![StreamEvent::Model(answer.model)];
        events.extend(answer.thinking.into_iter().map(StreamEvent::Thinking));
        events.extend(hit.deltas.into_iter().map(StreamEvent::Delta));
        events.extend([StreamEvent::Usage(answer.usage), StreamEvent::Finish(answer.finish_reason), StreamEvent::Done]);
        let events: EventStream = stream::iter(events.into_iter().map(Ok)).boxed_local();
        let mut response = web::sse(sse_frames(ctx.request_id.clone(), answered.clone(), events, None));
        answered_headers(&mut response, &answered, None);
        response
    } else {
        answer_json(ctx, &hit.response, &answered)
    };
    web::set_header(&mut response, "x-cache", "hit");
    response
}

fn answered_headers(response: &mut http::Response<Body>, answered: &Answered, model: Option<&str>) {
    web::set_header(response, "x-provider", &answered.provider);
    web::set_header(response, "x-model", model.unwrap_or(&answered.model));
    web::set_header(response, "x-attempts", &answered.attempts.len().to_string());
}

/// `reasoning_tokens` (part of `output_tokens`) appears only when the provider counted some.
pub(crate) fn usage_json(usage: &Usage) -> serde_json::Value {
    let mut value = json!({
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens(),
    });
    if let (true, Some(map)) = (usage.reasoning_tokens > 0, value.as_object_mut()) {
        map.insert("reasoning_tokens".into(), json!(usage.reasoning_tokens));
    }
    value
}

pub(crate) fn finish_name(reason: &FinishReason) -> String {
    match reason {
        FinishReason::Stop => "stop".into(),
        FinishReason::Length => "length".into(),
        FinishReason::ContentFilter => "content_filter".into(),
        FinishReason::ToolCalls => "tool_calls".into(),
        FinishReason::Other(other) => other.clone(),
    }
}

/// Called once with the whole answer when a stream ends cleanly (the cache's writer).
pub(crate) type OnComplete = Box<dyn FnOnce(CachedAnswer)>;

/// State of the outgoing SSE stream.
struct Frames {
    events: EventStream,
    on_complete: Option<OnComplete>,
    deltas: Vec<String>,
    thinking: String,
    answered: Answered,
    request_id: String,
    model: Option<String>,
    usage: Usage,
    finish: FinishReason,
    started: bool,
    over: bool,
}

/// Turns provider events into the platform's SSE frames, one frame per event, as they come.
pub(crate) fn sse_frames(
    request_id: String,
    answered: Answered,
    events: EventStream,
    on_complete: Option<OnComplete>,
) -> futures::stream::LocalBoxStream<'static, bytes::Bytes> {
    let state = Frames {
        events,
        on_complete,
        deltas: Vec::new(),
        thinking: String::new(),
        answered,
        request_id,
        model: None,
        usage: Usage::default(),
        finish: FinishReason::Stop,
        started: false,
        over: false,
    };
    stream::unfold(state, |mut s| async move {
        if s.over {
            return None;
        }
        let mut out = Vec::new();
        loop {
            match s.events.next().await {
                Some(Ok(StreamEvent::Model(model))) => s.model = Some(model),
                Some(Ok(StreamEvent::Usage(usage))) => s.usage.merge(usage),
                Some(Ok(StreamEvent::Finish(reason))) => s.finish = reason,
                Some(Ok(StreamEvent::Delta(text))) => {
                    s.start_frame(&mut out);
                    out.extend_from_slice(&sse::encode("delta", &json!({ "text": text })));
                    if s.on_complete.is_some() {
                        s.deltas.push(text);
                    }
                }
                Some(Ok(StreamEvent::Thinking(text))) => {
                    s.start_frame(&mut out);
                    out.extend_from_slice(&sse::encode("thinking", &json!({ "text": text })));
                    if s.on_complete.is_some() {
                        s.thinking.push_str(&text);
                    }
                }
                Some(Ok(StreamEvent::Done)) | None => {
                    s.start_frame(&mut out);
                    out.extend_from_slice(&sse::encode("usage", &usage_json(&s.usage)));
                    let done = json!({
                        "finish_reason": finish_name(&s.finish),
                        "provider": s.answered.provider,
                        "model": s.model_name(),
                        "attempts": s.answered.attempts.len(),
                    });
                    out.extend_from_slice(&sse::encode("done", &done));
                    s.over = true;
                    s.complete();
                }
                Some(Err(failure)) => {
                    s.start_frame(&mut out);
                    let err = json!({
                        "type": "upstream_error",
                        "code": "stream_interrupted",
                        "message": failure.message,
                        "request_id": s.request_id,
                    });
                    out.extend_from_slice(&sse::encode("error", &err));
                    s.over = true;
                }
            }
            if !out.is_empty() {
                return Some((bytes::Bytes::from(out), s));
            }
        }
    })
    .boxed_local()
}

impl Frames {
    /// Hands the finished answer to `on_complete`, if the stream ended as a whole answer.
    fn complete(&mut self) {
        let Some(on_complete) = self.on_complete.take() else { return };
        if !cacheable(&self.finish) {
            return;
        }
        let thinking = std::mem::take(&mut self.thinking);
        let deltas = std::mem::take(&mut self.deltas);
        let response = ChatResponse {
            text: deltas.concat(),
            thinking: (!thinking.is_empty()).then_some(thinking),
            model: self.model_name(),
            finish_reason: self.finish.clone(),
            usage: self.usage,
        };
        on_complete(CachedAnswer { provider: self.answered.provider.clone(), response, deltas });
    }

    fn model_name(&self) -> String {
        self.model.clone().unwrap_or_else(|| self.answered.model.clone())
    }

    /// The `start` frame goes out just before the first visible frame, when the model the
    /// provider reports is known.
    fn start_frame(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let start = json!({
            "id": self.request_id,
            "provider": self.answered.provider,
            "model": self.model_name(),
            "attempts": self.answered.attempts.len(),
        });
        out.extend_from_slice(&sse::encode("start", &start));
    }
}
