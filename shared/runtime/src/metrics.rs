//! Per-tier metrics: every request a mode function serves adds a [`Sample`] (latency, cache
//! lookup and hit, tokens, error) to the running [`Stats`] of its tier and of its mode.
//!
//! Storage: each Wasm instance sums its samples in memory and writes its running totals for
//! the current hour to its own KV key, `metrics/<hour>/<instance>` in the `data` store, at most
//! once a second and after the response has gone out. Workers KV allows one write per second
//! per key and is not transactional; because no two instances share a key and each write
//! carries the instance's whole total, no count is lost to a race and a failed write is made
//! good by the next one. Each write also checks that the hour's roster (`metrics/<hour>/instances`)
//! names the instance; the admin function reads the roster and adds the instances' totals up
//! ([`summarize`]), never listing keys. Workers KV is eventually consistent, so the last minute
//! may lag. Once an
//! hour is over, its sum is written once to a roll-up key and read from there afterwards.

use std::cell::RefCell;
use std::collections::BTreeMap;

use futures::FutureExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use opencode_core::model::Usage;
use opencode_core::routing::{Mode, Tier};

use crate::host::Host;
use crate::log::Field;
use crate::trace::Facts;

/// The KV store metrics live in.
pub const STORE: &str = "data";
/// Key prefix; the hour (since the Unix epoch) and the instance follow.
pub const PREFIX: &str = "metrics/";
const HOUR_MS: u64 = 3_600_000;
/// Shortest time between two writes of one instance's key.
const FLUSH_INTERVAL_MS: u64 = 1_000;
/// Workers KV expires old hours on its own (Spin keeps them; the admin reads only a window).
const TTL_SECS: u64 = 8 * 24 * 3600;
/// Upper bounds (ms) of the latency histogram's buckets; a last bucket takes the rest.
const LATENCY_BOUNDS_MS: [u64; 15] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000];

/// What one request adds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub mode: Mode,
    pub tier: Tier,
    /// From the request's arrival to the end of the answer (the last byte of a stream).
    pub latency_ms: u64,
    /// `Some(hit)` when the cache was consulted.
    pub cache: Option<bool>,
    pub usage: Usage,
    /// What the answer's model calls cost at list prices (0 when unpriced).
    pub cost_usd: f64,
    /// The request ended in an error (an error status or a stream's `error` event).
    pub error: bool,
}

/// Running totals of one tier or mode. Sums only, so any two merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub latency_ms_sum: u64,
    /// Requests per latency bucket (`LATENCY_BOUNDS_MS`, then one for the rest).
    pub latency_buckets: Vec<u64>,
    pub cache_lookups: u64,
    pub cache_hits: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Billionths of a dollar: integer sums merge exactly.
    #[serde(default)]
    pub cost_nano_usd: u64,
}

impl Stats {
    fn add(&mut self, sample: &Sample) {
        self.count(sample.latency_ms);
        self.errors = self.errors.saturating_add(u64::from(sample.error));
        self.cache_lookups = self.cache_lookups.saturating_add(u64::from(sample.cache.is_some()));
        self.cache_hits = self.cache_hits.saturating_add(u64::from(sample.cache == Some(true)));
        self.input_tokens = self.input_tokens.saturating_add(sample.usage.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(sample.usage.output_tokens);
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(nano_usd(sample.cost_usd));
    }

    /// One more of what these count, taking `ms`.
    fn count(&mut self, ms: u64) {
        self.requests = self.requests.saturating_add(1);
        self.latency_ms_sum = self.latency_ms_sum.saturating_add(ms);
        let bucket = LATENCY_BOUNDS_MS.iter().position(|&bound| ms <= bound).unwrap_or(LATENCY_BOUNDS_MS.len());
        self.bump_bucket(bucket, 1);
    }

    /// `(upper bound in ms, cumulative count)` per finite latency bucket, as Prometheus counts `le`.
    pub fn cumulative_buckets(&self) -> Vec<(u64, u64)> {
        let mut seen = 0u64;
        LATENCY_BOUNDS_MS
            .iter()
            .enumerate()
            .map(|(i, &bound)| {
                seen = seen.saturating_add(self.latency_buckets.get(i).copied().unwrap_or(0));
                (bound, seen)
            })
            .collect()
    }

    fn bump_bucket(&mut self, bucket: usize, by: u64) {
        if self.latency_buckets.len() <= bucket {
            self.latency_buckets.resize(bucket.saturating_add(1), 0);
        }
        if let Some(count) = self.latency_buckets.get_mut(bucket) {
            *count = count.saturating_add(by);
        }
    }

    /// Adds `other`'s totals to these.
    pub fn merge(&mut self, other: &Stats) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency_ms_sum = self.latency_ms_sum.saturating_add(other.latency_ms_sum);
        for (bucket, &count) in other.latency_buckets.iter().enumerate() {
            self.bump_bucket(bucket, count);
        }
        self.cache_lookups = self.cache_lookups.saturating_add(other.cache_lookups);
        self.cache_hits = self.cache_hits.saturating_add(other.cache_hits);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(other.cost_nano_usd);
    }

