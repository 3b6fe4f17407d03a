//! The admin API's keys and tenants' limits:
//! - `POST /admin/keys`, `GET /admin/keys`, `GET|PATCH|DELETE /admin/keys/{id}`;
//! - `GET|PUT /admin/tenants/{tenant}/limits`.
//!
//! Every body is checked field by field (422 naming the field); a key of another tenant is a
//! 404, never a 403 that would confirm it exists. Changes are audited.

use serde_json::{json, Map, Value};

use opencode_core::access::{Action, Role};
use opencode_core::limits::{Budget, Limits, Period};
use opencode_core::routing::Mode;
use opencode_core::webhooks::EventType;
use opencode_runtime::control::audit::{self, AuditEntry};
use opencode_runtime::control::keys::{self, KeyRecord, KeySettings};
use opencode_runtime::control::tenants;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::webhooks;

use super::admin::{cursor, page_size, scope_tenant, Page};
use super::Ctx;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::web;

/// `/admin/keys...`.
pub(super) async fn keys<H: Host>(
    ctx: &Ctx<H>,
    parts: &http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    let principal = ctx.require(Action::ManageKeys, "manage API keys")?;
    let path = parts.uri.path().trim_end_matches('/');
    let id = path.strip_prefix("/admin/keys").unwrap_or("").trim_start_matches('/');
    let not_allowed = || ApiError::MethodNotAllowed { method: parts.method.to_string(), path: path.to_owned() };
    match (&parts.method, id.is_empty()) {
        (&http::Method::POST, true) => create(ctx, principal, parts, body).await,
        (&http::Method::GET, true) => list(ctx, principal, parts).await,
        (_, true) => Err(not_allowed()),
        (&http::Method::GET, false) => Ok(web::json(http::StatusCode::OK, &key_json(&find(ctx, principal, id).await?))),
        (&http::Method::PATCH, false) => update(ctx, principal, parts, body, id).await,
        (&http::Method::DELETE, false) => revoke(ctx, principal, id).await,
        _ => Err(not_allowed()),
    }
}

/// The key's public view: everything but the key.
pub fn key_json(key: &KeyRecord) -> Value {
    let mut value = serde_json::to_value(key).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("object".into(), json!("api_key"));
    }
    value
}

async fn create<H: Host>(
    ctx: &Ctx<H>,
    principal: &Principal,
    parts: &http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    let mut body = read_object(ctx, parts, body).await?;
    known_fields(&body, &["name", "role", "tenant", "modes", "models", "limits", "budget", "expires_at"])?;
    let tenant = match body.remove("tenant") {
        None | Some(Value::Null) => principal.tenant.clone(),
        Some(Value::String(tenant)) if valid_tenant(&tenant) => {
            if tenant != principal.tenant && !principal.may(Action::AnyTenant) {
                return Err(ApiError::Forbidden("only an owner may create keys for another tenant".into()));
            }
            tenant
        }
        Some(_) => {
            return Err(ApiError::param("tenant", "`tenant` must be 1 to 128 letters, digits, `-`, `_` or `.`".into()))
        }
    };
    if body.get("name").is_none() {
        return Err(name_error());
    }
    // A new key's role may be left out or null: a member's.
    if body.get("role").is_some_and(Value::is_null) {
        body.remove("role");
    }
    let mut settings = KeySettings::default();
    apply(&mut settings, body, principal, ctx.host.now_ms())?;
    let (key, record) = keys::create(&ctx.host, &tenant, &settings, &actor(principal)).await?;
    audit_write(
        ctx,
        principal,
        "key.create",
        &record.tenant,
        &record.id,
        json!({ "name": record.name, "role": record.role }),
    )
    .await;
    let mut event = json!({ "key_id": record.id, "tenant": record.tenant, "name": record.name, "role": record.role, "actor": actor(principal) });
    if let (Some(map), Some(hooks)) = (event.as_object_mut(), ctx.config.webhooks.as_ref()) {
        // The new key itself only where the receiver was trusted with content.
        if hooks.content {
            map.insert("key".into(), json!(key));
        }
    }
    webhooks::send(&ctx.host, ctx.config.webhooks.as_ref(), EventType::KeyCreated, event);
    let mut body = key_json(&record);
    if let Some(map) = body.as_object_mut() {
        map.insert("key".into(), json!(key));
    }
    let mut response = web::json(http::StatusCode::CREATED, &body);
    web::set_header(&mut response, "cache-control", "no-store");
    Ok(response)
}

