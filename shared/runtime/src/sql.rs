//! SQL at the host boundary: the statement and value types every runtime's database speaks.
//!
//! The control plane (API keys, limits, the usage ledger, the audit log, exact counters) lives
//! in SQLite-dialect databases: D1 and a Durable Object's own SQLite storage on Workers,
//! `spin:sqlite` on Spin, an in-memory SQLite in the testkit. Each call runs **one** statement,
//! which SQLite runs atomically; nothing here spans two statements (Spin's connections may be
//! shared between instances, so no interactive transaction is safe), which is why every
//! read-modify-write of the control plane is a single statement (`INSERT ... ON CONFLICT ...
//! WHERE ... RETURNING`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The schema, applied by `wrangler d1 migrations apply` on Workers and by `spin up --sqlite
/// @migrations/0001_control_plane.sql` (or spin-host's `--sqlite`) on Spin. Every statement is
/// idempotent (`IF NOT EXISTS`), because Spin applies the file at every start.
pub const SCHEMA: &str = include_str!("../../../migrations/0001_control_plane.sql");

/// The exact counters' table alone: a Durable Object creates it in its own storage when it
/// starts (the rest of the schema lives in D1). The same statement opens [`SCHEMA`].
pub const COUNTERS_TABLE: &str = "CREATE TABLE IF NOT EXISTS counters (scope TEXT PRIMARY KEY, window_start INTEGER NOT NULL, requests INTEGER NOT NULL, tokens INTEGER NOT NULL, inflight INTEGER NOT NULL, touched_ms INTEGER NOT NULL, period TEXT NOT NULL, spent_micros INTEGER NOT NULL)";

/// Which database a statement runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database<'a> {
    /// Keys, tenants' limits, the usage ledger, the audit log: the D1 binding `DB` on Workers,
    /// the `default` database on Spin.
    Main,
    /// The exact counters of one scope (`key:<id>` or `tenant:<name>`): on Workers the Durable
    /// Object of class `Counters` named by the scope (binding `COUNTERS`), so each key's and
    /// tenant's counters are serialised by their own object and no object is global; on Spin
    /// the `counters` table of the `default` database.
    Counters(&'a str),
}

/// One of SQLite's storage classes, bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A row: the values of the statement's result columns, in order.
pub type Row = Vec<Value>;

/// One statement with its positional parameters (`?1`, `?2`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub params: Vec<Value>,
}

impl Statement {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Statement { sql: sql.into(), params }
    }
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(*n),
            // D1 hands back some integers as JSON numbers that arrive as reals.
            Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => Some(*r as i64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Real(r) => Some(*r),
            Value::Integer(n) => Some(*n as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Integer(n)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(r: f64) -> Self {
        Value::Real(r)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Integer(i64::from(b))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_counters_table_opens_the_schema_as_the_durable_object_creates_it() {
        assert!(super::SCHEMA.contains(&format!("{};", super::COUNTERS_TABLE)));
    }
}