    /// The upper bound of the bucket holding the `q` quantile (histogram resolution).
    fn quantile_ms(&self, q: f64) -> Option<u64> {
        let rank = (self.requests as f64 * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (bucket, &count) in self.latency_buckets.iter().enumerate() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                // The open last bucket reports the largest finite bound.
                return Some(LATENCY_BOUNDS_MS.get(bucket).or(LATENCY_BOUNDS_MS.last()).copied().unwrap_or(0));
            }
        }
        None
    }

    /// The totals as the admin API shows them.
    pub fn to_json(&self) -> Value {
        let ratio = |part: u64, whole: u64| if whole == 0 { Value::Null } else { json!(part as f64 / whole as f64) };
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "latency_ms": {
                "mean": if self.requests == 0 { Value::Null } else { json!(self.latency_ms_sum as f64 / self.requests as f64) },
                "p50_at_most": self.quantile_ms(0.5),
                "p99_at_most": self.quantile_ms(0.99),
            },
            "cache": {"lookups": self.cache_lookups, "hits": self.cache_hits, "hit_ratio": ratio(self.cache_hits, self.cache_lookups)},
            "tokens": {"input": self.input_tokens, "output": self.output_tokens, "total": self.input_tokens.saturating_add(self.output_tokens)},
            "cost_usd": self.cost_nano_usd as f64 / 1e9,
        })
    }
}

/// One instance's totals for one hour: what a KV value holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub tiers: BTreeMap<String, Stats>,
    pub modes: BTreeMap<String, Stats>,
    /// Per A/B variant (`EXPERIMENTS`) the request's caller was in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, Stats>,
    /// Every request of every function, by bounded labels (`/metrics`).
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub series: Series,
}

impl Record {
    /// Adds a request; `variant` is the A/B variant its caller was in.
    pub fn add(&mut self, sample: &Sample, variant: Option<&str>) {
        self.tiers.entry(sample.tier.as_str().to_string()).or_default().add(sample);
        self.modes.entry(sample.mode.as_str().to_string()).or_default().add(sample);
        if let Some(variant) = variant {
            self.variants.entry(variant.to_string()).or_default().add(sample);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty() && self.modes.is_empty() && self.variants.is_empty() && self.series.is_empty()
    }

    pub fn merge(&mut self, other: &Record) {
        for (mine, theirs) in
            [(&mut self.tiers, &other.tiers), (&mut self.modes, &other.modes), (&mut self.variants, &other.variants)]
        {
            for (name, stats) in theirs {
                mine.entry(name.clone()).or_default().merge(stats);
            }
        }
        self.series.merge(&other.series);
    }

    pub fn to_json(&self) -> Value {
        let map = |m: &BTreeMap<String, Stats>| {
            m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>()
        };
        json!({ "tiers": map(&self.tiers), "modes": map(&self.modes), "variants": map(&self.variants) })
    }
}

/// Series by label values joined with tabs: bounded values only (function, mode, tier,
/// provider, a priced model or `other`, outcome, status class), never a tenant, key or request.
/// Each is a [`Stats`], the type the tiers and modes already use (one more map type would cost
/// every function its own copy of the map and serialization code); `/metrics` sums them into
/// its families.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Series {
    /// function, mode, tier, provider, status class → requests: their count, duration and
    /// cache lookups.
    pub requests: BTreeMap<String, Stats>,
    /// provider, model, outcome → attempts: their count and time; an answering call's tokens
    /// and cost on its `ok` series.
    pub attempts: BTreeMap<String, Stats>,
    /// provider, model → streamed attempts' time to their first token.
    pub ttft: BTreeMap<String, Stats>,
}

