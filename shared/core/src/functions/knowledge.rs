//! The knowledge function: documents in, cited answers out.
//!
//! - `POST /v1/knowledge/documents` `{id, text, format?: "text"|"markdown", metadata?}` → 201
//! - `GET /v1/knowledge/documents[?limit=N]`, `GET|DELETE /v1/knowledge/documents/{id}`
//! - `POST /v1/knowledge`: the chat body plus `top_k` (1 to 20, default 4). The question (the
//!   last user message) retrieves the best chunks; the model answers from them alone, citing
//!   them as [n]; `citations` lists them. When no chunk is relevant the answer says so and no
//!   model is called, so nothing can be invented.
//!
//! SSE (`stream: true`): `start`, `retrieve` (what was found), `delta`s (and `thinking`),
//! `usage`, `done` (every answer field but the message), or a terminal `error`. Failures
//! before the stream opens (validation, embedding, the store) are plain HTTP errors.

use futures::stream::{self, LocalBoxStream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};

use super::chat::{finish_name, usage_json, ChatBody};
use super::Ctx;
use crate::error::ApiError;
use crate::executor::{self, Answered, EventStream};
use crate::host::{Body, Host};
use crate::knowledge::{self, DocumentMeta, Format, Hit, NewDocument, Retrieval};
use crate::model::{ChatRequest, FinishReason, Message, Role, StreamEvent, Usage};
use crate::{sse, web};

const DEFAULT_TOP_K: usize = 4;
const DEFAULT_LIST: usize = 100;
const OBJECT: &str = "knowledge.answer";
/// The whole answer when nothing relevant was found.
pub const NOTHING_FOUND: &str =
    "I found nothing relevant to this question in the knowledge base, so I cannot answer it from there.";
const INSTRUCTIONS: &str = "Answer the user's question using only the numbered sources below, \
which come from their knowledge base. Cite every source you use by its number in square brackets, \
like [1] or [2][3]. If the sources do not contain the answer, say that the knowledge base does not \
contain it. Do not use outside knowledge and do not invent facts.";

pub(super) async fn handle<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    let method = parts.method.clone();
    let not_allowed = || ApiError::MethodNotAllowed { method: method.to_string(), path: path.clone() };
    match path.as_str() {
        // `/v1/process` is the gateway's mode dispatch: the body is the same, plus `mode`.
        "/v1/knowledge" | "/v1/process" => ask(ctx, parts, body).await,
        "/v1/knowledge/documents" => match method {
            http::Method::POST => ingest(ctx, parts, body).await,
            http::Method::GET => list(ctx, &parts).await,
            _ => Err(not_allowed()),
        },
        other => {
            let Some(id) = other.strip_prefix("/v1/knowledge/documents/") else {
                return Err(ApiError::NotFound(path.clone()));
            };
            match method {
                http::Method::GET => Ok(web::json(http::StatusCode::OK, &document_json(&knowledge::get(&ctx.host, tenant(ctx)?, id).await?))),
                http::Method::DELETE => {
                    knowledge::delete(&ctx.host, tenant(ctx)?, id).await?;
                    let mut response = http::Response::new(Body::empty());
                    *response.status_mut() = http::StatusCode::NO_CONTENT;
                    Ok(response)
                }
                _ => Err(not_allowed()),
            }
        }
    }
}

