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
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned).or_else(|| image_seen(p)))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An image part in its vendor's own shape, as the text `[image <type>]` (the type a `data:` URL
/// or a base64 source names, else `url`), so that an answer shows which images arrived:
/// OpenAI's `image_url` parts, Anthropic's `image` blocks, Gemini's `inlineData` / `fileData`.
fn image_seen(part: &Value) -> Option<String> {
    let str_at = |path: &[&str]| {
        let mut at = part;
        for key in path {
            at = at.get(key)?;
        }
        at.as_str().map(str::to_owned)
    };
    let media = if part.get("type").and_then(Value::as_str) == Some("image_url") {
        let url = str_at(&["image_url", "url"])?;
        url.strip_prefix("data:").and_then(|u| u.split(';').next()).map_or("url".to_owned(), str::to_owned)
    } else if part.get("type").and_then(Value::as_str) == Some("image") {
        str_at(&["source", "media_type"]).unwrap_or_else(|| "url".to_owned())
    } else if part.get("inlineData").is_some() {
        str_at(&["inlineData", "mimeType"])?
    } else if part.get("fileData").is_some() {
        "url".to_owned()
    } else {
        return None;
    };
    Some(format!("[image {media}]"))
}

/// Sets `key` on a JSON object (no-op on anything else, unlike `value[key] = ...`).
pub(crate) fn set(target: &mut Value, key: &str, value: Value) {
    if let Some(obj) = target.as_object_mut() {
        obj.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_vendors_image_parts_read_as_a_marker() {
        let parts = json!([
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "AAAA"}},
            {"inlineData": {"mimeType": "image/webp", "data": "AAAA"}},
            {"fileData": {"fileUri": "https://x/a.jpg"}},
            {"type": "text", "text": "what?"},
        ]);
        assert_eq!(
            content_text(&parts),
            "[image image/png]\n[image image/gif]\n[image image/webp]\n[image url]\nwhat?"
        );
    }
}
