//! The record of one try against one provider, and the rules for what happens next.

use serde::Serialize;

/// How one attempt ended. Serialized into error bodies, so it carries no upstream text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The provider answered (for streams: the first token arrived).
    Ok,
    /// The provider answered with an error status.
    Status { status: u16 },
    /// No answer (or no first token) within the per-attempt timeout.
    Timeout { after_ms: u64 },
    /// The connection failed or broke before an answer.
    Connect,
    /// The answer was not in the vendor's format (or the stream ended early).
    Malformed,
    /// The provider sent an error event before the first token.
    StreamError,
    /// The runtime refused the request (for example, an outbound host not allowed).
    Refused,
    /// The provider's configuration cannot produce a request.
    Misconfigured,
    /// The request cannot be put in this provider's format (see `ProviderError::InvalidRequest`).
    InvalidRequest,
    /// The answer was well-formed but held nothing usable (a web search with no results).
    NoResults,
    /// The guard (`GUARD_URL`) denied the request: no provider was called.
    Blocked,
    /// The guard failed or was too slow, and `GUARD_FAIL=closed`: no provider was called.
    GuardUnavailable,
}

impl Outcome {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Outcome::Timeout { .. })
    }

    /// Worth trying the same provider again? Client errors (400, 401, 403, 404, 422, ...) and
    /// configuration problems are not: they would fail the same way.
    pub fn is_retryable(&self) -> bool {
        match self {
            Outcome::Status { status } => matches!(status, 408 | 409 | 429 | 500..=599),
            Outcome::Timeout { .. } | Outcome::Connect | Outcome::Malformed | Outcome::StreamError => true,
            Outcome::Ok
            | Outcome::Refused
            | Outcome::Misconfigured
            | Outcome::InvalidRequest
            | Outcome::NoResults
            | Outcome::Blocked
            | Outcome::GuardUnavailable => false,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Status { status } => write!(f, "http status {status}"),
            Outcome::Timeout { after_ms } => write!(f, "timed out after {after_ms} ms"),
            Outcome::Connect => f.write_str("connection failed"),
            Outcome::Malformed => f.write_str("malformed response"),
            Outcome::StreamError => f.write_str("error event before the first token"),
            Outcome::Refused => f.write_str("request refused by the runtime"),
            Outcome::Misconfigured => f.write_str("provider misconfigured"),
            Outcome::InvalidRequest => f.write_str("request not valid for this provider"),
            Outcome::NoResults => f.write_str("no usable results"),
            Outcome::Blocked => f.write_str("blocked by the guard"),
            Outcome::GuardUnavailable => f.write_str("the guard did not answer"),
        }
    }
}

/// One try against one provider (of models, or of web search). Serialized into answers and
/// error bodies, so it carries no upstream text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub provider: String,
    /// The model asked for; empty for web search.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub elapsed_ms: u64,
    /// The vendor said the key is missing or wrong: worth an operator's attention even when
    /// another provider answered.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rejected_key: bool,
    /// How long the upstream asked to wait before trying again (`Retry-After`), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The upstream's own words, for logs only: never serialized to clients (vendors echo
    /// parts of keys and prompts in their messages).
    #[serde(skip)]
    pub detail: String,
}

/// How hard the executor tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Per-attempt budget: until the whole body (non-streamed) or the first token (streamed);
    /// also the longest silence tolerated between streamed events.
    pub attempt_timeout_ms: u64,
    /// Retries on the same provider after the first try (retryable failures only).
    pub max_retries: u32,
    /// Base of the exponential backoff between retries.
    pub backoff_base_ms: u64,
    /// The longest backoff, and the longest `Retry-After` honoured: a provider asking for
    /// more is skipped in favour of the next one instead of stalling the request.
    pub retry_after_cap_ms: u64,
    /// The longest a streamed answer may take from the request to its end, however steadily
    /// it trickles (`STREAM_MAX_MS`).
    pub stream_max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempt_timeout_ms: 30_000,
            max_retries: 1,
            backoff_base_ms: 200,
            retry_after_cap_ms: 5_000,
            stream_max_ms: 600_000,
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0-based): exponential with equal jitter, capped.
    /// `random` is any u64 from the host.
    pub fn backoff_ms(&self, retry: u32, random: u64) -> u64 {
        let full = self.backoff_base_ms.saturating_mul(1u64 << retry.min(16)).min(self.retry_after_cap_ms);
        let half = full / 2;
        half.saturating_add(random.checked_rem(half.saturating_add(1)).unwrap_or(0))
    }

    /// How long to wait before retry number `retry` after a failure that asked for
    /// `retry_after_ms` (or not): that wait, else jittered backoff. `None` when the asked wait
    /// is over the cap: waiting would stall the caller, so the next provider is tried now.
    pub fn retry_delay_ms<H: crate::host::Host>(
        &self,
        retry: u32,
        retry_after_ms: Option<u64>,
        host: &H,
    ) -> Option<u64> {
        match retry_after_ms {
            Some(ms) if ms > self.retry_after_cap_ms => None,
            Some(ms) => Some(ms),
            None => {
                let mut random = [0u8; 8];
                host.random_bytes(&mut random);
                Some(self.backoff_ms(retry, u64::from_le_bytes(random)))
            }
        }
    }
}

/// Parses a `Retry-After` value (delta-seconds or an HTTP date) into milliseconds from `now_ms`.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    if let Some(secs) = opencode_core::decimal(value) {
        if secs >= 0.0 {
            return Some((secs * 1000.0) as u64);
        }
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
    Some(at_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_fractions_and_dates() {
        assert_eq!(parse_retry_after("2", 0), Some(2000));
        assert_eq!(parse_retry_after(" 0.5 ", 0), Some(500));
        // Thu, 01 Jan 1970 00:00:10 GMT is 10 s after the epoch.
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4_000), Some(6_000));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 20_000), Some(0));
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-1", 0), None);
    }

    #[test]
    fn client_errors_are_not_retried_but_overload_is() {
        for status in [400, 401, 403, 404, 422] {
            assert!(!Outcome::Status { status }.is_retryable(), "{status}");
        }
        for status in [408, 409, 429, 500, 502, 503, 529] {
            assert!(Outcome::Status { status }.is_retryable(), "{status}");
        }
        assert!(Outcome::Timeout { after_ms: 1 }.is_retryable());
        assert!(!Outcome::Refused.is_retryable());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy { backoff_base_ms: 100, retry_after_cap_ms: 1000, ..Default::default() };
        assert_eq!(policy.backoff_ms(0, 0), 50);
        assert_eq!(policy.backoff_ms(0, 30), 80);
        assert_eq!(policy.backoff_ms(2, 0), 200);
        assert_eq!(policy.backoff_ms(10, 0), 500);
        assert!(policy.backoff_ms(10, 12345) <= 1000);
    }
}
