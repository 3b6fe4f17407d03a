//! `POST /v1/route` and `POST /v1/process`, answered by the gateway.
//!
//! Both take the chat body plus `"mode"` (`auto` when absent), an optional `"tier"` (`auto`,
//! `system1`, `system2`) and the mode's own fields. With `auto` the analyzer picks the mode;
//! with a named mode that mode is kept and the analyzer still rates the tier, unless the
//! caller named the tier too. `/v1/route` returns the decision alone; `/v1/process` forwards the
//! body (without `mode`) to the chosen mode's function with the tier in `x-opencode-tier`,
//! and adds the decision to the answer: a `routing` field in JSON, a first `routing` event in
//! a stream. Which router decides, and where its System 2 threshold sits, is configuration
//! (`router`): the platform's `ROUTER*` variables, a tenant's entry in `ROUTER_TENANTS`, the
//! caller's A/B variant (`EXPERIMENTS`), each over the one before; the decision names its
//! router (`routing.router`).

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::dialect::{self, Dialect, DIALECT_HEADER};
use super::{features, gateway, Ctx, Handled};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::platform::request::{validate_messages, MessageBody, TIER_HEADER};
use crate::{sse, web};
use opencode_core::flags::{Flag, Flags};
use opencode_core::model::Message;
use opencode_core::routing::choice::{ConfiguredRouter, Routed, RouterSettings};
use opencode_core::routing::{AnalyzerConfig, Mode, RouteInput, RoutingDecision, Tier};
use opencode_runtime::config::Config;
use opencode_runtime::host::{Body, Host};

/// Largest mode answer the gateway reads whole to add `routing` to it.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A configuration variable, when set to something.
fn set_var<H: Host>(host: &H, name: &str) -> Option<String> {
    host.var(name).filter(|value| !value.trim().is_empty())
}

/// The platform's routing settings: the `platform.router` flag (which `ROUTER` sets at deploy
/// time), `ROUTER_STRONG_SHARE` (`strong_share`), `ROUTER_RULES` (`rules`), read as one settings
/// layer (a value that does not parse is kept as text, for the layer's check to refuse by name).
fn platform_settings<H: Host>(host: &H, flags: &Flags) -> Result<RouterSettings, ApiError> {
    let mut layer = Map::new();
    layer.insert("router".to_owned(), Value::from(flags.choice(Flag::Router)));
    for (name, key) in [("ROUTER_STRONG_SHARE", "strong_share"), ("ROUTER_RULES", "rules")] {
        if let Some(text) = set_var(host, name) {
            let value = serde_json::from_str(&text).ok();
            layer.insert(key.to_owned(), value.unwrap_or(Value::String(text)));
        }
    }
    RouterSettings::from_value(&Value::Object(layer), "ROUTER, ROUTER_STRONG_SHARE, ROUTER_RULES")
        .map_err(|err| ApiError::NotConfigured(err.to_string()))
}

/// The tenant's entry of `ROUTER_TENANTS` (`{"<tenant>": {router, strong_share, threshold, rules}}`).
fn tenant_settings<H: Host>(host: &H, tenant: &str) -> Result<RouterSettings, ApiError> {
    let Some(json) = set_var(host, "ROUTER_TENANTS") else { return Ok(RouterSettings::default()) };
    let invalid = |what: String| ApiError::NotConfigured(format!("ROUTER_TENANTS: {what}"));
    let tenants: Value = serde_json::from_str(&json).map_err(|err| invalid(err.to_string()))?;
    let Some(tenants) = tenants.as_object() else { return Err(invalid("must be a JSON object of tenants".into())) };
    let Some(entry) = tenants.get(tenant) else { return Ok(RouterSettings::default()) };
    RouterSettings::from_value(entry, &format!("tenant `{tenant}`")).map_err(|err| invalid(err.to_string()))
}

