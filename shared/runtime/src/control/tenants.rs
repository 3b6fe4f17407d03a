//! A tenant's own limits and budget, set by an owner, remembered per instance for
//! [`CACHE_MS`].

use serde::Serialize;

use opencode_core::limits::{Budget, Limits};

use super::{budget_at, limit_values, limits_at, text, uint, ControlError, Recent};
use crate::host::Host;
use crate::sql::{Database, Statement};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TenantLimits {
    pub tenant: String,
    pub limits: Limits,
    pub budget: Option<Budget>,
    /// Unix seconds; `None` when never set.
    pub updated_at: Option<u64>,
    pub updated_by: Option<String>,
}

impl TenantLimits {
    pub fn scope(&self) -> String {
        format!("tenant:{}", self.tenant)
    }
}

thread_local! {
    static SEEN: Recent<TenantLimits> = Recent::default();
}

/// The tenant's limits (none set: no limits), remembered for [`CACHE_MS`].
pub async fn get<H: Host>(host: &H, tenant: &str) -> Result<TenantLimits, ControlError> {
    let now = host.now_ms();
    if let Some(limits) = SEEN.with(|seen| seen.get(tenant, now)) {
        return Ok(limits);
    }
    let statement = Statement::new(
        "SELECT rpm, tpm, concurrency, budget_usd, budget_period, updated_at, updated_by FROM tenant_limits \
         WHERE tenant = ?1",
        vec![tenant.into()],
    );
    let rows = host.sql(Database::Main, &statement).await?;
    let limits = match rows.first() {
        None => TenantLimits { tenant: tenant.to_owned(), ..TenantLimits::default() },
        Some(row) => TenantLimits {
            tenant: tenant.to_owned(),
            limits: limits_at(row, 0),
            budget: budget_at(row, 3),
            updated_at: Some(uint(row, 5)),
            updated_by: text(row, 6),
        },
    };
    SEEN.with(|seen| seen.put(tenant.to_owned(), now, limits.clone()));
    Ok(limits)
}

/// Sets the tenant's limits and budget (both replaced).
pub async fn put<H: Host>(
    host: &H,
    tenant: &str,
    limits: &Limits,
    budget: Option<&Budget>,
    actor: &str,
) -> Result<TenantLimits, ControlError> {
    let updated_at = host.now_ms() / 1_000;
    let mut params = vec![tenant.into(), updated_at.into(), actor.into()];
    params.extend(limit_values(limits, budget));
    let statement = Statement::new(
        "INSERT INTO tenant_limits (tenant, updated_at, updated_by, rpm, tpm, concurrency, budget_usd, budget_period) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(tenant) DO UPDATE SET updated_at = ?2, updated_by = ?3, \
         rpm = ?4, tpm = ?5, concurrency = ?6, budget_usd = ?7, budget_period = ?8",
        params,
    );
    host.sql(Database::Main, &statement).await?;
    SEEN.with(Recent::clear);
    Ok(TenantLimits {
        tenant: tenant.to_owned(),
        limits: *limits,
        budget: budget.copied(),
        updated_at: Some(updated_at),
        updated_by: Some(actor.to_owned()),
    })
}
