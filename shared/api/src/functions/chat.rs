//! `POST /v1/chat`: one conversation turn through the provider chain, as JSON or SSE. On
//! System 2 (`/v1/process` decided so) it runs the agent loop of chat/agent.rs instead.
//!
//! SSE events: `start` (who answers), `delta` and `thinking` (text as it arrives), `tool_call`
//! (a piece of a call, as it arrives), `usage`, `done` (with the assembled `tool_calls`), and
//! `error` (terminal; after it nothing follows).
//!
//! Tools (`tools`, `tool_choice`, `response_format`, assistant `tool_calls`, `tool` messages)
//! come in OpenAI's shapes and are checked in `tools.rs`; the calls go back to the client, which
//! runs them and sends their results in the next request.

pub(super) mod agent;
mod toolbox;
mod tools;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::mode::requested_tier;
use super::Ctx;
use crate::error::ApiError;
use opencode_core::model::{
    add_tool_call_piece, ChatRequest, ChatResponse, FinishReason, Message, Role, StreamEvent, ToolCall, Usage,
};
use opencode_core::routing::Tier;
use opencode_runtime::cache::{self, CachePolicy, CachedAnswer};
use opencode_runtime::executor::{self, Answered, EventStream};
use opencode_runtime::host::{Body, Host};

use crate::{sse, web};
pub use tools::{tool_calls_json, valid_name};

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
    /// One string or a list of them, as in OpenAI's API (read as a value: an untagged enum
    /// would cost Wasm size).
    pub stop: Option<Value>,
    pub seed: Option<u64>,
    /// Checked field by field in `tools.rs`, for errors that name the field.
    pub tools: Option<Value>,
    pub tool_choice: Option<Value>,
    pub response_format: Option<Value>,
}

/// A message: `content` may be `null` only on an assistant message with `tool_calls`;
/// `tool_call_id` only on a `tool` message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    /// Checked in `tools.rs`, like the body's tool fields.
    #[serde(default)]
    pub tool_calls: Option<Value>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

impl ChatBody {
    /// Checks every field and builds the provider-independent request.
    pub fn validate(self) -> Result<(ChatRequest, bool), ApiError> {
        let invalid = |msg: String| Err(ApiError::Validation(msg));
        let messages = validate_messages(self.messages)?;
        if let Some(t) = self.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return invalid(format!("`temperature` must be between 0 and 2, got {}", serde_json::json!(t)));
        }
        if let Some(p) = self.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
            return invalid(format!("`top_p` must be between 0 and 1, got {}", serde_json::json!(p)));
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
            Some(Value::String(one)) => vec![one],
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
                list.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            Some(_) => return invalid("`stop` must be a string or a list of strings".into()),
        };
        if stop.len() > MAX_STOP || stop.iter().any(String::is_empty) {
            return invalid(format!("`stop` takes at most {MAX_STOP} non-empty strings"));
        }
        let tools = tools::parse_tools(self.tools)?;
        let tool_choice = tools::parse_tool_choice(self.tool_choice, &tools)?;
        let response_format = tools::parse_response_format(self.response_format)?;
        let request = ChatRequest {
            messages,
            model: self.model,
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            stop,
            seed: self.seed,
            reasoning: None,
            tools,
            tool_choice,
            response_format,
        };
        Ok((request, self.stream))
    }
}

/// Checks a conversation: 1 to `MAX_MESSAGES` messages with known roles, at least one of
/// them from the user; tool calls only on assistant messages, each answered by a `tool`
/// message before the conversation goes on, and every `tool` message answering a call.
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
            "tool" => Role::Tool,
            other => {
                return invalid(format!(
                    "messages[{i}].role `{}` is not one of system, user, assistant, tool",
                    other.chars().take(32).collect::<String>()
                ))
            }
        };
        let tool_calls = tools::validate_calls(m.tool_calls.unwrap_or_default(), i)?;
        if role != Role::Assistant && !tool_calls.is_empty() {
            return invalid(format!("`messages[{i}].tool_calls` is only allowed on assistant messages"));
        }
        let content = match m.content {
            Some(content) => content,
            None if !tool_calls.is_empty() => String::new(),
            None => return invalid(format!("`messages[{i}].content` is required")),
        };
        let tool_call_id = match (role, m.tool_call_id) {
            (Role::Tool, Some(id)) if !id.is_empty() => Some(id),
            (Role::Tool, _) => return invalid(format!("`messages[{i}].tool_call_id` is required on a tool message")),
            (_, Some(_)) => return invalid(format!("`messages[{i}].tool_call_id` is only allowed on tool messages")),
            (_, None) => None,
        };
        messages.push(Message { role, content, tool_calls, tool_call_id });
    }
    tools::check_tool_turns(&messages)?;
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
    // System 2 runs the agent loop with the platform's tools in the `agent` function, unless
    // the caller brought its own tools (their calls go back to the caller).
    if tier == Tier::System2 && request.tools.is_empty() {
        let mut response = agent::forward(ctx, parts, bytes).await?;
        web::set_header(&mut response, "x-cache", "miss");
        return Ok(response);
    }
    let ttl = ctx.config.cache_ttl_secs;
    let policy =
        if ttl == 0 || tier == Tier::System2 { CachePolicy::Bypass } else { CachePolicy::from_headers(&parts.headers) };
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
            cache::put_later(
                &ctx.host,
                key,
                CachedAnswer { provider: answered.provider, response: answer, deltas },
                ttl,
            );
        }
        response
    };
    web::set_header(&mut response, "x-cache", "miss");
    Ok(response)
}

