//! The admin function. `GET /health` is public and cheap: it reports the function's version
//! and which providers are configured (names and models; never keys or base URLs), without
//! calling them.
//! The rest needs a token with role `admin`: `GET /admin/metrics?hours=N` sums the per-tier
//! and per-mode metrics of the last N hours (default 24, at most 168); `GET /api/v1/metrics`
//! is the same sum in the seed's shape (the seed showed them to any user, but they are the
//! whole platform's, every tenant's).

use serde_json::json;

use super::Ctx;
use crate::auth::{Principal, Settings};
use crate::error::ApiError;
use crate::{seed, web};
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
        ("GET" | "HEAD", "/health") => Ok(health(ctx)),
        // The seed's status: whether the platform can answer (a provider is configured).
        ("GET", super::gateway::SEED_STATUS) => {
            let ready = !ctx.config.chain.is_empty();
            Ok(web::json(http::StatusCode::OK, &json!({ "api": "operational", "engine_ready": ready })))
        }
        (_, "/health") => Err(ApiError::MethodNotAllowed { method: method.to_string(), path: path.into() }),
        // Fails closed: no principal is no admin.
        _ if !ctx.principal.as_ref().is_some_and(Principal::is_admin) => {
            Err(ApiError::Forbidden("the admin API needs a token with role `admin`".into()))
        }
        ("GET", "/admin/metrics") => metrics_report(ctx, parts.uri.query()).await,
        ("GET", seed::METRICS) => {
            let summary = summarize(ctx, hours(parts.uri.query())?).await?;
            Ok(web::json(http::StatusCode::OK, &seed::metrics_json(&summary.record)))
        }
        (_, "/admin/metrics" | seed::METRICS) => {
            Err(ApiError::MethodNotAllowed { method: method.to_string(), path: path.into() })
        }
        _ => Err(ApiError::NotFound(path.to_string())),
    }
}

/// Public and cheap: no provider is called, and what a stranger may read is only which providers
/// and models are set up (never keys or base URLs, which can name internal hosts or carry
/// credentials) and whether tokens can be checked.
fn health<H: Host>(ctx: &Ctx<H>) -> http::Response<Body> {
    let providers: Vec<_> = ctx.config.chain.iter().map(|p| json!({"name": p.name, "model": p.model})).collect();
    let mut body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "providers": providers,
        "auth_configured": true,
        "time_ms": ctx.host.now_ms(),
    });
    if let (Err(err), Some(map)) = (Settings::from_host(&ctx.host), body.as_object_mut()) {
        map.insert("auth_configured".into(), json!(false));
        map.insert("auth_problem".into(), json!(err.to_string()));
    }
    web::json(http::StatusCode::OK, &body)
}

/// The metrics of the last `hours` hours.
async fn summarize<H: Host>(ctx: &Ctx<H>, hours: u64) -> Result<metrics::Summary, ApiError> {
    metrics::summarize(&ctx.host, hours)
        .await
        .map_err(|err| ApiError::Internal(format!("could not read the metrics: {err}")))
}

/// The hours `?hours=N` asks for (the default when absent).
fn hours(query: Option<&str>) -> Result<u64, ApiError> {
    match query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("hours=")) {
        None => Ok(DEFAULT_HOURS),
        Some(value) => {
            value.parse::<u64>().ok().filter(|h| (1..=MAX_HOURS).contains(h)).ok_or_else(|| {
                ApiError::InvalidRequest(format!("`hours` must be a whole number from 1 to {MAX_HOURS}"))
            })
        }
    }
}

async fn metrics_report<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<http::Response<Body>, ApiError> {
    let hours = hours(query)?;
    let summary = summarize(ctx, hours).await?;
    let now_hour = metrics::hour_of(ctx.host.now_ms());
    let mut body = summary.record.to_json();
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "window".into(),
            json!({
                "hours": hours,
                "from_ms": now_hour.saturating_sub(hours.saturating_sub(1)).saturating_mul(3_600_000),
                "to_ms": ctx.host.now_ms(),
            }),
        );
        map.insert("instance_hours".into(), json!(summary.parts));
        map.insert("hours_rolled_up".into(), json!(summary.rolled_up));
        map.insert("truncated".into(), json!(summary.truncated));
    }
    Ok(web::json(http::StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opencode_runtime::config::Config;
    use opencode_testkit::TestHost;

    fn ctx(principal: Option<Principal>) -> Ctx<TestHost> {
        let host = TestHost::new();
        let config = Config::from_host(&host).unwrap();
        Ctx { host, config, request_id: "req".into(), principal, started_ms: 0, meter: None }
    }

    #[tokio::test]
    async fn the_admin_api_fails_closed_without_a_principal() {
        let parts = http::Request::get("/admin/metrics").body(()).unwrap().into_parts().0;
        let refused = handle(&ctx(None), parts).await.unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::FORBIDDEN);
        let member = Principal { subject: "u".into(), tenant: "t".into(), role: "member".into() };
        let parts = http::Request::get("/admin/metrics").body(()).unwrap().into_parts().0;
        assert_eq!(handle(&ctx(Some(member)), parts).await.unwrap_err().status(), http::StatusCode::FORBIDDEN);
    }
}
