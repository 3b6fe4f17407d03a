//! opencode-testkit: the native [`Host`] the core's tests run on.
//!
//! Outbound HTTP is a scripted handler (a closure per test), KV is an in-memory map, time is
//! tokio's (so `#[tokio::test(start_paused = true)]` makes timeouts and backoff instant and
//! deterministic), background tasks are queued until the test runs them. It is not a server;
//! the only real I/O is [`http_fetch`], an upstream for tests against the provider simulator
//! (those run on real time, not a paused clock).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::stream::StreamExt;
use futures::FutureExt;
use opencode_runtime::log::Record;
use opencode_runtime::{Body, Host, HostError};

mod db;
mod net;
pub use net::http_fetch;

/// What a scripted upstream answers.
pub type Upstream =
    Rc<dyn Fn(http::Request<Bytes>) -> LocalBoxFuture<'static, Result<http::Response<Body>, HostError>>>;

/// A sibling function, called in process.
pub type Function = Rc<dyn Fn(TestHost, http::Request<Bytes>) -> LocalBoxFuture<'static, http::Response<Body>>>;

#[derive(Default)]
struct State {
    vars: RefCell<HashMap<String, String>>,
    kv: RefCell<BTreeMap<(String, String), Vec<u8>>>,
    requests: RefCell<Vec<http::Request<Bytes>>>,
    upstream: RefCell<Option<Upstream>>,
    functions: RefCell<HashMap<String, Function>>,
    background: RefCell<Vec<LocalBoxFuture<'static, ()>>>,
    /// Log lines as written, parsed back.
    logs: RefCell<Vec<serde_json::Value>>,
    /// KV stores whose writes fail.
    failing_stores: RefCell<Vec<String>>,
    fixed_now_ms: Cell<Option<u64>>,
    random_state: Cell<u64>,
    /// The SQL database (every `Database` in one, as on Spin), opened on first use.
    db: db::Db,
}

/// A cheap-to-clone native host; clones share state.
#[derive(Clone, Default)]
pub struct TestHost {
    state: Rc<State>,
}

/// 2026-01-01T00:00:00Z: the wall clock tests start at, unless fixed.
pub const EPOCH_MS: u64 = 1_767_225_600_000;

thread_local! {
    static START: tokio::time::Instant = tokio::time::Instant::now();
}

impl TestHost {
    pub fn new() -> Self {
        TestHost::default()
    }

    /// Sets a configuration variable.
    pub fn with_var(self, name: &str, value: &str) -> Self {
        self.state.vars.borrow_mut().insert(name.to_string(), value.to_string());
        self
    }

    /// Scripts the outbound HTTP: every `fetch` goes to `upstream`.
    pub fn with_upstream<F, Fut>(self, upstream: F) -> Self
    where
        F: Fn(http::Request<Bytes>) -> Fut + 'static,
        Fut: std::future::Future<Output = Result<http::Response<Body>, HostError>> + 'static,
    {
        *self.state.upstream.borrow_mut() = Some(Rc::new(move |req| upstream(req).boxed_local()));
        self
    }

    /// Registers a sibling function reachable through `call_function`.
    pub fn with_function<F, Fut>(self, name: &str, function: F) -> Self
    where
        F: Fn(TestHost, http::Request<Bytes>) -> Fut + 'static,
        Fut: std::future::Future<Output = http::Response<Body>> + 'static,
    {
        self.state
            .functions
            .borrow_mut()
            .insert(name.to_string(), Rc::new(move |host, req| function(host, req).boxed_local()));
        self
    }

    /// Freezes the wall clock at `ms` (JWT expiry tests); `None` lets it follow tokio time.
    pub fn set_now_ms(&self, ms: Option<u64>) {
        self.state.fixed_now_ms.set(ms);
    }

    /// Every request sent upstream so far.
    pub fn requests(&self) -> Vec<http::Request<Bytes>> {
        self.state.requests.borrow().clone()
    }

    /// Runs the queued background tasks to completion.
    pub async fn run_background(&self) {
        loop {
            let tasks: Vec<_> = self.state.background.borrow_mut().drain(..).collect();
            if tasks.is_empty() {
                return;
            }
            futures::future::join_all(tasks).await;
        }
    }

    /// Makes every write to `store` fail from now on, as a KV outage would.
    pub fn fail_kv_writes(&self, store: &str) {
        self.state.failing_stores.borrow_mut().push(store.to_owned());
    }

