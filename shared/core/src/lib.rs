//! opencode-core: every piece of the platform's logic, independent of any runtime.
//!
//! It is the provider client (pure wire translations plus one executor that does the I/O),
//! authentication, configuration, errors and the request handlers of every function. It is
//! not a runtime adapter: it never depends on `worker`, `spin-sdk` or `tokio`, and reaches the
//! world only through [`host::Host`]. It builds for the native target, `wasm32-unknown-unknown`
//! and `wasm32-wasip2`.

pub mod agent;
pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod executor;
pub mod functions;
pub mod host;
pub mod knowledge;
pub mod metrics;
pub mod model;
pub mod pricing;
pub mod providers;
pub mod routing;
pub mod sandbox;
pub mod search;
pub mod sse;
pub mod web;

pub use host::{Body, ByteStream, Host, HostError};

pub use functions::{serve, Function};

/// Runs the function called `function` (`gateway`, `chat`, `admin`, ...) on one request, for
/// tests and tools. The runtime adapters call [`serve`] with the function's type instead, so
/// each Wasm links only its own handler. It never panics and always answers; errors become
/// JSON error responses with the request id.
pub async fn serve_named<H: Host>(function: &str, host: H, request: http::Request<Body>) -> http::Response<Body> {
    functions::serve_named(function, host, request).await
}
