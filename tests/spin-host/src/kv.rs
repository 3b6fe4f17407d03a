//! The key-value stores behind `spin:key-value`: in memory, or written through to a directory
//! (`--kv-dir`) so they survive a restart, like Spin's default SQLite store.
//!
//! On disk each store is a folder named after its label and each key a file named by the
//! key's hex encoding (keys may hold any character); a write goes to a temporary file first and
//! is renamed into place, so a crash never leaves a half-written value.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, Result};

/// One store.
#[derive(Debug)]
pub struct KvStore {
    data: Mutex<BTreeMap<String, Vec<u8>>>,
    dir: Option<PathBuf>,
}

impl KvStore {
    fn open(dir: Option<PathBuf>) -> Result<Self> {
        let mut data = BTreeMap::new();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(key) = name.to_str().and_then(decode_key) else {
                    continue; // temporary files and strangers
                };
                data.insert(key, std::fs::read(entry.path())?);
            }
        }
        Ok(Self { data: Mutex::new(data), dir })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A poisoned lock only means another request panicked mid-call; the map is still whole.
        self.data.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key).cloned()
    }

    pub fn exists(&self, key: &str) -> bool {
        self.lock().contains_key(key)
    }

    pub fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        let mut data = self.lock();
        if let Some(dir) = &self.dir {
            let path = dir.join(encode_key(key));
            let tmp = dir.join(format!(".tmp-{}", encode_key(key)));
            std::fs::write(&tmp, &value)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        data.insert(key.to_owned(), value);
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        let mut data = self.lock();
        if let Some(dir) = &self.dir {
            match std::fs::remove_file(dir.join(encode_key(key))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("deleting {key:?}: {e}")),
            }
        }
        data.remove(key);
        Ok(())
    }

    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// Every store the application declares, by label, shared by all components (as in Spin, two
/// components naming the same label see the same data).
#[derive(Debug, Default)]
pub struct KvStores {
    stores: HashMap<String, Arc<KvStore>>,
}

impl KvStores {
    /// Opens the named stores, in memory or under `dir`.
    pub fn open<'a>(labels: impl IntoIterator<Item = &'a str>, dir: Option<&Path>) -> Result<Self> {
        let mut stores = HashMap::new();
        for label in labels {
            if stores.contains_key(label) {
                continue;
            }
            let store_dir = dir.map(|d| d.join(encode_key(label)));
            stores.insert(label.to_owned(), Arc::new(KvStore::open(store_dir)?));
        }
        Ok(Self { stores })
    }

    pub fn get(&self, label: &str) -> Option<Arc<KvStore>> {
        self.stores.get(label).cloned()
    }
}

fn encode_key(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_key(name: &str) -> Option<String> {
    if !name.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..name.len())
        .step_by(2)
        .map(|i| name.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_file_names() {
        for key in ["", "a", "cache:v1/ü?*", "../etc/passwd"] {
            assert_eq!(decode_key(&encode_key(key)).as_deref(), Some(key));
        }
        assert_eq!(decode_key(".tmp-61"), None);
        assert_eq!(decode_key("6"), None);
    }

    #[test]
    fn a_file_backed_store_survives_reopening() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("spin-host-kv-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let stores = KvStores::open(["data"], Some(&dir))?;
            let store = stores.get("data").context("store")?;
            store.set("k/1", b"one".to_vec()).map_err(anyhow::Error::msg)?;
            store.set("k/2", b"two".to_vec()).map_err(anyhow::Error::msg)?;
            store.delete("k/2").map_err(anyhow::Error::msg)?;
            store.delete("missing").map_err(anyhow::Error::msg)?;
        }
        let stores = KvStores::open(["data"], Some(&dir))?;
        let store = stores.get("data").context("store")?;
        assert_eq!(store.get("k/1").as_deref(), Some(&b"one"[..]));
        assert_eq!(store.keys(), ["k/1"]);
        assert!(stores.get("cache").is_none());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
