//! The tenant's catalog, `kn/<tenant>/index`: every document id with the number of vector
//! parts it may have stored. Listing, search and deletion read it instead of listing keys:
//! Spin's key-value store can only list a whole store, every tenant's keys at once, which no
//! request may do.
//!
//! The catalog is read, changed and written back. Two writes of one tenant's catalog at the
//! same moment could lose one of them, so every change is checked by reading the catalog again
//! and redone when another writer's version replaced it. On Spin (one consistent store) that
//! settles every race but two writes landing within the same read-back; on Workers KV a change
//! made at another location can take up to a minute to be seen, so a document ingested there at
//! the same moment may need its ingest repeated (the README says so).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::{self, Keys};
use super::KnowledgeError;
use crate::host::Host;

/// The most documents one tenant may hold: the catalog is one value, within Spin's 1 MB.
pub const MAX_DOCUMENTS: usize = 5_000;

/// How many times a change is redone when a concurrent writer replaced it.
const ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Each document's id and the parts it may have stored (`vec/<id>/0000` upwards).
    pub docs: BTreeMap<String, u32>,
    /// Changed (at random) by every change: the index's version, in the keys of cached
    /// knowledge answers, so a document added, replaced or deleted is never answered from
    /// one made before.
    #[serde(default)]
    pub revision: String,
}

impl Catalog {
    /// The keys of every part of every document, in id order, at most `limit`; and whether
    /// there were more.
    pub fn part_keys(&self, keys: &Keys, limit: usize) -> (Vec<String>, bool) {
        let mut out = Vec::new();
        for (id, parts) in &self.docs {
            for n in 0..*parts {
                if out.len() == limit {
                    return (out, true);
                }
                out.push(keys.part(id, n));
            }
        }
        (out, false)
    }
}

/// The tenant's catalog (empty when it has none).
pub async fn read<H: Host>(host: &H, keys: &Keys) -> Result<Catalog, KnowledgeError> {
    Ok(store::get_json(host, &keys.catalog()).await?.unwrap_or_default())
}

/// The version of the tenant's index (empty before its first document).
pub async fn revision<H: Host>(host: &H, tenant: &str) -> Result<String, KnowledgeError> {
    Ok(read(host, &Keys::for_tenant(tenant)).await?.revision)
}

/// Sets (or with `None`, removes) one document's entry, and checks that the change held.
pub async fn set<H: Host>(host: &H, keys: &Keys, id: &str, parts: Option<u32>) -> Result<(), KnowledgeError> {
    for _ in 0..ATTEMPTS {
        let mut catalog = read(host, keys).await?;
        if catalog.docs.get(id).copied() == parts {
            return Ok(());
        }
        match parts {
            Some(parts) => {
                if !catalog.docs.contains_key(id) && catalog.docs.len() >= MAX_DOCUMENTS {
                    return Err(KnowledgeError::Invalid(format!(
                        "this knowledge base holds {MAX_DOCUMENTS} documents, the most it may: delete some first"
                    )));
                }
                catalog.docs.insert(id.to_owned(), parts);
            }
            None => {
                catalog.docs.remove(id);
            }
        }
        let mut revision = [0u8; 8];
        host.random_bytes(&mut revision);
        catalog.revision = opencode_core::hex(&revision);
        store::put_json(host, &keys.catalog(), &catalog).await?;
    }
    // Checked once more: the last write may have been the one that held.
    if read(host, keys).await?.docs.get(id).copied() == parts {
        return Ok(());
    }
    Err(KnowledgeError::Store("the document catalog kept changing under this write: try again".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_keys_follow_the_catalog_and_stop_at_the_limit() {
        let keys = Keys::for_tenant("t");
        let catalog = Catalog { docs: BTreeMap::from([("a".into(), 2), ("b".into(), 1)]), ..Catalog::default() };
        let (all, more) = catalog.part_keys(&keys, 10);
        assert_eq!(all, [keys.part("a", 0), keys.part("a", 1), keys.part("b", 0)]);
        assert!(!more);
        let (two, more) = catalog.part_keys(&keys, 2);
        assert_eq!(two.len(), 2);
        assert!(more);
    }
}
