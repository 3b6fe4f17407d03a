//! `POST /v1/chat`: one conversation turn ([`opencode_runtime::modes::chat`]). On System 2
//! without the caller's own tools the request goes, whole, to the `agent` function, whose answer
//! (a stream included) is passed on as it is.

use opencode_core::routing::Tier;
use opencode_runtime::cache::{self, CachePolicy};
use opencode_runtime::modes::chat::{self as mode, CacheUse, ChatJob};
use opencode_runtime::modes::Delivery;

use super::{gateway, Ctx, Dialect, Handled};
use crate::platform::request::requested_tier;
use crate::web;
use opencode_runtime::host::{Body, Host};

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, dialect) = Dialect::parse_chat(&parts, &bytes)?;
    // System 1 is one fast, cached call; System 2 (when /v1/process decided so) runs the strong
    // models and is never served from the cache.
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System1);
    // The chain pins a named model on its provider; left on the request, it would also be asked
    // of every fallback provider.
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    // System 2 runs the agent with the platform's tools in the `agent` function, unless the
    // caller brought its own tools (their calls go back to the caller).
    if tier == Tier::System2 && request.tools.is_empty() {
        let forwarded = gateway::on_behalf(&parts.headers, &ctx.request_id, parts.uri.path(), Tier::System2, bytes)?;
        return gateway::call(&ctx.host, "agent", forwarded).await;
    }
    let ttl_secs = ctx.config.cache_ttl_secs;
    let policy = if ttl_secs == 0 || tier == Tier::System2 {
        CachePolicy::Bypass
    } else {
        CachePolicy::from_headers(&parts.headers)
    };
    // The key (a hash over the whole request) is only worth computing when the cache is used.
    let cache = policy.writes().then(|| {
        let tenant = ctx.principal.as_ref().map_or("", |p| p.tenant.as_str());
        CacheUse { key: cache::key(tenant, "chat", &chain, &request), reads: policy.reads(), ttl_secs }
    });
    let delivery = if dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    let job = ChatJob { request, chain, retry: ctx.config.retry.clone(), cache };
    Ok(ctx.respond_in(dialect, mode::run(&ctx.host, job, delivery).await?))
}
