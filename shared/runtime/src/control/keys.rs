//! API keys: created (the key shown once, only its hash stored), listed, changed, revoked, and
//! looked up by hash for every request that presents one. An instance remembers a lookup for
//! [`CACHE_MS`], which bounds how late a revocation takes effect.

use std::rc::Rc;

use serde::Serialize;

use opencode_core::access::{self, Role};
use opencode_core::limits::{Budget, Limits};

use super::{budget_at, limit_values, limits_at, names_at, names_value, text, uint, ControlError, Recent};
use crate::host::Host;
use crate::sql::{Database, Row, Statement, Value};

/// A stored key, as the admin API shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    pub id: String,
    pub prefix: String,
    pub tenant: String,
    pub name: String,
    pub role: Role,
    /// Modes this key may use; `None`: all.
    pub modes: Option<Vec<String>>,
    /// Models this key may ask for; `None`: all.
    pub models: Option<Vec<String>>,
    pub limits: Limits,
    pub budget: Option<Budget>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub created_at: u64,
    pub created_by: String,
    pub revoked_at: Option<u64>,
}

impl KeyRecord {
    /// What the key's creator set, and a change may replace.
    pub fn settings(&self) -> KeySettings {
        KeySettings {
            name: self.name.clone(),
            role: self.role,
            modes: self.modes.clone(),
            models: self.models.clone(),
            limits: self.limits,
            budget: self.budget,
            expires_at: self.expires_at,
        }
    }

    /// Whether the key can still be used at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at.saturating_mul(1_000) > now_ms)
    }

    /// The counters' scope of this key.
    pub fn scope(&self) -> String {
        format!("key:{}", self.id)
    }
}

/// What a new key or a change sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeySettings {
    pub name: String,
    pub role: Role,
    pub modes: Option<Vec<String>>,
    pub models: Option<Vec<String>>,
    pub limits: Limits,
    pub budget: Option<Budget>,
    pub expires_at: Option<u64>,
}

const COLUMNS: &str =
    "id, prefix, tenant, name, role, modes, models, rpm, tpm, concurrency, budget_usd, budget_period, \
expires_at, created_at, created_by, revoked_at";

fn record(row: &Row) -> Result<KeyRecord, ControlError> {
    let role = text(row, 4).as_deref().and_then(Role::parse).ok_or(ControlError::Corrupt("a key's role"))?;
    let optional = |i| super::column(row, i).as_i64().map(|n| u64::try_from(n).unwrap_or(0));
    Ok(KeyRecord {
        id: text(row, 0).ok_or(ControlError::Corrupt("a key's id"))?,
        prefix: text(row, 1).unwrap_or_default(),
        tenant: text(row, 2).ok_or(ControlError::Corrupt("a key's tenant"))?,
        name: text(row, 3).unwrap_or_default(),
        role,
        modes: names_at(row, 5),
        models: names_at(row, 6),
        limits: limits_at(row, 7),
        budget: budget_at(row, 10),
        expires_at: optional(12),
        created_at: uint(row, 13),
        created_by: text(row, 14).unwrap_or_default(),
        revoked_at: optional(15),
    })
}

/// A new key for `tenant`: returns the key (shown once) and its record.
pub async fn create<H: Host>(
    host: &H,
    tenant: &str,
    settings: &KeySettings,
    actor: &str,
) -> Result<(String, KeyRecord), ControlError> {
    let mut random = [0u8; 96];
    let key = loop {
        host.random_bytes(&mut random);
        if let Some(key) = access::new_key(&random) {
            break key;
        }
    };
    let mut id = [0u8; 8];
    host.random_bytes(&mut id);
    let record = KeyRecord {
        id: format!("key_{}", opencode_core::hex(&id)),
        prefix: access::key_shown_prefix(&key),
        tenant: tenant.to_owned(),
        name: settings.name.clone(),
        role: settings.role,
        modes: settings.modes.clone(),
        models: settings.models.clone(),
        limits: settings.limits,
        budget: settings.budget,
        expires_at: settings.expires_at,
        created_at: host.now_ms() / 1_000,
        created_by: actor.to_owned(),
        revoked_at: None,
    };
    let mut params = vec![
        record.id.clone().into(),
        record.prefix.clone().into(),
        record.tenant.clone().into(),
        record.name.clone().into(),
        record.role.as_str().into(),
        names_value(record.modes.as_ref()),
        names_value(record.models.as_ref()),
    ];
    params.extend(limit_values(&record.limits, record.budget.as_ref()));
    params.extend([
        record.expires_at.into(),
        record.created_at.into(),
        record.created_by.clone().into(),
        Value::Null,
        access::key_hash(&key).into(),
    ]);
    let statement = Statement::new(
        format!(
            "INSERT INTO api_keys ({COLUMNS}, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             ?15, ?16, ?17)"
        ),
        params,
    );
    host.sql(Database::Main, &statement).await?;
    Ok((key, record))
}

