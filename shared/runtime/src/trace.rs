//! One request's telemetry: its W3C trace context, the spans it records (sent to an OTLP
//! collector after the response, [`export`]), and the facts its log line, metrics and
//! `server-timing` are made of. It lives in the request's host ([`crate::host::RequestHost`]),
//! so the executor, the cache and the agent reach it through [`Host::trace`] without passing
//! anything along.
//!
//! Settings, read once per request: `LOG_LEVEL` (debug, info, warn, error; info by default),
//! `LOG_CONTENT` and `OTEL_CAPTURE_CONTENT` (prompts and answers in logs, in span attributes;
//! both off by default), `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base, `/v1/traces`
//! appended) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the whole URL),
//! `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, values percent-decoded), `OTEL_SERVICE_NAME`,
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (the SDKs' values; parent-based always-on
//! by default). Spans are only kept when the trace is sampled and a collector is configured.

use std::cell::RefCell;
use std::rc::Rc;

use futures::FutureExt as _;

use opencode_core::model::Usage;
use opencode_core::routing::{Mode, Tier};
use opencode_core::telemetry::otlp::{self, Resource};
use opencode_core::telemetry::{AttrValue, Span, SpanKind, SpanStatus, TraceParent};

use crate::host::Host;
use crate::log::{self, Field, Level};

/// The W3C headers.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// How long an export may take (`OTEL_EXPORTER_OTLP_TIMEOUT`'s default, 10 s).
const EXPORT_TIMEOUT_MS: u64 = 10_000;
/// The most spans one request keeps (an agent's long run): the rest are counted, not kept.
const MAX_SPANS: usize = 512;

/// Which traces are recorded (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sampler {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    /// The caller's decision when there is a caller, else the inner sampler's.
    ParentBased(Root),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Root {
    On,
    Off,
    Ratio(f64),
}

impl Sampler {
    fn from_vars(name: Option<&str>, arg: Option<&str>) -> Sampler {
        let ratio = arg.and_then(opencode_core::decimal).filter(|r| (0.0..=1.0).contains(r)).unwrap_or(1.0);
        match name.map(str::trim) {
            Some("always_on") => Sampler::AlwaysOn,
            Some("always_off") => Sampler::AlwaysOff,
            Some("traceidratio") => Sampler::Ratio(ratio),
            Some("parentbased_always_off") => Sampler::ParentBased(Root::Off),
            Some("parentbased_traceidratio") => Sampler::ParentBased(Root::Ratio(ratio)),
            _ => Sampler::ParentBased(Root::On),
        }
    }

    fn sampled(self, trace_id: &[u8; 16], parent: Option<&TraceParent>) -> bool {
        match (self, parent) {
            (Sampler::AlwaysOn, _) => true,
            (Sampler::AlwaysOff, _) => false,
            (Sampler::Ratio(ratio), _) => by_ratio(trace_id, ratio),
            (Sampler::ParentBased(_), Some(parent)) => parent.sampled,
            (Sampler::ParentBased(Root::On), None) => true,
            (Sampler::ParentBased(Root::Off), None) => false,
            (Sampler::ParentBased(Root::Ratio(ratio)), None) => by_ratio(trace_id, ratio),
        }
    }
}

/// The SDKs' trace-id ratio: the id's last 8 bytes, halved, under `ratio` of 2^63. Every function
/// of a trace decides alike.
fn by_ratio(trace_id: &[u8; 16], ratio: f64) -> bool {
    let mut low = [0u8; 8];
    low.copy_from_slice(trace_id.get(8..).unwrap_or(&[0; 8]));
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    (u64::from_be_bytes(low) >> 1) < bound
}

/// What the request's telemetry does, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub min_level: Level,
    pub log_content: bool,
    pub capture_content: bool,
    /// Where spans go (the traces URL), when a collector is configured.
    pub endpoint: Option<String>,
    sampler: Sampler,
}

impl Settings {
    pub fn from_host<H: Host>(host: &H) -> Settings {
        let flag = |name: &str| host.var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let min_level = match host.var("LOG_LEVEL").as_deref().map(str::trim) {
            Some(l) if l.eq_ignore_ascii_case("debug") => Level::Debug,
            Some(l) if l.eq_ignore_ascii_case("warn") => Level::Warn,
            Some(l) if l.eq_ignore_ascii_case("error") => Level::Error,
            _ => Level::Info,
        };
        let endpoint = host.var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").filter(|e| !e.trim().is_empty()).or_else(|| {
            let base = host.var("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|e| !e.trim().is_empty())?;
            Some(format!("{}/v1/traces", base.trim().trim_end_matches('/')))
        });
        let sampler = Sampler::from_vars(
            host.var("OTEL_TRACES_SAMPLER").as_deref(),
            host.var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        );
        Settings {
            min_level,
            log_content: flag("LOG_CONTENT"),
            capture_content: flag("OTEL_CAPTURE_CONTENT"),
            endpoint: endpoint.map(|e| e.trim().to_owned()),
            sampler,
        }
    }
}

