//! What the simulator remembers between requests: the request log and the `*K` counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use http::request::Parts;
use serde_json::{json, Map, Value};

use crate::faults::{self, Counters, FaultPlan};

/// Header names whose values are credentials: logged as `***`.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "x-subscription-token",
    "api-key",
    "cookie",
];
/// Query parameters whose values are credentials.
const SECRET_PARAMS: &[&str] = &["key", "api_key"];
const REDACTED: &str = "***";

#[derive(Debug, Default)]
struct Inner {
    log: Vec<Value>,
    counters: Counters,
}

/// Shared by every connection of one simulator.
#[derive(Debug, Default)]
pub(crate) struct State {
    inner: Mutex<Inner>,
    seq: AtomicU64,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the log half-written: keep going.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn record(&self, entry: Value) {
        self.lock().log.push(entry);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.lock().log.clone()
    }

    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.log.clear();
        inner.counters.clear();
    }

    pub fn plan(&self, raw: &str, label: &str, message: &str) -> FaultPlan {
        faults::plan(raw, label, message, &mut self.lock().counters)
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// One `/_sim/requests` entry, credentials redacted.
pub(crate) fn entry(provider: &str, parts: &Parts, body: &Value) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let name = name.as_str();
        let value = if SECRET_HEADERS.contains(&name) {
            REDACTED.to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        let joined = match headers.get(name).and_then(Value::as_str) {
            Some(prev) => format!("{prev}, {value}"),
            None => value,
        };
        headers.insert(name.to_owned(), Value::String(joined));
    }
    json!({
        "provider": provider,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": redact_query(parts.uri.query().unwrap_or_default()),
        "headers": headers,
        "body": redact_body(body),
    })
}

/// Tavily's older clients send the key as `api_key` in the body.
fn redact_body(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(key) = body.get_mut("api_key") {
        *key = Value::String(REDACTED.to_owned());
    }
    body
}

fn redact_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMS.contains(&name) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keys_are_redacted() {
        assert_eq!(redact_query("alt=sse&key=abc"), "alt=sse&key=***");
        assert_eq!(redact_query(""), "");
    }
}
