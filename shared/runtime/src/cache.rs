//! The System 1 answer cache: one model call's answer, kept in the `cache` KV store.
//!
//! An answer is known by a SHA-256 over everything that changes the output (messages, the
//! provider chain with each model, temperature, top_p, max_tokens, stop, seed, reasoning,
//! tools, tool_choice, response_format, mode, and for knowledge the tenant's index version)
//! and the tenant, so a hit never crosses tenants. It is stored in one of the tenant's
//! `system1.cache_max_size` slots (the digest picks it; a newer answer takes a slot over), so a
//! tenant never holds more entries than that, and the entry keeps its digest: a slot holding
//! another answer is a miss. Keys fit any store's limit (Spin: 256 bytes).
//! Neither Spin KV nor Workers KV (minimum TTL 60 s) can expire entries on our schedule, so the
//! deadline is stored with the value and checked on read.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use opencode_core::model::{ChatResponse, FinishReason};
use opencode_core::providers::ProviderConfig;

use opencode_core::redact::redact;

use crate::host::{Host, HostError};
use crate::log::Field;
use crate::trace::{self, SpanGuard};
use opencode_core::telemetry::SpanKind;

/// The KV store the cache lives in.
pub const STORE: &str = "cache";
/// Entries live this long unless `CACHE_TTL_SECS` says otherwise (0 turns the cache off).
pub const DEFAULT_TTL_SECS: u64 = 3600;

/// What the caller asked of the cache (`cache-control` request header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Look up, and store on a miss.
    Use,
    /// `no-cache`: skip the lookup, store the fresh answer (a refresh).
    Refresh,
    /// `no-store`: neither look up nor store.
    Bypass,
}

impl CachePolicy {
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let directives = headers
            .get_all(http::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|d| d.trim().to_ascii_lowercase())
            .collect::<Vec<_>>();
        if directives.iter().any(|d| d == "no-store") {
            CachePolicy::Bypass
        } else if directives.iter().any(|d| d == "no-cache") {
            CachePolicy::Refresh
        } else {
            CachePolicy::Use
        }
    }

    pub fn reads(self) -> bool {
        self == CachePolicy::Use
    }

    pub fn writes(self) -> bool {
        self != CachePolicy::Bypass
    }
}

/// A cached answer: who answered, and the text as the stream delivered it (one delta per
/// piece, so a streamed hit replays in the same pieces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub provider: String,
    pub response: ChatResponse,
    pub deltas: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Entry<T> {
    /// Format version: an entry of another version is a miss.
    v: u8,
    /// Whose answer the slot holds.
    digest: String,
    expires_at_ms: u64,
    answer: T,
}

const VERSION: u8 = 2;

/// Where one answer is kept: the store key of its slot, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub slot: String,
    pub digest: String,
}

/// Only complete answers are worth serving again (tool calls are complete answers too).
pub fn cacheable(finish: &FinishReason) -> bool {
    matches!(finish, FinishReason::Stop | FinishReason::Length | FinishReason::ToolCalls)
}

