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
//! before the stream opens (validation, embedding, the store) are plain HTTP errors. A System 2
//! request (`x-opencode-tier` from `/v1/process`) answers with the strong models.

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::chat::usage_json;
use super::{mode, Ctx};
use crate::error::ApiError;
use crate::{sse, web};
use opencode_core::model::{ChatRequest, ChatResponse, Message, Role, StreamEvent, Usage};
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::executor::{self, Answered, Outcome};
use opencode_runtime::host::{Body, Host};
use opencode_runtime::knowledge::{self, DocumentMeta, Format, Hit, NewDocument, Retrieval};

const DEFAULT_TOP_K: usize = 4;
/// `top_k` of `/v1/knowledge/search` (an agent's lookup: a few more than an answer uses).
const SEARCH_TOP_K: usize = 5;
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
        "/v1/knowledge" => ask(ctx, parts, body).await,
        "/v1/knowledge/search" => search_only(ctx, parts, body).await,
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
                http::Method::GET => Ok(web::json(
                    http::StatusCode::OK,
                    &document_json(&knowledge::get(&ctx.host, tenant(ctx)?, id).await?),
                )),
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

/// `POST /v1/knowledge/search` — `{"query", "top_k"?}`: the best chunks alone, no model (the
/// System 2 chat agent's `search_knowledge` tool calls it).
async fn search_only<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SearchBody {
        query: String,
        top_k: Option<Value>,
    }
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let asked: SearchBody = web::parse_json(&parts, &bytes)?;
    if asked.query.trim().is_empty() {
        return Err(ApiError::Validation("`query` must not be empty".into()));
    }
    let top_k = mode::count("top_k", asked.top_k.as_ref(), SEARCH_TOP_K, knowledge::MAX_TOP_K)?;
    let found = knowledge::retrieve(&ctx.host, tenant(ctx)?, &asked.query, top_k).await?;
    let mut body = serde_json::to_value(&found).unwrap_or(Value::Null);
    if let Some(map) = body.as_object_mut() {
        map.insert("id".into(), json!(ctx.request_id));
        map.insert("object".into(), json!("knowledge.hits"));
        map.insert("usage".into(), usage_json(&found.usage, None));
    }
    Ok(web::json(http::StatusCode::OK, &body))
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

async fn ingest<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let doc: DocumentBody = web::parse_json(&parts, &bytes)?;
    knowledge::validate_id(&doc.id)?;
    let format = match doc.format.as_deref() {
        None => Format::Text,
        Some(name) => {
            Format::parse(name).ok_or_else(|| ApiError::Validation("`format` must be `text` or `markdown`".into()))?
        }
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
        // Embedding models have no price in the table: tokens only.
        map.insert("usage".into(), usage_json(&done.usage, None));
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

/// The knowledge mode's own field of the body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Own {
    top_k: Option<Value>,
}

async fn ask<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Result<http::Response<Body>, ApiError> {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (body, own) = mode::parse_mode_body::<Own>(&parts, &bytes, &["top_k"])?;
    let top_k = mode::count("top_k", own.top_k.as_ref(), DEFAULT_TOP_K, knowledge::MAX_TOP_K)?;
    let (mut request, stream) = body.validate()?;
    mode::refuse_tools(&request, Mode::Knowledge, false)?;
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
    let tier = mode::requested_tier(&parts.headers).unwrap_or(Tier::System1);
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    let retrieval = knowledge::retrieve(&ctx.host, tenant(ctx)?, &question, top_k).await?;
    let mut extra = Map::new();
    extra.insert("citations".into(), Value::Array(citations(&retrieval.hits)));
    extra.insert("retrieval".into(), retrieval_json(&retrieval));
    extra.insert("found".into(), json!(!retrieval.hits.is_empty()));
    if retrieval.hits.is_empty() {
        return Ok(nothing_found(ctx, stream, tier, extra));
    }
    let grounded = grounded(request, &retrieval.hits);
    if !stream {
        let started = executor::stream(&ctx.host, &chain, &grounded, &ctx.config.retry).await?;
        let (answer, answered) = collect(started).await?;
        let mut body = mode::answer_json(&ctx.request_id, Mode::Knowledge, &answer, &answered);
        body.insert("attempt_log".into(), json!(answered.attempts));
        if let Some(thinking) = &answer.thinking {
            body.insert("thinking".into(), json!(thinking));
        }
        body.extend(extra);
        let mut response = web::json(http::StatusCode::OK, &Value::Object(body));
        answered_headers(&mut response, &answered, &answer.model);
        return Ok(response);
    }
    let (host, policy) = (ctx.host.clone(), ctx.config.retry.clone());
    let start = start_json(&ctx.request_id, tier);
    Ok(mode::event_stream(&ctx.request_id, move |emitter| async move {
        emitter.send("start", &start);
        if let Some(retrieval) = extra.get("retrieval") {
            emitter.send("retrieve", retrieval);
        }
        let started = match executor::stream(&host, &chain, &grounded, &policy).await {
            Ok(started) => started,
            Err(err) => return emitter.error(&err.into()),
        };
        match mode::relay(&emitter, started.events, &started.answered).await {
            Ok(answer) => {
                let mut done = mode::answer_json(emitter.request_id(), Mode::Knowledge, &answer, &started.answered);
                done.extend(extra);
                emitter.send("usage", &usage_json(&answer.usage, started.answered.cost_usd(&answer.usage)));
                emitter.send("done", &mode::done_json(done));
            }
            Err(failure) => emitter.stream_failed(&failure),
        }
    }))
}