/// The separator of label values in a series' key.
pub const LABEL_SEPARATOR: char = '\t';

fn series_key(values: &[&str]) -> String {
    values.join("\t")
}

impl Series {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.attempts.is_empty()
    }

    fn merge(&mut self, other: &Series) {
        for (mine, theirs) in [
            (&mut self.requests, &other.requests),
            (&mut self.attempts, &other.attempts),
            (&mut self.ttft, &other.ttft),
        ] {
            for (key, stats) in theirs {
                mine.entry(key.clone()).or_default().merge(stats);
            }
        }
    }

    /// Adds one finished request.
    pub fn observe(&mut self, seen: &Observation<'_>) {
        let facts = seen.facts;
        let mode = facts.mode.map_or("none", Mode::as_str);
        let tier = facts.tier.map_or("none", Tier::as_str);
        let answered = facts.attempts.iter().rev().find(|a| a.kind == "provider" && a.outcome == "ok");
        let provider = answered.map_or("none", |a| a.provider.as_str());
        let class = match seen.status {
            500.. => "5xx",
            400..=499 => "4xx",
            300..=399 => "3xx",
            _ => "2xx",
        };
        let request = self.requests.entry(series_key(&[seen.function, mode, tier, provider, class])).or_default();
        request.count(seen.latency_ms);
        if let Some(hit) = facts.cache {
            request.cache_lookups = request.cache_lookups.saturating_add(1);
            request.cache_hits = request.cache_hits.saturating_add(u64::from(hit));
        }
        let label =
            |model: &str, priced: bool| if priced && !model.is_empty() { model.to_owned() } else { "other".to_owned() };
        for attempt in facts.attempts.iter().filter(|a| a.kind == "provider") {
            let model = label(&attempt.model, attempt.priced);
            let key = series_key(&[&attempt.provider, &model, attempt.outcome]);
            self.attempts.entry(key).or_default().count(attempt.elapsed_ms);
            if let Some(ttft) = attempt.ttft_ms {
                self.ttft.entry(series_key(&[&attempt.provider, &model])).or_default().count(ttft);
            }
        }
        for used in &facts.usage {
            let model = label(&used.model, used.priced);
            let call = self.attempts.entry(series_key(&[&used.provider, &model, "ok"])).or_default();
            call.input_tokens = call.input_tokens.saturating_add(used.usage.input_tokens);
            call.output_tokens = call.output_tokens.saturating_add(used.usage.output_tokens);
            call.cost_nano_usd = call.cost_nano_usd.saturating_add(nano_usd(used.cost_usd));
        }
    }
}

/// Dollars in billionths, for sums that merge exactly.
pub fn nano_usd(usd: f64) -> u64 {
    let nano = (usd * 1e9).round();
    if nano.is_finite() && nano > 0.0 {
        nano as u64
    } else {
        0
    }
}

/// One finished request of any function, as `/metrics` counts it.
pub struct Observation<'a> {
    pub function: &'a str,
    pub status: u16,
    pub latency_ms: u64,
    pub facts: &'a Facts,
}

/// This instance's unwritten state.
#[derive(Default)]
struct Local {
    instance: String,
    hour: u64,
    record: Record,
    last_flush_ms: u64,
    flush_pending: bool,
}

