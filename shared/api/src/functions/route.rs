//! `POST /v1/route` and `POST /v1/process`, answered by the gateway.
//!
//! Both take the chat body plus `"mode"` (`auto` when absent), an optional `"tier"` (`auto`,
//! `system1`, `system2`) and the mode's own fields. With `auto` the analyzer picks the mode;
//! with a named mode that mode is kept and the analyzer still rates the tier, unless the
//! caller named the tier too. `/v1/route` returns the decision alone; `/v1/process` forwards the
//! body (without `mode`) to the chosen mode's function with the tier in `x-opencode-tier`,
//! and adds the decision to the answer: a `routing` field in JSON, a first `routing` event in
//! a stream. The analyzer's weights and thresholds come from `ROUTER_CONFIG` (JSON; missing
//! fields keep their defaults).

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::dialect::{self, Dialect, DIALECT_HEADER};
use super::{gateway, Ctx, Handled};
use crate::error::ApiError;
use crate::platform::request::{validate_messages, MessageBody, TIER_HEADER};
use crate::{sse, web};
use opencode_core::model::Message;
use opencode_core::routing::{ComplexityAnalyzer, Mode, RouteInput, Router, RoutingDecision, Tier};
use opencode_runtime::host::{Body, Host};

/// Largest mode answer the gateway reads whole to add `routing` to it.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The router the configuration asks for.
pub fn analyzer<H: Host>(host: &H) -> Result<ComplexityAnalyzer, ApiError> {
    match host.var("ROUTER_CONFIG") {
        None => Ok(ComplexityAnalyzer::default()),
        Some(json) => {
            ComplexityAnalyzer::from_json(&json).map_err(|err| ApiError::NotConfigured(format!("ROUTER_CONFIG: {err}")))
        }
    }
}

/// A process body: the requested mode (`None` for auto), the conversation to route on, and
/// every other field, which the mode function validates.
#[derive(Debug)]
pub struct ProcessBody {
    pub mode: Option<Mode>,
    /// The tier the caller asked for (`None` for auto).
    pub tier: Option<Tier>,
    pub messages: Vec<Message>,
    pub rest: Map<String, Value>,
}

/// Reads a process body. The conversation is checked here (it is what routing reads); the
/// other fields are left to the mode.
pub fn parse_process_body(parts: &http::request::Parts, bytes: &[u8]) -> Result<ProcessBody, ApiError> {
    let mut rest = web::parse_object(parts, bytes)?;
    let mode = match rest.remove("mode") {
        None => None,
        Some(Value::String(name)) if name.trim().eq_ignore_ascii_case("auto") => None,
        Some(Value::String(name)) => Some(Mode::parse(&name).ok_or_else(|| {
            ApiError::Validation(format!(
                "`mode` `{}` is not one of auto, {}",
                name.chars().take(32).collect::<String>(),
                Mode::ALL.map(Mode::as_str).join(", ")
            ))
        })?),
        Some(_) => return Err(ApiError::Validation("`mode` must be a string".into())),
    };
    let tier = match rest.remove("tier") {
        None => None,
        Some(Value::String(name)) => match name.trim().to_ascii_lowercase().as_str() {
            "auto" => None,
            "system1" => Some(Tier::System1),
            "system2" => Some(Tier::System2),
            _ => return Err(ApiError::Validation("`tier` must be one of auto, system1, system2".into())),
        },
        Some(_) => return Err(ApiError::Validation("`tier` must be a string".into())),
    };
    Ok(ProcessBody { mode, tier, messages: conversation(&rest)?, rest })
}

/// A body's conversation, checked: what routing reads (the mode's function checks the rest).
fn conversation(body: &Map<String, Value>) -> Result<Vec<Message>, ApiError> {
    let messages = body.get("messages").ok_or_else(|| ApiError::Validation("missing field `messages`".into()))?;
    let bodies =
        Vec::<MessageBody>::deserialize(messages).map_err(|err| ApiError::Validation(format!("`messages`: {err}")))?;
    validate_messages(bodies)
}

/// Decides mode and tier for a validated conversation; what the caller named is kept.
pub fn decide(router: &impl Router, mode: Option<Mode>, tier: Option<Tier>, messages: &[Message]) -> RoutingDecision {
    let mut decision = router.route(&RouteInput::from_messages(messages));
    if let Some(mode) = mode.filter(|m| *m != decision.mode) {
        decision.reasons.insert(0, format!("mode `{mode}` requested by the caller"));
        decision.mode = mode;
    }
    if let Some(tier) = tier.filter(|t| *t != decision.tier) {
        decision.reasons.insert(0, format!("tier `{}` requested by the caller", tier.as_str()));
        decision.tier = tier;
    }
    decision
}

