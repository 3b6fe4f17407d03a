//! Server-sent events: decoding providers' streams.
//!
//! Decoding is `eventsource-stream`'s (it follows the WHATWG rules: multi-line data, comments,
//! CRLF, events split across chunks); this module only adapts it to the host's byte stream.

use eventsource_stream::Eventsource;
use futures::stream::{LocalBoxStream, StreamExt};

use opencode_core::providers::SseEvent;

use crate::host::{ByteStream, HostError};

/// Decodes a byte stream into SSE events as they complete.
pub fn decode(body: ByteStream) -> LocalBoxStream<'static, Result<SseEvent, HostError>> {
    body.eventsource()
        .map(|item| match item {
            Ok(event) => Ok(SseEvent {
                // The SSE default type is "message"; the providers' contract is "" for none.
                event: if event.event == "message" { String::new() } else { event.event },
                data: event.data,
            }),
            Err(eventsource_stream::EventStreamError::Transport(err)) => Err(err),
            Err(err) => Err(HostError::Body(err.to_string())),
        })
        .boxed_local()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use bytes::Bytes;
    use futures::stream;

    fn chunks(parts: &'static [&'static str]) -> ByteStream {
        stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p.as_bytes())))).boxed_local()
    }

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let events: Vec<_> = futures::executor::block_on(
            decode(chunks(&["event: ping\nda", "ta: {}\n\ndata: a\r\ndata: b\r\n", "\r\n: comment\n\n"])).collect(),
        );
        let events: Vec<SseEvent> = events.into_iter().map(|e| e.unwrap()).collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], SseEvent { event: "ping".into(), data: "{}".into() });
        assert_eq!(events[1], SseEvent { event: String::new(), data: "a\nb".into() });
    }

    #[test]
    fn transport_errors_pass_through() {
        let body = stream::iter(vec![Ok(Bytes::from_static(b"data: x\n\n")), Err(HostError::Body("reset".into()))])
            .boxed_local();
        let events: Vec<_> = futures::executor::block_on(decode(body).collect());
        assert!(events[0].is_ok());
        assert_eq!(events[1], Err(HostError::Body("reset".into())));
    }
}
