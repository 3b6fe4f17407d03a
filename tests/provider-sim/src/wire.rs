//! Shapes shared by the provider modules: error replies, SSE framing, request metadata.

use bytes::Bytes;
use serde_json::Value;

/// An error answer in a vendor's format.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReply {
    pub status: u16,
    pub body: Value,
}

/// Per-response values a provider cannot derive from the request.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    /// Monotonic per simulator; providers format it into their id style.
    pub seq: u64,
    /// Unix seconds.
    pub created: u64,
    pub label: String,
}

/// A stream answer cut into the parts fault injection needs to tell apart.
#[derive(Debug, Clone, Default)]
pub(crate) struct SseScript {
    pub content_type: &'static str,
    /// Events before the first answer word (role chunk, `message_start`, reasoning, ...).
    pub preamble: Vec<Bytes>,
    /// One event per answer word.
    pub content: Vec<Bytes>,
    /// Events after the last word (finish reason, usage, `[DONE]`, `message_stop`).
    pub terminal: Vec<Bytes>,
    /// The vendor's in-stream error event.
    pub error_event: Bytes,
    /// An event whose data is not valid JSON.
    pub malformed: Bytes,
}

/// `data: <json>\n\n`.
pub(crate) fn sse_data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `event: <name>\ndata: <json>\n\n`.
pub(crate) fn sse_event(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

/// The first half of a JSON text: never valid JSON for an object or array.
pub(crate) fn truncated(json: &str) -> String {
    let mut cut = json.len() / 2;
    while !json.is_char_boundary(cut) {
        cut -= 1;
    }
    json.get(..cut).unwrap_or_default().to_owned()
}

/// Text of a message `content` that is either a string or an array of text parts
/// (`{"type":"text","text":...}` or Gemini's `{"text":...}`).
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// Sets `key` on a JSON object (no-op on anything else, unlike `value[key] = ...`).
pub(crate) fn set(target: &mut Value, key: &str, value: Value) {
    if let Some(obj) = target.as_object_mut() {
        obj.insert(key.to_owned(), value);
    }
}
