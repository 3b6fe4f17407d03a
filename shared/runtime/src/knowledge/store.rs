//! The KV layout of a tenant's knowledge, in the `data` store:
//!
//! ```text
//! kn/<tenant>/manifest             JSON: the embedding model the index was built with
//! kn/<tenant>/index                JSON: the catalog, every document id and its parts (catalog.rs)
//! kn/<tenant>/doc/<id>             JSON: a document's metadata (chunks, parts, dates, ...)
//! kn/<tenant>/vec/<id>/<part>      binary (codec.rs): chunks with their vectors and texts
//! ```
//!
//! Nothing here lists keys: what a tenant holds is in its catalog.
//!
//! `<tenant>` is 32 hex digits of SHA-256 over the JWT's tenant, so any tenant name makes a
//! short, safe key and tenants never share a prefix. Document ids are 1 to 128 characters of
//! `A-Z a-z 0-9 . _ - : @`, used as they are; the longest key is 173 bytes, inside both
//! Spin's (256) and Workers KV's (512) limit. A part holds at most `PART_BYTES`, half of
//! Spin's 1 MB value limit (Workers KV allows 25 MiB).
//!
//! Workers KV is eventually consistent: a write is visible at once where it was made, and
//! within about a minute everywhere else. A document just ingested may therefore be missing
//! from a search served elsewhere for that long, and one just deleted may still be listed (its
//! parts then read as missing and are skipped). Spin's stores are consistent.

use serde::{Deserialize, Serialize};

use super::KnowledgeError;
use crate::host::{Host, HostError};

/// The KV store that holds knowledge.
pub const STORE: &str = "data";
/// The most a vector part's value may hold.
pub const PART_BYTES: usize = 512 * 1024;
pub const MAX_ID_LEN: usize = 128;
/// The longest key this layout makes (checked by a test against both stores' limits).
#[cfg_attr(not(test), allow(dead_code))]
pub const MAX_KEY_LEN: usize = "kn/".len() + 32 + "/vec/".len() + MAX_ID_LEN + "/".len() + 4;

/// The keys of one tenant's knowledge.
#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
}

impl Keys {
    pub fn for_tenant(tenant: &str) -> Self {
        let hash = hmac_sha256::Hash::hash(tenant.as_bytes());
        let hex = opencode_core::hex(hash.get(..16).unwrap_or_default());
        Keys { base: format!("kn/{hex}/") }
    }

    pub fn manifest(&self) -> String {
        format!("{}manifest", self.base)
    }

    pub fn catalog(&self) -> String {
        format!("{}index", self.base)
    }

    pub fn document(&self, id: &str) -> String {
        format!("{}doc/{id}", self.base)
    }

    pub fn part(&self, id: &str, n: u32) -> String {
        format!("{}vec/{id}/{n:04}", self.base)
    }
}

/// Checks a document id: what the key layout and URLs can carry as is.
pub fn validate_id(id: &str) -> Result<(), KnowledgeError> {
    // `.` and `..` would be rewritten by URL normalisation on the way to GET or DELETE.
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KnowledgeError::Invalid(format!("a document id is 1 to {MAX_ID_LEN} characters of A-Z a-z 0-9 . _ - : @")))
    }
}

/// The embedding model an index was built with. Changing the configured model while
/// documents exist is refused (409): vectors of different models cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub provider: String,
    pub model: String,
    /// The dimensions asked for (`EMBEDDING_DIMENSIONS`), if any.
    pub requested_dimensions: Option<u32>,
    /// The dimensions the vectors have.
    pub dims: u32,
    pub created_ms: u64,
}

impl Manifest {
    /// `provider/model` (and `@dims` when dimensions were asked for): what must match.
    pub fn model_id(&self) -> String {
        model_id(&self.provider, &self.model, self.requested_dimensions)
    }

    /// Identifies the model inside every stored part.
    pub fn model_hash(&self) -> [u8; 8] {
        let hash = hmac_sha256::Hash::hash(format!("{}\n{}", self.model_id(), self.dims).as_bytes());
        let mut out = [0u8; 8];
        out.copy_from_slice(hash.get(..8).unwrap_or(&[0; 8]));
        out
    }
}

