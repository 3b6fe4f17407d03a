//! Encoding the platform's own server-sent events.

use bytes::Bytes;

/// Encodes one platform event: `event: <name>\ndata: <json>\n\n`.
pub fn encode(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_one_event_per_frame() {
        let frame = encode("delta", &serde_json::json!({"text": "a\nb"}));
        assert_eq!(&frame[..], b"event: delta\ndata: {\"text\":\"a\\nb\"}\n\n");
    }
}