thread_local! {
    // Wasm instances are single-threaded; this is the instance's own running total.
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// The KV key of `instance`'s totals for `hour`.
pub fn key(hour: u64, instance: &str) -> String {
    format!("{PREFIX}{hour}/{instance}")
}

/// The hour (since the Unix epoch) a time falls in.
pub fn hour_of(ms: u64) -> u64 {
    ms / HOUR_MS
}

/// Adds a mode request's sample to this instance's totals and schedules a write of them (after
/// the response, at most once a second).
pub fn record<H: Host>(host: &H, sample: &Sample) {
    let variant = host.trace().and_then(|trace| trace.facts.borrow().variant.clone());
    add(host, |record| record.add(sample, variant.as_deref()));
}

/// Adds a finished request (any function) to this instance's `/metrics` series.
pub fn observe<H: Host>(host: &H, seen: &Observation<'_>) {
    add(host, |record| record.series.observe(seen));
}

fn add<H: Host>(host: &H, change: impl FnOnce(&mut Record)) {
    let now = host.now_ms();
    let scheduled = LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        if local.instance.is_empty() {
            let mut id = [0u8; 8];
            host.random_bytes(&mut id);
            local.instance = opencode_core::hex(&id);
        }
        let hour = hour_of(now);
        let mut finished_hour = None;
        if hour != local.hour {
            // The old hour's last totals are written now; the new hour starts from zero.
            let old = std::mem::take(&mut local.record);
            if !old.is_empty() && local.hour != 0 {
                finished_hour = Some((local.hour, local.instance.clone(), serde_json::to_vec(&old)));
            }
            local.hour = hour;
        }
        change(&mut local.record);
        let flush = !local.flush_pending;
        local.flush_pending = true;
        (finished_hour, flush.then(|| local.last_flush_ms.saturating_add(FLUSH_INTERVAL_MS).saturating_sub(now)))
    });
    let (finished_hour, flush_in) = scheduled;
    if let Some((hour, instance, Ok(totals))) = finished_hour {
        let host2 = host.clone();
        host.spawn_background(async move { put(&host2, hour, &instance, totals).await }.boxed_local());
    }
    if let Some(wait) = flush_in {
        let host2 = host.clone();
        host.spawn_background(
            async move {
                if wait > 0 {
                    host2.sleep(wait).await;
                }
                let now = host2.now_ms();
                // Serialized in place: a copy of the totals would cost every function a clone
                // of each of their maps.
                let (hour, instance, totals) = LOCAL.with(|local| {
                    let mut local = local.borrow_mut();
                    local.flush_pending = false;
                    local.last_flush_ms = now;
                    (local.hour, local.instance.clone(), serde_json::to_vec(&local.record))
                });
                if let Ok(totals) = totals {
                    put(&host2, hour, &instance, totals).await;
                }
            }
            .boxed_local(),
        );
    }
}

/// Writes an instance's totals for an hour, then makes sure the hour's roster names the
/// instance. A failed write is made good by the next one: each carries the whole total, and
/// each checks the roster again (so a name lost to a concurrent roster write comes back).
async fn put<H: Host>(host: &H, hour: u64, instance: &str, totals: Vec<u8>) {
    let key = key(hour, instance);
    if let Err(err) = host.kv_put(STORE, &key, totals, Some(TTL_SECS)).await {
        return failed(host, &key, &err);
    }
    let roster_key = roster(hour);
    let mut names: Vec<String> = match host.kv_get(STORE, &roster_key).await {
        Ok(bytes) => bytes.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default(),
        Err(err) => return failed(host, &roster_key, &err),
    };
    if names.iter().any(|name| name == instance) {
        return;
    }
    names.push(instance.to_owned());
    let Ok(bytes) = serde_json::to_vec(&names) else { return };
    if let Err(err) = host.kv_put(STORE, &roster_key, bytes, Some(TTL_SECS)).await {
        failed(host, &roster_key, &err);
    }
}

fn failed<H: Host>(host: &H, key: &str, err: &crate::host::HostError) {
    let error = err.to_string();
    let error = opencode_core::redact::redact(&error);
    let fields = [("key", Field::Text(key)), ("error", Field::Text(&error))];
    crate::log::warn(host, "metrics write failed", &fields);
}

/// The key of an hour's roster: the instances that wrote totals for it. Read instead of
/// listing keys, which Spin can only do for a whole store.
pub fn roster(hour: u64) -> String {
    format!("{PREFIX}{hour}/instances")
}

/// The totals over `hours` hours ending with the current one.
#[derive(Debug, Default)]
pub struct Summary {
    pub record: Record,
    /// Instance-hours read (a rolled-up hour counts the instance-hours it holds).
    pub parts: usize,
    /// Hours read from their roll-up.
    pub rolled_up: usize,
    /// The sum is short: an hour had more instances than one summary reads, or the KV operation
    /// budget ran out (asking again continues from the roll-ups written meanwhile).
    pub truncated: bool,
}

