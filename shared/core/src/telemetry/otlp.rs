//! Spans as OTLP/HTTP sends them: an `ExportTraceServiceRequest` in protobuf's binary encoding
//! (opentelemetry-proto, `collector/trace/v1`), the protocol's default. Written by hand: the
//! few messages below cost a few hundred lines less Wasm than a protobuf library would.

/// What a span describes (OTLP's `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Text(String),
    Int(i64),
    Float(f64),
    Flag(bool),
    Texts(Vec<String>),
}

impl From<&str> for AttrValue {
    fn from(text: &str) -> Self {
        AttrValue::Text(text.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(text: String) -> Self {
        AttrValue::Text(text)
    }
}

impl From<u64> for AttrValue {
    fn from(n: u64) -> Self {
        AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// How a span ended (OTLP's `Status`): unset, or an error with its description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SpanStatus {
    #[default]
    Unset,
    Error(String),
}

/// One finished (or, when sent, ended by force) span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    /// The caller's `tracestate`, passed on unchanged.
    pub trace_state: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    pub start_ms: u64,
    pub end_ms: u64,
    pub attributes: Vec<(&'static str, AttrValue)>,
    pub status: SpanStatus,
}

/// The service the spans come from: the resource's attributes.
pub struct Resource<'a> {
    pub service_name: &'a str,
    /// The function that recorded them (`faas.name`).
    pub function: &'a str,
    pub version: &'a str,
}

/// The instrumentation scope's name.
const SCOPE: &str = "opencode-platform";

/// `spans` as one `ExportTraceServiceRequest` body.
pub fn encode(resource: &Resource<'_>, spans: &[Span]) -> Vec<u8> {
    let mut request = Writer::default();
    request.message(1, |resource_spans| {
        resource_spans.message(1, |r| {
            r.message(1, |kv| text_attribute(kv, "service.name", resource.service_name));
            r.message(1, |kv| text_attribute(kv, "service.version", resource.version));
            r.message(1, |kv| text_attribute(kv, "faas.name", resource.function));
            r.message(1, |kv| text_attribute(kv, "telemetry.sdk.language", "rust"));
        });
        resource_spans.message(2, |scope_spans| {
            scope_spans.message(1, |scope| {
                scope.text(1, SCOPE);
                scope.text(2, resource.version);
            });
            for span in spans {
                scope_spans.message(2, |w| span_message(w, span));
            }
        });
    });
    request.buf
}

fn span_message(w: &mut Writer, span: &Span) {
    w.bytes(1, &span.trace_id);
    w.bytes(2, &span.span_id);
    if let Some(state) = &span.trace_state {
        w.text(3, state);
    }
    if let Some(parent) = &span.parent_id {
        w.bytes(4, parent);
    }
    w.text(5, &span.name);
    w.varint_field(6, span.kind as u64);
    w.fixed64(7, nanos(span.start_ms));
    w.fixed64(8, nanos(span.end_ms.max(span.start_ms)));
    for (key, value) in &span.attributes {
        w.message(9, |kv| attribute(kv, key, value));
    }
    if let SpanStatus::Error(message) = &span.status {
        w.message(15, |status| {
            status.text(2, message);
            status.varint_field(3, 2);
        });
    }
}

fn nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

fn text_attribute(kv: &mut Writer, key: &str, value: &str) {
    kv.text(1, key);
    kv.message(2, |any| any.text(1, value));
}

fn attribute(kv: &mut Writer, key: &str, value: &AttrValue) {
    kv.text(1, key);
    kv.message(2, |any| any_value(any, value));
}

/// An `AnyValue`: string 1, bool 2, int 3, double 4, array 5.
fn any_value(any: &mut Writer, value: &AttrValue) {
    match value {
        AttrValue::Text(text) => any.text(1, text),
        AttrValue::Flag(flag) => any.varint_field(2, u64::from(*flag)),
        // int64 is a varint of the two's complement.
        AttrValue::Int(n) => any.varint_field(3, *n as u64),
        AttrValue::Float(x) => {
            any.key(4, 1);
            any.buf.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        AttrValue::Texts(texts) => any.message(5, |array| {
            for text in texts {
                array.message(1, |item| item.text(1, text));
            }
        }),
    }
}

/// Protobuf's binary encoding, as far as these messages need it.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.buf.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.buf.push(n as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn varint_field(&mut self, field: u32, n: u64) {
        self.key(field, 0);
        self.varint(n);
    }

    fn fixed64(&mut self, field: u32, n: u64) {
        self.key(field, 1);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    fn text(&mut self, field: u32, text: &str) {
        self.bytes(field, text.as_bytes());
    }

    /// A nested message, written by `body`, length-prefixed.
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        body(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn varints_and_fields_are_protobufs() {
        let mut w = Writer::default();
        w.varint_field(1, 150);
        assert_eq!(w.buf, [0x08, 0x96, 0x01], "the protobuf documentation's example");
        let mut w = Writer::default();
        w.text(2, "testing");
        assert_eq!(w.buf, [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
        let mut w = Writer::default();
        w.varint_field(3, -2i64 as u64);
        assert_eq!(w.buf.len(), 11, "a negative int64 takes ten bytes");
    }

    #[test]
    fn a_span_encodes_its_ids_times_and_status() {
        let span = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_id: Some([3; 8]),
            trace_state: None,
            name: "chat m".into(),
            kind: SpanKind::Client,
            start_ms: 1,
            end_ms: 2,
            attributes: vec![("gen_ai.usage.input_tokens", AttrValue::Int(5))],
            status: SpanStatus::Error("boom".into()),
        };
        let resource = Resource { service_name: "svc", function: "chat", version: "0.1.0" };
        let bytes = encode(&resource, &[span]);
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(contains(&[0x0a, 16, 1, 1, 1]), "trace id as field 1 bytes");
        assert!(contains(&[0x22, 8, 3, 3, 3, 3, 3, 3, 3, 3]), "parent as field 4");
        assert!(contains(&[0x39, 0x40, 0x42, 0x0f, 0, 0, 0, 0, 0]), "start 1 ms in ns, fixed64 field 7");
        assert!(contains(&[0x30, 3]), "kind client");
        assert!(contains(b"gen_ai.usage.input_tokens"));
        assert!(contains(&[0x7a, 8, 0x12, 4, b'b', b'o', b'o', b'm', 0x18, 2]), "status error with its message");
    }
}
