//! Guard hooks: the operator's service screens a conversation before any model sees it. It
//! receives `{"mode", "model", "tenant", "messages"}` (and the request's `traceparent`) and answers
//! `{"action": "allow"}`, `{"action": "deny", "reason"}` or `{"action": "modify", "messages"}`.
//! Pure: the runtime sends, times out and decides what a failing guard means. Messages are
//! written and read by hand (`role`, `content`, `tool_calls`, `tool_call_id`): serde's derives
//! for the whole message model cost every function several KiB of Wasm.

use bytes::Bytes;
use http::header::HeaderValue;
use serde_json::{json, Value};

use crate::model::{Message, Role};
use crate::outbound::{self, Unbuildable};

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
        let url = outbound::absolute_url(url).ok_or_else(|| "GUARD_URL must be an absolute http(s) URL".to_owned())?;
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
        let body = json!({ "mode": mode, "model": model, "tenant": tenant, "messages": messages_json(messages) });
        let mut request = http::Request::new(Bytes::from(body.to_string()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.url.clone();
        request.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(request)
    }
}

/// A conversation as the guard reads it: each message's role, content, calls and call id (an
/// image is shown as its count, `images`).
pub fn messages_json(messages: &[Message]) -> Value {
    let message = |m: &Message| {
        let mut out = serde_json::Map::new();
        out.insert("role".into(), Value::from(m.role.as_str()));
        out.insert("content".into(), Value::from(m.content.as_str()));
        if !m.tool_calls.is_empty() {
            let calls = m.tool_calls.iter().map(|c| json!({ "id": c.id, "name": c.name, "arguments": c.arguments }));
            out.insert("tool_calls".into(), Value::Array(calls.collect()));
        }
        if let Some(id) = &m.tool_call_id {
            out.insert("tool_call_id".into(), Value::from(id.as_str()));
        }
        if !m.images.is_empty() {
            out.insert("images".into(), Value::from(m.images.len()));
        }
        Value::Object(out)
    };
    Value::Array(messages.iter().map(message).collect())
}

/// The guard's answer, or what is wrong with it. A modified conversation of as many messages,
/// in the same roles, keeps each message's calls, images and reasoning with its new content;
/// any other is taken as written (`role`, `content`, `tool_call_id`).
pub fn verdict(body: &[u8], sent: &[Message]) -> Result<Verdict, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "the guard's answer is not JSON".to_owned())?;
    match value.get("action").and_then(Value::as_str) {
        Some("allow") => Ok(Verdict::Allow),
        Some("deny") => {
            let reason = value.get("reason").and_then(Value::as_str).map(str::trim).filter(|r| !r.is_empty());
            let reason = reason.unwrap_or("the request was denied").chars().take(MAX_REASON_CHARS).collect();
            Ok(Verdict::Deny(reason))
        }
        Some("modify") => {
            let written = value.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty());
            let written = written.ok_or_else(|| "the guard's `messages` are not a list of messages".to_owned())?;
            let mut messages = Vec::with_capacity(written.len());
            for (n, item) in written.iter().enumerate() {
                let field = |name: &str| item.get(name).and_then(Value::as_str);
                let role = match field("role") {
                    Some("system") => Role::System,
                    Some("user") => Role::User,
                    Some("assistant") => Role::Assistant,
                    Some("tool") => Role::Tool,
                    _ => return Err(format!("the guard's message {n} has no valid `role`")),
                };
                let content = field("content").ok_or_else(|| format!("the guard's message {n} has no `content`"))?;
                let kept = sent.get(n).filter(|m| written.len() == sent.len() && m.role == role);
                let mut message = kept.cloned().unwrap_or_else(|| Message::new(role, ""));
                message.content = content.to_owned();
                if kept.is_none() {
                    message.tool_call_id = field("tool_call_id").map(str::to_owned);
                }
                messages.push(message);
            }
            Ok(Verdict::Modify(messages))
        }
        _ => Err("the guard's `action` is not allow, deny or modify".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
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
        let sent = [Message::user("hi")];
        assert_eq!(verdict(br#"{"action":"allow"}"#, &sent), Ok(Verdict::Allow));
        assert_eq!(
            verdict(br#"{"action":"deny","reason":"no secrets"}"#, &sent),
            Ok(Verdict::Deny("no secrets".into()))
        );
        assert_eq!(verdict(br#"{"action":"deny"}"#, &sent), Ok(Verdict::Deny("the request was denied".into())));
        let modified =
            verdict(br#"{"action":"modify","messages":[{"role":"user","content":"hello"}]}"#, &sent).unwrap();
        assert_eq!(modified, Verdict::Modify(vec![Message::user("hello")]));
        for bad in [
            &b"nope"[..],
            br#"{"action":"maybe"}"#,
            br#"{"action":"modify","messages":[]}"#,
            br#"{"action":"modify","messages":[{"role":"wizard"}]}"#,
        ] {
            assert!(verdict(bad, &sent).is_err());
        }
    }

    #[test]
    fn a_rewrite_keeps_what_the_guard_does_not_see_and_a_new_conversation_is_taken_as_written() {
        let mut asked = Message::user("my card is 4111");
        let source = crate::model::ImageSource::Url { url: "https://x/cat.png".into() };
        asked.images = vec![crate::model::Image { source, detail: None }];
        let sent = [Message::system("be brief"), asked];
        let shown = messages_json(&sent);
        assert_eq!(shown[1], json!({"role": "user", "content": "my card is 4111", "images": 1}));
        let body = json!({"action": "modify", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "my card is [card]"}]});
        let Verdict::Modify(modified) = verdict(body.to_string().as_bytes(), &sent).unwrap() else { panic!() };
        assert_eq!(modified[1].content, "my card is [card]");
        assert_eq!(modified[1].images, sent[1].images, "the image stays");
        let body = json!({"action": "modify", "messages": [{"role": "system", "content": "safety first"}, {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]});
        let Verdict::Modify(modified) = verdict(body.to_string().as_bytes(), &sent).unwrap() else { panic!() };
        assert_eq!(modified, vec![Message::system("safety first"), Message::system("be brief"), Message::user("hi")]);
    }
}