/// Most keys read for one hour.
const MAX_KEYS_PER_HOUR: usize = 1_000;
/// Most KV operations one summary makes: Workers allow 1000 per invocation.
const MAX_KV_OPS: usize = 900;
/// Roll-up keys: one per closed hour, holding the sum of its instances.
const ROLLUP_PREFIX: &str = "metrics-rollup/";
/// An hour is closed (rolled up) this long after it ended: instances write their last totals
/// within a second, and Workers KV takes up to a minute to show a write everywhere.
const CLOSE_AFTER_MS: u64 = 10 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct Rollup {
    parts: usize,
    record: Record,
}

/// Adds up every instance's totals for the last `hours` hours. A closed hour is read from its
/// roll-up when there is one, else summed from its instances and rolled up for next time, so
/// a week's report costs a few hundred KV reads, not one per instance-hour.
pub async fn summarize<H: Host>(host: &H, hours: u64) -> Result<Summary, crate::host::HostError> {
    let now = host.now_ms();
    let now_hour = hour_of(now);
    let first_open_hour = first_open_hour(now);
    let mut summary = Summary::default();
    let mut ops = 0usize;
    // Newest first: when the budget runs out, the recent hours are the ones counted.
    for hour in (now_hour.saturating_sub(hours.saturating_sub(1))..=now_hour).rev() {
        let Some(sum) = hour_sum(host, hour, hour < first_open_hour, &mut ops).await? else {
            summary.truncated = true;
            break;
        };
        summary.record.merge(&sum.rollup.record);
        summary.parts = summary.parts.saturating_add(sum.rollup.parts);
        summary.rolled_up = summary.rolled_up.saturating_add(usize::from(sum.rolled_up));
        summary.truncated |= !sum.complete;
        if ops >= MAX_KV_OPS {
            summary.truncated = true;
            break;
        }
    }
    Ok(summary)
}

/// The first hour not yet closed at `now`. An hour is closed once
/// `(hour + 1) * HOUR_MS + CLOSE_AFTER_MS <= now`, that is once it is before the hour of
/// `now - CLOSE_AFTER_MS`: the same test, without overflow near u64::MAX.
fn first_open_hour(now: u64) -> u64 {
    hour_of(now.saturating_sub(CLOSE_AFTER_MS))
}

/// One hour's sum.
struct HourSum {
    rollup: Rollup,
    /// Read from the hour's roll-up.
    rolled_up: bool,
    /// Every instance of the hour was read.
    complete: bool,
}

/// One hour's sum over its instances (a closed hour's from its roll-up, written when missing);
/// `None` when the KV budget ran out first.
async fn hour_sum<H: Host>(
    host: &H,
    hour: u64,
    closed: bool,
    ops: &mut usize,
) -> Result<Option<HourSum>, crate::host::HostError> {
    if closed {
        *ops = ops.saturating_add(1);
        if *ops > MAX_KV_OPS {
            return Ok(None);
        }
        let rollup = host.kv_get(STORE, &format!("{ROLLUP_PREFIX}{hour}")).await?;
        if let Some(rollup) = rollup.and_then(|b| serde_json::from_slice::<Rollup>(&b).ok()) {
            return Ok(Some(HourSum { rollup, rolled_up: true, complete: true }));
        }
    }
    *ops = ops.saturating_add(1);
    let roster = host.kv_get(STORE, &roster(hour)).await?;
    let names: Vec<String> = roster.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut complete = names.len() <= MAX_KEYS_PER_HOUR;
    let keys = names.iter().take(MAX_KEYS_PER_HOUR).map(|name| key(hour, name));
    let mut rollup = Rollup { parts: 0, record: Record::default() };
    for key in keys {
        *ops = ops.saturating_add(1);
        if *ops > MAX_KV_OPS {
            complete = false;
            break;
        }
        let Some(bytes) = host.kv_get(STORE, &key).await? else { continue };
        // A value this code did not write is skipped, not fatal.
        if let Ok(record) = serde_json::from_slice::<Record>(&bytes) {
            rollup.record.merge(&record);
            rollup.parts = rollup.parts.saturating_add(1);
        }
    }
    if closed && complete && rollup.parts > 0 {
        put_later(host, format!("{ROLLUP_PREFIX}{hour}"), &rollup);
    }
    Ok(Some(HourSum { rollup, rolled_up: false, complete }))
}