fn tenant<H: Host>(ctx: &Ctx<H>) -> Result<&str, ApiError> {
    ctx.principal.as_ref().map(|p| p.tenant.as_str()).ok_or(ApiError::MissingToken)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentBody {
    id: String,
    text: String,
    format: Option<String>,
    metadata: Option<serde_json::Map<String, Value>>,
}

async fn ingest<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Result<http::Response<Body>, ApiError> {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let doc: DocumentBody = web::parse_json(&parts, &bytes)?;
    knowledge::validate_id(&doc.id)?;
    let format = match doc.format.as_deref() {
        None => Format::Text,
        Some(name) => Format::parse(name)
            .ok_or_else(|| ApiError::Validation("`format` must be `text` or `markdown`".into()))?,
    };
    let metadata = doc.metadata.unwrap_or_default();
    if Value::Object(metadata.clone()).to_string().len() > knowledge::MAX_METADATA_BYTES {
        return Err(ApiError::Validation(format!("`metadata` is larger than {} bytes", knowledge::MAX_METADATA_BYTES)));
    }
    if doc.text.trim().is_empty() {
        return Err(ApiError::Validation("`text` must not be empty".into()));
    }
    let new = NewDocument { id: doc.id, text: doc.text, format, metadata };
    let done = knowledge::ingest(&ctx.host, tenant(ctx)?, new).await?;
    let mut body = document_json(&done.document);
    if let Some(map) = body.as_object_mut() {
        map.insert("dims".into(), json!(done.dims));
        map.insert("replaced".into(), json!(done.replaced));
        map.insert("usage".into(), usage_json(&done.usage));
        map.insert("request_id".into(), json!(ctx.request_id));
    }
    let status = if done.replaced { http::StatusCode::OK } else { http::StatusCode::CREATED };
    Ok(web::json(status, &body))
}

async fn list<H: Host>(ctx: &Ctx<H>, parts: &http::request::Parts) -> Result<http::Response<Body>, ApiError> {
    let limit = match query_param(parts.uri.query().unwrap_or_default(), "limit") {
        None => DEFAULT_LIST,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=knowledge::MAX_LIST).contains(n))
            .ok_or_else(|| ApiError::Validation(format!("`limit` must be from 1 to {}", knowledge::MAX_LIST)))?,
    };
    let (documents, more) = knowledge::list(&ctx.host, tenant(ctx)?, limit).await?;
    let data: Vec<Value> = documents.iter().map(document_json).collect();
    Ok(web::json(http::StatusCode::OK, &json!({"object": "list", "data": data, "has_more": more})))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn document_json(doc: &DocumentMeta) -> Value {
    json!({
        "object": "knowledge.document",
        "id": doc.id,
        "format": doc.format,
        "metadata": doc.metadata,
        "chunks": doc.chunks,
        "chars": doc.chars,
        "model": doc.model,
        "created": doc.created_ms / 1000,
        "updated": doc.updated_ms / 1000,
    })
}

/// Splits a knowledge body into `top_k` and the chat body.
fn parse_ask(parts: &http::request::Parts, bytes: &[u8]) -> Result<(usize, ChatBody), ApiError> {
    let mut value: Value = web::parse_json(parts, bytes)?;
    let object = value.as_object_mut().ok_or_else(|| ApiError::Validation("the body must be a JSON object".into()))?;
    let top_k = match object.remove("top_k") {
        None => DEFAULT_TOP_K,
        Some(v) => v
            .as_u64()
            .and_then(|k| usize::try_from(k).ok())
            .filter(|k| (1..=knowledge::MAX_TOP_K).contains(k))
            .ok_or_else(|| ApiError::Validation(format!("`top_k` must be a whole number from 1 to {}", knowledge::MAX_TOP_K)))?,
    };
    match object.remove("mode") {
        None | Some(Value::String(_)) => {}
        Some(_) => return Err(ApiError::Validation("`mode` must be a string".into())),
    }
    let body = serde_json::from_value(value).map_err(|err| ApiError::Validation(err.to_string()))?;
    Ok((top_k, body))
}

