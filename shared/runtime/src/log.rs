//! Structured logs: one JSON line per record (`ts`, `level`, `msg`, then the record's fields),
//! written through [`Host::log`]: the console on Workers (Workers Logs, `wrangler tail`),
//! stderr on Spin. A record is made where the thing it reports happens; text that came from
//! outside (a vendor's error message) goes through [`opencode_core::redact`] first.

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

/// A field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Text(&'a str),
    Number(u64),
    Flag(bool),
    /// Already JSON (an array of attempts): written as it is.
    Json(&'a str),
}

/// One log record, borrowed from where it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub level: Level,
    /// When it happened, in milliseconds since the Unix epoch.
    pub ts_ms: u64,
    pub message: &'a str,
    /// The request it belongs to, when known ([`crate::host::RequestHost`] sets it).
    pub request_id: Option<&'a str>,
    pub fields: &'a [(&'a str, Field<'a>)],
}

impl Record<'_> {
    /// The record as one JSON line (no newline): `ts`, `level`, `msg`, `request_id`, then the
    /// fields. Assembled here rather than through a map of JSON values, which would cost every
    /// function's Wasm more than the few lines it saves.
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(128);
        line.push_str("{\"ts\":\"");
        line.push_str(&rfc3339(self.ts_ms));
        line.push_str("\",\"level\":\"");
        line.push_str(self.level.as_str());
        line.push('"');
        push_pair(&mut line, "msg", Field::Text(self.message));
        if let Some(id) = self.request_id {
            push_pair(&mut line, "request_id", Field::Text(id));
        }
        for (key, value) in self.fields {
            push_pair(&mut line, key, *value);
        }
        line.push('}');
        line
    }
}

/// `fields` as one JSON object (a log field holding a list of them, say).
pub fn json_object(fields: &[(&str, Field<'_>)]) -> String {
    let mut object = String::with_capacity(64);
    for (key, value) in fields {
        push_pair(&mut object, key, *value);
    }
    // `push_pair` leads with a comma: the first becomes the brace.
    if object.is_empty() {
        object.push('{');
    } else {
        object.replace_range(..1, "{");
    }
    object.push('}');
    object
}

/// `,"key":value`, the key and a text value escaped as JSON strings.
fn push_pair(line: &mut String, key: &str, value: Field<'_>) {
    line.push(',');
    push_string(line, key);
    line.push(':');
    match value {
        Field::Text(text) => push_string(line, text),
        Field::Number(n) => line.push_str(&n.to_string()),
        Field::Flag(flag) => line.push_str(if flag { "true" } else { "false" }),
        Field::Json(json) => line.push_str(json),
    }
}

/// `text` as a JSON string, escaped by serde_json (already in every function).
fn push_string(line: &mut String, text: &str) {
    line.push_str(&serde_json::Value::from(text).to_string());
}

/// Logs `message` with `fields` at `level`, now.
pub fn log<H: Host>(host: &H, level: Level, message: &str, fields: &[(&str, Field<'_>)]) {
    host.log(&Record { level, ts_ms: host.now_ms(), message, request_id: None, fields });
}

/// Logs a warning: something failed that the request survived.
pub fn warn<H: Host>(host: &H, message: &str, fields: &[(&str, Field<'_>)]) {
    log(host, Level::Warn, message, fields);
}

/// `2026-12-07T05:10:00.123Z` for a time in milliseconds since the Unix epoch.
pub fn rfc3339(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = opencode_core::calendar::civil_from_days(days);
    let (hour, minute, second) = (day_secs / 3600, day_secs % 3600 / 60, day_secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
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
    fn objects_are_json() {
        assert_eq!(json_object(&[]), "{}");
        let object = json_object(&[("a", Field::Number(1)), ("b", Field::Text("x\"y"))]);
        assert_eq!(object, r#"{"a":1,"b":"x\"y"}"#);
    }

    #[test]
    fn the_largest_timestamp_is_a_date_not_a_panic() {
        assert_eq!(rfc3339(u64::MAX), "584556019-04-03T14:25:51.615Z");
    }

    #[test]
    fn a_record_is_one_json_line_that_parses_back() {
        let fields = [
            ("provider", Field::Text("open\"ai\n\u{1}")),
            ("status", Field::Number(503)),
            ("retry", Field::Flag(true)),
        ];
        let record = Record {
            level: Level::Warn,
            ts_ms: 0,
            message: "attempt failed",
            request_id: Some("req_1"),
            fields: &fields,
        };
        let line = record.to_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "warn");
        assert_eq!(value["msg"], "attempt failed");
        assert_eq!(value["request_id"], "req_1");
        assert_eq!(value["provider"], "open\"ai\n\u{1}");
        assert_eq!(value["status"], 503);
        assert_eq!(value["retry"], true);
        assert_eq!(value["ts"], "1970-01-01T00:00:00.000Z");
    }
}