fn put_later<H: Host, T: Serialize>(host: &H, key: String, value: &T) {
    let Ok(bytes) = serde_json::to_vec(value) else { return };
    let store = host.clone();
    host.spawn_background(
        async move {
            let _ = store.kv_put(STORE, &key, bytes, Some(TTL_SECS)).await;
        }
        .boxed_local(),
    );
}

/// Running totals: `metrics-total/<hour>` holds every closed hour's sum up to that one.
const TOTAL_PREFIX: &str = "metrics-total/";
/// How far back a scrape looks for the last running total before it starts again from zero
/// (a counter reset, which Prometheus expects now and then).
const MAX_TOTAL_GAP_HOURS: u64 = 168;

/// The platform's totals since counting began, for Prometheus (whose counters must never go
/// down): the running total of the closed hours plus the open hours summed from their
/// instances. The running total of the last closed hour is the one before it plus that hour;
/// each is written once, so a scrape costs a few reads. `truncated` when the KV budget ran out
/// (the running total is then not written; the next scrape tries again).
pub async fn cumulative<H: Host>(host: &H) -> Result<Summary, crate::host::HostError> {
    let now = host.now_ms();
    let first_open = first_open_hour(now);
    let mut summary = Summary::default();
    let mut ops = 0usize;
    if let Some(last_closed) = first_open.checked_sub(1) {
        let (total, complete) = running_total(host, last_closed, &mut ops).await?;
        summary.record = total;
        summary.truncated = !complete;
    }
    for hour in first_open..=hour_of(now) {
        let Some(sum) = hour_sum(host, hour, false, &mut ops).await? else {
            summary.truncated = true;
            break;
        };
        summary.record.merge(&sum.rollup.record);
        summary.parts = summary.parts.saturating_add(sum.rollup.parts);
        summary.truncated |= !sum.complete;
    }
    Ok(summary)
}

