//! `GET /metrics`: the platform-wide totals in Prometheus' text exposition format (0.0.4), for
//! `Authorization: Bearer $METRICS_TOKEN` or an owner's credential. Every label value is
//! bounded (functions, modes, tiers, providers, priced models or `other`, outcomes, classes);
//! tenants, keys and requests are in the usage reports and traces instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opencode_core::access::Role;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::metrics::{self, Record, Stats, LABEL_SEPARATOR};

use super::{access, Ctx};
use crate::auth;
use crate::error::ApiError;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answers a scrape, once its caller is allowed.
pub(super) async fn scrape<H: Host>(
    ctx: &Ctx<H>,
    headers: &http::HeaderMap,
    request_id: &str,
) -> Result<http::Response<Body>, ApiError> {
    allowed(ctx, headers, request_id).await?;
    let summary = metrics::cumulative(&ctx.host)
        .await
        .map_err(|err| ApiError::Internal(format!("could not read the metrics: {err}")))?;
    let mut text = render(&summary.record);
    family(
        &mut text,
        "opencode_metrics_truncated",
        "gauge",
        "1 when this scrape could not read every instance's totals (the KV budget ran out).",
    );
    let _ = writeln!(text, "opencode_metrics_truncated {}", u8::from(summary.truncated));
    let mut response = http::Response::new(Body::from(text));
    crate::web::set_header(&mut response, "content-type", CONTENT_TYPE);
    Ok(response)
}

/// `METRICS_TOKEN` as the bearer, or an owner's API key or token; else 401 (403 for a caller
/// who is not an owner).
async fn allowed<H: Host>(ctx: &Ctx<H>, headers: &http::HeaderMap, request_id: &str) -> Result<(), ApiError> {
    let presented = auth::bearer(headers)?;
    if let Some(token) = ctx.host.var("METRICS_TOKEN").filter(|t| !t.is_empty()) {
        // Compared as digests: the time taken says nothing about the token.
        if hmac_sha256::Hash::hash(presented.as_bytes()) == hmac_sha256::Hash::hash(token.as_bytes()) {
            return Ok(());
        }
    }
    let caller = access::identify::<H, super::Admin>(&ctx.host, headers, request_id)
        .await
        .map_err(|_| ApiError::InvalidToken("`/metrics` takes METRICS_TOKEN or an owner's credential".into()))?;
    if caller.principal.role != Role::Owner {
        return Err(ApiError::Forbidden("only an owner (or METRICS_TOKEN) may read `/metrics`".into()));
    }
    Ok(())
}

/// `# HELP` and `# TYPE` of a family.
fn family(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
}