async fn list<H: Host>(
    ctx: &Ctx<H>,
    principal: &Principal,
    parts: &http::request::Parts,
) -> Result<http::Response<Body>, ApiError> {
    let query = parts.uri.query();
    let tenant = scope_tenant(principal, query)?;
    let limit = page_size(query)?;
    let after = cursor(query);
    let found = keys::list(&ctx.host, tenant.as_deref(), limit.saturating_add(1), after.as_deref()).await?;
    let page = Page::of(found, limit, key_json, |key| key.id.clone());
    Ok(web::json(http::StatusCode::OK, &page.to_json()))
}

/// A key the caller may see: its tenant's (any for an owner); otherwise not found.
async fn find<H: Host>(ctx: &Ctx<H>, principal: &Principal, id: &str) -> Result<KeyRecord, ApiError> {
    let tenant = (!principal.may(Action::AnyTenant)).then_some(principal.tenant.as_str());
    keys::get(&ctx.host, tenant, id).await?.ok_or_else(|| ApiError::NotFound(format!("API key `{}`", shown(id))))
}

async fn update<H: Host>(
    ctx: &Ctx<H>,
    principal: &Principal,
    parts: &http::request::Parts,
    body: Body,
    id: &str,
) -> Result<http::Response<Body>, ApiError> {
    let key = find(ctx, principal, id).await?;
    outranked(principal, key.role)?;
    let body = read_object(ctx, parts, body).await?;
    known_fields(&body, &["name", "role", "modes", "models", "limits", "budget", "expires_at"])?;
    let changed: Vec<String> = body.keys().cloned().collect();
    let mut settings = key.settings();
    apply(&mut settings, body, principal, ctx.host.now_ms())?;
    let key = keys::update(&ctx.host, &key.tenant, &key.id, &settings)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("API key `{}`", shown(id))))?;
    audit_write(ctx, principal, "key.update", &key.tenant, &key.id, json!({ "changed": changed })).await;
    Ok(web::json(http::StatusCode::OK, &key_json(&key)))
}

async fn revoke<H: Host>(ctx: &Ctx<H>, principal: &Principal, id: &str) -> Result<http::Response<Body>, ApiError> {
    let key = find(ctx, principal, id).await?;
    outranked(principal, key.role)?;
    if !keys::revoke(&ctx.host, Some(&key.tenant), &key.id).await? {
        return Err(ApiError::NotFound(format!("API key `{}`", shown(id))));
    }
    audit_write(ctx, principal, "key.revoke", &key.tenant, &key.id, json!({ "name": key.name })).await;
    let event = json!({ "key_id": key.id, "tenant": key.tenant, "name": key.name, "actor": actor(principal) });
    webhooks::send(&ctx.host, ctx.config.webhooks.as_ref(), EventType::KeyRevoked, event);
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    Ok(response)
}