/// The whole answer of a committed stream. JSON answers are read as streams too, so that this
/// function links one provider path instead of two (the Wasm size budget). A stream that
/// breaks after its first token is a 502, as it would be for any broken answer.
async fn collect(started: executor::StartedStream) -> Result<(ChatResponse, Answered), ApiError> {
    let mut answered = started.answered;
    let mut answer = ChatResponse::default();
    let mut events = started.events;
    while let Some(event) = events.next().await {
        match event {
            Ok(StreamEvent::Delta(piece)) => answer.text.push_str(&piece),
            Ok(StreamEvent::Thinking(piece)) => answer.thinking.get_or_insert_default().push_str(&piece),
            Ok(StreamEvent::Model(name)) => answer.model = name,
            Ok(StreamEvent::Usage(more)) => answer.usage.merge(more),
            Ok(StreamEvent::Finish(reason)) => answer.finish_reason = reason,
            // The mode sends no tools (`refuse_tools`), so no model calls one.
            Ok(StreamEvent::ToolCall { .. }) => {}
            Ok(StreamEvent::Done) => break,
            Err(failure) => {
                if let Some(last) = answered.attempts.last_mut() {
                    last.outcome = Outcome::Malformed;
                    last.detail = failure.message;
                }
                return Err(ApiError::AllProvidersFailed(answered.attempts));
            }
        }
    }
    Ok((answer, answered))
}

fn start_json(request_id: &str, tier: Tier) -> Value {
    json!({"id": request_id, "object": OBJECT, "mode": Mode::Knowledge.as_str(), "tier": tier.as_str()})
}

fn answered_headers(response: &mut http::Response<Body>, answered: &Answered, model: &str) {
    web::set_header(response, "x-provider", &answered.provider);
    web::set_header(response, "x-model", if model.is_empty() { &answered.model } else { model });
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
        system.push_str(&format!(
            "\n\n[{}] document \"{}\", chunk {}\n{}",
            i + 1,
            hit.document_id,
            hit.chunk,
            hit.text
        ));
    }
    request.messages.insert(0, Message::system(system));
    request
}

/// Nothing relevant: say so, without calling a model.
fn nothing_found<H: Host>(ctx: &Ctx<H>, stream: bool, tier: Tier, extra: Map<String, Value>) -> http::Response<Body> {
    let usage = usage_json(&Usage::default(), Some(0.0));
    let mut fields = Map::new();
    fields.insert("id".into(), json!(ctx.request_id));
    fields.insert("object".into(), json!(OBJECT));
    fields.insert("mode".into(), json!(Mode::Knowledge.as_str()));
    fields.insert("provider".into(), Value::Null);
    fields.insert("model".into(), Value::Null);
    fields.insert("attempts".into(), json!(0));
    fields.insert("message".into(), json!({"role": "assistant", "content": NOTHING_FOUND}));
    fields.insert("finish_reason".into(), json!("stop"));
    fields.insert("usage".into(), usage.clone());
    fields.extend(extra);
    if !stream {
        return web::json(http::StatusCode::OK, &Value::Object(fields));
    }
    // Every frame is known now: no task to run.
    let mut frames = vec![sse::encode("start", &start_json(&ctx.request_id, tier))];
    frames.extend(fields.get("retrieval").map(|r| sse::encode("retrieve", r)));
    frames.push(sse::encode("delta", &json!({"text": NOTHING_FOUND})));
    frames.push(sse::encode("usage", &usage));
    frames.push(sse::encode("done", &mode::done_json(fields)));
    web::sse(futures::stream::iter(frames).boxed_local())
}