/// Only complete answers are worth serving again (tool calls are complete answers too).
fn cacheable(finish: &FinishReason) -> bool {
    matches!(finish, FinishReason::Stop | FinishReason::Length | FinishReason::ToolCalls)
}

/// Some compatible servers finish with `stop` after tool calls; the client is told the truth.
fn finish_with_calls(finish: FinishReason, calls: &[ToolCall]) -> FinishReason {
    match finish {
        FinishReason::Stop if !calls.is_empty() => FinishReason::ToolCalls,
        other => other,
    }
}

/// The JSON answer for a completed call, typed rather than built as a `Value` map: it is
/// written on every non-streamed answer. Fields in alphabetical order, as they always came out.
#[derive(Serialize)]
struct AnswerJson<'a> {
    attempt_log: &'a [executor::Attempt],
    attempts: usize,
    finish_reason: String,
    id: &'a str,
    message: Value,
    model: &'a str,
    object: &'static str,
    provider: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    usage: Value,
}

fn answer_json<H: Host>(ctx: &Ctx<H>, answer: &ChatResponse, answered: &Answered) -> http::Response<Body> {
    let model = if answer.model.is_empty() { &answered.model } else { &answer.model };
    let body = AnswerJson {
        attempt_log: &answered.attempts,
        attempts: answered.attempts.len(),
        finish_reason: finish_name(&finish_with_calls(answer.finish_reason.clone(), &answer.tool_calls)),
        id: &ctx.request_id,
        message: message_json(answer),
        model,
        object: "chat.completion",
        provider: &answered.provider,
        thinking: answer.thinking.as_deref(),
        usage: usage_json(&answer.usage, answered.cost_usd(&answer.usage)),
    };
    let mut response = web::json(http::StatusCode::OK, &body);
    answered_headers(&mut response, answered, Some(model));
    response
}

/// The answer's message: `tool_calls` when the model called tools (then an empty `content` is
/// `null`, as OpenAI writes it).
fn message_json(answer: &ChatResponse) -> Value {
    if answer.tool_calls.is_empty() {
        return json!({"role": "assistant", "content": answer.text});
    }
    let content = (!answer.text.is_empty()).then_some(answer.text.as_str());
    json!({"role": "assistant", "content": content, "tool_calls": tool_calls_json(&answer.tool_calls)})
}

/// A cache hit, as JSON or replayed as a stream in the pieces it first arrived in. No provider
/// was called: `attempts` is 0; `usage` is what the answer cost when it was made.
fn replay<H: Host>(ctx: &Ctx<H>, hit: CachedAnswer, stream: bool) -> http::Response<Body> {
    // A hit costs nothing: no price, so no `cost_usd`.
    let answered =
        Answered { provider: hit.provider, model: hit.response.model.clone(), attempts: vec![], price: None };
    let mut response = if stream {
        let answer = hit.response;
        let mut events = vec![StreamEvent::Model(answer.model)];
        events.extend(answer.thinking.into_iter().map(StreamEvent::Thinking));
        events.extend(hit.deltas.into_iter().map(StreamEvent::Delta));
        // Each call in one piece, as a vendor that sends calls whole would.
        events.extend(answer.tool_calls.into_iter().enumerate().map(|(index, call)| StreamEvent::ToolCall {
            index,
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
            signature: call.signature,
        }));
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
/// `cost_usd` appears when the model's price is known (pricing.rs).
pub(crate) fn usage_json(usage: &Usage, cost_usd: Option<f64>) -> serde_json::Value {
    let mut value = json!({
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens(),
    });
    if let Some(map) = value.as_object_mut() {
        if usage.reasoning_tokens > 0 {
            map.insert("reasoning_tokens".into(), json!(usage.reasoning_tokens));
        }
        if let Some(cost) = cost_usd {
            // Billionths of a dollar: exact for single tokens, without float noise in the JSON.
            map.insert("cost_usd".into(), json!((cost * 1e9).round() / 1e9));
        }
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
    tool_calls: Vec<ToolCall>,
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
        tool_calls: Vec::new(),
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
                Some(Ok(StreamEvent::ToolCall { index, id, name, arguments, signature })) => {
                    s.start_frame(&mut out);
                    // Forwarded as it comes: `id` and `name` on a call's first piece only,
                    // `signature` on the piece that brought one.
                    let mut piece = json!({ "index": index, "arguments": arguments });
                    if let Some(map) = piece.as_object_mut() {
                        for (key, value) in [("id", &id), ("name", &name), ("signature", &signature)] {
                            if let Some(value) = value {
                                map.insert(key.into(), json!(value));
                            }
                        }
                    }
                    out.extend_from_slice(&sse::encode("tool_call", &piece));
                    let (id, name, signature) = (id.as_deref(), name.as_deref(), signature.as_deref());
                    add_tool_call_piece(&mut s.tool_calls, index, id, name, &arguments, signature);
                }
                Some(Ok(StreamEvent::Done)) | None => {
                    s.start_frame(&mut out);
                    out.extend_from_slice(&sse::encode("usage", &usage_json(&s.usage, s.answered.cost_usd(&s.usage))));
                    s.finish = finish_with_calls(std::mem::take(&mut s.finish), &s.tool_calls);
                    let mut done = json!({
                        "finish_reason": finish_name(&s.finish),
                        "provider": s.answered.provider,
                        "model": s.model_name(),
                        "attempts": s.answered.attempts.len(),
                    });
                    if let (false, Some(map)) = (s.tool_calls.is_empty(), done.as_object_mut()) {
                        map.insert("tool_calls".into(), tool_calls_json(&s.tool_calls));
                    }
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
            tool_calls: std::mem::take(&mut self.tool_calls),
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
