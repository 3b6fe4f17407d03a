//! The control plane's state: API keys, tenants' limits, exact counters, the usage ledger and
//! the audit log, all over [`Host::sql`](crate::host::Host::sql) in the schema of
//! `migrations/0001_control_plane.sql`. Pure rules (roles, key format, windows) come from
//! `opencode_core::{access, limits}`; this is their I/O.

pub mod audit;
pub mod counters;
pub mod keys;
pub mod ledger;
pub mod tenants;

use opencode_core::limits::{Budget, Limits, Period};

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

/// What an instance remembered lately, each entry for [`CACHE_MS`]: a short list searched in
/// order (a handful of keys and tenants per instance; no hash table in the Wasm for it).
pub(crate) struct Recent<T> {
    entries: std::cell::RefCell<Vec<(String, u64, T)>>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent { entries: std::cell::RefCell::new(Vec::new()) }
    }
}

/// The most entries remembered; a new one past it replaces the oldest.
const MAX_RECENT: usize = 64;

impl<T: Clone> Recent<T> {
    pub(crate) fn get(&self, key: &str, now_ms: u64) -> Option<T> {
        let entries = self.entries.borrow();
        let (_, at, value) = entries.iter().find(|(k, _, _)| k == key)?;
        (now_ms.saturating_sub(*at) < CACHE_MS).then(|| value.clone())
    }

    pub(crate) fn put(&self, key: String, now_ms: u64, value: T) {
        let mut entries = self.entries.borrow_mut();
        entries.retain(|(k, _, _)| *k != key);
        if entries.len() >= MAX_RECENT {
            entries.remove(0);
        }
        entries.push((key, now_ms, value));
    }

    pub(crate) fn clear(&self) {
        self.entries.borrow_mut().clear();
    }
}

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

fn optional_uint(row: &Row, i: usize) -> Option<u64> {
    column(row, i).as_i64().map(|n| u64::try_from(n).unwrap_or(0))
}

// Limits, budgets and allow-lists are plain columns, not JSON: reading them on every request then
// needs no deserializer in the functions' Wasm.

/// `rpm, tpm, concurrency` from column `i` on.
pub(crate) fn limits_at(row: &Row, i: usize) -> Limits {
    Limits {
        rpm: optional_uint(row, i),
        tpm: optional_uint(row, i.saturating_add(1)),
        concurrency: optional_uint(row, i.saturating_add(2)),
    }
}

/// `budget_usd, budget_period` from column `i` on.
pub(crate) fn budget_at(row: &Row, i: usize) -> Option<Budget> {
    let usd = column(row, i).as_f64()?;
    let period = column(row, i.saturating_add(1)).as_str().and_then(Period::parse)?;
    Some(Budget { usd, period })
}

/// The five columns of `limits` and `budget`.
pub(crate) fn limit_values(limits: &Limits, budget: Option<&Budget>) -> [Value; 5] {
    let period = budget.map(|b| match b.period {
        Period::Day => "day",
        Period::Month => "month",
    });
    [limits.rpm.into(), limits.tpm.into(), limits.concurrency.into(), budget.map(|b| b.usd).into(), period.into()]
}

/// An allow-list: one name per line.
pub(crate) fn names_at(row: &Row, i: usize) -> Option<Vec<String>> {
    column(row, i).as_str().map(|text| text.split('\n').map(str::to_owned).collect())
}

pub(crate) fn names_value(names: Option<&Vec<String>>) -> Value {
    names.map(|names| names.join("\n")).into()
}