/// The router for this caller: the caller's A/B variant over its tenant's settings over the
/// platform's; the lexicon weighs by `ROUTER_CONFIG` (JSON; missing fields keep their defaults).
pub fn router<H: Host>(host: &H, config: &Config, tenant: Option<&str>) -> Result<ConfiguredRouter, ApiError> {
    let variant = config.variant.as_ref();
    let mut settings = platform_settings(host, &config.flags)?;
    if let Some(tenant) = tenant {
        settings = tenant_settings(host, tenant)?.over(&settings);
    }
    if let Some(variant) = variant {
        settings = variant.router_settings().over(&settings);
    }
    let analyzer = match set_var(host, "ROUTER_CONFIG") {
        None => AnalyzerConfig::default(),
        Some(json) => {
            AnalyzerConfig::from_json(&json).map_err(|err| ApiError::NotConfigured(format!("ROUTER_CONFIG: {err}")))?
        }
    };
    ConfiguredRouter::new(&settings, analyzer).map_err(|err| ApiError::NotConfigured(format!("routing: {err}")))
}

/// The router for the caller of `ctx`.
fn router_for<H: Host>(ctx: &Ctx<H>) -> Result<ConfiguredRouter, ApiError> {
    router(&ctx.host, &ctx.config, ctx.principal.as_ref().map(|p| p.tenant.as_str()))
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

/// Decides mode and tier for a validated conversation; what the caller named is kept and said
/// first, whatever the router would have chosen. The flags bound the router: without
/// `auto_mode_switch` it keeps chat (and it never picks a mode that is off), without
/// `complexity_analysis` System 1, and without `smart_routing` it is not asked at all.
pub fn decide(
    router: &ConfiguredRouter,
    flags: &Flags,
    mode: Option<Mode>,
    tier: Option<Tier>,
    messages: &[Message],
) -> Routed {
    let mut routed = if flags.on(Flag::SmartRouting) {
        router.decide(&RouteInput::from_messages(messages))
    } else {
        let reasons = vec![format!("`{}` is off: chat on System 1", Flag::SmartRouting.path())];
        let decision = RoutingDecision { mode: Mode::Chat, tier: Tier::System1, score: 0.0, reasons };
        Routed { decision, router: "none" }
    };
    let decision = &mut routed.decision;
    if decision.mode != Mode::Chat {
        let off = if !flags.on(Flag::AutoModeSwitch) {
            Some(Flag::AutoModeSwitch)
        } else {
            Some(features::mode_flag(decision.mode)).filter(|flag| !flags.on(*flag))
        };
        if let Some(flag) = off {
            decision.reasons.insert(0, format!("`{}` is off: chat instead of {}", flag.path(), decision.mode));
            decision.mode = Mode::Chat;
        }
    }
    if decision.tier == Tier::System2 && !flags.on(Flag::ComplexityAnalysis) {
        decision.reasons.insert(0, format!("`{}` is off: System 1", Flag::ComplexityAnalysis.path()));
        decision.tier = Tier::System1;
    }
    if let Some(mode) = mode {
        decision.reasons.insert(0, format!("mode `{mode}` requested by the caller"));
        decision.mode = mode;
    }
    if let Some(tier) = tier {
        decision.reasons.insert(0, format!("tier `{}` requested by the caller", tier.as_str()));
        decision.tier = tier;
    }
    routed
}

/// A decision as the API shows it: the decision's fields and the router that made it.
fn routing_json(routed: &Routed) -> Value {
    let mut value = serde_json::to_value(&routed.decision).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("router".into(), Value::from(routed.router));
    }
    value
}

/// Reads, checks and routes a process body.
async fn routed<H: Host>(
    ctx: &Ctx<H>,
    parts: &http::request::Parts,
    body: Body,
) -> Result<(ProcessBody, Routed), ApiError> {
    let bytes = web::read_post(parts, body, ctx.config.max_body_bytes).await?;
    let process = parse_process_body(parts, &bytes)?;
    let routed = decide(&router_for(ctx)?, &ctx.config.flags, process.mode, process.tier, &process.messages);
    Ok((process, routed))
}

