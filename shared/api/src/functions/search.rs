//! `POST /v1/search`: the chat body plus `max_results` (1..=10, default 5), answered by
//! [`opencode_runtime::modes::search`]; and `POST /v1/search/results`, the search alone.

use serde::Deserialize;
use serde_json::{json, Value};

use opencode_core::model::{ChatRequest, Message};
use opencode_core::routing::{Mode, Tier};
use opencode_core::search::{normalize_query, MAX_RESULTS};
use opencode_runtime::answer::Reply;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::modes::search::{self as mode, SearchJob};
use opencode_runtime::modes::{last_user_text, Delivery};
use opencode_runtime::search::{self, SearchConfig};

use super::{parse_mode, Ctx, Handled};
use crate::error::ApiError;
use crate::platform::render::citation_json;
use crate::platform::request::{count, refuse_tools, requested_tier};
use crate::web;

/// Results asked for when the body does not say.
pub const DEFAULT_MAX_RESULTS: usize = 5;

/// The search mode's own body fields, checked here so errors can name them.
#[derive(Default, Deserialize)]
struct Own {
    max_results: Option<Value>,
}

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    match parts.uri.path().trim_end_matches('/') {
        "/v1/search/results" => return results(ctx, parts, body).await,
        crate::seed::SEARCH => return seed_search(ctx, parts, body).await,
        _ => {}
    }
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, own, dialect) = parse_mode::<Own, false>(&parts, &bytes, Mode::Search, &["max_results"])?;
    let max_results = count("max_results", own.max_results.as_ref(), DEFAULT_MAX_RESULTS, MAX_RESULTS)?;
    refuse_tools(&request, Mode::Search, false)?;
    let query = normalize_query(last_user_text(&request))
        .ok_or_else(|| ApiError::Validation("the last user message, the search query, is empty".into()))?;
    let search = SearchConfig::from_host(&ctx.host, ctx.config.retry.clone())?;
    search.require()?;
    let requested = requested_tier(&parts.headers);
    // A named model is pinned on its provider by the chain; left on the request, it would also be
    // asked of every fallback provider.
    let chain = ctx.config.tier_chain_for(requested.unwrap_or(Tier::System1), request.model.take().as_deref())?;
    let chain = ctx.admit(&request, chain).await?;
    let delivery = if dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    let job =
        SearchJob { request, query, max_results, search, chain, retry: ctx.config.retry.clone(), tier: requested };
    Ok(ctx.respond_in(dialect, mode::run(&ctx.host, job, delivery).await?))
}

/// The seed's `POST /api/v1/search` — `{"query", "max_results"?}` (1 to 20; the web search
/// takes at most 10) → `{"query", "results", "trace_id", "time_ms"}`. As in the seed, the
/// search mode answers the query and `results` holds that answer as `content`, here with the
/// pages it cites.
async fn seed_search<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SeedBody {
        query: String,
        max_results: Option<usize>,
    }
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let asked: SeedBody = web::parse_json(&parts, &bytes)?;
    if asked.max_results.is_some_and(|n| !(1..=20).contains(&n)) {
        return Err(ApiError::param("max_results", "`max_results` must be from 1 to 20".into()));
    }
    let query = normalize_query(&asked.query)
        .ok_or_else(|| ApiError::param("query", "`query` must contain words to search for".into()))?;
    let search = SearchConfig::from_host(&ctx.host, ctx.config.retry.clone())?;
    search.require()?;
    let request = ChatRequest { messages: vec![Message::user(asked.query.clone())], ..ChatRequest::default() };
    let chain = ctx.admit(&request, ctx.config.tier_chain_for(Tier::System1, None)?).await?;
    let job = SearchJob {
        request,
        query,
        max_results: asked.max_results.unwrap_or(DEFAULT_MAX_RESULTS).min(MAX_RESULTS),
        search,
        chain,
        retry: ctx.config.retry.clone(),
        tier: None,
    };
    let Reply::Whole(answer) = mode::run(&ctx.host, job, Delivery::Whole).await? else {
        return Err(ApiError::Internal("the search mode streamed a whole request".into()));
    };
    let citations: Vec<Value> = answer.citations.iter().map(citation_json).collect();
    let body = json!({
        "query": asked.query,
        "results": [{ "content": answer.response.text, "citations": citations }],
        "trace_id": ctx.request_id,
        "time_ms": ctx.host.now_ms().saturating_sub(ctx.started_ms),
    });
    Ok(web::json(http::StatusCode::OK, &body))
}

/// `POST /v1/search/results` — `{"query", "max_results"?}`: the search alone, no model (the
/// agent's `web_search` tool calls it).
async fn results<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ResultsBody {
        query: String,
        max_results: Option<Value>,
    }
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let asked: ResultsBody = web::parse_json(&parts, &bytes)?;
    let max_results = count("max_results", asked.max_results.as_ref(), DEFAULT_MAX_RESULTS, MAX_RESULTS)?;
    if normalize_query(&asked.query).is_none() {
        return Err(ApiError::Validation("`query` must contain words to search for".into()));
    }
    let config = SearchConfig::from_host(&ctx.host, ctx.config.retry.clone())?;
    config.require()?;
    ctx.admit_plain().await?;
    let found = search::search(&ctx.host, &config, &asked.query, max_results).await?;
    let body = json!({
        "id": ctx.request_id,
        "object": "search.results",
        "provider": found.provider,
        "query": found.query,
        "results": found.results,
    });
    Ok(web::json(http::StatusCode::OK, &body))
}
