//! Guard hooks: the operator's service screens a conversation before any model sees it. It
//! receives `{"mode", "model", "tenant", "messages"}` (and the request's `traceparent`) and answers
//! `{"action": "allow"}`, `{"action": "deny", "reason"}` or `{"action": "modify", "messages"}`.
//! Pure: the runtime sends, times out and decides what a failing guard means.

use bytes::Bytes;
use http::header::HeaderValue;
use serde_json::{json, Value};

use crate::model::Message;
use crate::outbound::Unbuildable;

/// The longest a guard may take unless `GUARD_TIMEOUT_MS` says otherwise.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// The longest reason passed on to the client.
const MAX_REASON_CHARS: usize = 500;

/// Where the guard is, how long it may take, and what its silence means.
#[derive(Clone, PartialEq, Eq)]
pub struct Guard {
    url: http::Uri,
    pub timeout_ms: u64,
    /// `GUARD_FAIL=open`: a slow or failing guard lets the request through (the default,
    /// `closed`, refuses it).
    pub fail_open: bool,
}

impl std::fmt::Debug for Guard {
    // The URL can carry credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("timeout_ms", &self.timeout_ms).field("fail_open", &self.fail_open).finish()
    }
}

/// What the guard decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(String),
    Modify(Vec<Message>),
}

impl Guard {
    /// From `GUARD_URL`, `GUARD_TIMEOUT_MS` and `GUARD_FAIL`; `None` without a URL. The error
    /// names the variable, never its value.
    pub fn from_vars(url: Option<&str>, timeout_ms: Option<&str>, fail: Option<&str>) -> Result<Option<Guard>, String> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else { return Ok(None) };
        let url = url
            .parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty()))
            .ok_or_else(|| "GUARD_URL must be an absolute http(s) URL".to_owned())?;
        let timeout_ms = match timeout_ms.map(str::trim).filter(|t| !t.is_empty()) {
            None => DEFAULT_TIMEOUT_MS,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .ok_or_else(|| "GUARD_TIMEOUT_MS must be a whole number from 1 to 60000".to_owned())?,
        };
        let fail_open = match fail.map(str::trim) {
            None | Some("" | "closed") => false,
            Some("open") => true,
            Some(_) => return Err("GUARD_FAIL must be `open` or `closed`".into()),
        };
        Ok(Some(Guard { url, timeout_ms, fail_open }))
    }

    /// The screening request for one conversation.
    pub fn request(
        &self,
        mode: &str,
        model: &str,
        tenant: Option<&str>,
        messages: &[Message],
    ) -> Result<http::Request<Bytes>, Unbuildable> {
        let body = json!({ "mode": mode, "model": model, "tenant": tenant, "messages": messages });
        let mut request = http::Request::new(Bytes::from(body.to_string()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.url.clone();
        request.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(request)
    }
}

/// The guard's answer, or what is wrong with it.
pub fn verdict(body: &[u8]) -> Result<Verdict, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "the guard's answer is not JSON".to_owned())?;
    match value.get("action").and_then(Value::as_str) {
        Some("allow") => Ok(Verdict::Allow),
        Some("deny") => {
            let reason = value.get("reason").and_then(Value::as_str).map(str::trim).filter(|r| !r.is_empty());
            let reason = reason.unwrap_or("the request was denied").chars().take(MAX_REASON_CHARS).collect();
            Ok(Verdict::Deny(reason))
        }
        Some("modify") => {
            let messages = value.get("messages").cloned().unwrap_or(Value::Null);
            let messages: Vec<Message> = serde_json::from_value(messages)
                .map_err(|err| format!("the guard's `messages` are not a conversation: {err}"))?;
            if messages.is_empty() {
                return Err("the guard's `messages` are empty".into());
            }
            Ok(Verdict::Modify(messages))
        }
        _ => Err("the guard's `action` is not allow, deny or modify".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_are_checked_and_named() {
        let guard = Guard::from_vars(Some("http://127.0.0.1:9/screen"), None, None).unwrap().unwrap();
        assert_eq!((guard.timeout_ms, guard.fail_open), (DEFAULT_TIMEOUT_MS, false));
        let open = Guard::from_vars(Some("https://g/x"), Some("150"), Some("open")).unwrap().unwrap();
        assert_eq!((open.timeout_ms, open.fail_open), (150, true));
        assert_eq!(Guard::from_vars(None, Some("x"), None), Ok(None));
        for (url, timeout, fail, needle) in [
            ("g", None, None, "GUARD_URL"),
            ("http://g", Some("0"), None, "GUARD_TIMEOUT_MS"),
            ("http://g", None, Some("sometimes"), "GUARD_FAIL"),
        ] {
            assert!(Guard::from_vars(Some(url), timeout, fail).unwrap_err().contains(needle));
        }
    }

    #[test]
    fn the_request_names_mode_model_tenant_and_messages() {
        let guard = Guard::from_vars(Some("http://127.0.0.1:9/screen"), None, None).unwrap().unwrap();
        let request = guard.request("chat", "gpt-4.1-mini", Some("acme"), &[Message::user("hi")]).unwrap();
        let body: Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(
            body,
            json!({"mode": "chat", "model": "gpt-4.1-mini", "tenant": "acme", "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn verdicts_are_read_and_bad_ones_refused() {
        assert_eq!(verdict(br#"{"action":"allow"}"#), Ok(Verdict::Allow));
        assert_eq!(verdict(br#"{"action":"deny","reason":"no secrets"}"#), Ok(Verdict::Deny("no secrets".into())));
        assert_eq!(verdict(br#"{"action":"deny"}"#), Ok(Verdict::Deny("the request was denied".into())));
        let modified = verdict(br#"{"action":"modify","messages":[{"role":"user","content":"hello"}]}"#).unwrap();
        assert_eq!(modified, Verdict::Modify(vec![Message::user("hello")]));
        for bad in [
            &b"nope"[..],
            br#"{"action":"maybe"}"#,
            br#"{"action":"modify","messages":[]}"#,
            br#"{"action":"modify","messages":[{"role":"wizard"}]}"#,
        ] {
            assert!(verdict(bad).is_err());
        }
    }
}
