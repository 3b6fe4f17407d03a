//! `POST /v1/chat`: one conversation turn ([`opencode_runtime::modes::chat`]), also answered on
//! the vendor paths Spin routes here directly (OpenAI's chat completions, Anthropic's messages;
//! a model naming another mode goes on to the gateway, which routes it). On System 2 without the
//! caller's own tools the request goes to the `agent` function, whose answer (a stream
//! included) is passed on as it is.

use bytes::Bytes;
use serde_json::Value;

use opencode_core::flags::Flag;
use opencode_core::routing::Tier;
use opencode_runtime::cache;
use opencode_runtime::modes::chat::{self as mode, CacheUse, ChatJob};
use opencode_runtime::modes::Delivery;

use super::dialect::{self, Dialect, CHAT_VENDOR_PATHS, DIALECT_HEADER};
use super::{gateway, Ctx, Handled};
use crate::error::ApiError;
use crate::platform::request::{requested_tier, ChatBody};
use crate::web;
use opencode_runtime::host::{Body, Host};

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (body, vendor) = match parts.uri.path() {
        "/v1/chat" => (web::parse_object(&parts, &bytes)?, None),
        path if CHAT_VENDOR_PATHS.contains(&path) => {
            let Some((mut body, dialect)) = Dialect::translate_for_chat(&parts, &bytes)? else {
                return Err(ApiError::NotFound(path.to_owned()));
            };
            match dialect::take_alias(&mut body).as_deref() {
                None | Some("chat") => (body, Some(dialect)),
                // Another mode, or the analyzer's choice: the gateway routes those.
                Some(_) => return gateway::forward_read(&ctx.host, "gateway", parts, bytes, &ctx.request_id).await,
            }
        }
        other => return Err(ApiError::NotFound(other.chars().take(256).collect())),
    };
    // System 1 is one fast, cached call; System 2 (when /v1/process decided so) runs the strong
    // models and is never served from the cache.
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System1);
    // The agent reads the platform's body: kept only when it may be needed.
    let for_agent = (tier == Tier::System2).then(|| body.clone());
    let (mut request, stream) = ChatBody::from_object(body)?.validate()?;
    let dialect = match vendor {
        Some(dialect) => dialect,
        None => Dialect::from_headers(&parts.headers, stream)?,
    };
    // The chain pins a named model on its provider; left on the request, it would also be asked
    // of every fallback provider.
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    // System 2 runs the agent with the platform's tools in the `agent` function, unless the
    // caller brought its own tools (their calls go back to the caller).
    // Without the thinking chain (`system2.enable_thinking_chain` off), System 2 is one call
    // to the strong model, here.
    let chained = request.tools.is_empty() && ctx.config.flags.on(Flag::ThinkingChain);
    if let (Some(body), true) = (for_agent, chained) {
        let body = Bytes::from(Value::Object(body).to_string());
        let mut forwarded = gateway::on_behalf(&parts.headers, &ctx.request_id, "/v1/chat", Some(Tier::System2), body)?;
        if let Some(value) = dialect.header_value() {
            forwarded.headers_mut().insert(DIALECT_HEADER, http::HeaderValue::from_static(value));
        }
        return gateway::call(&ctx.host, "agent", forwarded).await;
    }
    let ttl_secs = ctx.config.cache_ttl_secs();
    let policy = ctx.cache_policy(&parts.headers, tier);
    // The key (a hash over the whole request) is only worth computing when the cache is used.
    let cache = policy.writes().then(|| {
        let tenant = ctx.principal.as_ref().map_or("", |p| p.tenant.as_str());
        let slots = ctx.config.flags.whole(Flag::CacheMaxSize);
        // Serialising plain structs cannot fail; an empty text would still give a valid key.
        let text = serde_json::to_string(&request).unwrap_or_default();
        CacheUse { key: cache::key(tenant, "chat", "", &chain, &text, slots), reads: policy.reads(), ttl_secs }
    });
    let chain = ctx.admit(&request, chain).await?;
    let delivery = if dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    let job = ChatJob { request, chain, retry: ctx.config.retry.clone(), cache };
    Ok(ctx.respond_in(dialect, mode::run(&ctx.host, job, delivery).await?))
}
