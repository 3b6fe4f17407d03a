//! The end of every request: its `server-timing` header, its one log line, its metrics, and its
//! trace sent to the collector. A streamed answer ends when its body does (or the client
//! leaves), so all four wait for that.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{Stream, StreamExt as _};

use opencode_core::telemetry::AttrValue;
use opencode_runtime::host::{Body, ByteStream, Host, HostError};
use opencode_runtime::log::{self, Field, Level};
use opencode_runtime::metrics::{self, Observation};
use opencode_runtime::trace::{self, Facts, Trace};

pub const SERVER_TIMING: &str = "server-timing";

/// What the end of a request needs to know about it.
pub struct Served {
    pub function: &'static str,
    pub method: http::Method,
    pub route: String,
    pub status: u16,
}

/// The route as a template: the segment after a collection (`keys`, `documents`, ...) is an id.
/// Spans name requests by it, so that names stay few.
pub fn route_template(path: &str) -> String {
    const COLLECTIONS: [&str; 5] = ["keys", "tenants", "documents", "status", "models"];
    let mut out = String::with_capacity(path.len());
    let mut after_collection = false;
    for segment in path.split('/').skip(1) {
        out.push('/');
        if after_collection && !segment.is_empty() && segment != "status" {
            out.push_str("{id}");
            after_collection = false;
            continue;
        }
        after_collection = COLLECTIONS.contains(&segment);
        out.extend(segment.chars().take(64));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Sets `server-timing`: `gateway` (the platform's time until the answer's head), `upstream`
/// (waiting on providers) and `cache`. When a sibling function answered (the gateway forwarded),
/// its `upstream` and `cache` are the request's.
pub fn server_timing<H: Host>(host: &H, trace: &Trace, response: &mut http::Response<Body>) {
    let total = host.now_ms().saturating_sub(trace.started_ms);
    let mut value = format!("gateway;dur={total}");
    let facts = trace.facts.borrow();
    match response.headers().get(SERVER_TIMING).and_then(|v| v.to_str().ok()) {
        Some(sibling) if facts.upstream_ms == 0 && facts.cache.is_none() => {
            for entry in sibling.split(',').map(str::trim).filter(|e| !e.is_empty() && !e.starts_with("gateway")) {
                value.push_str(", ");
                value.push_str(entry);
            }
        }
        _ => {
            value.push_str(&format!(", upstream;dur={}", facts.upstream_ms));
            if facts.cache.is_some() {
                value.push_str(&format!(", cache;dur={}", facts.cache_ms));
            }
        }
    }
    drop(facts);
    crate::web::set_header(response, SERVER_TIMING, &value);
}

/// Ends the request once its answer has gone out: at once for a whole body, at the end of a
/// streamed one.
pub fn finish<H: Host, R: Host>(
    host: R,
    runtime: H,
    trace: Rc<Trace>,
    served: Served,
    response: http::Response<Body>,
) -> http::Response<Body> {
    let (parts, body) = response.into_parts();
    let end = move || complete(&host, &runtime, &trace, &served);
    let body = match body {
        Body::Full(bytes) => {
            end();
            Body::Full(bytes)
        }
        Body::Stream(stream) => Body::Stream(Box::pin(Ending { stream, end: Some(Box::new(end)) })),
    };
    http::Response::from_parts(parts, body)
}

/// A response body that runs `end` once it is over (read to its end, failed, or dropped).
struct Ending {
    stream: ByteStream,
    end: Option<Box<dyn FnOnce()>>,
}

impl Stream for Ending {
    type Item = Result<Bytes, HostError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.stream.poll_next_unpin(cx);
        if matches!(polled, Poll::Ready(None)) {
            if let Some(end) = self.end.take() {
                end();
            }
        }
        polled
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            end();
        }
    }
}

