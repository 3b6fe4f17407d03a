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

use serde::Deserialize;
use serde_json::{json, Value};

use opencode_core::access::Action;
use opencode_core::flags::Flag;
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::host::{Body, Host};
use opencode_runtime::knowledge::{self, DocumentMeta, Format, NewDocument};
use opencode_runtime::modes::knowledge::{self as mode, AskJob, CacheSettings};
use opencode_runtime::modes::{last_user_text, Delivery};

use super::{parse_mode, Ctx, Handled};
use crate::error::ApiError;
use crate::platform::render::usage_json;
use crate::platform::request::{count, refuse_tools, requested_tier};
use crate::web;

const DEFAULT_TOP_K: usize = 4;
/// `top_k` of `/v1/knowledge/search` (an agent's lookup: a few more than an answer uses).
const SEARCH_TOP_K: usize = 5;
const DEFAULT_LIST: usize = 100;

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
                    &document_json(&knowledge::get(&ctx.host, ctx.tenant()?, id).await?),
                )),
                http::Method::DELETE => {
                    ctx.require(Action::WriteKnowledge, "delete knowledge documents")?;
                    knowledge::delete(&ctx.host, ctx.tenant()?, id).await?;
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
    let top_k = count("top_k", asked.top_k.as_ref(), SEARCH_TOP_K, knowledge::MAX_TOP_K)?;
    ctx.admit_plain().await?;
    let found = knowledge::retrieve(&ctx.host, ctx.tenant()?, &asked.query, top_k).await?;
    let mut body = serde_json::to_value(&found).unwrap_or(Value::Null);
    if let Some(map) = body.as_object_mut() {
        map.insert("id".into(), json!(ctx.request_id));
        map.insert("object".into(), json!("knowledge.hits"));
        map.insert("usage".into(), usage_json(&found.usage, None));
    }
    Ok(web::json(http::StatusCode::OK, &body))
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
    ctx.require(Action::WriteKnowledge, "add or replace knowledge documents")?;
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
    ctx.admit_plain().await?;
    let done = knowledge::ingest(&ctx.host, ctx.tenant()?, new).await?;
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
    // A whole number: nothing in it to decode.
    let limit = match web::query_raw(parts.uri.query(), "limit") {
        None => DEFAULT_LIST,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=knowledge::MAX_LIST).contains(n))
            .ok_or_else(|| ApiError::Validation(format!("`limit` must be from 1 to {}", knowledge::MAX_LIST)))?,
    };
    let (documents, more) = knowledge::list(&ctx.host, ctx.tenant()?, limit).await?;
    let data: Vec<Value> = documents.iter().map(document_json).collect();
    Ok(web::json(http::StatusCode::OK, &json!({"object": "list", "data": data, "has_more": more})))
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Own {
    top_k: Option<Value>,
}

async fn ask<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, own, dialect) = parse_mode::<Own, false>(&parts, &bytes, Mode::Knowledge, &["top_k"])?;
    let top_k = count("top_k", own.top_k.as_ref(), DEFAULT_TOP_K, knowledge::MAX_TOP_K)?;
    refuse_tools(&request, Mode::Knowledge, false)?;
    let question = last_user_text(&request).trim().to_owned();
    if question.is_empty() {
        return Err(ApiError::Validation("the last user message (the question) must not be empty".into()));
    }
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System1);
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    let chain = ctx.admit(&request, chain).await?;
    let tenant = ctx.tenant()?.to_owned();
    let policy = ctx.cache_policy(&parts.headers, tier);
    let cache = policy.writes().then(|| CacheSettings {
        reads: policy.reads(),
        ttl_secs: ctx.config.cache_ttl_secs(),
        slots: ctx.config.flags.whole(Flag::CacheMaxSize),
    });
    let job = AskJob { request, question, top_k, tenant, chain, retry: ctx.config.retry.clone(), tier, cache };
    let delivery = if dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    Ok(ctx.respond_in(dialect, mode::run(&ctx.host, job, delivery).await?))
}
