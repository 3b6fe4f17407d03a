//! The usage ledger: one row per request that reached a mode, written after its answer, and the
//! reports summed from it.

use serde::Serialize;

use super::{text, uint, ControlError};
use crate::host::Host;
use crate::sql::{Database, Row, Statement, Value};

/// One request's usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageRow {
    /// The ledger's own id (the cursor of `GET /admin/usage/requests`); 0 before it is written.
    pub id: u64,
    pub request_id: String,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    pub tenant: String,
    pub key_id: Option<String>,
    pub subject: String,
    pub mode: String,
    pub tier: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    /// `ok` or `error`.
    pub status: String,
    /// `None` when the cache was not consulted.
    pub cache_hit: Option<bool>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: u64,
}

const COLUMNS: &str = "request_id, ts, tenant, key_id, subject, mode, tier, model, provider, status, cache_hit, \
input_tokens, output_tokens, reasoning_tokens, cost_usd, latency_ms";

/// Writes one request's row.
pub async fn record<H: Host>(host: &H, row: &UsageRow) -> Result<(), ControlError> {
    let statement = Statement::new(
        format!("INSERT INTO usage ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
        vec![
            row.request_id.clone().into(),
            row.ts.into(),
            row.tenant.clone().into(),
            row.key_id.clone().into(),
            row.subject.clone().into(),
            row.mode.clone().into(),
            row.tier.clone().into(),
            row.model.clone().into(),
            row.provider.clone().into(),
            row.status.clone().into(),
            row.cache_hit.into(),
            row.input_tokens.into(),
            row.output_tokens.into(),
            row.reasoning_tokens.into(),
            Value::Real(row.cost_usd),
            row.latency_ms.into(),
        ],
    );
    host.sql(Database::Main, &statement).await?;
    Ok(())
}

/// The newest rows first, `limit` of them below the cursor (a row id), within `tenant` unless
/// `None`.
pub async fn requests<H: Host>(
    host: &H,
    tenant: Option<&str>,
    limit: u64,
    before: Option<u64>,
) -> Result<Vec<UsageRow>, ControlError> {
    let statement = Statement::new(
        format!(
            "SELECT id, {COLUMNS} FROM usage WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR id < ?2) \
             ORDER BY id DESC LIMIT ?3"
        ),
        vec![tenant.into(), before.into(), limit.into()],
    );
    let rows = host.sql(Database::Main, &statement).await?;
    Ok(rows.iter().map(usage_row).collect())
}

fn usage_row(row: &Row) -> UsageRow {
    UsageRow {
        id: uint(row, 0),
        request_id: text(row, 1).unwrap_or_default(),
        ts: uint(row, 2),
        tenant: text(row, 3).unwrap_or_default(),
        key_id: text(row, 4),
        subject: text(row, 5).unwrap_or_default(),
        mode: text(row, 6).unwrap_or_default(),
        tier: text(row, 7).unwrap_or_default(),
        model: text(row, 8),
        provider: text(row, 9),
        status: text(row, 10).unwrap_or_default(),
        cache_hit: super::column(row, 11).as_i64().map(|hit| hit != 0),
        input_tokens: uint(row, 12),
        output_tokens: uint(row, 13),
        reasoning_tokens: uint(row, 14),
        cost_usd: super::column(row, 15).as_f64().unwrap_or(0.0),
        latency_ms: uint(row, 16),
    }
}

/// What a report can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Hour,
    Tenant,
    Key,
    Model,
    Provider,
    Mode,
    Tier,
}

impl GroupBy {
    pub const ALL: [GroupBy; 8] = [
        GroupBy::Day,
        GroupBy::Hour,
        GroupBy::Tenant,
        GroupBy::Key,
        GroupBy::Model,
        GroupBy::Provider,
        GroupBy::Mode,
        GroupBy::Tier,
    ];

    /// The name `group_by=` takes.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
            GroupBy::Tenant => "tenant",
            GroupBy::Key => "key",
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
            GroupBy::Mode => "mode",
            GroupBy::Tier => "tier",
        }
    }

    /// The report's column.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Key => "key_id",
            other => other.name(),
        }
    }

    fn expression(self) -> &'static str {
        match self {
            GroupBy::Day => "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')",
            GroupBy::Hour => "strftime('%Y-%m-%dT%H:00:00Z', ts / 1000, 'unixepoch')",
            GroupBy::Tenant => "tenant",
            GroupBy::Key => "key_id",
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
            GroupBy::Mode => "mode",
            GroupBy::Tier => "tier",
        }
    }

    pub fn parse(name: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.name() == name || g.column() == name)
    }
}

/// One group's sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    /// Requests that consulted the cache, and those it answered.
    pub cache_lookups: u64,
    pub cache_hits: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms_sum: u64,
}

/// A report row: the group's values (in `group_by`'s order; `None` for a missing key or model)
/// and its sums.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub groups: Vec<Option<String>>,
    pub totals: Totals,
}

/// The most rows a report returns.
pub const MAX_REPORT_ROWS: u64 = 10_000;

/// Sums the ledger from `from_ms` (inclusive) to `to_ms` (exclusive), within `tenant` unless
/// `None`, one row per distinct value of `group_by` (a single row without).
pub async fn report<H: Host>(
    host: &H,
    tenant: Option<&str>,
    from_ms: u64,
    to_ms: u64,
    group_by: &[GroupBy],
) -> Result<Vec<ReportRow>, ControlError> {
    let groups: Vec<&str> = group_by.iter().map(|g| g.expression()).collect();
    let mut sql = String::from("SELECT ");
    for expression in &groups {
        sql.push_str(expression);
        sql.push_str(", ");
    }
    sql.push_str(
        "COUNT(*), SUM(status != 'ok'), SUM(cache_hit), SUM(input_tokens), SUM(output_tokens), \
         SUM(reasoning_tokens), SUM(cost_usd), COUNT(cache_hit), SUM(latency_ms) FROM usage WHERE ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR tenant = ?3)",
    );
    if !groups.is_empty() {
        let list = groups.join(", ");
        sql.push_str(&format!(" GROUP BY {list} ORDER BY {list}"));
    }
    sql.push_str(&format!(" LIMIT {MAX_REPORT_ROWS}"));
    let rows =
        host.sql(Database::Main, &Statement::new(sql, vec![from_ms.into(), to_ms.into(), tenant.into()])).await?;
    let n = groups.len();
    Ok(rows
        .iter()
        // A total over no rows is one row of zeros and nulls: no usage is no row.
        .filter(|row| uint(row, n) > 0)
        .map(|row| ReportRow {
            groups: (0..n).map(|i| text(row, i)).collect(),
            totals: Totals {
                requests: uint(row, n),
                errors: uint(row, n.saturating_add(1)),
                cache_hits: uint(row, n.saturating_add(2)),
                input_tokens: uint(row, n.saturating_add(3)),
                output_tokens: uint(row, n.saturating_add(4)),
                reasoning_tokens: uint(row, n.saturating_add(5)),
                cost_usd: super::column(row, n.saturating_add(6)).as_f64().unwrap_or(0.0),
                cache_lookups: uint(row, n.saturating_add(7)),
                latency_ms_sum: uint(row, n.saturating_add(8)),
            },
        })
        .collect())
}
