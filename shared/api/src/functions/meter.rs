//! Metering of mode requests, read off the answer itself so that no mode has to report: the
//! status (errors), `x-cache` (cache lookups and hits, as the header tells the caller), the
//! `usage` of a JSON answer or of a stream's `usage` event, and a stream's `error` event. A
//! stream is recorded when it ends (or the client goes away), so its latency is the whole
//! answer's.

use bytes::Bytes;
use futures::stream::StreamExt as _;
use serde::Deserialize;

use opencode_core::model::Usage;
use opencode_core::routing::{Mode, Tier};
use opencode_runtime::host::{Body, Host};
use opencode_runtime::metrics::{self, Sample};

/// The tier a mode runs on unless the gateway decided otherwise.
pub fn default_tier(mode: Mode) -> Tier {
    match mode {
        Mode::Code | Mode::Research => Tier::System2,
        Mode::Chat | Mode::Knowledge | Mode::Search | Mode::Thinking => Tier::System1,
    }
}

#[derive(Deserialize)]
struct UsageJson {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    /// Absent when the model has no price.
    #[serde(default)]
    cost_usd: f64,
}

#[derive(Deserialize)]
struct AnswerUsage {
    usage: Option<UsageJson>,
}

/// The tokens and the dollars an answer's `usage` reports.
fn usage_of(json: &[u8]) -> Option<(Usage, f64)> {
    let usage = serde_json::from_slice::<AnswerUsage>(json).ok()?.usage?;
    let tokens = Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, ..Usage::default() };
    Some((tokens, usage.cost_usd))
}

/// Records `response` once its body has been delivered; returns it unchanged otherwise.
pub fn metered<H: Host>(
    host: &H,
    mut sample: Sample,
    started_ms: u64,
    response: http::Response<Body>,
) -> http::Response<Body> {
    sample.error = response.status().as_u16() >= 400;
    sample.cache = match response.headers().get("x-cache").map(http::HeaderValue::as_bytes) {
        Some(b"hit") => Some(true),
        Some(b"miss") => Some(false),
        _ => None,
    };
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Full(bytes) => {
            if !sample.error {
                (sample.usage, sample.cost_usd) = usage_of(&bytes).unwrap_or_default();
            }
            sample.latency_ms = host.now_ms().saturating_sub(started_ms);
            metrics::record(host, &sample);
            Body::Full(bytes)
        }
        Body::Stream(stream) => {
            let mut watch = StreamWatch { host: host.clone(), sample, started_ms };
            Body::Stream(
                stream
                    .map(move |chunk| {
                        if let Ok(bytes) = &chunk {
                            watch.see(bytes);
                        }
                        chunk
                    })
                    .boxed_local(),
            )
        }
    };
    http::Response::from_parts(parts, body)
}

/// Records an answer that failed before it had a body.
pub fn record_error<H: Host>(host: &H, mut sample: Sample, started_ms: u64) {
    sample.error = true;
    sample.latency_ms = host.now_ms().saturating_sub(started_ms);
    metrics::record(host, &sample);
}

/// Watches a stream's frames; records the sample when dropped, which is when the stream ended
/// or the client went away.
struct StreamWatch<H: Host> {
    host: H,
    sample: Sample,
    started_ms: u64,
}

impl<H: Host> StreamWatch<H> {
    fn see(&mut self, chunk: &Bytes) {
        // Frames are `event: <name>\ndata: <json>\n\n`; a chunk may hold several.
        for frame in chunk.split(|&b| b == b'\n').collect::<Vec<_>>().windows(2) {
            let [event, data] = frame else { continue };
            let data = data.strip_prefix(b"data: ").unwrap_or(data);
            match *event {
                b"event: usage" => {
                    (self.sample.usage, self.sample.cost_usd) =
                        usage_of(&[b"{\"usage\":", data, b"}"].concat()).unwrap_or_default()
                }
                b"event: error" => self.sample.error = true,
                _ => {}
            }
        }
    }
}

impl<H: Host> Drop for StreamWatch<H> {
    fn drop(&mut self) {
        self.sample.latency_ms = self.host.now_ms().saturating_sub(self.started_ms);
        metrics::record(&self.host, &self.sample);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_is_read_from_answers_and_usage_frames() {
        assert_eq!(
            usage_of(br#"{"id":"x","usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7,"cost_usd":0.25},"message":{}}"#),
            Some((Usage { input_tokens: 3, output_tokens: 4, ..Usage::default() }, 0.25))
        );
        assert_eq!(usage_of(br#"{"id":"x"}"#), None);
        assert_eq!(usage_of(b"not json"), None);
    }
}
