//! The admin function. `GET /health` is public and cheap: it reports the function's version
//! and which providers are configured (names and models; never keys or base URLs), without
//! calling them. The rest is the admin API, each path checked against the caller's role
//! (`opencode_core::access`):
//! - `GET /admin/metrics?hours=N` (default 24, at most 168) and the seed's `GET /api/v1/metrics`:
//!   for an owner the platform's totals (or one tenant's with `?tenant=`), for anyone else its
//!   tenant's, from the usage ledger (with a `tenant` field);
//! - keys and tenants' limits (admin_keys.rs), usage reports and the audit log (admin_usage.rs),
//!   feature flags (admin_flags.rs).

use serde_json::{json, Value};

use opencode_core::access::Action;
use opencode_core::sandbox::SandboxConfig;
use opencode_runtime::control::ledger::{self, GroupBy};
use opencode_runtime::executor::with_timeout;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::metrics::{self, Record, Stats};
use opencode_runtime::sql::{Database, Statement};

use super::{admin_flags, admin_keys, admin_usage, prometheus, Ctx};
use crate::auth::{Principal, Settings};
use crate::error::ApiError;
use crate::{seed, web};

const DEFAULT_HOURS: u64 = 24;
const MAX_HOURS: u64 = 168;

pub(super) async fn handle<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    let method = parts.method.as_str();
    let query = parts.uri.query();
    let not_allowed = || ApiError::MethodNotAllowed { method: method.to_string(), path: path.clone() };
    match (method, path.as_str()) {
        ("GET" | "HEAD", "/health") => Ok(health(ctx)),
        ("GET" | "HEAD", "/health/ready") => Ok(ready(ctx).await),
        ("GET", "/metrics") => prometheus::scrape(ctx, &parts.headers, &ctx.request_id).await,
        (_, "/health/ready" | "/metrics") => Err(not_allowed()),
        // The seed's status: whether the platform can answer (a provider is configured).
        ("GET", super::gateway::SEED_STATUS) => {
            let ready = !ctx.config.chain.is_empty();
            Ok(web::json(http::StatusCode::OK, &json!({ "api": "operational", "engine_ready": ready })))
        }
        (_, "/health") => Err(not_allowed()),
        // Fails closed: no principal may do nothing.
        _ if ctx.principal.is_none() => Err(ApiError::MissingToken),
        ("GET", "/admin/metrics") => metrics_report(ctx, query).await,
        ("GET", seed::METRICS) => {
            let (record, _) = metrics_record(ctx, query).await?;
            Ok(web::json(http::StatusCode::OK, &seed::metrics_json(&record)))
        }
        (_, "/admin/metrics" | seed::METRICS) => Err(not_allowed()),
        ("GET", "/admin/usage") => admin_usage::usage(ctx, query).await,
        ("GET", "/admin/usage/requests") => admin_usage::requests(ctx, query).await,
        ("GET", "/admin/audit") => admin_usage::audit_log(ctx, query).await,
        (_, "/admin/usage" | "/admin/usage/requests" | "/admin/audit") => Err(not_allowed()),
        (_, keys) if keys == "/admin/keys" || keys.starts_with("/admin/keys/") => {
            admin_keys::keys(ctx, &parts, body).await
        }
        ("GET", "/admin/flags") => admin_flags::show(ctx, query).await,
        ("PUT", "/admin/flags") => admin_flags::put(ctx, &parts, body, None).await,
        (_, "/admin/flags") => Err(not_allowed()),
        (_, other) => match other.strip_prefix("/admin/tenants/").and_then(|rest| rest.split_once('/')) {
            Some((tenant, "limits")) => admin_keys::tenant_limits(ctx, &parts, body, tenant).await,
            Some((tenant, "flags")) if method == "PUT" => admin_flags::put(ctx, &parts, body, Some(tenant)).await,
            Some((_, "flags")) => Err(not_allowed()),
            _ => Err(ApiError::NotFound(other.chars().take(256).collect())),
        },
    }
}

