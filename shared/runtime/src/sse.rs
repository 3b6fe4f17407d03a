//! Server-sent events: decoding providers' streams.
//!
//! Decoding is `eventsource-stream`'s (it follows the WHATWG rules: multi-line data, comments,
//! CRLF, events split across chunks); this module adapts it to the host's byte stream and bounds
//! what it buffers: an event (its lines included) over [`MAX_EVENT_BYTES`] ends the stream as
//! malformed, where the decoder would otherwise hold an endless line in memory.

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::stream::{LocalBoxStream, StreamExt};

use opencode_core::providers::SseEvent;

use crate::host::{ByteStream, HostError};

/// The most bytes one event may take.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Why a provider's stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// The connection failed.
    Transport(HostError),
    /// The bytes are not a stream of events the platform will read.
    Malformed(String),
}

/// Decodes a byte stream into SSE events as they complete.
pub fn decode(body: ByteStream) -> LocalBoxStream<'static, Result<SseEvent, SseError>> {
    bounded(body, MAX_EVENT_BYTES)
        .eventsource()
        .map(|item| match item {
            Ok(event) => Ok(SseEvent {
                // The SSE default type is "message"; the providers' contract is "" for none.
                event: if event.event == "message" { String::new() } else { event.event },
                data: event.data,
            }),
            Err(eventsource_stream::EventStreamError::Transport(HostError::TooLarge)) => {
                Err(SseError::Malformed(format!("an event is longer than {MAX_EVENT_BYTES} bytes")))
            }
            Err(eventsource_stream::EventStreamError::Transport(err)) => Err(SseError::Transport(err)),
            Err(err) => Err(SseError::Malformed(err.to_string())),
        })
        .boxed_local()
}

/// `body`, ending with `HostError::TooLarge` once an event runs past `limit` bytes without the
/// blank line that ends it.
fn bounded(body: ByteStream, limit: usize) -> ByteStream {
    let mut sizer = EventSizer::default();
    body.scan(false, move |over, chunk| {
        if *over {
            return futures::future::ready(None);
        }
        let chunk = match chunk {
            Ok(bytes) if sizer.add(&bytes, limit) => Ok(bytes),
            Ok(_) => {
                *over = true;
                Err(HostError::TooLarge)
            }
            Err(err) => Err(err),
        };
        futures::future::ready(Some(chunk))
    })
    .boxed_local()
}

/// The size of the event being read, across chunks. Lines end with CR, LF or CRLF; an empty line
/// ends the event.
#[derive(Default)]
struct EventSizer {
    event: usize,
    line: usize,
    after_cr: bool,
}

impl EventSizer {
    /// Adds a chunk; false once the event is over `limit`.
    fn add(&mut self, bytes: &Bytes, limit: usize) -> bool {
        for &byte in bytes.iter() {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    if self.line == 0 {
                        self.event = 0;
                    }
                    self.line = 0;
                    self.after_cr = byte == b'\r';
                }
                _ => {
                    self.after_cr = false;
                    self.line = self.line.saturating_add(1);
                    self.event = self.event.saturating_add(1);
                    if self.event > limit {
                        return false;
                    }
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
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
        assert_eq!(events[1], Err(SseError::Transport(HostError::Body("reset".into()))));
    }

    #[test]
    fn an_event_over_the_limit_ends_the_stream_as_malformed() {
        let long = format!("data: {}", "x".repeat(MAX_EVENT_BYTES));
        let body = stream::iter(vec![Ok(Bytes::from("data: ok\n\n")), Ok(Bytes::from(long)), Ok(Bytes::from("\n\n"))])
            .boxed_local();
        let events: Vec<_> = futures::executor::block_on(decode(body).collect());
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], Ok(SseEvent { event: String::new(), data: "ok".into() }));
        assert!(matches!(&events[1], Err(SseError::Malformed(m)) if m.contains("longer than")), "{:?}", events[1]);
    }

    #[test]
    fn many_events_under_the_limit_add_up_to_any_size() {
        let mut sizer = EventSizer::default();
        let event = Bytes::from(format!("data: {}\r\n\r\n", "y".repeat(1000)));
        assert!((0..5_000).all(|_| sizer.add(&event, 2_000)), "events end at blank lines, CRLF included");
        let lines = Bytes::from(format!("data: {}\n", "z".repeat(1000)));
        assert!(sizer.add(&lines, 1_500) && !sizer.add(&lines, 1_500), "lines without a blank one add up");
    }
}
