//! The admin API's reports: `GET /admin/usage` (sums by any of day, hour, tenant, key, model,
//! provider, mode; JSON or CSV), `GET /admin/usage/requests` (the ledger's rows) and
//! `GET /admin/audit`.

use serde_json::{json, Value};

use opencode_core::access::Action;
use opencode_core::calendar;
use opencode_runtime::control::audit;
use opencode_runtime::control::ledger::{self, GroupBy, ReportRow};
use opencode_runtime::host::{Body, Host};

use super::admin::{cursor, page_size, scope_tenant, Page};
use super::Ctx;
use crate::error::ApiError;
use crate::web;

/// The columns every report row has after its groups.
const SUMS: [&str; 7] =
    ["requests", "errors", "cache_hits", "input_tokens", "output_tokens", "reasoning_tokens", "cost_usd"];

/// Without `from`, a report covers this many days up to `to`.
const DEFAULT_DAYS: u64 = 30;

/// `GET /admin/usage?from&to&group_by&format`.
pub(super) async fn usage<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<http::Response<Body>, ApiError> {
    let principal = ctx.require(Action::ReadUsage, "read usage")?;
    let tenant = scope_tenant(principal, query)?;
    let now = ctx.host.now_ms();
    let to = match web::query_value(query, "to") {
        None => now.saturating_add(1),
        Some(text) => time(&text, "to")?,
    };
    let from = match web::query_value(query, "from") {
        None => to.saturating_sub(DEFAULT_DAYS.saturating_mul(86_400_000)),
        Some(text) => time(&text, "from")?,
    };
    if from >= to {
        return Err(ApiError::InvalidRequest("`from` must be before `to`".into()));
    }
    let group_by = match web::query_value(query, "group_by") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|name| {
                GroupBy::parse(name.trim()).ok_or_else(|| {
                    ApiError::InvalidRequest(format!(
                        "`group_by` takes day, hour, tenant, key, model, provider, mode or tier; not `{}`",
                        name.chars().take(32).collect::<String>()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let csv = match web::query_value(query, "format").as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::InvalidRequest("`format` must be `json` or `csv`".into())),
    };
    let rows = ledger::report(&ctx.host, tenant.as_deref(), from, to, &group_by).await?;
    if csv {
        let mut response = http::Response::new(Body::from(to_csv(&group_by, &rows)));
        web::set_header(&mut response, "content-type", "text/csv; charset=utf-8");
        return Ok(response);
    }
    let data: Vec<Value> = rows.iter().map(|row| row_json(&group_by, row)).collect();
    let body = json!({
        "object": "usage.report",
        "from": from,
        "to": to,
        "tenant": tenant,
        "group_by": group_by.iter().map(|g| g.name()).collect::<Vec<_>>(),
        "data": data,
        "truncated": data.len() as u64 >= ledger::MAX_REPORT_ROWS,
    });
    Ok(web::json(http::StatusCode::OK, &body))
}

/// A time bound: Unix seconds, or a UTC date `YYYY-MM-DD` (its midnight).
fn time(text: &str, field: &str) -> Result<u64, ApiError> {
    let parsed = match text.parse::<u64>() {
        Ok(secs) if secs < 1 << 40 => Some(secs.saturating_mul(1_000)),
        Ok(_) => None,
        Err(_) => calendar::parse_date_ms(text),
    };
    parsed.ok_or_else(|| ApiError::InvalidRequest(format!("`{field}` must be Unix seconds or a date (YYYY-MM-DD)")))
}

fn sums(row: &ReportRow) -> [Value; 7] {
    let t = &row.totals;
    [
        json!(t.requests),
        json!(t.errors),
        json!(t.cache_hits),
        json!(t.input_tokens),
        json!(t.output_tokens),
        json!(t.reasoning_tokens),
        json!((t.cost_usd * 1e9).round() / 1e9),
    ]
}

fn row_json(group_by: &[GroupBy], row: &ReportRow) -> Value {
    let mut map = serde_json::Map::new();
    for (group, value) in group_by.iter().zip(&row.groups) {
        map.insert(group.column().into(), json!(value));
    }
    for (name, value) in SUMS.iter().zip(sums(row)) {
        map.insert((*name).into(), value);
    }
    Value::Object(map)
}

/// RFC 4180: a header line, then one line per row; fields with a comma, quote or line break
/// are quoted, quotes doubled; a missing group value is empty.
fn to_csv(group_by: &[GroupBy], rows: &[ReportRow]) -> String {
    let mut out = String::new();
    let header: Vec<&str> = group_by.iter().map(|g| g.column()).chain(SUMS).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for row in rows {
        let groups = row.groups.iter().map(|value| field(value.as_deref().unwrap_or("")));
        let sums = sums(row).into_iter().map(|value| value.to_string());
        out.push_str(&groups.chain(sums).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `GET /admin/usage/requests?limit&cursor`: the ledger's rows, newest first.
pub(super) async fn requests<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<http::Response<Body>, ApiError> {
    let principal = ctx.require(Action::ReadUsage, "read usage")?;
    let tenant = scope_tenant(principal, query)?;
    let limit = page_size(query)?;
    let before = id_cursor(query)?;
    let rows = ledger::requests(&ctx.host, tenant.as_deref(), limit.saturating_add(1), before).await?;
    let json = |row: &ledger::UsageRow| serde_json::to_value(row).unwrap_or(Value::Null);
    Ok(web::json(http::StatusCode::OK, &Page::of(rows, limit, json, |row| row.id.to_string()).to_json()))
}

/// `GET /admin/audit?limit&cursor`.
pub(super) async fn audit_log<H: Host>(ctx: &Ctx<H>, query: Option<&str>) -> Result<http::Response<Body>, ApiError> {
    let principal = ctx.require(Action::ReadAudit, "read the audit log")?;
    let tenant = scope_tenant(principal, query)?;
    let limit = page_size(query)?;
    let before = id_cursor(query)?;
    let entries = audit::list(&ctx.host, tenant.as_deref(), limit.saturating_add(1), before).await?;
    let json = |entry: &audit::AuditEntry| {
        let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
        if let (Some(map), Some(detail)) = (value.as_object_mut(), &entry.detail) {
            map.insert("detail".into(), serde_json::from_str(detail).unwrap_or(json!(detail)));
        }
        value
    };
    Ok(web::json(http::StatusCode::OK, &Page::of(entries, limit, json, |entry| entry.id.to_string()).to_json()))
}

fn id_cursor(query: Option<&str>) -> Result<Option<u64>, ApiError> {
    cursor(query)
        .map(|text| {
            text.parse::<u64>().map_err(|_| ApiError::InvalidRequest("`cursor` is not one this API gave".into()))
        })
        .transpose()
}
