//! A tenant's own limits and budget, set by an owner, remembered per instance for
//! [`CACHE_MS`].

use std::cell::RefCell;
use std::collections::HashMap;

use serde::Serialize;

use opencode_core::limits::{Budget, Limits};

use super::{json, text, to_json, uint, ControlError, CACHE_MS};
use crate::host::Host;
use crate::sql::{Database, Statement, Value};

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
    static SEEN: RefCell<HashMap<String, (u64, TenantLimits)>> = RefCell::new(HashMap::new());
}

const MAX_SEEN: usize = 256;

/// The tenant's limits (none set: no limits), remembered for [`CACHE_MS`].
pub async fn get<H: Host>(host: &H, tenant: &str) -> Result<TenantLimits, ControlError> {
    let now = host.now_ms();
    let hit = SEEN.with(|seen| {
        seen.borrow().get(tenant).filter(|(at, _)| now.saturating_sub(*at) < CACHE_MS).map(|(_, l)| l.clone())
    });
    if let Some(limits) = hit {
        return Ok(limits);
    }
    let statement = Statement::new(
        "SELECT limits, budget, updated_at, updated_by FROM tenant_limits WHERE tenant = ?1",
        vec![tenant.into()],
    );
    let rows = host.sql(Database::Main, &statement).await?;
    let limits = match rows.first() {
        None => TenantLimits { tenant: tenant.to_owned(), ..TenantLimits::default() },
        Some(row) => TenantLimits {
            tenant: tenant.to_owned(),
            limits: json(row, 0).unwrap_or_default(),
            budget: json(row, 1),
            updated_at: Some(uint(row, 2)),
            updated_by: text(row, 3),
        },
    };
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.len() >= MAX_SEEN {
            seen.clear();
        }
        seen.insert(tenant.to_owned(), (now, limits.clone()));
    });
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
    let statement = Statement::new(
        "INSERT INTO tenant_limits (tenant, limits, budget, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(tenant) DO UPDATE SET limits = ?2, budget = ?3, updated_at = ?4, updated_by = ?5",
        vec![tenant.into(), to_json(limits), budget.map_or(Value::Null, to_json), updated_at.into(), actor.into()],
    );
    host.sql(Database::Main, &statement).await?;
    SEEN.with(|seen| seen.borrow_mut().remove(tenant));
    Ok(TenantLimits {
        tenant: tenant.to_owned(),
        limits: *limits,
        budget: budget.copied(),
        updated_at: Some(updated_at),
        updated_by: Some(actor.to_owned()),
    })
}