/// A page of a list: `{"object":"list","data","has_more","next_cursor"}`.
pub(super) struct Page {
    pub data: Vec<Value>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

impl Page {
    /// A page of `limit` from up to `limit + 1` items read (one more says there are more), the
    /// cursor being the last item's.
    pub fn of<T>(mut items: Vec<T>, limit: u64, json: impl Fn(&T) -> Value, cursor: impl Fn(&T) -> String) -> Page {
        let has_more = items.len() as u64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = items.last().filter(|_| has_more).map(cursor);
        Page { data: items.iter().map(json).collect(), has_more, next_cursor }
    }

    pub fn to_json(&self) -> Value {
        json!({ "object": "list", "data": self.data, "has_more": self.has_more, "next_cursor": self.next_cursor })
    }
}

/// The most a list returns at once, and by default.
const MAX_PAGE: u64 = 1_000;
const DEFAULT_PAGE: u64 = 100;

pub(super) fn page_size(query: Option<&str>) -> Result<u64, ApiError> {
    match web::query_value(query, "limit") {
        None => Ok(DEFAULT_PAGE),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::InvalidRequest(format!("`limit` must be a whole number from 1 to {MAX_PAGE}"))),
    }
}

pub(super) fn cursor(query: Option<&str>) -> Option<String> {
    web::query_value(query, "cursor").filter(|c| !c.is_empty())
}

