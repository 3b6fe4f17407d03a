//! The one boundary between the core and a runtime.
//!
//! Every capability the core needs from the outside world — outbound HTTP, KV, time, sleep,
//! configuration, randomness, background work and calls to sibling functions — goes through
//! [`Host`]. Each runtime adapter implements it once (`opencode-cloudflare`, `opencode-spin`)
//! and `opencode-testkit` implements it natively for tests. Wasm futures are single-threaded,
//! so nothing here is `Send`.

use std::future::Future;
use std::rc::Rc;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::stream::LocalBoxStream;

use crate::log::Record;
use crate::sql::{Database, Row, Statement};
use crate::trace::{Trace, TRACEPARENT, TRACESTATE};

/// A streamed body: chunks as they arrive from the network.
pub type ByteStream = LocalBoxStream<'static, Result<Bytes, HostError>>;

/// A request or response body: whole bytes, or a stream read chunk by chunk.
pub enum Body {
    Full(Bytes),
    Stream(ByteStream),
}

/// How much of an oversized request body is read and discarded before answering 413.
const DRAIN_FACTOR: usize = 16;

impl Body {
    pub fn empty() -> Self {
        Body::Full(Bytes::new())
    }

    /// Reads the whole body, refusing more than `limit` bytes. An oversized body is still read
    /// (and discarded) up to `DRAIN_FACTOR` times the limit, so that a client still uploading
    /// gets the 413 instead of a reset connection.
    pub async fn collect(self, limit: usize) -> Result<Bytes, HostError> {
        use futures::StreamExt;
        match self {
            Body::Full(bytes) if bytes.len() > limit => Err(HostError::TooLarge),
            Body::Full(bytes) => Ok(bytes),
            Body::Stream(mut stream) => {
                let mut buf = Vec::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    if buf.len().saturating_add(chunk.len()) > limit {
                        Body::Stream(stream).drain_oversized(limit).await;
                        return Err(HostError::TooLarge);
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(Bytes::from(buf))
            }
        }
    }

    /// Reads and discards a body known to exceed `limit`, up to `DRAIN_FACTOR` times the limit
    /// (then gives up: the connection may be reset).
    pub async fn drain_oversized(self, limit: usize) {
        use futures::StreamExt;
        let Body::Stream(mut stream) = self else { return };
        let max = limit.saturating_mul(DRAIN_FACTOR);
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen = seen.saturating_add(chunk.len());
            if seen > max {
                return;
            }
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::Full(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Full(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::Full(Bytes::from(text))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(bytes) => write!(f, "Body::Full({} bytes)", bytes.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// What can go wrong at the boundary. Messages never carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The connection could not be made or broke before a response arrived.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The connection broke while the body was being read.
    #[error("body read failed: {0}")]
    Body(String),
    /// The runtime refused the request (for example an outbound host not allowed).
    #[error("request refused by the runtime: {0}")]
    Refused(String),
    /// A body was larger than the caller allowed.
    #[error("body too large")]
    TooLarge,
    /// A key-value store failed.
    #[error("key-value store failed: {0}")]
    Kv(String),
    /// No such sibling function or binding.
    #[error("no such service: {0}")]
    NoService(String),
    /// A database refused or failed a statement.
    #[error("database failed: {0}")]
    Sql(String),
}

/// The runtime, as the core sees it. Implementations are cheap to clone (an `Rc` or a handle).
#[allow(async_fn_in_trait)]
pub trait Host: Clone + 'static {
    /// Sends a request to the outside world. `Err` only when no response arrived at all;
    /// any HTTP status is `Ok`. The response body may stream.
    async fn fetch(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError>;

    /// Calls a sibling function by name (`chat`, `admin`, ...): a service binding on
    /// Cloudflare, `http://<name>.spin.internal` on Spin.
    async fn call_function(&self, name: &str, request: http::Request<Bytes>)
        -> Result<http::Response<Body>, HostError>;

    /// Reads a value from the named KV store.
    async fn kv_get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, HostError>;

    /// Writes a value. `ttl_hint_secs` is only a hint (Spin ignores it, Workers needs >= 60):
    /// the core stores its own deadline with values that expire.
    async fn kv_put(&self, store: &str, key: &str, value: Vec<u8>, ttl_hint_secs: Option<u64>)
        -> Result<(), HostError>;

    /// Deletes a value; deleting a missing key is not an error.
    async fn kv_delete(&self, store: &str, key: &str) -> Result<(), HostError>;

    /// Runs one SQL statement (SQLite's dialect) in `db` and returns its rows, `RETURNING`
    /// rows included. One statement is atomic; nothing spans two ([`crate::sql`]).
    async fn sql(&self, db: Database<'_>, statement: &Statement) -> Result<Vec<Row>, HostError>;

    /// Wall-clock time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Resolves after `ms` milliseconds; used for timeouts and backoff.
    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()>;

    /// A configuration variable or secret by its upper-case name (`OPENAI_API_KEY`).
    fn var(&self, name: &str) -> Option<String>;

    /// Fills `buf` with random bytes (request ids, jitter).
    fn random_bytes(&self, buf: &mut [u8]);

    /// Runs `task` after the response has been sent (`ctx.wait_until` on Workers).
    fn spawn_background(&self, task: LocalBoxFuture<'static, ()>);

    /// Writes one structured log record, as its JSON line ([`Record::to_line`]): to the console
    /// on Workers (Workers Logs, `wrangler tail`), to stderr on Spin.
    fn log(&self, record: &Record<'_>);

    /// The trace of the request being served ([`RequestHost`]); `None` outside one.
    fn trace(&self) -> Option<Rc<Trace>> {
        None
    }
}

/// A host serving one request: every log record it writes names the request (and is dropped
/// below `LOG_LEVEL`), and every outbound call carries its trace context.
#[derive(Clone)]
pub struct RequestHost<H> {
    inner: H,
    request_id: Rc<str>,
    trace: Rc<Trace>,
}

impl<H: Host> RequestHost<H> {
    pub fn new(inner: H, request_id: &str, trace: Rc<Trace>) -> Self {
        RequestHost { inner, request_id: Rc::from(request_id), trace }
    }

    /// This request's `traceparent` (its span the parent) and the caller's `tracestate`, over
    /// whatever the request carried: a relayed request carries the caller's own.
    fn traced<B>(&self, mut request: http::Request<B>) -> http::Request<B> {
        let headers = request.headers_mut();
        if let Ok(value) = http::HeaderValue::from_str(&self.trace.traceparent()) {
            headers.insert(TRACEPARENT, value);
        }
        match self.trace.trace_state.as_deref().map(http::HeaderValue::from_str) {
            Some(Ok(state)) => {
                headers.insert(TRACESTATE, state);
            }
            _ => {
                headers.remove(TRACESTATE);
            }
        }
        request
    }
}

impl<H: Host> Host for RequestHost<H> {
    fn fetch(&self, request: http::Request<Bytes>) -> impl Future<Output = Result<http::Response<Body>, HostError>> {
        self.inner.fetch(self.traced(request))
    }

    fn call_function(
        &self,
        name: &str,
        request: http::Request<Bytes>,
    ) -> impl Future<Output = Result<http::Response<Body>, HostError>> {
        self.inner.call_function(name, self.traced(request))
    }

    fn kv_get(&self, store: &str, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, HostError>> {
        self.inner.kv_get(store, key)
    }

    fn kv_put(
        &self,
        store: &str,
        key: &str,
        value: Vec<u8>,
        ttl_hint_secs: Option<u64>,
    ) -> impl Future<Output = Result<(), HostError>> {
        self.inner.kv_put(store, key, value, ttl_hint_secs)
    }

    fn kv_delete(&self, store: &str, key: &str) -> impl Future<Output = Result<(), HostError>> {
        self.inner.kv_delete(store, key)
    }

    fn sql(&self, db: Database<'_>, statement: &Statement) -> impl Future<Output = Result<Vec<Row>, HostError>> {
        self.inner.sql(db, statement)
    }

    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        self.inner.sleep(ms)
    }

    fn var(&self, name: &str) -> Option<String> {
        self.inner.var(name)
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        self.inner.random_bytes(buf);
    }

    fn spawn_background(&self, task: LocalBoxFuture<'static, ()>) {
        self.inner.spawn_background(task);
    }

    fn log(&self, record: &Record<'_>) {
        if record.level >= self.trace.settings.min_level {
            self.inner.log(&Record { request_id: Some(&self.request_id), ..*record });
        }
    }

    fn trace(&self) -> Option<Rc<Trace>> {
        Some(Rc::clone(&self.trace))
    }
}

/// A minimal host for this crate's unit tests: a settable clock, in-memory KV, and background
/// tasks held until the test runs them. (`opencode-testkit` implements the `Host` of this crate
/// as other crates see it, not of its own test build.)
#[cfg(test)]
pub(crate) mod fake {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    use futures::FutureExt as _;

    use super::*;

    type Kv = RefCell<BTreeMap<(String, String), Vec<u8>>>;
    type Tasks = RefCell<Vec<LocalBoxFuture<'static, ()>>>;

    #[derive(Clone, Default)]
    pub(crate) struct FakeHost {
        now_ms: Rc<Cell<u64>>,
        kv: Rc<Kv>,
        background: Rc<Tasks>,
    }

    impl FakeHost {
        pub(crate) fn at(now_ms: u64) -> Self {
            let host = FakeHost::default();
            host.now_ms.set(now_ms);
            host
        }

        pub(crate) fn kv(&self, store: &str, key: &str) -> Option<Vec<u8>> {
            self.kv.borrow().get(&(store.to_owned(), key.to_owned())).cloned()
        }

        /// Runs the background tasks, and those they spawn, to completion.
        pub(crate) fn run_background(&self) {
            loop {
                let tasks: Vec<_> = self.background.borrow_mut().drain(..).collect();
                if tasks.is_empty() {
                    return;
                }
                tasks.into_iter().for_each(futures::executor::block_on);
            }
        }
    }

    impl Host for FakeHost {
        async fn fetch(&self, _request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
            Err(HostError::Connect("no network in unit tests".into()))
        }

        async fn call_function(
            &self,
            name: &str,
            _request: http::Request<Bytes>,
        ) -> Result<http::Response<Body>, HostError> {
            Err(HostError::NoService(name.to_owned()))
        }

        async fn kv_get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
            Ok(self.kv(store, key))
        }

        async fn kv_put(&self, store: &str, key: &str, value: Vec<u8>, _ttl: Option<u64>) -> Result<(), HostError> {
            self.kv.borrow_mut().insert((store.to_owned(), key.to_owned()), value);
            Ok(())
        }

        async fn kv_delete(&self, store: &str, key: &str) -> Result<(), HostError> {
            self.kv.borrow_mut().remove(&(store.to_owned(), key.to_owned()));
            Ok(())
        }

        async fn sql(&self, _db: Database<'_>, _statement: &Statement) -> Result<Vec<Row>, HostError> {
            Err(HostError::Sql("no database in unit tests".into()))
        }

        fn now_ms(&self) -> u64 {
            self.now_ms.get()
        }

        fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
            futures::future::ready(()).boxed_local()
        }

        fn var(&self, _name: &str) -> Option<String> {
            None
        }

        fn random_bytes(&self, buf: &mut [u8]) {
            buf.fill(7);
        }

        fn spawn_background(&self, task: LocalBoxFuture<'static, ()>) {
            self.background.borrow_mut().push(task);
        }

        fn log(&self, _record: &Record<'_>) {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::cell::Cell;

    use futures::StreamExt as _;

    use super::*;

    /// A body of `chunks` chunks of 1 KiB that counts how many were read.
    fn counted(chunks: usize) -> (Body, Rc<Cell<usize>>) {
        let read = Rc::new(Cell::new(0));
        let seen = Rc::clone(&read);
        let stream = futures::stream::iter(0..chunks).map(move |_| {
            seen.set(seen.get() + 1);
            Ok(Bytes::from(vec![b'x'; 1024]))
        });
        (Body::Stream(Box::pin(stream)), read)
    }

    #[test]
    fn an_oversized_body_is_drained_within_bounds_before_it_is_refused() {
        let (body, read) = counted(40);
        let result = futures::executor::block_on(body.collect(4 * 1024));
        assert!(matches!(result, Err(HostError::TooLarge)));
        assert_eq!(read.get(), 40, "the rest of the upload is read, so the client sees the 413");

        let (body, read) = counted(10_000);
        let result = futures::executor::block_on(body.collect(1024));
        assert!(matches!(result, Err(HostError::TooLarge)));
        assert!(read.get() <= DRAIN_FACTOR + 3, "draining stops at the cap, read {}", read.get());

        let (body, _) = counted(3);
        assert_eq!(futures::executor::block_on(body.collect(3 * 1024)).unwrap().len(), 3 * 1024);
    }
}
