//! `POST /v1/research`: the chat body plus `max_sub_questions` (1–6, default 3) and
//! `max_results` per search (1–10, default 3), answered by
//! [`opencode_runtime::modes::research`] on System 2 unless the gateway decided otherwise.

use serde::Deserialize;
use serde_json::Value;

use opencode_core::routing::{Mode, Tier};
use opencode_core::search::MAX_RESULTS;
use opencode_runtime::bounded::Limits;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::modes::research::{self as mode, ResearchJob};
use opencode_runtime::modes::Delivery;
use opencode_runtime::search::SearchConfig;

use super::{parse_mode, Ctx, Handled};
use crate::platform::request::{count, refuse_tools, requested_tier};
use crate::web;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    max_sub_questions: Option<Value>,
    max_results: Option<Value>,
}

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, options, dialect) =
        parse_mode::<Options, false>(&parts, &bytes, Mode::Research, &["max_sub_questions", "max_results"])?;
    refuse_tools(&request, Mode::Research, false)?;
    let max_sub_questions = count("max_sub_questions", options.max_sub_questions.as_ref(), 3, 6)?;
    let max_results = count("max_results", options.max_results.as_ref(), 3, MAX_RESULTS)?;
    let search = SearchConfig::from_host(&ctx.host, ctx.config.retry.clone())?;
    search.require()?;
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System2);
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    let job = ResearchJob {
        chain: ctx.admit(&request, chain).await?,
        request,
        search,
        retry: ctx.config.retry.clone(),
        limits: Limits::from_flags(&ctx.config.flags),
        tier,
        max_sub_questions,
        max_results,
    };
    let delivery = if dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    Ok(ctx.respond_in(dialect, mode::run(&ctx.host, job, delivery).await?))
}