/// `/admin/tenants/{tenant}/limits`: an owner sets, the tenant's admin reads.
pub(super) async fn tenant_limits<H: Host>(
    ctx: &Ctx<H>,
    parts: &http::request::Parts,
    body: Body,
    tenant: &str,
) -> Result<http::Response<Body>, ApiError> {
    if !valid_tenant(tenant) {
        return Err(ApiError::NotFound(format!("tenant `{}`", shown(tenant))));
    }
    match parts.method {
        http::Method::GET => {
            let principal = ctx.require(Action::ReadLimits, "read limits")?;
            if tenant != principal.tenant && !principal.may(Action::AnyTenant) {
                return Err(ApiError::NotFound(format!("tenant `{}`", shown(tenant))));
            }
            Ok(web::json(http::StatusCode::OK, &limits_json(&tenants::get(&ctx.host, tenant).await?)))
        }
        http::Method::PUT => {
            let principal = ctx.require(Action::SetLimits, "set a tenant's limits")?;
            let mut body = read_object(ctx, parts, body).await?;
            known_fields(&body, &["limits", "budget"])?;
            let limits = match body.remove("limits") {
                None | Some(Value::Null) => Limits::default(),
                Some(value) => limits(&value)?,
            };
            let budget = match body.remove("budget") {
                None | Some(Value::Null) => None,
                Some(value) => Some(budget(&value)?),
            };
            let set = tenants::put(&ctx.host, tenant, &limits, budget.as_ref(), &actor(principal)).await?;
            audit_write(ctx, principal, "limits.update", tenant, tenant, json!({ "limits": limits, "budget": budget }))
                .await;
            Ok(web::json(http::StatusCode::OK, &limits_json(&set)))
        }
        _ => Err(ApiError::MethodNotAllowed { method: parts.method.to_string(), path: parts.uri.path().to_owned() }),
    }
}

fn limits_json(limits: &tenants::TenantLimits) -> Value {
    json!({
        "object": "tenant.limits",
        "tenant": limits.tenant,
        "limits": limits.limits,
        "budget": limits.budget,
        "updated_at": limits.updated_at,
        "updated_by": limits.updated_by,
    })
}

async fn read_object<H: Host>(
    ctx: &Ctx<H>,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    let bytes = web::read_body(parts, body, ctx.config.max_body_bytes).await?;
    web::parse_object(parts, &bytes)
}

fn known_fields(body: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => {
            let unknown = shown(unknown);
            Err(ApiError::param(&unknown, format!("unknown field `{unknown}`")))
        }
    }
}

/// The settings a key body gives, into `settings` (a field left out keeps its value).
fn apply(
    settings: &mut KeySettings,
    mut body: Map<String, Value>,
    principal: &Principal,
    now_ms: u64,
) -> Result<(), ApiError> {
    match body.remove("name") {
        None => {}
        Some(Value::String(name)) if valid_name(&name) => settings.name = name,
        Some(_) => return Err(name_error()),
    }
    if let Some(value) = body.remove("role") {
        settings.role = role(&value, principal)?;
    }
    if let Some(value) = body.remove("modes") {
        settings.modes = names(
            &value,
            "modes",
            |m| Mode::parse(m).is_some(),
            "a mode (chat, knowledge, search, code, thinking, research)",
        )?;
    }
    if let Some(value) = body.remove("models") {
        settings.models = names(
            &value,
            "models",
            |m| !m.trim().is_empty() && m.len() <= 200 && !m.contains(char::is_control),
            "a model name",
        )?;
    }
    if let Some(value) = body.remove("limits") {
        settings.limits = if value.is_null() { Limits::default() } else { limits(&value)? };
    }
    if let Some(value) = body.remove("budget") {
        settings.budget = if value.is_null() { None } else { Some(budget(&value)?) };
    }
    if let Some(value) = body.remove("expires_at") {
        settings.expires_at = match value {
            Value::Null => None,
            other => match other.as_u64() {
                Some(at) if at.saturating_mul(1_000) > now_ms && at < 1 << 40 => Some(at),
                _ => {
                    return Err(ApiError::param(
                        "expires_at",
                        "`expires_at` must be a time in the future, in Unix seconds".into(),
                    ))
                }
            },
        };
    }
    Ok(())
}

