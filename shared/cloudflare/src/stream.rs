//! Bodies between the runtime's `ReadableStream`s and the core's `ByteStream`.
//!
//! `worker::Body` is not used for either direction. Its reader calls `releaseLock()` when
//! dropped, even after the last chunk, and the Streams standard has that build a `TypeError`,
//! stack trace included: an eighth of the chat Worker's CPU time under the inspector's
//! profiler (Miniflare). Its `from_stream` wraps the Rust stream in a JS stream, reads that
//! back into Rust and wraps it again, so each chunk crossed the boundary three times.
//!
//! A small body that declares its length is read whole with one `arrayBuffer()` call instead
//! of a read per chunk plus one for the end: the core collects such bodies whole anyway (a
//! JSON request, a provider's non-streamed answer). Alternated A/B runs on Miniflare put that
//! at about 0.1 ms of a chat request.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use opencode_runtime::{Body, ByteStream, HostError};
use worker::js_sys::{Promise, Uint8Array};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{ReadableStream, ReadableStreamDefaultReader, ReadableStreamReadResult};

use crate::convert::js_message;

/// Bodies that declare a length up to this are read whole, with one `arrayBuffer()` call.
const WHOLE_BODY_MAX: u64 = 64 * 1024;

/// The body of a runtime request or response with these `headers`: `None` when it has none,
/// read whole when it declares a small length, otherwise streamed as it arrives. `array_buffer`
/// is the object's own `arrayBuffer()`.
pub(crate) async fn body_from_web(
    headers: &http::HeaderMap,
    stream: Option<ReadableStream>,
    array_buffer: impl FnOnce() -> Result<Promise, JsValue>,
) -> Result<Body, HostError> {
    let Some(stream) = stream else {
        return Ok(Body::empty());
    };
    if opencode_api::web::declared_length(headers).is_none_or(|length| length > WHOLE_BODY_MAX) {
        return Ok(Body::Stream(from_web(&stream)));
    }
    let read = |error: JsValue| HostError::Body(js_message(&error));
    let buffer = JsFuture::from(array_buffer().map_err(read)?).await.map_err(read)?;
    Ok(Body::Full(Bytes::from(Uint8Array::new(&buffer).to_vec())))
}

/// A runtime body read chunk by chunk, each chunk as soon as it arrives.
fn from_web(stream: &ReadableStream) -> ByteStream {
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    WebBody { reader: Some(reader), read: None }.boxed_local()
}

/// The core's stream as a runtime body: each chunk is handed over when the runtime pulls.
pub(crate) fn to_web(stream: ByteStream) -> ReadableStream {
    let chunks = stream
        .map_ok(|chunk| JsValue::from(Uint8Array::from(chunk.as_ref())))
        .map_err(|error| JsValue::from(worker::js_sys::Error::new(&error.to_string())));
    wasm_streams::ReadableStream::from_stream(chunks).into_raw()
}

struct WebBody {
    /// `None` once the stream ended or failed.
    reader: Option<ReadableStreamDefaultReader>,
    /// The read in flight.
    read: Option<JsFuture>,
}

impl Stream for WebBody {
    type Item = Result<Bytes, HostError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(reader) = &this.reader else {
            return Poll::Ready(None);
        };
        let read = this.read.get_or_insert_with(|| JsFuture::from(reader.read()));
        let outcome = match read.poll_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        this.read = None;
        let chunk = outcome.map_err(|error| HostError::Body(js_message(&error))).and_then(|result| {
            let result: ReadableStreamReadResult = result.unchecked_into();
            if result.get_done().unwrap_or(false) {
                return Ok(None);
            }
            let chunk = result
                .get_value()
                .dyn_into::<Uint8Array>()
                .map_err(|_| HostError::Body(String::from("a body chunk was not bytes")))?;
            Ok(Some(Bytes::from(chunk.to_vec())))
        });
        match chunk {
            Ok(Some(chunk)) => Poll::Ready(Some(Ok(chunk))),
            // A finished stream needs no releaseLock: the reader is simply let go.
            Ok(None) => {
                this.reader = None;
                Poll::Ready(None)
            }
            Err(error) => {
                this.reader = None;
                Poll::Ready(Some(Err(error)))
            }
        }
    }
}

impl Drop for WebBody {
    /// A body abandoned before its end is cancelled, so the runtime stops receiving it (an
    /// upstream's stream the client no longer waits for, say).
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            // A failed cancel has no one to tell; catching it keeps it out of the logs as an
            // unhandled rejection. One closure serves the whole instance.
            let _handled = IGNORE.with(|ignore| reader.cancel().catch(ignore));
        }
    }
}

thread_local! {
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}
