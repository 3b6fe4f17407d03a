//! Event webhooks as the Standard Webhooks specification has them: a JSON body
//! `{"type", "timestamp", "data"}` sent with `webhook-id`, `webhook-timestamp` (Unix seconds)
//! and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the
//! secret, which is `whsec_` and base64). Pure: the runtime sends, retries and logs.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

use crate::outbound;

/// Every event the platform sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    RequestCompleted,
    RequestFailed,
    BudgetExceeded,
    RateLimited,
    KeyCreated,
    KeyRevoked,
    FlagsUpdated,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::RequestCompleted,
        EventType::RequestFailed,
        EventType::BudgetExceeded,
        EventType::RateLimited,
        EventType::KeyCreated,
        EventType::KeyRevoked,
        EventType::FlagsUpdated,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::RequestCompleted => "request.completed",
            EventType::RequestFailed => "request.failed",
            EventType::BudgetExceeded => "budget.exceeded",
            EventType::RateLimited => "rate_limited",
            EventType::KeyCreated => "key.created",
            EventType::KeyRevoked => "key.revoked",
            EventType::FlagsUpdated => "flags.updated",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Where events go, signed with what, and which.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhooks {
    url: http::Uri,
    secret: Vec<u8>,
    events: u8,
    /// Prompts, answers and new keys may be sent (`WEBHOOK_CONTENT=true`).
    pub content: bool,
}

impl std::fmt::Debug for Webhooks {
    // The URL can carry credentials and the secret is one: neither is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("events", &self.events).field("content", &self.content).finish()
    }
}

impl Webhooks {
    /// From `WEBHOOK_URL`, `WEBHOOK_SECRET`, `WEBHOOK_EVENTS` (comma-separated, default all) and
    /// `WEBHOOK_CONTENT`; `None` without a URL. The error names the variable, never its value.
    pub fn from_vars(
        url: Option<&str>,
        secret: Option<&str>,
        events: Option<&str>,
        content: Option<&str>,
    ) -> Result<Option<Webhooks>, String> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else { return Ok(None) };
        let url =
            outbound::absolute_url(url).ok_or_else(|| "WEBHOOK_URL must be an absolute http(s) URL".to_owned())?;
        let secret = secret
            .map(str::trim)
            .and_then(|s| s.strip_prefix("whsec_"))
            .and_then(base64_decode)
            .filter(|bytes| !bytes.is_empty())
            .ok_or_else(|| {
                "WEBHOOK_SECRET must be `whsec_` followed by base64 (a Standard Webhooks secret)".to_owned()
            })?;
        let events = match events.map(str::trim).filter(|e| !e.is_empty()) {
            None => EventType::ALL.iter().fold(0, |bits, e| bits | e.bit()),
            Some(list) => {
                let mut bits = 0;
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let event = EventType::ALL.iter().find(|e| e.as_str() == name).ok_or_else(|| {
                        let known: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
                        format!(
                            "WEBHOOK_EVENTS names `{}`, not one of {}",
                            name.chars().take(40).collect::<String>(),
                            known.join(", ")
                        )
                    })?;
                    bits |= event.bit();
                }
                bits
            }
        };
        let content = match content.map(str::trim) {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(_) => return Err("WEBHOOK_CONTENT must be true or false".into()),
        };
        Ok(Some(Webhooks { url, secret, events, content }))
    }

    /// Whether `event` is sent.
    pub fn wants(&self, event: EventType) -> bool {
        self.events & event.bit() != 0
    }

    /// One delivery attempt of `body` as message `id` at `timestamp` (Unix seconds).
    pub fn request(&self, id: &str, timestamp: u64, body: &str) -> Result<http::Request<Bytes>, outbound::Unbuildable> {
        let signature = sign(&self.secret, id, timestamp, body);
        let header = |value: &str| {
            HeaderValue::from_str(value)
                .map_err(|_| outbound::Unbuildable("a webhook header is not a header value".into()))
        };
        let mut request = http::Request::new(Bytes::from(body.to_owned()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(HeaderName::from_static("webhook-id"), header(id)?);
        headers.insert(HeaderName::from_static("webhook-timestamp"), HeaderValue::from(timestamp));
        headers.insert(HeaderName::from_static("webhook-signature"), header(&signature)?);
        Ok(request)
    }
}

/// The body of one event: `{"type", "timestamp" (RFC 3339), "data"}`.
pub fn body(event: EventType, timestamp: &str, data: serde_json::Value) -> String {
    serde_json::json!({ "type": event.as_str(), "timestamp": timestamp, "data": data }).to_string()
}

/// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under `secret`.
pub fn sign(secret: &[u8], id: &str, timestamp: u64, body: &str) -> String {
    let content = format!("{id}.{timestamp}.{body}");
    let mac = hmac_sha256::HMAC::mac(content.as_bytes(), secret);
    format!("v1,{}", base64_encode(&mac))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the signature's alphabet), by hand: four characters per three
/// bytes.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3).saturating_mul(4));
    for chunk in bytes.chunks(3) {
        let [a, b, c] = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let n = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            let digit = BASE64.get(((n >> shift) & 63) as usize).copied().unwrap_or(b'=');
            out.push(if i <= chunk.len() { char::from(digit) } else { '=' });
        }
    }
    out
}

