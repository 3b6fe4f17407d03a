//! The control plane's state: API keys, tenants' limits, exact counters, the usage ledger and
//! the audit log, all over [`Host::sql`](crate::host::Host::sql) in the schema of
//! `migrations/0001_control_plane.sql`. Pure rules (roles, key format, windows) come from
//! `opencode_core::{access, limits}`; this is their I/O.

pub mod audit;
pub mod counters;
pub mod keys;
pub mod ledger;
pub mod tenants;

use crate::host::HostError;
use crate::sql::{Row, Value};

/// What can go wrong with the control plane's state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// The database failed; the request cannot be checked (fails closed).
    #[error("the control plane's database failed: {0}")]
    Store(#[from] HostError),
    /// A stored row could not be read back (a schema the code does not expect).
    #[error("the control plane's database holds an unreadable row: {0}")]
    Corrupt(&'static str),
}

/// The header that marks a call between the platform's functions as part of a client request
/// already admitted (counted once against its limits): an HMAC of the request id.
pub const ADMITTED_HEADER: &str = "x-opencode-admitted";

/// How long a key or a tenant's limits are remembered by an instance: the bound on how late a
/// revocation or a change takes effect.
pub const CACHE_MS: u64 = 5_000;

/// Reads column `i` of a row.
pub(crate) fn column(row: &Row, i: usize) -> &Value {
    row.get(i).unwrap_or(&Value::Null)
}

pub(crate) fn text(row: &Row, i: usize) -> Option<String> {
    column(row, i).as_str().map(str::to_owned)
}

pub(crate) fn int(row: &Row, i: usize) -> i64 {
    column(row, i).as_i64().unwrap_or(0)
}

pub(crate) fn uint(row: &Row, i: usize) -> u64 {
    u64::try_from(int(row, i)).unwrap_or(0)
}

/// A JSON column read as `T` (absent or unreadable is `None`).
pub(crate) fn json<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> Option<T> {
    column(row, i).as_str().and_then(|text| serde_json::from_str(text).ok())
}

/// `T` as a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_string(value).map_or(Value::Null, Value::Text)
}