pub fn model_id(provider: &str, model: &str, dimensions: Option<u32>) -> String {
    match dimensions {
        Some(d) => format!("{provider}/{model}@{d}"),
        None => format!("{provider}/{model}"),
    }
}

/// What is known about a stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentMeta {
    pub id: String,
    /// `text` or `markdown`.
    pub format: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub chunks: u32,
    pub parts: u32,
    /// Length of the text in characters.
    pub chars: u64,
    /// The embedding model (`provider/model`).
    pub model: String,
    pub created_ms: u64,
    pub updated_ms: u64,
}

pub fn kv_failed(err: HostError) -> KnowledgeError {
    KnowledgeError::Store(err.to_string())
}

/// Reads and parses a JSON value; a value that does not parse counts as missing.
pub async fn get_json<H: Host, T: serde::de::DeserializeOwned>(
    host: &H,
    key: &str,
) -> Result<Option<T>, KnowledgeError> {
    let bytes = host.kv_get(STORE, key).await.map_err(kv_failed)?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// KV reads in flight at once for one request.
const KV_CONCURRENCY: usize = 8;

/// Reads many keys, `KV_CONCURRENCY` at a time, in order.
pub async fn get_many<H: Host>(host: &H, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, KnowledgeError> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let reads = keys.into_iter().map(|key| async move { host.kv_get(STORE, &key).await.map_err(kv_failed) });
    stream::iter(reads).buffered(KV_CONCURRENCY).try_collect().await
}

pub async fn put_json<H: Host, T: Serialize>(host: &H, key: &str, value: &T) -> Result<(), KnowledgeError> {
    let bytes =
        serde_json::to_vec(value).map_err(|e| KnowledgeError::Store(format!("could not serialize {key}: {e}")))?;
    host.kv_put(STORE, key, bytes, None).await.map_err(kv_failed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_stay_within_both_stores_limits_and_tenants_apart() {
        let id = "a".repeat(MAX_ID_LEN);
        validate_id(&id).unwrap();
        let keys = Keys::for_tenant(&"租户".repeat(500));
        let longest = keys.part(&id, 9999);
        assert_eq!(longest.len(), MAX_KEY_LEN);
        const { assert!(MAX_KEY_LEN <= 256 && MAX_KEY_LEN <= 512) };
        assert!(keys.document(&id).len() <= MAX_KEY_LEN);
        let other = Keys::for_tenant("another");
        let base = |k: &Keys| k.catalog().trim_end_matches("index").to_owned();
        assert!(!base(&keys).starts_with(&base(&other)) && !base(&other).starts_with(&base(&keys)));
        assert_eq!(keys.part("doc", 3), format!("{}vec/doc/0003", base(&keys)));
        // One id's parts never share a prefix with another id's.
        assert!(!keys.part("ab", 0).starts_with(keys.part("a", 0).trim_end_matches("0000")));
        const { assert!(PART_BYTES < 1_000_000) };
    }

    #[test]
    fn ids_outside_the_charset_or_length_are_refused() {
        for bad in ["", "a/b", "a b", "é", "a%2F", "..", &"x".repeat(MAX_ID_LEN + 1), "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["doc-1", "handbook.v2", "user@example.com", "ns:item_3"] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn the_model_hash_changes_with_model_and_dimensions() {
        let m = Manifest {
            provider: "openai".into(),
            model: "text-embedding-3-small".into(),
            requested_dimensions: None,
            dims: 1536,
            created_ms: 0,
        };
        let other = Manifest { model: "text-embedding-3-large".into(), ..m.clone() };
        let smaller = Manifest { requested_dimensions: Some(256), dims: 256, ..m.clone() };
        assert_ne!(m.model_hash(), other.model_hash());
        assert_ne!(m.model_hash(), smaller.model_hash());
        assert_eq!(m.model_id(), "openai/text-embedding-3-small");
        assert_eq!(smaller.model_id(), "openai/text-embedding-3-small@256");
    }
}