/// Keys of `tenant` (every tenant's with `None`), newest first, `limit` after the cursor (a key
/// id from the previous page).
pub async fn list<H: Host>(
    host: &H,
    tenant: Option<&str>,
    limit: u64,
    after: Option<&str>,
) -> Result<Vec<KeyRecord>, ControlError> {
    let statement = Statement::new(
        format!(
            "SELECT {COLUMNS} FROM api_keys WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR \
             (created_at, id) < (SELECT created_at, id FROM api_keys WHERE id = ?2)) \
             ORDER BY created_at DESC, id DESC LIMIT ?3"
        ),
        vec![tenant.into(), after.into(), limit.into()],
    );
    host.sql(Database::Main, &statement).await?.iter().map(record).collect()
}

/// One key by id, within `tenant` unless `None` (an owner's view): another tenant's key is not
/// found, never forbidden.
pub async fn get<H: Host>(host: &H, tenant: Option<&str>, id: &str) -> Result<Option<KeyRecord>, ControlError> {
    let statement = Statement::new(
        format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)"),
        vec![id.into(), tenant.into()],
    );
    host.sql(Database::Main, &statement).await?.first().map(record).transpose()
}

/// Replaces the settings of key `id` of `tenant`; the key as it now is, `None` when no such key.
pub async fn update<H: Host>(
    host: &H,
    tenant: &str,
    id: &str,
    settings: &KeySettings,
) -> Result<Option<KeyRecord>, ControlError> {
    let mut params = vec![
        id.into(),
        tenant.into(),
        settings.name.clone().into(),
        settings.role.as_str().into(),
        names_value(settings.modes.as_ref()),
        names_value(settings.models.as_ref()),
        settings.expires_at.into(),
    ];
    params.extend(limit_values(&settings.limits, settings.budget.as_ref()));
    let statement = Statement::new(
        format!(
            "UPDATE api_keys SET name = ?3, role = ?4, modes = ?5, models = ?6, expires_at = ?7, rpm = ?8, \
             tpm = ?9, concurrency = ?10, budget_usd = ?11, budget_period = ?12 WHERE id = ?1 AND tenant = ?2 \
             RETURNING {COLUMNS}"
        ),
        params,
    );
    forget_all();
    host.sql(Database::Main, &statement).await?.first().map(record).transpose()
}

/// Revokes a key (idempotent: the first revocation's time stays); `false` when no such key.
pub async fn revoke<H: Host>(host: &H, tenant: Option<&str>, id: &str) -> Result<bool, ControlError> {
    let statement = Statement::new(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2) \
         RETURNING id",
        vec![id.into(), tenant.into(), (host.now_ms() / 1_000).into()],
    );
    forget_all();
    Ok(!host.sql(Database::Main, &statement).await?.is_empty())
}

thread_local! {
    /// Lookups of this instance: by `h:<hash>` or `i:<id>`, when they were made, and the answer
    /// (`None`: no such key, remembered too, so a flood of made-up keys costs one read each).
    static SEEN: Recent<Option<Rc<KeyRecord>>> = Recent::default();
}

fn forget_all() {
    SEEN.with(Recent::clear);
}

async fn remembered<H: Host>(
    host: &H,
    cache_key: String,
    statement: Statement,
) -> Result<Option<Rc<KeyRecord>>, ControlError> {
    let now = host.now_ms();
    if let Some(found) = SEEN.with(|seen| seen.get(&cache_key, now)) {
        return Ok(found);
    }
    let found = host.sql(Database::Main, &statement).await?.first().map(record).transpose()?.map(Rc::new);
    SEEN.with(|seen| seen.put(cache_key, now, found.clone()));
    Ok(found)
}

/// The key a request presented, by its hash (remembered for [`CACHE_MS`]); live or not, the
/// caller decides.
pub async fn find_by_key<H: Host>(host: &H, key: &str) -> Result<Option<Rc<KeyRecord>>, ControlError> {
    let hash = access::key_hash(key);
    let statement =
        Statement::new(format!("SELECT {COLUMNS} FROM api_keys WHERE hash = ?1"), vec![hash.clone().into()]);
    remembered(host, format!("h:{hash}"), statement).await
}

/// A key by id (a token exchanged for a key names it), remembered like [`find_by_key`].
pub async fn find_by_id<H: Host>(host: &H, id: &str) -> Result<Option<Rc<KeyRecord>>, ControlError> {
    let statement = Statement::new(format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"), vec![id.into()]);
    remembered(host, format!("i:{id}"), statement).await
}

#[doc(hidden)]
/// Tests: forget what this thread remembered.
pub fn forget_remembered() {
    forget_all();
}