/// The key for one request of `tenant` in `mode` through `chain`, in one of `slots` slots;
/// `request` is the request's full text (everything that shapes the answer) and `version` what
/// else the answer depends on (a knowledge index's version).
pub fn key(tenant: &str, mode: &str, version: &str, chain: &[ProviderConfig], request: &str, slots: u64) -> CacheKey {
    let mut keyed = format!("{tenant}\n{mode}\n{version}\n");
    for p in chain {
        keyed.push_str(&format!("{}\n{}\n{}\n", p.name, p.base_url, p.model));
    }
    keyed.push_str(request);
    let digest = hmac_sha256::Hash::hash(keyed.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    let slot = u64::from_be_bytes(head).checked_rem(slots).unwrap_or(0);
    let owner = hmac_sha256::Hash::hash(tenant.as_bytes());
    let owner = opencode_core::hex(owner.get(..8).unwrap_or_default());
    CacheKey { slot: format!("s1/{owner}/{slot}"), digest: opencode_core::hex(&digest) }
}

/// Reads an entry; a missing, expired, unreadable or foreign-version entry is a miss, and a
/// store failure is a miss too (the cache must never fail a request).
/// The lookup is a span and a fact of the request (hit or miss, and its time).
pub async fn get<H: Host, T: DeserializeOwned>(host: &H, key: &CacheKey) -> Option<T> {
    timed(host, lookup(host, key)).await
}

/// [`get`] for an answer kept as JSON, its entry read by hand: no deserializer is generated
/// for the entry (the knowledge function's Wasm is at its size budget).
pub async fn get_value<H: Host>(host: &H, key: &CacheKey) -> Option<serde_json::Value> {
    let lookup = async {
        let mut entry: serde_json::Value = serde_json::from_slice(&read(host, key).await?).ok()?;
        let number = |name: &str| entry.get(name).and_then(serde_json::Value::as_u64);
        let current = number("v") == Some(u64::from(VERSION)) && number("expires_at_ms") > Some(host.now_ms());
        let own = entry.get("digest").and_then(serde_json::Value::as_str) == Some(key.digest.as_str());
        (current && own).then(|| entry.get_mut("answer").map(serde_json::Value::take)).flatten()
    };
    timed(host, lookup).await
}

/// A lookup as a span and a fact of the request (hit or miss, and its time).
async fn timed<H: Host, T>(host: &H, lookup: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    let started = host.now_ms();
    let span = SpanGuard::start(host, SpanKind::Internal, "cache lookup".to_owned());
    let found = lookup.await;
    let hit = found.is_some();
    span.set("opencode.cache.result", if hit { "hit" } else { "miss" });
    let elapsed = host.now_ms().saturating_sub(started);
    trace::note(host, |facts| {
        facts.cache = Some(hit);
        facts.cache_ms = facts.cache_ms.saturating_add(elapsed);
    });
    found
}

async fn read<H: Host>(host: &H, key: &CacheKey) -> Option<Vec<u8>> {
    match host.kv_get(STORE, &key.slot).await {
        Ok(bytes) => bytes,
        Err(err) => {
            failed(host, "cache read failed", &key.slot, &err);
            None
        }
    }
}

async fn lookup<H: Host, T: DeserializeOwned>(host: &H, key: &CacheKey) -> Option<T> {
    let entry: Entry<T> = serde_json::from_slice(&read(host, key).await?).ok()?;
    (entry.v == VERSION && entry.digest == key.digest && entry.expires_at_ms > host.now_ms()).then_some(entry.answer)
}

/// Stores an answer for `ttl_secs`, after the response (a failure is logged, and lost).
pub fn put_later<H: Host, T: Serialize>(host: &H, key: CacheKey, answer: T, ttl_secs: u64) {
    let expires_at_ms = host.now_ms().saturating_add(ttl_secs.saturating_mul(1000));
    let entry = Entry { v: VERSION, digest: key.digest, expires_at_ms, answer };
    let key = key.slot;
    let Ok(bytes) = serde_json::to_vec(&entry) else { return };
    let store = host.clone();
    host.spawn_background(Box::pin(async move {
        // Workers KV refuses TTLs under 60 s; the stored deadline is what counts.
        if let Err(err) = store.kv_put(STORE, &key, bytes, Some(ttl_secs.max(60))).await {
            failed(&store, "cache write failed", &key, &err);
        }
    }));
}

/// A cache failure is a miss, never an error: it is logged, and the request goes on.
fn failed<H: Host>(host: &H, message: &str, key: &str, err: &HostError) {
    let error = err.to_string();
    let error = redact(&error);
    let fields = [("store", Field::Text(STORE)), ("key", Field::Text(key)), ("error", Field::Text(&error))];
    crate::log::warn(host, message, &fields);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::host::fake::FakeHost;

    #[test]
    fn a_ttl_too_long_to_count_in_milliseconds_keeps_the_entry_until_the_end_of_time() {
        let host = FakeHost::at(1_767_225_600_000);
        let answer = CachedAnswer { provider: "openai".into(), response: ChatResponse::default(), deltas: Vec::new() };
        // CACHE_TTL_SECS is configuration: ttl_secs * 1000 overflowed.
        let key = key("t", "chat", "", &[], "{}", 10);
        put_later(&host, key.clone(), answer.clone(), u64::MAX / 10);
        host.run_background();
        let entry: Entry<CachedAnswer> = serde_json::from_slice(&host.kv(STORE, &key.slot).unwrap()).unwrap();
        assert_eq!(entry.expires_at_ms, u64::MAX);
        assert_eq!(futures::executor::block_on(get::<_, CachedAnswer>(&host, &key)), Some(answer));
    }

    #[test]
    fn a_tenant_holds_at_most_its_slots_and_a_slot_answers_only_its_own_request() {
        let host = FakeHost::at(1_767_225_600_000);
        let answer = |text: &str| CachedAnswer {
            provider: "openai".into(),
            response: ChatResponse { text: text.into(), ..ChatResponse::default() },
            deltas: Vec::new(),
        };
        let request = |n: usize| format!("request {n}");
        let keys: Vec<CacheKey> = (0..50).map(|n| key("t", "chat", "", &[], &request(n), 3)).collect();
        let slots: std::collections::BTreeSet<&str> = keys.iter().map(|k| k.slot.as_str()).collect();
        assert_eq!(slots.len(), 3, "50 requests share the tenant's 3 slots");
        assert_ne!(key("other", "chat", "", &[], &request(0), 3).slot, keys[0].slot, "tenants never share a slot");
        // Two requests in one slot: the later answer takes it over, and the first is a miss.
        let (first, second) = keys
            .iter()
            .enumerate()
            .find_map(|(i, a)| keys[i + 1..].iter().find(|b| b.slot == a.slot).map(|b| (a.clone(), b.clone())))
            .unwrap();
        put_later(&host, first.clone(), answer("one"), 60);
        host.run_background();
        assert_eq!(futures::executor::block_on(get::<_, CachedAnswer>(&host, &first)), Some(answer("one")));
        put_later(&host, second.clone(), answer("two"), 60);
        host.run_background();
        assert_eq!(futures::executor::block_on(get::<_, CachedAnswer>(&host, &first)), None);
        assert_eq!(futures::executor::block_on(get::<_, CachedAnswer>(&host, &second)), Some(answer("two")));
    }
}