/// A list of names (`null` for no restriction), each checked.
fn names(
    value: &Value,
    field: &str,
    valid: impl Fn(&str) -> bool,
    what: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    if value.is_null() {
        return Ok(None);
    }
    let items = value.as_array().filter(|items| !items.is_empty() && items.len() <= 100).ok_or_else(|| {
        ApiError::param(field, format!("`{field}` must be a list of 1 to 100 names, or null for all"))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_str() {
            Some(name) if valid(name) => Ok(name.to_owned()),
            _ => Err(ApiError::param(&format!("{field}[{i}]"), format!("`{field}[{i}]` must be {what}"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn limits(value: &Value) -> Result<Limits, ApiError> {
    let map = value.as_object().ok_or_else(|| {
        ApiError::param("limits", "`limits` must be an object with `rpm`, `tpm` and `concurrency`".into())
    })?;
    known_fields(map, &["rpm", "tpm", "concurrency"])
        .map_err(|_| ApiError::param("limits", "`limits` takes only `rpm`, `tpm` and `concurrency`".into()))?;
    let field = |name: &str| match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().filter(|n| *n < 1 << 53).map(Some).ok_or_else(|| {
            ApiError::param(&format!("limits.{name}"), format!("`limits.{name}` must be a whole number, 0 or more"))
        }),
    };
    Ok(Limits { rpm: field("rpm")?, tpm: field("tpm")?, concurrency: field("concurrency")? })
}

fn budget(value: &Value) -> Result<Budget, ApiError> {
    let map = value
        .as_object()
        .ok_or_else(|| ApiError::param("budget", "`budget` must be an object with `usd` and `period`".into()))?;
    known_fields(map, &["usd", "period"])
        .map_err(|_| ApiError::param("budget", "`budget` takes only `usd` and `period`".into()))?;
    let usd =
        map.get("usd").and_then(Value::as_f64).filter(|usd| usd.is_finite() && *usd >= 0.0 && *usd < 1e12).ok_or_else(
            || ApiError::param("budget.usd", "`budget.usd` must be a number of dollars, 0 or more".into()),
        )?;
    let period = map
        .get("period")
        .and_then(Value::as_str)
        .and_then(Period::parse)
        .ok_or_else(|| ApiError::param("budget.period", "`budget.period` must be `day` or `month`".into()))?;
    Ok(Budget { usd, period })
}

/// A role the caller may give: one of the four, and no higher than its own.
fn role(value: &Value, principal: &Principal) -> Result<Role, ApiError> {
    let role = value
        .as_str()
        .and_then(Role::parse)
        .ok_or_else(|| ApiError::param("role", "`role` must be one of owner, admin, member, viewer".into()))?;
    if role.rank() > principal.role.rank() {
        return Err(ApiError::Forbidden(format!(
            "role `{}` may not give keys the role `{}`",
            principal.role.as_str(),
            role.as_str()
        )));
    }
    Ok(role)
}

/// Refuses changing a key of a higher role than the caller's.
fn outranked(principal: &Principal, role: Role) -> Result<(), ApiError> {
    if role.rank() > principal.role.rank() {
        return Err(ApiError::Forbidden(format!(
            "role `{}` may not change an `{}` key",
            principal.role.as_str(),
            role.as_str()
        )));
    }
    Ok(())
}

fn name_error() -> ApiError {
    ApiError::param("name", "`name` must be a string of 1 to 100 characters".into())
}

fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 100
}

pub(super) fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 128
        && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// At most 64 characters of something the client sent, for a message.
pub(super) fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Who acted: the key, or the token's subject.
pub(super) fn actor(principal: &Principal) -> String {
    principal.key_id.clone().unwrap_or_else(|| principal.subject.clone())
}

/// Writes an audit entry; its failure is logged, never the request's.
pub(super) async fn audit_write<H: Host>(
    ctx: &Ctx<H>,
    principal: &Principal,
    action: &str,
    tenant: &str,
    target: &str,
    detail: Value,
) {
    let entry = AuditEntry {
        id: 0,
        ts: ctx.host.now_ms(),
        action: action.to_owned(),
        actor: actor(principal),
        tenant: tenant.to_owned(),
        target: Some(target.to_owned()),
        request_id: ctx.request_id.clone(),
        detail: Some(detail.to_string()),
    };
    if let Err(err) = audit::record(&ctx.host, &entry).await {
        let error = err.to_string();
        opencode_runtime::log::warn(
            &ctx.host,
            "could not write the audit log",
            &[("error", opencode_runtime::log::Field::Text(&error))],
        );
    }
}