/// The tenant a report or list covers: `?tenant=` for an owner (every tenant without it), the
/// caller's own for anyone else (another's is refused).
pub(super) fn scope_tenant(principal: &Principal, query: Option<&str>) -> Result<Option<String>, ApiError> {
    let asked = web::query_value(query, "tenant").filter(|t| !t.is_empty());
    if principal.may(Action::AnyTenant) {
        return Ok(asked);
    }
    match asked {
        Some(tenant) if tenant != principal.tenant => {
            Err(ApiError::Forbidden("only an owner may read another tenant's data".into()))
        }
        _ => Ok(Some(principal.tenant.clone())),
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

/// Whether the platform can serve: each store it needs answers (the KV stores, the database,
/// the sandbox when one is configured). 200 when all do, else 503; each check's result and
/// time, never an address or a store's own words.
async fn ready<H: Host>(ctx: &Ctx<H>) -> http::Response<Body> {
    let host = &ctx.host;
    let timed = |started: u64, ok: bool, problem: &str| {
        let ms = host.now_ms().saturating_sub(started);
        if ok {
            json!({ "ok": true, "ms": ms })
        } else {
            json!({ "ok": false, "ms": ms, "error": problem })
        }
    };
    let mut checks = serde_json::Map::new();
    for store in ["cache", "data"] {
        let started = host.now_ms();
        let ok = host.kv_get(store, "health/ready").await.is_ok();
        checks.insert(format!("kv_{store}"), timed(started, ok, "the store did not answer"));
    }
    let started = host.now_ms();
    let select = Statement::new("SELECT 1", Vec::new());
    let ok = host.sql(Database::Main, &select).await.is_ok();
    checks.insert("database".into(), timed(started, ok, "the database did not answer"));
    if let Some(config) = SandboxConfig::from_vars(|name| host.var(name)) {
        let started = host.now_ms();
        let problem = match opencode_core::sandbox::runtimes_request(&config) {
            Err(_) => Some("the sandbox's URL is not valid".to_owned()),
            Ok(request) => match with_timeout(host, READY_TIMEOUT_MS, host.fetch(request)).await {
                None => Some(format!("no answer within {READY_TIMEOUT_MS} ms")),
                Some(Err(_)) => Some("the sandbox could not be reached".to_owned()),
                Some(Ok(response)) if response.status().is_success() => None,
                Some(Ok(response)) => Some(format!("the sandbox answered {}", response.status().as_u16())),
            },
        };
        checks.insert("sandbox".into(), timed(started, problem.is_none(), problem.as_deref().unwrap_or("")));
    }
    let ready = checks.values().all(|check| check["ok"] == true);
    let status = if ready { http::StatusCode::OK } else { http::StatusCode::SERVICE_UNAVAILABLE };
    web::json(status, &json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": checks }))
}

/// How long the readiness check waits for the sandbox.
const READY_TIMEOUT_MS: u64 = 3_000;

/// The hours `?hours=N` asks for (the default when absent).
fn hours(query: Option<&str>) -> Result<u64, ApiError> {
    match web::query_value(query, "hours") {
        None => Ok(DEFAULT_HOURS),
        Some(value) => {
            value.parse::<u64>().ok().filter(|h| (1..=MAX_HOURS).contains(h)).ok_or_else(|| {
                ApiError::InvalidRequest(format!("`hours` must be a whole number from 1 to {MAX_HOURS}"))
            })
        }
    }
}

/// What the metrics cover.
struct Window {
    hours: u64,
    tenant: Option<String>,
    /// The platform's KV metrics (owner, no tenant): how many instance-hours, rolled up, cut.
    parts: Option<(usize, usize, bool)>,
}

/// The metrics of the last `?hours`: the platform's (an owner without `?tenant=`) or a
/// tenant's, summed from the ledger.
async fn metrics_record<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<(Record, Window), ApiError> {
    let principal = ctx.require(Action::ReadMetrics, "read metrics")?;
    let hours = hours(query)?;
    match scope_tenant(principal, query)? {
        None => {
            let summary = metrics::summarize(&ctx.host, hours)
                .await
                .map_err(|err| ApiError::Internal(format!("could not read the metrics: {err}")))?;
            let parts = Some((summary.parts, summary.rolled_up, summary.truncated));
            Ok((summary.record, Window { hours, tenant: None, parts }))
        }
        Some(tenant) => {
            let to = ctx.host.now_ms().saturating_add(1);
            let from = metrics::hour_of(to).saturating_sub(hours.saturating_sub(1)).saturating_mul(3_600_000);
            let rows = ledger::report(&ctx.host, Some(&tenant), from, to, &[GroupBy::Tier, GroupBy::Mode]).await?;
            let mut record = Record::default();
            for row in rows {
                let (Some(Some(tier)), Some(Some(mode))) = (row.groups.first(), row.groups.get(1)) else { continue };
                let t = &row.totals;
                let stats = Stats {
                    requests: t.requests,
                    errors: t.errors,
                    latency_ms_sum: t.latency_ms_sum,
                    latency_buckets: Vec::new(),
                    cache_lookups: t.cache_lookups,
                    cache_hits: t.cache_hits,
                    input_tokens: t.input_tokens,
                    output_tokens: t.output_tokens,
                    cost_nano_usd: metrics::nano_usd(t.cost_usd),
                };
                record.tiers.entry(tier.clone()).or_default().merge(&stats);
                record.modes.entry(mode.clone()).or_default().merge(&stats);
            }
            Ok((record, Window { hours, tenant: Some(tenant), parts: None }))
        }
    }
}

async fn metrics_report<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<http::Response<Body>, ApiError> {
    let (record, window) = metrics_record(ctx, query).await?;
    let now_hour = metrics::hour_of(ctx.host.now_ms());
    let mut body = record.to_json();
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "window".into(),
            json!({
                "hours": window.hours,
                "from_ms": now_hour.saturating_sub(window.hours.saturating_sub(1)).saturating_mul(3_600_000),
                "to_ms": ctx.host.now_ms(),
            }),
        );
        map.insert("tenant".into(), json!(window.tenant));
        if let Some((parts, rolled_up, truncated)) = window.parts {
            map.insert("instance_hours".into(), json!(parts));
            map.insert("hours_rolled_up".into(), json!(rolled_up));
            map.insert("truncated".into(), json!(truncated));
        }
    }
    Ok(web::json(http::StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opencode_runtime::config::Config;
    use opencode_testkit::TestHost;

    use opencode_core::access::Role;

    fn ctx(principal: Option<Principal>) -> Ctx<TestHost> {
        let host = TestHost::new();
        let config = Config::from_host(&host).unwrap();
        Ctx {
            host,
            config,
            request_id: "req".into(),
            principal,
            key: None,
            started_ms: 0,
            meter: None,
            admitted_upstream: false,
            limit_headers: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_admin_api_fails_closed_without_a_principal() {
        let parts = http::Request::get("/admin/metrics").body(()).unwrap().into_parts().0;
        let refused = handle(&ctx(None), parts, Body::empty()).await.unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::UNAUTHORIZED);
        let member = Principal { subject: "u".into(), tenant: "t".into(), role: Role::Member, key_id: None };
        let parts = http::Request::get("/admin/metrics").body(()).unwrap().into_parts().0;
        let refused = handle(&ctx(Some(member)), parts, Body::empty()).await.unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::FORBIDDEN);
    }
}
