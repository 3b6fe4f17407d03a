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
        self.requests = self.requests.saturating_add(1);
        self.errors = self.errors.saturating_add(u64::from(sample.error));
        self.latency_ms_sum = self.latency_ms_sum.saturating_add(sample.latency_ms);
        let bucket =
            LATENCY_BOUNDS_MS.iter().position(|&bound| sample.latency_ms <= bound).unwrap_or(LATENCY_BOUNDS_MS.len());
        self.bump_bucket(bucket, 1);
        self.cache_lookups = self.cache_lookups.saturating_add(u64::from(sample.cache.is_some()));
        self.cache_hits = self.cache_hits.saturating_add(u64::from(sample.cache == Some(true)));
        self.input_tokens = self.input_tokens.saturating_add(sample.usage.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(sample.usage.output_tokens);
        let nano = (sample.cost_usd * 1e9).round();
        if nano.is_finite() && nano > 0.0 {
            self.cost_nano_usd = self.cost_nano_usd.saturating_add(nano as u64);
        }
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
}

impl Record {
    pub fn add(&mut self, sample: &Sample) {
        self.tiers.entry(sample.tier.as_str().to_string()).or_default().add(sample);
        self.modes.entry(sample.mode.as_str().to_string()).or_default().add(sample);
    }

    pub fn merge(&mut self, other: &Record) {
        for (name, stats) in &other.tiers {
            self.tiers.entry(name.clone()).or_default().merge(stats);
        }
        for (name, stats) in &other.modes {
            self.modes.entry(name.clone()).or_default().merge(stats);
        }
    }

    pub fn to_json(&self) -> Value {
        let map = |m: &BTreeMap<String, Stats>| {
            m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>()
        };
        json!({ "tiers": map(&self.tiers), "modes": map(&self.modes) })
    }
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

/// Adds a sample to this instance's totals and schedules a write of them (after the response,
/// at most once a second).
pub fn record<H: Host>(host: &H, sample: &Sample) {
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
            if old != Record::default() && local.hour != 0 {
                finished_hour = Some((local.hour, local.instance.clone(), old));
            }
            local.hour = hour;
        }
        local.record.add(sample);
        let flush = !local.flush_pending;
        local.flush_pending = true;
        (finished_hour, flush.then(|| local.last_flush_ms.saturating_add(FLUSH_INTERVAL_MS).saturating_sub(now)))
    });
    let (finished_hour, flush_in) = scheduled;
    if let Some((hour, instance, record)) = finished_hour {
        let host2 = host.clone();
        host.spawn_background(async move { put(&host2, hour, &instance, &record).await }.boxed_local());
    }
    if let Some(wait) = flush_in {
        let host2 = host.clone();
        host.spawn_background(
            async move {
                if wait > 0 {
                    host2.sleep(wait).await;
                }
                let now = host2.now_ms();
                let (hour, instance, record) = LOCAL.with(|local| {
                    let mut local = local.borrow_mut();
                    local.flush_pending = false;
                    local.last_flush_ms = now;
                    (local.hour, local.instance.clone(), local.record.clone())
                });
                put(&host2, hour, &instance, &record).await;
            }
            .boxed_local(),
        );
    }
}

/// Writes an instance's totals for an hour, then makes sure the hour's roster names the
/// instance. A failed write is made good by the next one: each carries the whole total, and
/// each checks the roster again (so a name lost to a concurrent roster write comes back).
async fn put<H: Host>(host: &H, hour: u64, instance: &str, record: &Record) {
    let key = key(hour, instance);
    let Ok(bytes) = serde_json::to_vec(record) else { return };
    if let Err(err) = host.kv_put(STORE, &key, bytes, Some(TTL_SECS)).await {
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
    // An hour is closed once `(hour + 1) * HOUR_MS + CLOSE_AFTER_MS <= now`, that is once it is
    // before the hour of `now - CLOSE_AFTER_MS`: the same test, without overflow near u64::MAX.
    let first_open_hour = hour_of(now.saturating_sub(CLOSE_AFTER_MS));
    let mut summary = Summary::default();
    let mut ops = 0usize;
    // Newest first: when the budget runs out, the recent hours are the ones counted.
    for hour in (now_hour.saturating_sub(hours.saturating_sub(1))..=now_hour).rev() {
        let closed = hour < first_open_hour;
        if closed {
            ops = ops.saturating_add(1);
            if ops > MAX_KV_OPS {
                summary.truncated = true;
                break;
            }
            let rollup = host.kv_get(STORE, &format!("{ROLLUP_PREFIX}{hour}")).await?;
            if let Some(rollup) = rollup.and_then(|b| serde_json::from_slice::<Rollup>(&b).ok()) {
                summary.record.merge(&rollup.record);
                summary.parts = summary.parts.saturating_add(rollup.parts);
                summary.rolled_up = summary.rolled_up.saturating_add(1);
                continue;
            }
        }
        ops = ops.saturating_add(1);
        let roster = host.kv_get(STORE, &roster(hour)).await?;
        let names: Vec<String> = roster.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let mut complete = names.len() <= MAX_KEYS_PER_HOUR;
        let keys = names.iter().take(MAX_KEYS_PER_HOUR).map(|name| key(hour, name));
        let mut hour_sum = Rollup { parts: 0, record: Record::default() };
        for key in keys {
            ops = ops.saturating_add(1);
            if ops > MAX_KV_OPS {
                complete = false;
                break;
            }
            let Some(bytes) = host.kv_get(STORE, &key).await? else { continue };
            // A value this code did not write is skipped, not fatal.
            if let Ok(record) = serde_json::from_slice::<Record>(&bytes) {
                hour_sum.record.merge(&record);
                hour_sum.parts = hour_sum.parts.saturating_add(1);
            }
        }
        summary.record.merge(&hour_sum.record);
        summary.parts = summary.parts.saturating_add(hour_sum.parts);
        summary.truncated |= !complete;
        if closed && complete && hour_sum.parts > 0 {
            if let Ok(bytes) = serde_json::to_vec(&hour_sum) {
                let key = format!("{ROLLUP_PREFIX}{hour}");
                let store = host.clone();
                host.spawn_background(
                    async move {
                        let _ = store.kv_put(STORE, &key, bytes, Some(TTL_SECS)).await;
                    }
                    .boxed_local(),
                );
            }
        }
        if ops >= MAX_KV_OPS {
            summary.truncated = true;
            break;
        }
    }
    Ok(summary)
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
            record.add(&sample(ms % 10, Some(ms % 2 == 0), false));
        }
        record.add(&sample(700, None, true));
        record.add(&sample(90_000, Some(false), false));
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
        a.add(&sample(3, Some(true), false));
        let mut b = Record::default();
        b.add(&sample(40_000, None, false));
        b.add(&Sample { tier: Tier::System2, mode: Mode::Research, ..sample(4, None, true) });
        a.merge(&b);
        assert_eq!(a.tiers["system1"].requests, 2);
        assert_eq!(a.tiers["system1"].latency_buckets.iter().sum::<u64>(), 2);
        assert_eq!(a.tiers["system2"].errors, 1);
        assert_eq!(a.modes["research"].requests, 1);
    }
}
