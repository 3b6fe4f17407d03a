//! The `agent` function: a chat body answered on System 2 with the platform's tools
//! ([`opencode_runtime::agent`]). Chat forwards its System 2 requests here.

use opencode_core::routing::Tier;
use opencode_runtime::agent::platform_tools::Toolbox;
use opencode_runtime::agent::{self, AgentJob};
use opencode_runtime::bounded::Limits;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::modes::Delivery;

use super::{dialect, Ctx, Handled};
use crate::error::ApiError;
use crate::web;

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, dialect) = dialect::parse_chat(&parts, &bytes)?;
    if !request.tools.is_empty() {
        return Err(ApiError::Validation(
            "the agent runs the platform's tools; a request with its own `tools` is answered by chat".into(),
        ));
    }
    let chain = ctx.config.tier_chain_for(Tier::System2, request.model.take().as_deref())?;
    let chain = ctx.admit(&request, chain).await?;
    // The tools' calls are part of this request, admitted once.
    let toolbox = Toolbox::from_host(&ctx.host, &ctx.sibling_headers(&parts.headers), &ctx.request_id).await;
    let job = AgentJob {
        request,
        chain,
        retry: ctx.config.retry.clone(),
        limits: Limits::from_flags(&ctx.config.flags),
        toolbox,
    };
    let delivery = if dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    Ok(ctx.respond_in(dialect, agent::run(&ctx.host, job, delivery).await?))
}
