//! The admin function. `GET /health` is public and cheap: it reports the function's version
//! and which providers are configured (names and models, never keys), without calling them.
//! The rest needs a token with role `admin`: `GET /admin/metrics?hours=N` sums the per-tier
//! and per-mode metrics of the last N hours (default 24, at most 168).

use serde_json::json;

use super::Ctx;
use crate::error::ApiError;
use crate::web;
use opencode_runtime::config::describe_chain;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::metrics;

const DEFAULT_HOURS: u64 = 24;
const MAX_HOURS: u64 = 168;

pub(super) async fn handle<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
) -> Result<http::Response<Body>, ApiError> {
    let path = parts.uri.path();
    let method = parts.method.as_str();
    match (method, path) {
        ("GET" | "HEAD", "/health") => Ok(web::json(
            http::StatusCode::OK,
            &json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "providers": describe_chain(&ctx.config.chain),
                "auth_configured": ctx.config.jwt_secret.is_some(),
                "time_ms": ctx.host.now_ms(),
            }),
        )),
        (_, "/health") => Err(ApiError::MethodNotAllowed { method: method.to_string(), path: path.into() }),
        _ if ctx.principal.as_ref().is_some_and(|p| !p.is_admin()) => {
            Err(ApiError::Forbidden("the admin API needs a token with role `admin`".into()))
        }
        ("GET", "/admin/metrics") => metrics_report(ctx, parts.uri.query()).await,
        (_, "/admin/metrics") => Err(ApiError::MethodNotAllowed { method: method.to_string(), path: path.into() }),
        _ => Err(ApiError::NotFound(path.to_string())),
    }
}

async fn metrics_report<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<http::Response<Body>, ApiError> {
    let hours =
        match query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("hours=")) {
            None => DEFAULT_HOURS,
            Some(value) => value.parse::<u64>().ok().filter(|h| (1..=MAX_HOURS).contains(h)).ok_or_else(|| {
                ApiError::InvalidRequest(format!("`hours` must be a whole number from 1 to {MAX_HOURS}"))
            })?,
        };
    let summary = metrics::summarize(&ctx.host, hours)
        .await
        .map_err(|err| ApiError::Internal(format!("could not read the metrics: {err}")))?;
    let now_hour = metrics::hour_of(ctx.host.now_ms());
    let mut body = summary.record.to_json();
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "window".into(),
            json!({
                "hours": hours,
                "from_ms": now_hour.saturating_sub(hours - 1) * 3_600_000,
                "to_ms": ctx.host.now_ms(),
            }),
        );
        map.insert("instance_hours".into(), json!(summary.parts));
        map.insert("hours_rolled_up".into(), json!(summary.rolled_up));
        map.insert("truncated".into(), json!(summary.truncated));
    }
    Ok(web::json(http::StatusCode::OK, &body))
}