/// One provider (or search) attempt, as the request's log line and metrics tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFact {
    /// `provider` (models) or `search`.
    pub kind: &'static str,
    pub provider: String,
    pub model: String,
    /// The model has a list price: its name is a bounded metrics label (else `other`).
    pub priced: bool,
    /// `ok`, `timeout`, `http_5xx`, ... ([`outcome_label`]).
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub elapsed_ms: u64,
    /// A streamed attempt's time to its first token.
    pub ttft_ms: Option<u64>,
    /// The upstream's words on a failure, redacted.
    pub detail: String,
}

/// Tokens and dollars one model call used.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFact {
    pub provider: String,
    pub model: String,
    pub priced: bool,
    pub usage: Usage,
    pub cost_usd: f64,
}

/// What the request came to, filled in where each thing is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub tenant: Option<String>,
    pub subject: Option<String>,
    pub key_id: Option<String>,
    pub mode: Option<Mode>,
    pub tier: Option<Tier>,
    /// `Some(hit)` when the answer cache was consulted.
    pub cache: Option<bool>,
    pub cache_ms: u64,
    /// Time spent waiting on providers (every attempt, up to a stream's first token).
    pub upstream_ms: u64,
    pub attempts: Vec<AttemptFact>,
    pub usage: Vec<UsageFact>,
    /// A streamed answer ended in an error event (its status said 200).
    pub failed: bool,
    /// The A/B variant (`EXPERIMENTS`) the caller is in.
    pub variant: Option<String>,
    /// Left out of the metrics (`metrics.cognitive_metrics` off).
    pub uncounted: bool,
    /// Its spans are not exported (`metrics.detailed_tracking` off).
    pub untraced: bool,
    /// Digests of the conversations the guard let through (each is screened once).
    pub screened: Vec<[u8; 32]>,
}

/// One request's trace.
pub struct Trace {
    pub trace_id: [u8; 16],
    /// The request's own (SERVER) span: the parent of every span it records and of its calls.
    pub span_id: [u8; 8],
    pub sampled: bool,
    pub trace_state: Option<String>,
    pub settings: Settings,
    pub started_ms: u64,
    /// Kept when recording; the SERVER span first.
    spans: RefCell<Vec<Span>>,
    pub facts: RefCell<Facts>,
}

impl Trace {
    /// Starts the request's trace: the caller's (`traceparent`, `tracestate`) when valid, else a
    /// new one. `name` is the SERVER span's (`POST /v1/chat`).
    pub fn start<H: Host>(host: &H, headers: &http::HeaderMap, name: String) -> Trace {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let parent = header(TRACEPARENT).and_then(TraceParent::parse);
        let settings = Settings::from_host(host);
        let trace_id = parent.map_or_else(|| random_id::<H, 16>(host), |p| p.trace_id);
        let sampled = settings.sampler.sampled(&trace_id, parent.as_ref());
        // tracestate means nothing without a valid traceparent (W3C: ignore it then).
        let trace_state = parent.and(header(TRACESTATE)).filter(|s| !s.is_empty() && s.len() <= 512).map(str::to_owned);
        let span_id = random_id::<H, 8>(host);
        let started_ms = host.now_ms();
        let mut spans = Vec::new();
        if sampled && settings.endpoint.is_some() {
            spans.push(Span {
                trace_id,
                span_id,
                parent_id: parent.map(|p| p.parent_id),
                trace_state: trace_state.clone(),
                name,
                kind: SpanKind::Server,
                start_ms: started_ms,
                end_ms: 0,
                attributes: Vec::new(),
                status: SpanStatus::Unset,
            });
        }
        Trace {
            trace_id,
            span_id,
            sampled,
            trace_state,
            settings,
            started_ms,
            spans: RefCell::new(spans),
            facts: RefCell::default(),
        }
    }

    /// Spans are kept (sampled, and a collector to send them to).
    pub fn recording(&self) -> bool {
        !self.spans.borrow().is_empty()
    }