/// Standard base64 (padding optional) to bytes; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len().saturating_mul(3) / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = BASE64.iter().position(|b| *b == byte)?;
        bits = bits << 6 | u32::try_from(value).ok()?;
        count = count.wrapping_add(6);
        if count >= 8 {
            count = count.wrapping_sub(8);
            out.push(((bits >> count) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base64_round_trips_as_the_standard_alphabet_writes_it() {
        for (bytes, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (&[0xfb, 0xff][..], "+/8="),
        ] {
            assert_eq!(base64_encode(bytes), text);
            assert_eq!(base64_decode(text).as_deref(), Some(bytes));
        }
        assert_eq!(base64_decode("a*b"), None);
    }

    #[test]
    fn the_signature_is_the_specifications_example() {
        // The Standard Webhooks reference libraries' test vector.
        let secret = base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn configuration_is_checked_and_named() {
        let ok =
            Webhooks::from_vars(Some("http://127.0.0.1:9/hook"), Some("whsec_c2VjcmV0"), None, None).unwrap().unwrap();
        assert!(EventType::ALL.iter().all(|e| ok.wants(*e)) && !ok.content);
        let some = Webhooks::from_vars(
            Some("https://h/x"),
            Some("whsec_c2VjcmV0"),
            Some("key.created, rate_limited"),
            Some("true"),
        )
        .unwrap()
        .unwrap();
        assert!(some.wants(EventType::KeyCreated) && some.wants(EventType::RateLimited));
        assert!(!some.wants(EventType::RequestCompleted) && some.content);
        assert_eq!(Webhooks::from_vars(None, None, None, None), Ok(None));
        for (url, secret, events, needle) in [
            ("ftp://x", "whsec_c2VjcmV0", None, "WEBHOOK_URL"),
            ("https://h", "c2VjcmV0", None, "WEBHOOK_SECRET"),
            ("https://h", "whsec_***", None, "WEBHOOK_SECRET"),
            ("https://h", "whsec_c2VjcmV0", Some("request.done"), "WEBHOOK_EVENTS names `request.done`"),
        ] {
            let err = Webhooks::from_vars(Some(url), Some(secret), events, None).unwrap_err();
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains("c2VjcmV0"), "never the secret: {err}");
        }
    }

    #[test]
    fn a_request_carries_the_three_headers_and_the_body_as_signed() {
        let hooks =
            Webhooks::from_vars(Some("http://127.0.0.1:9/hook"), Some("whsec_c2VjcmV0"), None, None).unwrap().unwrap();
        let text = body(EventType::KeyRevoked, "2026-12-07T00:00:00.000Z", serde_json::json!({"key_id": "k1"}));
        let request = hooks.request("msg_1", 1_700_000_000, &text).unwrap();
        assert_eq!(request.uri().to_string(), "http://127.0.0.1:9/hook");
        assert_eq!(request.headers()["webhook-id"], "msg_1");
        assert_eq!(request.headers()["webhook-timestamp"], "1700000000");
        assert_eq!(request.headers()["webhook-signature"], sign(b"secret", "msg_1", 1_700_000_000, &text).as_str());
        assert_eq!(request.body().as_ref(), text.as_bytes());
        assert_eq!(text, r#"{"data":{"key_id":"k1"},"timestamp":"2026-12-07T00:00:00.000Z","type":"key.revoked"}"#);
    }
}
