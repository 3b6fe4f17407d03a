//! Structured logs: one JSON line per record (`ts`, `level`, `msg`, then the record's fields),
//! written through [`Host::log`]: the console on Workers (Workers Logs, `wrangler tail`),
//! stderr on Spin. A record is made where the thing it reports happens; text that came from
//! outside (a vendor's error message) goes through [`opencode_core::redact`] first.

use serde_json::{Map, Value};

use crate::host::Host;

/// How much a record matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One log record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub level: Level,
    /// When it happened, in milliseconds since the Unix epoch.
    pub ts_ms: u64,
    pub message: String,
    pub fields: Map<String, Value>,
}

impl Record {
    /// The record as one JSON line (no newline).
    pub fn to_line(&self) -> String {
        let mut line = Map::new();
        line.insert("ts".into(), Value::String(rfc3339(self.ts_ms)));
        line.insert("level".into(), Value::String(self.level.as_str().into()));
        line.insert("msg".into(), Value::String(self.message.clone()));
        for (key, value) in &self.fields {
            line.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(line).to_string()
    }
}

/// Logs `message` with `fields` at `level`, now.
pub fn log<H: Host>(host: &H, level: Level, message: &str, fields: Map<String, Value>) {
    host.log(&Record { level, ts_ms: host.now_ms(), message: message.to_owned(), fields });
}

/// Logs a warning: something failed that the request survived.
pub fn warn<H: Host>(host: &H, message: &str, fields: Map<String, Value>) {
    log(host, Level::Warn, message, fields);
}

/// `2026-12-07T05:10:00.123Z` for a time in milliseconds since the Unix epoch.
pub fn rfc3339(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (day_secs / 3600, day_secs % 3600 / 60, day_secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
// Cannot overflow: the one caller's `days` is a u64 of milliseconds / 86_400_000 (< 2^38), and
// no intermediate exceeds days + 719_468; the algorithm keeps each difference non-negative.
#[allow(clippy::arithmetic_side_effects)]
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_796_540_999_999), "2026-12-06T07:09:59.999Z");
    }

    #[test]
    fn the_largest_timestamp_is_a_date_not_a_panic() {
        assert_eq!(rfc3339(u64::MAX), "584556019-04-03T14:25:51.615Z");
    }

    #[test]
    fn a_record_is_one_json_line_whose_own_keys_come_first() {
        let mut fields = Map::new();
        fields.insert("provider".into(), "openai".into());
        fields.insert("msg".into(), "ignored: the record's own key wins".into());
        let record = Record { level: Level::Warn, ts_ms: 0, message: "attempt failed".into(), fields };
        let line = record.to_line();
        assert!(!line.contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "warn");
        assert_eq!(value["msg"], "attempt failed");
        assert_eq!(value["provider"], "openai");
        assert_eq!(value["ts"], "1970-01-01T00:00:00.000Z");
    }
}