    /// The `traceparent` an outbound call carries: this request's span as its parent.
    pub fn traceparent(&self) -> String {
        TraceParent::header(&self.trace_id, &self.span_id, self.sampled)
    }

    /// Sets an attribute of the request's SERVER span.
    pub fn set_server(&self, key: &'static str, value: AttrValue) {
        if let Some(server) = self.spans.borrow_mut().first_mut() {
            server.attributes.push((key, value));
        }
    }

    /// Marks the SERVER span failed (a 5xx).
    pub fn fail_server(&self, message: String) {
        if let Some(server) = self.spans.borrow_mut().first_mut() {
            server.status = SpanStatus::Error(message);
        }
    }
}

fn random_id<H: Host, const N: usize>(host: &H) -> [u8; N] {
    let mut id = [0u8; N];
    // An all-zero id is invalid: a host that gives zeros still yields a valid one.
    host.random_bytes(&mut id);
    if id.iter().all(|b| *b == 0) {
        if let Some(last) = id.last_mut() {
            *last = 1;
        }
    }
    id
}

/// Adds to the request's facts (nothing outside a request).
pub fn note<H: Host>(host: &H, add: impl FnOnce(&mut Facts)) {
    if let Some(trace) = host.trace() {
        add(&mut trace.facts.borrow_mut());
    }
}

/// A span being recorded; it ends when dropped. A no-op when the
/// request records nothing.
pub struct SpanGuard<H: Host> {
    host: H,
    trace: Option<Rc<Trace>>,
    index: usize,
}

impl<H: Host> SpanGuard<H> {
    /// Starts a span, a child of the request's SERVER span.
    pub fn start(host: &H, kind: SpanKind, name: String) -> SpanGuard<H> {
        let mut guard = SpanGuard { host: host.clone(), trace: None, index: 0 };
        let Some(trace) = host.trace().filter(|t| t.recording()) else { return guard };
        let mut spans = trace.spans.borrow_mut();
        if spans.len() >= MAX_SPANS {
            drop(spans);
            return guard;
        }
        spans.push(Span {
            trace_id: trace.trace_id,
            span_id: random_id::<H, 8>(host),
            parent_id: Some(trace.span_id),
            trace_state: trace.trace_state.clone(),
            name,
            kind,
            start_ms: host.now_ms(),
            end_ms: 0,
            attributes: Vec::new(),
            status: SpanStatus::Unset,
        });
        guard.index = spans.len().saturating_sub(1);
        drop(spans);
        guard.trace = Some(trace);
        guard
    }

    /// Whether this span is kept (worth computing attributes for).
    pub fn recording(&self) -> bool {
        self.trace.is_some()
    }

    fn with(&self, change: impl FnOnce(&mut Span)) {
        if let Some(trace) = &self.trace {
            if let Some(span) = trace.spans.borrow_mut().get_mut(self.index) {
                change(span);
            }
        }
    }

    pub fn set(&self, key: &'static str, value: impl Into<AttrValue>) {
        let value = value.into();
        self.with(|span| span.attributes.push((key, value)));
    }

    /// Marks the span failed: `error.type` (a low-cardinality class) and the status.
    pub fn fail(&self, error_type: &str, message: &str) {
        self.with(|span| {
            span.attributes.push(("error.type", AttrValue::from(error_type)));
            span.status = SpanStatus::Error(message.to_owned());
        });
    }

    /// Moves the span's start back to `start_ms` (a span recorded once its work is done).
    pub fn since(self, start_ms: u64) -> Self {
        self.with(|span| span.start_ms = start_ms);
        self
    }
}

impl<H: Host> Drop for SpanGuard<H> {
    fn drop(&mut self) {
        let now = self.host.now_ms();
        self.with(|span| {
            if span.end_ms == 0 {
                span.end_ms = now;
            }
        });
    }
}

/// `outcome` of an attempt as a bounded label (metrics, `error.type`).
pub fn outcome_label(outcome: &crate::executor::Outcome) -> &'static str {
    use crate::executor::Outcome;
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Status { status: 429 } => "http_429",
        Outcome::Status { status } if *status >= 500 => "http_5xx",
        Outcome::Status { .. } => "http_4xx",
        Outcome::Timeout { .. } => "timeout",
        Outcome::Connect => "connect",
        Outcome::Malformed => "malformed",
        Outcome::StreamError => "stream_error",
        Outcome::Refused => "refused",
        Outcome::Misconfigured => "misconfigured",
        Outcome::InvalidRequest => "invalid_request",
        Outcome::NoResults => "no_results",
        Outcome::Blocked => "blocked",
        Outcome::GuardUnavailable => "guard_unavailable",
    }
}

