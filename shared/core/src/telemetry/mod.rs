//! Telemetry's pure parts: W3C trace context (`traceparent`) and the OTLP encoding of spans.
//! The runtime collects spans per request and sends them; nothing here does I/O.

pub mod otlp;
pub mod traceparent;

pub use otlp::{AttrValue, Span, SpanKind, SpanStatus};
pub use traceparent::TraceParent;
