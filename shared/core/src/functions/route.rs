//! `POST /v1/route`: the routing decision for a `/v1/process` body, without running anything.
//!
//! The body is the chat body plus `"mode"` (`auto` when absent). With `auto` the analyzer picks
//! the mode; with a named mode that mode is kept and the analyzer still rates the tier. The
//! analyzer's weights and thresholds come from `ROUTER_CONFIG` (JSON; missing fields keep
//! their defaults).

use serde_json::json;

use super::chat::ChatBody;
use super::Ctx;
use crate::error::ApiError;
use crate::host::{Body, Host};
use crate::routing::{ComplexityAnalyzer, Mode, RouteInput, Router, RoutingDecision};
use crate::web;

/// The router the configuration asks for.
pub fn analyzer<H: Host>(host: &H) -> Result<ComplexityAnalyzer, ApiError> {
    match host.var("ROUTER_CONFIG") {
        None => Ok(ComplexityAnalyzer::default()),
        Some(json) => ComplexityAnalyzer::from_json(&json).map_err(|err| ApiError::NotConfigured(format!("ROUTER_CONFIG: {err}"))),
    }
}

/// Splits a process body into the requested mode (`None` for auto) and the chat body.
pub fn parse_process_body(parts: &http::request::Parts, bytes: &[u8]) -> Result<(Option<Mode>, ChatBody), ApiError> {
    let mut value: serde_json::Value = web::parse_json(parts, bytes)?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| ApiError::Validation("the body must be a JSON object".into()))?;
    let mode = match object.remove("mode") {
        None => None,
        Some(serde_json::Value::String(name)) if name == "auto" => None,
        Some(serde_json::Value::String(name)) => Some(Mode::parse(&name).ok_or_else(|| {
            ApiError::Validation(format!(
                "`mode` `{}` is not one of auto, {}",
                name.chars().take(32).collect::<String>(),
                Mode::ALL.map(Mode::as_str).join(", ")
            ))
        })?),
        Some(_) => return Err(ApiError::Validation("`mode` must be a string".into())),
    };
    let body = serde_json::from_value(value).map_err(|err| ApiError::Validation(err.to_string()))?;
    Ok((mode, body))
}

/// Decides mode and tier for a validated request.
pub fn decide(router: &impl Router, mode: Option<Mode>, messages: &[crate::model::Message]) -> RoutingDecision {
    let mut decision = router.route(&RouteInput::from_messages(messages));
    if let Some(mode) = mode {
        if decision.mode != mode {
            decision.reasons.insert(0, format!("mode `{mode}` requested by the caller"));
            decision.mode = mode;
        }
    }
    decision
}

pub(super) async fn handle<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mode, body) = parse_process_body(&parts, &bytes)?;
    let (request, _) = body.validate()?;
    let decision = decide(&analyzer(&ctx.host)?, mode, &request.messages);
    Ok(web::json(http::StatusCode::OK, &json!({ "id": ctx.request_id, "routing": decision })))
}