async fn ask<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Result<http::Response<Body>, ApiError> {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (top_k, body) = parse_ask(&parts, &bytes)?;
    let (request, stream) = body.validate()?;
    let question = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.trim().to_owned())
        .unwrap_or_default();
    if question.is_empty() {
        return Err(ApiError::Validation("the last user message (the question) must not be empty".into()));
    }
    let chain = ctx.config.chain_for(request.model.as_deref())?;
    let retrieval = knowledge::retrieve(&ctx.host, tenant(ctx)?, &question, top_k).await?;
    let citations = citations(&retrieval.hits);
    let retrieval_json = retrieval_json(&retrieval);
    if retrieval.hits.is_empty() {
        return Ok(nothing_found(ctx, stream, retrieval_json));
    }
    let grounded = grounded(request, &retrieval.hits);
    if !stream {
        let (answer, answered) = executor::complete(&ctx.host, &chain, &grounded, &ctx.config.retry).await?;
        let model = if answer.model.is_empty() { answered.model.clone() } else { answer.model.clone() };
        let mut body = json!({
            "id": ctx.request_id,
            "object": OBJECT,
            "mode": "knowledge",
            "provider": answered.provider,
            "model": model,
            "attempts": answered.attempts.len(),
            "attempt_log": answered.attempts,
            "message": {"role": "assistant", "content": answer.text},
            "finish_reason": finish_name(&answer.finish_reason),
            "usage": usage_json(&answer.usage),
            "citations": citations,
            "retrieval": retrieval_json,
            "found": true,
        });
        if let (Some(thinking), Some(map)) = (&answer.thinking, body.as_object_mut()) {
            map.insert("thinking".into(), json!(thinking));
        }
        let mut response = web::json(http::StatusCode::OK, &body);
        answered_headers(&mut response, &answered, &model);
        return Ok(response);
    }
    let head = head_frames(&ctx.request_id, &retrieval_json);
    let (host, policy, request_id) = (ctx.host.clone(), ctx.config.retry.clone(), ctx.request_id.clone());
    let done = json!({"citations": citations, "retrieval": retrieval_json, "found": true});
    let answer = stream::once(async move {
        let opened = executor::stream(&host, &chain, &grounded, &policy).await;
        match opened {
            Ok(started) => relay(request_id, started.answered, started.events, done),
            Err(err) => stream::iter([sse::encode("error", &err.to_json(&request_id))]).boxed_local(),
        }
    })
    .flatten();
    Ok(web::sse(stream::iter(head).chain(answer).boxed_local()))
}

fn answered_headers(response: &mut http::Response<Body>, answered: &Answered, model: &str) {
    web::set_header(response, "x-provider", &answered.provider);
    web::set_header(response, "x-model", model);
    web::set_header(response, "x-attempts", &answered.attempts.len().to_string());
}

/// The numbered sources, in the order the model sees them.
fn citations(hits: &[Hit]) -> Vec<Value> {
    hits.iter()
        .enumerate()
        .map(|(i, h)| json!({"index": i + 1, "document_id": h.document_id, "chunk": h.chunk, "score": round(h.score)}))
        .collect()
}

fn round(score: f32) -> f64 {
    (f64::from(score) * 10_000.0).round() / 10_000.0
}

fn retrieval_json(r: &Retrieval) -> Value {
    json!({
        "chunks": r.hits.len(),
        "top_scores": r.hits.iter().map(|h| round(h.score)).collect::<Vec<_>>(),
        "best_score": r.top_score.map(round),
        "threshold": round(r.threshold),
        "chunks_searched": r.chunks_searched,
        "truncated": r.truncated,
        "embedding": r.embedding.as_ref().map(|e| json!({
            "provider": e.provider,
            "model": e.model,
            "input_tokens": r.usage.input_tokens,
        })),
    })
}

/// The request with the sources and the rules for using them in front.
fn grounded(mut request: ChatRequest, hits: &[Hit]) -> ChatRequest {
    let mut system = format!("{INSTRUCTIONS}\n\nSources:");
    for (i, hit) in hits.iter().enumerate() {
        system.push_str(&format!("\n\n[{}] document \"{}\", chunk {}\n{}", i + 1, hit.document_id, hit.chunk, hit.text));
    }
    request.messages.insert(0, Message { role: Role::System, content: system });
    request
}

