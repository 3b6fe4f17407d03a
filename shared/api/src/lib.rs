//! opencode-api: the platform over HTTP.
//!
//! It is the deployable functions (one type per Wasm function, [`functions::Function`]), the
//! request wrapper every one of them runs in (request id, configuration, authentication), the
//! parsing and validation of client requests, [`error::ApiError`] with its one mapping to an
//! HTTP status and stable code, and every JSON and SSE shape a client reads. What the platform
//! does lives in `opencode-runtime`; this crate only speaks it. The runtime adapters call
//! [`serve`] with the function's type, so each Wasm links only its own handler.

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod anthropic;
pub mod auth;
pub mod error;
pub mod functions;
pub mod jwt;
pub mod openai;
pub mod platform;
pub mod seed;
pub mod sse;
pub mod sso;
pub mod telemetry;
pub mod web;

pub use functions::{serve, Function};
pub use opencode_runtime::{Body, ByteStream, Host, HostError};

/// Runs the function called `function` (`gateway`, `chat`, `admin`, ...) on one request, for
/// tests and tools. The runtime adapters call [`serve`] with the function's type instead, so
/// each Wasm links only its own handler. It never panics and always answers; errors become
/// JSON error responses with the request id.
pub async fn serve_named<H: Host>(function: &str, host: H, request: http::Request<Body>) -> http::Response<Body> {
    functions::serve_named(function, host, request).await
}
