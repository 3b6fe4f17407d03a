//! The System 1 answer cache: one model call's answer, kept in the `cache` KV store.
//!
//! The key is a SHA-256 over everything that changes the output (messages, the provider chain
//! with each model, temperature, top_p, max_tokens, stop, seed, reasoning, tools, tool_choice,
//! response_format, mode) and the
//! tenant, so a hit never crosses tenants and fits any store's key limit (Spin: 256 bytes).
//! Neither Spin KV nor Workers KV (minimum TTL 60 s) can expire entries on our schedule, so the
//! deadline is stored with the value and checked on read.

use serde::{Deserialize, Serialize};

use opencode_core::model::{ChatRequest, ChatResponse};
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
struct Entry {
    /// Format version: an entry of another version is a miss.
    v: u8,
    expires_at_ms: u64,
    answer: CachedAnswer,
}

const VERSION: u8 = 1;

/// The key for one request of `tenant` in `mode` through `chain`.
pub fn key(tenant: &str, mode: &str, chain: &[ProviderConfig], request: &ChatRequest) -> String {
    #[derive(Serialize)]
    struct Keyed<'a> {
        tenant: &'a str,
        mode: &'a str,
        chain: Vec<(&'a str, &'a str, &'a str)>,
        request: &'a ChatRequest,
    }
    let keyed = Keyed {
        tenant,
        mode,
        chain: chain.iter().map(|p| (p.name.as_str(), p.base_url.as_str(), p.model.as_str())).collect(),
        request,
    };
    // Serialising plain structs cannot fail; an empty input would still give a valid key.
    let bytes = serde_json::to_vec(&keyed).unwrap_or_default();
    format!("s1/{}", opencode_core::hex(&hmac_sha256::Hash::hash(&bytes)))
}

/// Reads an entry; a missing, expired, unreadable or foreign-version entry is a miss, and a
/// store failure is a miss too (the cache must never fail a request).
/// The lookup is a span and a fact of the request (hit or miss, and its time).
pub async fn get<H: Host>(host: &H, key: &str) -> Option<CachedAnswer> {
    let started = host.now_ms();
    let span = SpanGuard::start(host, SpanKind::Internal, "cache lookup".to_owned());
    let found = lookup(host, key).await;
    let hit = found.is_some();
    span.set("opencode.cache.result", if hit { "hit" } else { "miss" });
    let elapsed = host.now_ms().saturating_sub(started);
    trace::note(host, |facts| {
        facts.cache = Some(hit);
        facts.cache_ms = facts.cache_ms.saturating_add(elapsed);
    });
    found
}

async fn lookup<H: Host>(host: &H, key: &str) -> Option<CachedAnswer> {
    let bytes = match host.kv_get(STORE, key).await {
        Ok(bytes) => bytes?,
        Err(err) => {
            failed(host, "cache read failed", key, &err);
            return None;
        }
    };
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    (entry.v == VERSION && entry.expires_at_ms > host.now_ms()).then_some(entry.answer)
}

/// Stores an answer for `ttl_secs`, after the response (a failure is logged, and lost).
pub fn put_later<H: Host>(host: &H, key: String, answer: CachedAnswer, ttl_secs: u64) {
    let entry =
        Entry { v: VERSION, expires_at_ms: host.now_ms().saturating_add(ttl_secs.saturating_mul(1000)), answer };
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
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::host::fake::FakeHost;

    #[test]
    fn a_ttl_too_long_to_count_in_milliseconds_keeps_the_entry_until_the_end_of_time() {
        let host = FakeHost::at(1_767_225_600_000);
        let answer = CachedAnswer { provider: "openai".into(), response: ChatResponse::default(), deltas: Vec::new() };
        // CACHE_TTL_SECS is configuration: ttl_secs * 1000 overflowed.
        put_later(&host, "k".into(), answer.clone(), u64::MAX / 10);
        host.run_background();
        let entry: Entry = serde_json::from_slice(&host.kv(STORE, "k").unwrap()).unwrap();
        assert_eq!(entry.expires_at_ms, u64::MAX);
        assert_eq!(futures::executor::block_on(get(&host, "k")), Some(answer));
    }
}
