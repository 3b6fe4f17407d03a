//! `provider-sim`: a native simulator of the LLM providers' HTTP APIs, for tests.
//!
//! It answers OpenAI Chat Completions (also under any prefix such as `/ollama`, to play an
//! OpenAI-compatible server), Anthropic Messages and Gemini `generateContent` /
//! `streamGenerateContent`, streamed or not, the OpenAI and Gemini embedding APIs (with
//! deterministic hashed bag-of-words vectors), and the web search APIs Tavily (`POST /search`)
//! and Brave (`GET /res/v1/web/search`), in each vendor's documented JSON and SSE wire format.
//! Answers are deterministic (`Hello from {label} ({model}). You said: {text}`,
//! one word per stream event, word-count usage) so tests can assert exact text and usage.
//! Directives written in a request's message text (`sim:openai:status=503*2`,
//! `sim:any:cut=3`, ...) inject faults: error statuses, `Retry-After`, delays, hangs,
//! dropped connections, malformed JSON, cut streams and in-stream error events. Every
//! request is logged, credentials redacted, at `GET /_sim/requests`. See the README for
//! the grammar.
//!
//! What it is not: a model, a proxy, or a faithful copy of every field a vendor may send.
//! It covers the fields a client needs (ids, text, tool calls, finish reasons, usage, errors)
//! and nothing else; images are not simulated. Tool calls follow a deterministic rule
//! (`tools.rs`): one call of the first (or the forced) tool, then an answer quoting the results. It binds loopback
//! addresses only and is meant for tests, never for production traffic.
//!
//! ```no_run
//! let sim = provider_sim::start("127.0.0.1:0")?;
//! println!("OpenAI base URL: {}/v1", sim.url());
//! # Ok::<(), std::io::Error>(())
//! ```

mod anthropic;
mod body;
mod code;
mod embeddings;
mod faults;
mod gemini;
mod openai;
mod plan;
mod reply;
mod route;
mod search;
mod server;
mod state;
mod tools;
mod wire;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::oneshot;

/// A running simulator. It stops when dropped or on [`SimHandle::shutdown`].
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<state::State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The provider requests received so far, as `GET /_sim/requests` returns them.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests()
    }

    /// Clears the request log and the `*K` fault counters, like `POST /_sim/reset`.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops serving and closes every open connection; returns once it has.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Starts a simulator on `addr` (a loopback address; port 0 picks a free port) on a
/// thread of its own with its own Tokio runtime, so it works from sync and async code
/// alike. Returns once the socket is bound.
///
/// # Errors
/// The address does not resolve to a loopback address, cannot be bound, or the runtime
/// cannot start.
pub fn start(addr: impl ToSocketAddrs) -> io::Result<SimHandle> {
    let loopback: Vec<SocketAddr> = addr.to_socket_addrs()?.filter(|a| a.ip().is_loopback()).collect();
    if loopback.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "provider-sim binds loopback addresses only"));
    }
    let std_listener = std::net::TcpListener::bind(loopback.as_slice())?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let state = Arc::new(state::State::default());
    let (stop, stopped) = oneshot::channel();
    let serve_state = Arc::clone(&state);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    let thread = std::thread::Builder::new().name(format!("provider-sim:{}", addr.port())).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            server::serve(listener, serve_state, stopped).await;
        });
        // Dropping the runtime drops every connection task, closing their sockets.
        drop(runtime);
    })?;
    let ready = ready_rx.recv().unwrap_or_else(|_| Err(io::Error::other("provider-sim thread ended before serving")));
    let handle = SimHandle { addr, state, stop: Some(stop), thread: Some(thread) };
    ready.map(|()| handle)
}
