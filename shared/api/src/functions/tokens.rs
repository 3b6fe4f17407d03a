//! Token estimates, answered by the gateway without a model call, from the one estimator the
//! limits and budgets reserve with ([`opencode_core::tokens`]):
//! - `POST /v1/tokens/estimate` `{"model"?, "messages" | "input", "tools"?, "max_tokens"?}` →
//!   `{"input_tokens", "max_output_tokens", "max_cost_usd"}` (the cost at the model's list price
//!   if every output token were spent; `null` for a model without a price);
//! - `POST /v1/messages/count_tokens`, Anthropic's: a Messages body → `{"input_tokens"}`.

use serde_json::{json, Map, Value};

use opencode_core::model::{ChatRequest, Usage};
use opencode_core::routing::Tier;
use opencode_core::tokens::{request_tokens, DEFAULT_MAX_OUTPUT_TOKENS};

use super::{Ctx, Handled};
use crate::anthropic;
use crate::error::ApiError;
use crate::platform::request::ChatBody;
use crate::web;
use opencode_runtime::host::{Body, Host};

/// `POST /v1/tokens/estimate`.
pub(super) async fn estimate<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let mut body = web::parse_object(&parts, &bytes)?;
    if let Some(unknown) =
        body.keys().find(|k| !["model", "messages", "input", "tools", "max_tokens"].contains(&k.as_str()))
    {
        let unknown: String = unknown.chars().take(64).collect();
        return Err(ApiError::param(&unknown, format!("unknown field `{unknown}`")));
    }
    match (body.remove("input"), body.contains_key("messages")) {
        (Some(Value::String(text)), false) => {
            body.insert("messages".into(), json!([{ "role": "user", "content": text }]));
        }
        (None, true) => {}
        _ => {
            return Err(ApiError::Validation(
                "send `messages` (a conversation) or `input` (a string), one of them".into(),
            ))
        }
    }
    let (mut request, _) = ChatBody::from_object(body)?.validate()?;
    let max_output_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
    let input_tokens = request_tokens(&request);
    let model = request.model.take().filter(|m| !m.starts_with("opencode/"));
    let chain = ctx.config.tier_chain_for(Tier::System1, model.as_deref())?;
    let answering = chain.first();
    let usage = Usage { input_tokens, output_tokens: u64::from(max_output_tokens), ..Usage::default() };
    let max_cost_usd = answering.and_then(|p| p.price).map(|price| price.cost(&usage));
    Ok(web::json(
        http::StatusCode::OK,
        &json!({
            "input_tokens": input_tokens,
            "max_output_tokens": max_output_tokens,
            "max_cost_usd": max_cost_usd,
            "model": answering.map(|p| format!("{}/{}", p.name, p.model)),
        }),
    ))
}

/// `POST /v1/messages/count_tokens`: what `/v1/messages` reads of the body, counted.
pub(super) async fn count<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let mut body: Map<String, Value> = web::parse_object(&parts, &bytes)?;
    // Counting needs no output limit; the translation asks for one.
    body.entry("max_tokens").or_insert(json!(1));
    let (chat, _) = anthropic::request::translate_object(body)?;
    let (request, _): (ChatRequest, bool) = ChatBody::from_object(chat)?.validate()?;
    Ok(web::json(http::StatusCode::OK, &json!({ "input_tokens": request_tokens(&request) })))
}