    /// Every log line written so far, parsed (`msg`, `level`, `request_id`, fields).
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.state.logs.borrow().clone()
    }

    /// A snapshot of one KV store.
    pub fn kv_snapshot(&self, store: &str) -> BTreeMap<String, Vec<u8>> {
        self.state
            .kv
            .borrow()
            .iter()
            .filter(|((s, _), _)| s == store)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl Host for TestHost {
    async fn fetch(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
        self.state.requests.borrow_mut().push(request.clone());
        let upstream = self.state.upstream.borrow().clone();
        match upstream {
            Some(upstream) => upstream(request).await,
            None => Err(HostError::Connect("no upstream scripted".into())),
        }
    }

    async fn call_function(
        &self,
        name: &str,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Body>, HostError> {
        let function = self.state.functions.borrow().get(name).cloned();
        match function {
            Some(function) => Ok(function(self.clone(), request).await),
            None => Err(HostError::NoService(name.to_string())),
        }
    }

    async fn kv_get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.state.kv.borrow().get(&(store.to_string(), key.to_string())).cloned())
    }

    async fn kv_put(
        &self,
        store: &str,
        key: &str,
        value: Vec<u8>,
        _ttl_hint_secs: Option<u64>,
    ) -> Result<(), HostError> {
        if self.state.failing_stores.borrow().iter().any(|s| s == store) {
            return Err(HostError::Kv(format!("the {store} store is down")));
        }
        self.state.kv.borrow_mut().insert((store.to_string(), key.to_string()), value);
        Ok(())
    }

    async fn kv_delete(&self, store: &str, key: &str) -> Result<(), HostError> {
        self.state.kv.borrow_mut().remove(&(store.to_string(), key.to_string()));
        Ok(())
    }

    async fn sql(
        &self,
        _db: opencode_runtime::sql::Database<'_>,
        statement: &opencode_runtime::sql::Statement,
    ) -> Result<Vec<opencode_runtime::sql::Row>, HostError> {
        self.state.db.run(statement)
    }

    fn now_ms(&self) -> u64 {
        if let Some(ms) = self.state.fixed_now_ms.get() {
            return ms;
        }
        let elapsed = START.with(|start| tokio::time::Instant::now().duration_since(*start));
        EPOCH_MS + elapsed.as_millis() as u64
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<'static, ()> {
        tokio::time::sleep(Duration::from_millis(ms)).boxed_local()
    }

    fn var(&self, name: &str) -> Option<String> {
        self.state.vars.borrow().get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        // xorshift64*: deterministic per host, good enough for ids and jitter in tests.
        let mut x = self.state.random_state.get() ^ 0x9E37_79B9_7F4A_7C15;
        for byte in buf.iter_mut() {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            *byte = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
        self.state.random_state.set(x);
    }

    fn spawn_background(&self, task: LocalBoxFuture<'static, ()>) {
        self.state.background.borrow_mut().push(task);
    }

    fn log(&self, record: &Record<'_>) {
        // A line that does not parse is a bug in the writer: fail the test here.
        #[allow(clippy::expect_used)]
        let line = serde_json::from_str(&record.to_line()).expect("a log line is JSON");
        self.state.logs.borrow_mut().push(line);
    }
}

/// A JSON response from a scripted upstream.
pub fn json_response(status: u16, body: &str) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(body.to_string()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// A streamed response whose chunks arrive `delay_ms` apart (tokio time); `then_error`
/// breaks the connection after the last chunk instead of ending cleanly.
pub fn streamed_response(chunks: Vec<String>, delay_ms: u64, then_error: bool) -> http::Response<Body> {
    let items = chunks.into_iter().map(|c| Ok(Bytes::from(c)));
    let tail: Vec<Result<Bytes, HostError>> =
        if then_error { vec![Err(HostError::Body("connection reset".into()))] } else { vec![] };
    let stream = futures::stream::iter(items.chain(tail)).then(move |item| async move {
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        item
    });
    let mut response = http::Response::new(Body::Stream(stream.boxed_local()));
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
    response
}

/// A stream that never sends anything (a hung upstream).
pub fn hanging_response() -> http::Response<Body> {
    http::Response::new(Body::Stream(futures::stream::pending().boxed_local()))
}