async fn running_total<H: Host>(
    host: &H,
    hour: u64,
    ops: &mut usize,
) -> Result<(Record, bool), crate::host::HostError> {
    let total = |hour: u64| format!("{TOTAL_PREFIX}{hour}");
    let read = |bytes: Option<Vec<u8>>| bytes.and_then(|b| serde_json::from_slice::<Record>(&b).ok());
    *ops = ops.saturating_add(1);
    if let Some(record) = read(host.kv_get(STORE, &total(hour)).await?) {
        return Ok((record, true));
    }
    // Back to the newest running total, then forward one hour at a time.
    let mut missing = vec![hour];
    let mut base = Record::default();
    let mut earlier = hour;
    for _ in 0..MAX_TOTAL_GAP_HOURS {
        let Some(before) = earlier.checked_sub(1) else { break };
        earlier = before;
        *ops = ops.saturating_add(1);
        if *ops > MAX_KV_OPS {
            return Ok((base, false));
        }
        if let Some(record) = read(host.kv_get(STORE, &total(earlier)).await?) {
            base = record;
            break;
        }
        missing.push(earlier);
    }
    for missing_hour in missing.into_iter().rev() {
        match hour_sum(host, missing_hour, true, ops).await? {
            Some(sum) if sum.complete => base.merge(&sum.rollup.record),
            _ => return Ok((base, false)),
        }
    }
    put_later(host, total(hour), &base);
    Ok((base, true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use futures::executor::block_on;

    use super::*;
    use crate::host::fake::FakeHost;

    fn sample(latency_ms: u64, cache: Option<bool>, error: bool) -> Sample {
        Sample {
            mode: Mode::Chat,
            tier: Tier::System1,
            latency_ms,
            cache,
            usage: Usage { input_tokens: 3, output_tokens: 2, ..Usage::default() },
            cost_usd: 0.0005,
            error,
        }
    }

    #[test]
    fn stats_count_cache_tokens_and_latency_quantiles() {
        let mut record = Record::default();
        for ms in 1..=98 {
            record.add(&sample(ms % 10, Some(ms % 2 == 0), false), None);
        }
        record.add(&sample(700, None, true), None);
        record.add(&sample(90_000, Some(false), false), None);
        let stats = &record.tiers["system1"];
        assert_eq!((stats.requests, stats.errors), (100, 1));
        assert_eq!((stats.cache_lookups, stats.cache_hits), (99, 49));
        assert_eq!((stats.input_tokens, stats.output_tokens), (300, 200));
        assert_eq!(stats.cost_nano_usd, 50_000_000, "100 samples of $0.0005");
        assert_eq!(stats.quantile_ms(0.5), Some(5));
        assert_eq!(stats.quantile_ms(0.99), Some(1_000));
        assert_eq!(stats.quantile_ms(1.0), Some(60_000));
        let json = stats.to_json();
        assert_eq!(json["cache"]["hit_ratio"], json!(49.0 / 99.0));
        assert_eq!(record.modes["chat"], *stats);
    }

    #[test]
    fn quantiles_of_stored_counts_near_u64_max_saturate() {
        // Counts come from KV values: the running sum of buckets overflowed.
        let stats = Stats { requests: u64::MAX, latency_buckets: vec![1, u64::MAX, u64::MAX], ..Stats::default() };
        assert_eq!(stats.quantile_ms(1.0), Some(2));
    }

    #[test]
    fn recording_at_the_end_of_time_still_writes_the_totals() {
        let now = u64::MAX - 10;
        let host = FakeHost::at(now);
        record(&host, &sample(5, None, false));
        host.run_background();
        // The next flush is due at the last one + 1 s: that sum overflowed.
        record(&host, &sample(5, None, false));
        host.run_background();
        let hour = hour_of(now);
        let names: Vec<String> = serde_json::from_slice(&host.kv(STORE, &roster(hour)).unwrap()).unwrap();
        let bytes = host.kv(STORE, &key(hour, &names[0])).unwrap();
        let record: Record = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(record.tiers["system1"].requests, 2);
    }

    #[test]
    fn a_summary_at_the_end_of_time_over_every_hour_stops_at_the_budget() {
        let host = FakeHost::at(u64::MAX - 10);
        // `hours` up to u64::MAX; `(hour + 1) * HOUR_MS + CLOSE_AFTER_MS` overflowed.
        let summary = block_on(summarize(&host, u64::MAX)).unwrap();
        assert!(summary.truncated);
        assert_eq!((summary.parts, summary.rolled_up), (0, 0));
    }

    #[test]
    fn instance_hours_from_stored_roll_ups_saturate() {
        let now = 1_767_225_600_000;
        let host = FakeHost::at(now);
        let hour = hour_of(now);
        // Two closed hours whose roll-ups (KV values) claim usize::MAX instance-hours each.
        for closed in [hour - 2, hour - 3] {
            let rollup = Rollup { parts: usize::MAX, record: Record::default() };
            let bytes = serde_json::to_vec(&rollup).unwrap();
            block_on(host.kv_put(STORE, &format!("{ROLLUP_PREFIX}{closed}"), bytes, None)).unwrap();
        }
        let summary = block_on(summarize(&host, 4)).unwrap();
        assert_eq!((summary.parts, summary.rolled_up, summary.truncated), (usize::MAX, 2, false));
    }

    #[test]
    fn records_merge_as_sums() {
        let mut a = Record::default();
        a.add(&sample(3, Some(true), false), Some("control"));
        let mut b = Record::default();
        b.add(&sample(40_000, None, false), Some("control"));
        b.add(&Sample { tier: Tier::System2, mode: Mode::Research, ..sample(4, None, true) }, Some("lexicon"));
        a.merge(&b);
        assert_eq!(a.tiers["system1"].requests, 2);
        assert_eq!(a.tiers["system1"].latency_buckets.iter().sum::<u64>(), 2);
        assert_eq!(a.tiers["system2"].errors, 1);
        assert_eq!(a.modes["research"].requests, 1);
        assert_eq!((a.variants["control"].requests, a.variants["lexicon"].errors), (2, 1));
    }
}