/// The request's log line, metrics and trace.
fn complete<H: Host, R: Host>(host: &R, runtime: &H, trace: &Trace, served: &Served) {
    let latency_ms = host.now_ms().saturating_sub(trace.started_ms);
    // Taken, not copied: nothing adds to the facts once the request is over.
    let facts = trace.facts.take();
    log_line(host, trace, served, &facts, latency_ms);
    if !facts.uncounted {
        metrics::observe(
            host,
            &Observation { function: served.function, status: served.status, latency_ms, facts: &facts },
        );
    }
    if trace.recording() && !facts.untraced {
        trace.set_server("http.request.method", AttrValue::from(served.method.as_str()));
        trace.set_server("http.route", AttrValue::from(served.route.as_str()));
        trace.set_server("http.response.status_code", AttrValue::from(u64::from(served.status)));
        trace.set_server("opencode.function", AttrValue::from(served.function));
        if let Some(mode) = facts.mode {
            trace.set_server("opencode.mode", AttrValue::from(mode.as_str()));
        }
        if let Some(tier) = facts.tier {
            trace.set_server("opencode.tier", AttrValue::from(tier.as_str()));
        }
        if let Some(tenant) = &facts.tenant {
            trace.set_server("opencode.tenant", AttrValue::from(tenant.as_str()));
        }
        if let Some(key_id) = &facts.key_id {
            trace.set_server("opencode.key_id", AttrValue::from(key_id.as_str()));
        }
        if let Some(variant) = &facts.variant {
            trace.set_server("opencode.variant", AttrValue::from(variant.as_str()));
        }
        if served.status >= 500 {
            trace.fail_server(format!("status {}", served.status));
            trace.set_server("error.type", AttrValue::from(served.status.to_string()));
        }
        trace::export(runtime, trace, served.function);
    }
}

/// One JSON line per request: who, what, how it went, and every provider attempt.
fn log_line<R: Host>(host: &R, trace: &Trace, served: &Served, facts: &Facts, latency_ms: u64) {
    let trace_id = opencode_core::hex(&trace.trace_id);
    let mut attempts = String::from("[");
    for (i, a) in facts.attempts.iter().enumerate() {
        let mut fields = vec![
            ("kind", Field::Text(a.kind)),
            ("provider", Field::Text(&a.provider)),
            ("model", Field::Text(&a.model)),
            ("outcome", Field::Text(a.outcome)),
            ("elapsed_ms", Field::Number(a.elapsed_ms)),
        ];
        if let Some(status) = a.status {
            fields.push(("status", Field::Number(u64::from(status))));
        }
        if let Some(ttft) = a.ttft_ms {
            fields.push(("ttft_ms", Field::Number(ttft)));
        }
        if !a.detail.is_empty() {
            fields.push(("error", Field::Text(&a.detail)));
        }
        if i > 0 {
            attempts.push(',');
        }
        attempts.push_str(&log::json_object(&fields));
    }
    attempts.push(']');
    let (input, output) = facts.usage.iter().fold((0u64, 0u64), |(i, o), u| {
        (i.saturating_add(u.usage.input_tokens), o.saturating_add(u.usage.output_tokens))
    });
    let mut fields = Vec::with_capacity(20);
    fields.push(("trace_id", Field::Text(&trace_id)));
    fields.push(("function", Field::Text(served.function)));
    fields.push(("method", Field::Text(served.method.as_str())));
    fields.push(("route", Field::Text(&served.route)));
    fields.push(("status", Field::Number(u64::from(served.status))));
    fields.push(("latency_ms", Field::Number(latency_ms)));
    if let Some(tenant) = &facts.tenant {
        fields.push(("tenant", Field::Text(tenant)));
    }
    match (&facts.key_id, &facts.subject) {
        (Some(key_id), _) => fields.push(("key_id", Field::Text(key_id))),
        (None, Some(sub)) => fields.push(("sub", Field::Text(sub))),
        (None, None) => {}
    }
    if let Some(mode) = facts.mode {
        fields.push(("mode", Field::Text(mode.as_str())));
    }
    if let Some(tier) = facts.tier {
        fields.push(("tier", Field::Text(tier.as_str())));
    }
    if let Some(hit) = facts.cache {
        fields.push(("cache", Field::Text(if hit { "hit" } else { "miss" })));
    }
    if let Some(variant) = &facts.variant {
        fields.push(("variant", Field::Text(variant)));
    }
    if facts.failed {
        fields.push(("failed", Field::Flag(true)));
    }
    if !facts.usage.is_empty() {
        fields.push(("input_tokens", Field::Number(input)));
        fields.push(("output_tokens", Field::Number(output)));
    }
    fields.push(("attempts", Field::Json(&attempts)));
    let level = if served.status >= 500 { Level::Error } else { Level::Info };
    log::log(host, level, "request", &fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_ids_as_templates() {
        assert_eq!(route_template("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(route_template("/admin/keys/key_123"), "/admin/keys/{id}");
        assert_eq!(route_template("/admin/tenants/acme/limits"), "/admin/tenants/{id}/limits");
        assert_eq!(route_template("/api/v1/documents/status/up-1"), "/api/v1/documents/status/{id}");
        assert_eq!(route_template("/v1/models/gpt-4o"), "/v1/models/{id}");
        assert_eq!(route_template("/v1/knowledge/documents"), "/v1/knowledge/documents");
        assert_eq!(route_template(""), "/");
    }
}