/// `{a="x",b="y"}` from a series key's values, escaped as the format asks.
fn labels(names: &[&str], key: &str, extra: Option<(&str, &str)>) -> String {
    let mut out = String::from("{");
    let values = key.split(LABEL_SEPARATOR);
    for (i, (name, value)) in names.iter().copied().zip(values).chain(extra).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Sums `series` into series of fewer labels: the first `keep` values of each key.
fn by_first(series: &BTreeMap<String, Stats>, keep: usize) -> BTreeMap<String, Stats> {
    let mut out: BTreeMap<String, Stats> = BTreeMap::new();
    for (key, stats) in series {
        let kept: Vec<&str> = key.split(LABEL_SEPARATOR).take(keep).collect();
        out.entry(kept.join(&LABEL_SEPARATOR.to_string())).or_default().merge(stats);
    }
    out
}

fn counter(
    text: &mut String,
    name: &str,
    help: &str,
    names: &[&str],
    series: &BTreeMap<String, Stats>,
    value: impl Fn(&Stats) -> String,
) {
    family(text, name, "counter", help);
    for (key, stats) in series {
        let _ = writeln!(text, "{name}{} {}", labels(names, key, None), value(stats));
    }
}

fn histogram(text: &mut String, name: &str, help: &str, names: &[&str], series: &BTreeMap<String, Stats>) {
    family(text, name, "histogram", help);
    for (key, stats) in series {
        for (bound_ms, count) in stats.cumulative_buckets() {
            let le = seconds(bound_ms);
            let _ = writeln!(text, "{name}_bucket{} {count}", labels(names, key, Some(("le", &le))));
        }
        let all = labels(names, key, Some(("le", "+Inf")));
        let _ = writeln!(text, "{name}_bucket{all} {}", stats.requests);
        let plain = labels(names, key, None);
        let _ = writeln!(text, "{name}_sum{plain} {}", seconds(stats.latency_ms_sum));
        let _ = writeln!(text, "{name}_count{plain} {}", stats.requests);
    }
}

/// Milliseconds as seconds, exactly (`0.001`, `2.5`, `60`).
fn seconds(ms: u64) -> String {
    match ms % 1000 {
        0 => (ms / 1000).to_string(),
        rest => format!("{}.{}", ms / 1000, format!("{rest:03}").trim_end_matches('0')),
    }
}

/// Every family, in the exposition format.
pub fn render(record: &Record) -> String {
    let s = &record.series;
    let mut text = String::with_capacity(4096);
    let requests = ["function", "mode", "tier", "provider", "status_class"];
    counter(
        &mut text,
        "opencode_requests_total",
        "Requests answered, by function, mode, tier, the provider that answered and status class.",
        &requests,
        &s.requests,
        |stats| stats.requests.to_string(),
    );
    histogram(
        &mut text,
        "opencode_request_duration_seconds",
        "Time from a request's arrival to the end of its answer (a stream's last byte).",
        &requests[..3],
        &by_first(&s.requests, 3),
    );
    let calls = ["provider", "model", "outcome"];
    counter(
        &mut text,
        "opencode_provider_attempts_total",
        "Provider attempts (a fallback or a retry is several), by outcome.",
        &calls,
        &s.attempts,
        |stats| stats.requests.to_string(),
    );
    let models = by_first(&s.attempts, 2);
    histogram(
        &mut text,
        "opencode_upstream_duration_seconds",
        "Time of each provider attempt (to the first token for a stream).",
        &calls[..2],
        &models,
    );
    histogram(
        &mut text,
        "opencode_time_to_first_token_seconds",
        "Time from a streamed attempt's request to its first token.",
        &calls[..2],
        &s.ttft,
    );
    family(&mut text, "opencode_tokens_total", "counter", "Tokens the providers reported, by type (input, output).");
    for (key, stats) in &models {
        for (kind, tokens) in [("input", stats.input_tokens), ("output", stats.output_tokens)] {
            let _ = writeln!(text, "opencode_tokens_total{} {tokens}", labels(&calls[..2], key, Some(("type", kind))));
        }
    }
    counter(
        &mut text,
        "opencode_cost_usd_total",
        "What the model calls cost at list prices, in US dollars.",
        &calls[..2],
        &models,
        |stats| dollars(stats.cost_nano_usd),
    );
    family(&mut text, "opencode_cache_lookups_total", "counter", "Answer cache lookups, by result (hit, miss).");
    let mut by_mode: BTreeMap<&str, Stats> = BTreeMap::new();
    for (key, stats) in s.requests.iter().filter(|(_, stats)| stats.cache_lookups > 0) {
        by_mode.entry(key.split(LABEL_SEPARATOR).nth(1).unwrap_or("none")).or_default().merge(stats);
    }
    for (mode, stats) in &by_mode {
        let misses = stats.cache_lookups.saturating_sub(stats.cache_hits);
        for (result, n) in [("hit", stats.cache_hits), ("miss", misses)] {
            let _ = writeln!(text, "opencode_cache_lookups_total{{mode=\"{mode}\",result=\"{result}\"}} {n}");
        }
    }
    text
}

/// Billionths of a dollar as a decimal number of dollars, exactly.
fn dollars(nano: u64) -> String {
    let fraction = format!("{:09}", nano % 1_000_000_000);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        (nano / 1_000_000_000).to_string()
    } else {
        format!("{}.{fraction}", nano / 1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(20), "0.02");
        assert_eq!(seconds(2_500), "2.5");
        assert_eq!(seconds(60_000), "60");
    }

    #[test]
    fn dollars_are_exact_decimals() {
        assert_eq!(dollars(0), "0");
        assert_eq!(dollars(34_000), "0.000034");
        assert_eq!(dollars(2_500_000_000), "2.5");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&["a", "b"], "x\ty\"\\\n", Some(("le", "1"))), "{a=\"x\",b=\"y\\\"\\\\\\n\",le=\"1\"}");
    }
}