/// `POST /v1/route`: the router's decision alone, refused when smart routing is off.
pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    if !ctx.config.flags.on(Flag::SmartRouting) {
        return Err(ApiError::FeatureDisabled(Flag::SmartRouting.path()));
    }
    let (_, routed) = routed(ctx, &parts, body).await?;
    let mut answer = json!({ "id": ctx.request_id, "routing": routing_json(&routed) });
    if let (Some(variant), Some(object)) = (&ctx.config.variant, answer.as_object_mut()) {
        object.insert("variant".into(), Value::from(variant.name.as_str()));
    }
    Ok(web::json(http::StatusCode::OK, &answer))
}

/// `POST /v1/process`.
pub(super) async fn process<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let (process, routed) = routed(ctx, &parts, body).await?;
    let decision = &routed.decision;
    let mode = decision.mode.as_str();
    let body = Bytes::from(Value::Object(process.rest).to_string());
    let request =
        gateway::on_behalf(&parts.headers, &ctx.request_id, &format!("/v1/{mode}"), Some(decision.tier), body)?;
    let response = gateway::call(&ctx.host, mode, request).await?;
    with_routing(response, &routed).await
}

/// Adds the decision to a mode's answer: a `routing` field in a JSON object, a `routing`
/// event ahead of a stream, and `x-routing-mode`/`-tier`/`-router` headers on any answer.
async fn with_routing(response: http::Response<Body>, routed: &Routed) -> Handled {
    let (mut parts, body) = response.into_parts();
    // The answer grows by the decision: a length the mode declared no longer holds.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let routing = routing_json(routed);
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
    routing_headers(&mut response, routed);
    Ok(response)
}

/// `x-routing-mode`, `x-routing-tier` and `x-routing-router`.
fn routing_headers(response: &mut http::Response<Body>, routed: &Routed) {
    web::set_header(response, "x-routing-mode", routed.decision.mode.as_str());
    web::set_header(response, "x-routing-tier", routed.decision.tier.as_str());
    web::set_header(response, "x-routing-router", routed.router);
}

/// A vendor dialect's chat request at the gateway (`/v1/chat/completions`, `/v1/responses`,
/// `/v1/messages`, the seed's chat), translated into the platform's chat body and sent, with
/// the dialect in its header, to the mode its `model` names: `opencode/<mode>` to that mode's
/// function, `opencode/auto` to the mode and tier the router picks (named in `x-routing-mode`,
/// `-tier` and `-router`: the vendors' shapes have no place for the decision), any other model
/// to chat. The function answers in the dialect.
pub(super) async fn vendor<H: Host>(
    host: &H,
    principal: &Principal,
    request: http::Request<Body>,
    request_id: &str,
) -> Handled {
    let (mut parts, body) = request.into_parts();
    // The caller's flags: its dialect may be off, and `auto` routes under them. The rest of
    // the configuration is read only for `auto`.
    let mut flags = opencode_runtime::flags::from_variables(host)?;
    opencode_runtime::flags::load(host, &mut flags, Some(&principal.tenant)).await;
    features::check(&flags, None, parts.uri.path(), &parts.headers)?;
    let bytes = web::read_body(&parts, body, gateway::body_limit(host)).await?;
    let Some((mut body, dialect)) = Dialect::translate(&parts, &bytes)? else {
        return Err(ApiError::NotFound(parts.uri.path().to_owned()));
    };
    let (mode, decision) = match dialect::take_alias(&mut body).as_deref() {
        None => (Mode::Chat, None),
        Some("auto") => {
            let mut config = Config::from_host(host)?;
            config.flags = flags;
            // The same variant the mode's function will put the caller in.
            config.enter_variant(host, &principal.subject);
            let router = router(host, &config, Some(&principal.tenant))?;
            let routed = decide(&router, &config.flags, None, None, &conversation(&body)?);
            (routed.decision.mode, Some(routed))
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
    if let Some(routed) = &decision {
        headers.insert(TIER_HEADER, http::HeaderValue::from_static(routed.decision.tier.as_str()));
    }
    let body = Bytes::from(Value::Object(body).to_string());
    let mut response = gateway::forward_read(host, mode.as_str(), parts, body, request_id).await?;
    if let Some(routed) = decision {
        routing_headers(&mut response, &routed);
    }
    Ok(response)
}
