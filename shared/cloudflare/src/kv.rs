//! Workers KV behind the core's logical store names: store `cache` is the KV namespace bound
//! as `CACHE`, `data` as `DATA`.

use opencode_runtime::HostError;
use worker::kv::KvStore;

use crate::convert::js_message;
use crate::host::binding_name;

/// Workers KV refuses an `expiration_ttl` under 60 seconds.
const MIN_TTL_SECS: u64 = 60;

fn store(env: &worker::Env, name: &str) -> Result<KvStore, HostError> {
    let binding = binding_name(name);
    env.kv(&binding).map_err(|_| HostError::Kv(format!("no KV namespace bound as {binding}")))
}

fn kv_error(error: worker::kv::KvError) -> HostError {
    match error {
        // The message only: the JS value's Debug form carries a whole stack trace.
        worker::kv::KvError::JavaScript(value) => HostError::Kv(js_message(&value)),
        other => HostError::Kv(other.to_string()),
    }
}

pub(crate) async fn get(env: &worker::Env, name: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
    store(env, name)?.get(key).bytes().await.map_err(kv_error)
}

pub(crate) async fn put(
    env: &worker::Env,
    name: &str,
    key: &str,
    value: &[u8],
    ttl_hint_secs: Option<u64>,
) -> Result<(), HostError> {
    let mut put = store(env, name)?.put_bytes(key, value).map_err(kv_error)?;
    // Only a hint: the core stores its own deadline, so a shorter TTL is simply not passed on.
    if let Some(ttl) = ttl_hint_secs.filter(|ttl| *ttl >= MIN_TTL_SECS) {
        put = put.expiration_ttl(ttl);
    }
    put.execute().await.map_err(kv_error)
}

pub(crate) async fn delete(env: &worker::Env, name: &str, key: &str) -> Result<(), HostError> {
    store(env, name)?.delete(key).await.map_err(kv_error)
}
