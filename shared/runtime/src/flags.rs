//! The feature flags a request runs with: the file's defaults (compiled in), the deploy-time
//! variables, then the platform's and the caller's tenant's overrides from the `data` KV store.
//! KV is read-mostly and eventually consistent, which is right here: on Workers a change is
//! seen within KV's read cache (60 s), on Spin at once.

use serde_json::{Map, Value as Json};

use opencode_core::flags::{self, Flag, Flags, Source};

use crate::config::ConfigError;
use crate::host::Host;
use crate::log::Field;

/// The KV store the overrides live in.
pub const STORE: &str = "data";
const PLATFORM_KEY: &str = "flags/platform";

/// Whose overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Platform,
    Tenant(&'a str),
}

impl Scope<'_> {
    fn key(self) -> String {
        match self {
            Scope::Platform => PLATFORM_KEY.to_owned(),
            Scope::Tenant(tenant) => format!("flags/tenant/{tenant}"),
        }
    }
}

/// The file's defaults under the deploy-time variables; a malformed variable names itself.
pub fn from_variables<H: Host>(host: &H) -> Result<Flags, ConfigError> {
    let mut flags = Flags::default();
    for flag in Flag::ALL {
        let Some(variable) = flag.key().variable else { continue };
        if let Some(text) = host.var(variable.name).filter(|text| !text.trim().is_empty()) {
            flags.set_variable(*flag, &text).map_err(ConfigError::NotConfigured)?;
        }
    }
    Ok(flags)
}

/// Lays the platform's overrides, then `tenant`'s, over `flags`. An unreadable store or
/// document is logged and skipped: the lower layers still hold.
pub async fn load<H: Host>(host: &H, flags: &mut Flags, tenant: Option<&str>) {
    let (platform, own) = overrides(host, tenant).await;
    lay(flags, &platform, Source::Platform);
    lay(flags, &own, Source::Tenant);
}

/// The platform's stored overrides and `tenant`'s (empty without a tenant), read at once.
pub async fn overrides<H: Host>(host: &H, tenant: Option<&str>) -> (Map<String, Json>, Map<String, Json>) {
    let platform = stored(host, Scope::Platform);
    match tenant {
        Some(tenant) => futures::join!(platform, stored(host, Scope::Tenant(tenant))),
        None => (platform.await, Map::new()),
    }
}

/// Lays one stored document over `flags`.
pub fn lay(flags: &mut Flags, doc: &Map<String, Json>, source: Source) {
    // Stored documents were checked when written; one the schema no longer takes is skipped.
    if let Ok(found) = flags::read_fields(doc, false) {
        flags.apply(&found, source);
    }
}

/// The overrides stored for `scope` (empty when none, or unreadable).
pub async fn stored<H: Host>(host: &H, scope: Scope<'_>) -> Map<String, Json> {
    let key = scope.key();
    match host.kv_get(STORE, &key).await {
        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(Json::Object(doc)) => doc,
            _ => {
                crate::log::warn(host, "stored flags unreadable", &[("key", Field::Text(&key))]);
                Map::new()
            }
        },
        Ok(None) => Map::new(),
        Err(err) => {
            let error = err.to_string();
            crate::log::warn(host, "flags read failed", &[("key", Field::Text(&key)), ("error", Field::Text(&error))]);
            Map::new()
        }
    }
}

/// What stopped an update.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The change is not a flags document: names the key.
    #[error("{0}")]
    Invalid(String),
    #[error("the flags could not be stored: {0}")]
    Store(String),
}

/// Lays a partial document over `scope`'s stored overrides (a `null` takes one away) and
/// stores the result, which it returns.
pub async fn update<H: Host>(host: &H, scope: Scope<'_>, change: &Json) -> Result<Map<String, Json>, UpdateError> {
    let Json::Object(change) = change else {
        return Err(UpdateError::Invalid(
            "the body must be a flags document (a JSON object in the file's shape)".into(),
        ));
    };
    flags::read_fields(change, false).map_err(|p| UpdateError::Invalid(p.to_string()))?;
    let mut doc = stored(host, scope).await;
    flags::merge(&mut doc, change);
    let bytes = serde_json::to_vec(&doc).map_err(|err| UpdateError::Store(err.to_string()))?;
    host.kv_put(STORE, &scope.key(), bytes, None).await.map_err(|err| UpdateError::Store(err.to_string()))?;
    Ok(doc)
}