fn head_frames(request_id: &str, retrieval: &Value) -> Vec<bytes::Bytes> {
    vec![
        sse::encode("start", &json!({"id": request_id, "object": OBJECT, "mode": "knowledge"})),
        sse::encode("retrieve", retrieval),
    ]
}

/// Nothing relevant: say so, without calling a model.
fn nothing_found<H: Host>(ctx: &Ctx<H>, stream: bool, retrieval: Value) -> http::Response<Body> {
    let usage = usage_json(&Usage::default());
    let fields = json!({
        "id": ctx.request_id,
        "object": OBJECT,
        "mode": "knowledge",
        "provider": null,
        "model": null,
        "attempts": 0,
        "finish_reason": "stop",
        "usage": usage,
        "citations": [],
        "retrieval": retrieval,
        "found": false,
    });
    if !stream {
        let mut body = fields;
        if let Some(map) = body.as_object_mut() {
            map.insert("message".into(), json!({"role": "assistant", "content": NOTHING_FOUND}));
        }
        return web::json(http::StatusCode::OK, &body);
    }
    let mut frames = head_frames(&ctx.request_id, &retrieval);
    frames.push(sse::encode("delta", &json!({"text": NOTHING_FOUND})));
    frames.push(sse::encode("usage", &usage));
    frames.push(sse::encode("done", &fields));
    web::sse(stream::iter(frames).boxed_local())
}

/// The model's events as frames: `delta`/`thinking` as they come, then `usage` and `done`
/// (carrying `extra`: citations and retrieval), or a terminal `error`.
fn relay(request_id: String, answered: Answered, events: EventStream, extra: Value) -> LocalBoxStream<'static, bytes::Bytes> {
    struct State {
        events: EventStream,
        answered: Answered,
        request_id: String,
        extra: Value,
        model: Option<String>,
        usage: Usage,
        finish: FinishReason,
        over: bool,
    }
    let state = State { events, answered, request_id, extra, model: None, usage: Usage::default(), finish: FinishReason::Stop, over: false };
    stream::unfold(state, |mut s| async move {
        if s.over {
            return None;
        }
        loop {
            let frame = match s.events.next().await {
                Some(Ok(StreamEvent::Model(model))) => {
                    s.model = Some(model);
                    continue;
                }
                Some(Ok(StreamEvent::Usage(usage))) => {
                    s.usage.merge(usage);
                    continue;
                }
                Some(Ok(StreamEvent::Finish(reason))) => {
                    s.finish = reason;
                    continue;
                }
                Some(Ok(StreamEvent::Delta(text))) => sse::encode("delta", &json!({ "text": text })),
                Some(Ok(StreamEvent::Thinking(text))) => sse::encode("thinking", &json!({ "text": text })),
                Some(Ok(StreamEvent::Done)) | None => {
                    s.over = true;
                    let mut done = json!({
                        "id": s.request_id,
                        "object": OBJECT,
                        "mode": "knowledge",
                        "provider": s.answered.provider,
                        "model": s.model.clone().unwrap_or_else(|| s.answered.model.clone()),
                        "attempts": s.answered.attempts.len(),
                        "finish_reason": finish_name(&s.finish),
                        "usage": usage_json(&s.usage),
                    });
                    if let (Some(map), Some(extra)) = (done.as_object_mut(), s.extra.as_object()) {
                        map.extend(extra.clone());
                    }
                    let mut out = sse::encode("usage", &usage_json(&s.usage)).to_vec();
                    out.extend_from_slice(&sse::encode("done", &done));
                    bytes::Bytes::from(out)
                }
                Some(Err(failure)) => {
                    s.over = true;
                    let err = json!({
                        "type": "upstream_error",
                        "code": "stream_interrupted",
                        "message": failure.message,
                        "request_id": s.request_id,
                    });
                    sse::encode("error", &err)
                }
            };
            return Some((frame, s));
        }
    })
    .boxed_local()
}
