//! The audit log: who did what to whom, when, in which request.

use std::cell::Cell;

use serde::Serialize;

use super::{text, uint, ControlError};
use crate::host::Host;
use crate::sql::{Database, Statement};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    /// `key.create`, `key.update`, `key.revoke`, `limits.update`, `budget.exceeded`,
    /// `auth.refused`.
    pub action: String,
    /// The subject or key id that acted.
    pub actor: String,
    pub tenant: String,
    /// What was acted on (a key id, a tenant), when anything.
    pub target: Option<String>,
    pub request_id: String,
    /// A short JSON object of what changed (never a key, never a token).
    pub detail: Option<String>,
}

/// Writes one entry.
pub async fn record<H: Host>(host: &H, entry: &AuditEntry) -> Result<(), ControlError> {
    let statement = Statement::new(
        "INSERT INTO audit (ts, action, actor, tenant, target, request_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        vec![
            entry.ts.into(),
            entry.action.clone().into(),
            entry.actor.clone().into(),
            entry.tenant.clone().into(),
            entry.target.clone().into(),
            entry.request_id.clone().into(),
            entry.detail.clone().into(),
        ],
    );
    host.sql(Database::Main, &statement).await?;
    Ok(())
}

/// The newest entries first, `limit` below the cursor (an entry id), within `tenant` unless
/// `None`.
pub async fn list<H: Host>(
    host: &H,
    tenant: Option<&str>,
    limit: u64,
    before: Option<u64>,
) -> Result<Vec<AuditEntry>, ControlError> {
    let statement = Statement::new(
        "SELECT id, ts, action, actor, tenant, target, request_id, detail FROM audit \
         WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        vec![tenant.into(), before.into(), limit.into()],
    );
    let rows = host.sql(Database::Main, &statement).await?;
    Ok(rows
        .iter()
        .map(|row| AuditEntry {
            id: uint(row, 0),
            ts: uint(row, 1),
            action: text(row, 2).unwrap_or_default(),
            actor: text(row, 3).unwrap_or_default(),
            tenant: text(row, 4).unwrap_or_default(),
            target: text(row, 5),
            request_id: text(row, 6).unwrap_or_default(),
            detail: text(row, 7),
        })
        .collect())
}

/// At most one `auth.refused` entry per instance in this long, so a flood of bad credentials
/// cannot flood the log; the entry says how many were refused since the last one.
pub const REFUSED_SAMPLE_MS: u64 = 10_000;

thread_local! {
    static REFUSED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Whether this refusal is written; the count of refusals it stands for.
pub fn sample_refusal(now_ms: u64) -> Option<u64> {
    REFUSED.with(|refused| {
        let (last, skipped) = refused.get();
        if last == 0 || now_ms.saturating_sub(last) >= REFUSED_SAMPLE_MS {
            refused.set((now_ms, 0));
            Some(skipped.saturating_add(1))
        } else {
            refused.set((last, skipped.saturating_add(1)));
            None
        }
    })
}
