//! The feature flags over the admin API: `GET /admin/flags` (the effective flags, each with
//! its source: file, variable, platform or tenant), `PUT /admin/flags` (the platform's
//! overrides, owner) and `PUT /admin/tenants/{tenant}/flags` (a tenant's, owner or that
//! tenant's admin). A body is a partial document in the file's shape; a `null` takes an
//! override away. Each change is an audit entry (`flags.update`).

use serde_json::{json, Value};

use opencode_core::access::Action;
use opencode_core::flags::Source;
use opencode_core::webhooks::EventType;
use opencode_runtime::flags::{self, Scope, UpdateError};
use opencode_runtime::host::{Body, Host};
use opencode_runtime::webhooks;

use super::admin::scope_tenant;
use super::admin_keys::{actor, audit_write, shown, valid_tenant};
use super::Ctx;
use crate::error::ApiError;
use crate::web;

/// `GET /admin/flags[?tenant=]`: an owner sees the platform's flags (or a tenant's), anyone
/// else who may read limits its own tenant's.
pub(super) async fn show<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<http::Response<Body>, ApiError> {
    let principal = ctx.require(Action::ReadLimits, "read feature flags")?;
    let tenant = scope_tenant(principal, query)?;
    if let Some(tenant) = tenant.as_deref().filter(|t| !valid_tenant(t)) {
        return Err(ApiError::NotFound(format!("tenant `{}`", shown(tenant))));
    }
    Ok(web::json(http::StatusCode::OK, &effective(ctx, tenant.as_deref()).await?))
}

/// `PUT /admin/flags` (`tenant` `None`) and `PUT /admin/tenants/{tenant}/flags`.
pub(super) async fn put<H: Host>(
    ctx: &Ctx<H>,
    parts: &http::request::Parts,
    body: Body,
    tenant: Option<&str>,
) -> Result<http::Response<Body>, ApiError> {
    let principal = match tenant {
        None => ctx.require(Action::AnyTenant, "change the platform's feature flags")?,
        Some(tenant) => {
            let principal = ctx.require(Action::SetFlags, "change a tenant's feature flags")?;
            if !valid_tenant(tenant) || (tenant != principal.tenant && !principal.may(Action::AnyTenant)) {
                return Err(ApiError::NotFound(format!("tenant `{}`", shown(tenant))));
            }
            principal
        }
    };
    let bytes = web::read_body(parts, body, ctx.config.max_body_bytes).await?;
    let change: Value = serde_json::from_slice(&bytes).map_err(|err| ApiError::MalformedJson(err.to_string()))?;
    let scope = tenant.map_or(Scope::Platform, Scope::Tenant);
    let stored = flags::update(&ctx.host, scope, &change).await.map_err(|err| match err {
        UpdateError::Invalid(message) => ApiError::Validation(message),
        UpdateError::Store(message) => ApiError::StoreUnavailable(message),
    })?;
    let target = tenant.unwrap_or("platform");
    let detail = json!({ "change": change, "overrides": stored });
    audit_write(ctx, principal, "flags.update", tenant.unwrap_or(&principal.tenant), target, detail).await;
    let event = json!({ "scope": target, "tenant": tenant, "change": change, "actor": actor(principal) });
    webhooks::send(&ctx.host, ctx.config.webhooks.as_ref(), EventType::FlagsUpdated, event);
    Ok(web::json(http::StatusCode::OK, &effective(ctx, tenant).await?))
}

/// The flags `tenant` (or, `None`, the platform) runs with, their sources and the overrides.
async fn effective<H: Host>(ctx: &Ctx<H>, tenant: Option<&str>) -> Result<Value, ApiError> {
    let mut effective = flags::from_variables(&ctx.host)?;
    let (platform, own) = flags::overrides(&ctx.host, tenant).await;
    flags::lay(&mut effective, &platform, Source::Platform);
    flags::lay(&mut effective, &own, Source::Tenant);
    let own = if tenant.is_some() { Value::Object(own) } else { Value::Null };
    Ok(json!({
        "object": "flags",
        "tenant": tenant,
        "flags": effective.document(),
        "sources": effective.sources(),
        "overrides": { "platform": platform, "tenant": own },
    }))
}