/// Reads, checks and routes a process body.
async fn routed<H: Host>(
    ctx: &Ctx<H>,
    parts: &http::request::Parts,
    body: Body,
) -> Result<(ProcessBody, RoutingDecision), ApiError> {
    let bytes = web::read_post(parts, body, ctx.config.max_body_bytes).await?;
    let process = parse_process_body(parts, &bytes)?;
    let decision = decide(&analyzer(&ctx.host)?, process.mode, process.tier, &process.messages);
    Ok((process, decision))
}

/// `POST /v1/route`.
pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let (_, decision) = routed(ctx, &parts, body).await?;
    Ok(web::json(http::StatusCode::OK, &json!({ "id": ctx.request_id, "routing": decision })))
}

/// `POST /v1/process`.
pub(super) async fn process<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let (process, decision) = routed(ctx, &parts, body).await?;
    let mode = decision.mode.as_str();
    let body = Bytes::from(Value::Object(process.rest).to_string());
    let request =
        gateway::on_behalf(&parts.headers, &ctx.request_id, &format!("/v1/{mode}"), Some(decision.tier), body)?;
    let response = gateway::call(&ctx.host, mode, request).await?;
    with_routing(response, &decision).await
}

/// Adds the decision to a mode's answer: a `routing` field in a JSON object, a `routing`
/// event ahead of a stream, and `x-routing-mode`/`x-routing-tier` headers on any answer.
async fn with_routing(response: http::Response<Body>, decision: &RoutingDecision) -> Handled {
    let (mut parts, body) = response.into_parts();
    // The answer grows by the decision: a length the mode declared no longer holds.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let routing = serde_json::to_value(decision).unwrap_or_default();
    let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let body = if content_type.starts_with("text/event-stream") {
        let first = stream::once(async move { Ok(sse::encode("routing", &routing)) });
        let rest = match body {
            Body::Full(bytes) => stream::once(async move { Ok(bytes) }).boxed_local(),
            Body::Stream(rest) => rest,
        };
        Body::Stream(first.chain(rest).boxed_local())
    } else if content_type.starts_with("application/json") {
        let bytes = body
            .collect(MAX_ANSWER_BYTES)
            .await
            .map_err(|err| ApiError::Internal(format!("could not read the mode's answer: {err}")))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(mut answer)) => {
                answer.insert("routing".into(), routing);
                Body::from(Value::Object(answer).to_string())
            }
            _ => Body::Full(bytes),
        }
    } else {
        body
    };
    let mut response = http::Response::from_parts(parts, body);
    web::set_header(&mut response, "x-routing-mode", decision.mode.as_str());
    web::set_header(&mut response, "x-routing-tier", decision.tier.as_str());
    Ok(response)
}

/// A vendor dialect's chat request at the gateway (`/v1/chat/completions`, `/v1/responses`,
/// `/v1/messages`, the seed's chat), translated into the platform's chat body and sent, with
/// the dialect in its header, to the mode its `model` names: `opencode/<mode>` to that mode's
/// function, `opencode/auto` to the mode and tier the analyzer picks (named in `x-routing-mode`
/// and `x-routing-tier`: the vendors' shapes have no place for the decision), any other model
/// to chat. The function answers in the dialect.
pub(super) async fn vendor<H: Host>(host: &H, request: http::Request<Body>, request_id: &str) -> Handled {
    let (mut parts, body) = request.into_parts();
    let bytes = web::read_body(&parts, body, gateway::body_limit(host)).await?;
    let Some((mut body, dialect)) = Dialect::translate(&parts, &bytes)? else {
        return Err(ApiError::NotFound(parts.uri.path().to_owned()));
    };
    let (mode, decision) = match dialect::take_alias(&mut body).as_deref() {
        None => (Mode::Chat, None),
        Some("auto") => {
            let decision = decide(&analyzer(host)?, None, None, &conversation(&body)?);
            (decision.mode, Some(decision))
        }
        Some(name) => match Mode::parse(name) {
            Some(mode) => (mode, None),
            None => {
                let name: String = name.chars().take(32).collect();
                return Err(ApiError::UnknownModel(format!(
                    "`opencode/{name}` is not a mode: use opencode/auto or one of {}",
                    Mode::ALL.map(|m| format!("opencode/{m}")).join(", ")
                )));
            }
        },
    };
    parts.uri = http::Uri::try_from(format!("/v1/{mode}"))
        .map_err(|err| ApiError::Internal(format!("the path of the {mode} mode: {err}")))?;
    let headers = &mut parts.headers;
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    if let Some(value) = dialect.header_value() {
        headers.insert(DIALECT_HEADER, http::HeaderValue::from_static(value));
    }
    if let Some(decision) = &decision {
        headers.insert(TIER_HEADER, http::HeaderValue::from_static(decision.tier.as_str()));
    }
    let body = Bytes::from(Value::Object(body).to_string());
    let mut response = gateway::forward_read(host, mode.as_str(), parts, body, request_id).await?;
    if let Some(decision) = decision {
        web::set_header(&mut response, "x-routing-mode", decision.mode.as_str());
        web::set_header(&mut response, "x-routing-tier", decision.tier.as_str());
    }
    Ok(response)
}