/// Ends the request's trace and sends its spans to the collector in the background, through
/// `host` (the runtime's own, so the export carries no trace context of its own). A collector
/// that is down or refuses costs a log line, never the request.
pub fn export<H: Host>(host: &H, trace: &Trace, function: &'static str) {
    let Some(endpoint) = trace.settings.endpoint.clone() else { return };
    let mut spans = trace.spans.take();
    if spans.is_empty() {
        return;
    }
    let now = host.now_ms();
    for span in &mut spans {
        if span.end_ms == 0 {
            span.end_ms = now;
        }
    }
    // Encoded and sent in the background: nothing of it delays the answer.
    let task_host = host.clone();
    host.spawn_background(async move { send(&task_host, &endpoint, function, &spans).await }.boxed_local());
}

/// One `ExportTraceServiceRequest` of `spans` to the collector at `endpoint`.
async fn send<H: Host>(host: &H, endpoint: &str, function: &'static str, spans: &[Span]) {
    let service = host.var("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty());
    let resource = Resource {
        service_name: service.as_deref().unwrap_or("opencode-platform"),
        function,
        version: env!("CARGO_PKG_VERSION"),
    };
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return log::warn(host, "trace export dropped: the collector's URL is not valid", &[]);
    };
    let mut request = http::Request::new(bytes::Bytes::from(otlp::encode(&resource, spans)));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-protobuf"));
    let configured = host.var("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| host.var("OTEL_EXPORTER_OTLP_HEADERS"));
    for (name, value) in configured.as_deref().map(parse_headers).unwrap_or_default() {
        match (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(&value)) {
            (Ok(name), Ok(value)) => {
                headers.insert(name, value);
            }
            _ => log::warn(host, "an OTLP header is not a valid header; left out", &[("header", Field::Text(&name))]),
        }
    }
    let sent = crate::executor::with_timeout(host, EXPORT_TIMEOUT_MS, host.fetch(request)).await;
    let problem = match sent {
        None => "no answer in time".to_owned(),
        Some(Err(err)) => opencode_core::redact::redact(&err.to_string()).into_owned(),
        Some(Ok(response)) if response.status().is_success() => return,
        Some(Ok(response)) => format!("status {}", response.status().as_u16()),
    };
    let fields = [("spans", Field::Number(spans.len() as u64)), ("error", Field::Text(&problem))];
    log::warn(host, "trace export failed; spans dropped", &fields);
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs separated by commas, values percent-encoded.
fn parse_headers(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_owned(), percent_decode(value.trim())))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes.get(i.saturating_add(1)..i.saturating_add(3)).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i = i.saturating_add(3);
            }
            _ => {
                out.push(b);
                i = i.saturating_add(1);
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ratio_sampling_is_deterministic_and_bounded() {
        let id = |last: u8| {
            let mut id = [0u8; 16];
            id[8] = last;
            id
        };
        assert!(by_ratio(&id(0x00), 0.5));
        assert!(!by_ratio(&id(0xff), 0.5));
        assert!(!by_ratio(&id(0x00), 0.0));
        assert!(by_ratio(&id(0xff), 1.0));
    }

    #[test]
    fn the_sampler_follows_the_parent_unless_told_otherwise() {
        let parent = |sampled| TraceParent { trace_id: [1; 16], parent_id: [2; 8], sampled };
        let default = Sampler::from_vars(None, None);
        assert!(default.sampled(&[1; 16], None));
        assert!(!default.sampled(&[1; 16], Some(&parent(false))));
        assert!(Sampler::from_vars(Some("always_on"), None).sampled(&[1; 16], Some(&parent(false))));
        assert!(!Sampler::from_vars(Some("parentbased_always_off"), None).sampled(&[1; 16], None));
        assert!(!Sampler::from_vars(Some("parentbased_traceidratio"), Some("0")).sampled(&[1; 16], None));
        assert!(Sampler::from_vars(Some("parentbased_traceidratio"), Some("0")).sampled(&[1; 16], Some(&parent(true))));
    }

    #[test]
    fn otlp_headers_are_pairs_with_decoded_values() {
        assert_eq!(
            parse_headers("api-key=a%20b, x-tenant = t1,bad,=x"),
            vec![("api-key".into(), "a b".into()), ("x-tenant".into(), "t1".into())]
        );
        assert_eq!(percent_decode("100%"), "100%");
    }
}
