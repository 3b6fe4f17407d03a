//! opencode-runtime: what the platform does, over the [`host::Host`] trait.
//!
//! It is the executor (the only code that sends provider requests: timeouts, retries, backoff,
//! `Retry-After`, fallback, the stream's commit point), web search and sandbox I/O on the same
//! attempt rules, knowledge (RAG) over the KV store, the System 1 answer cache, metrics, and the
//! configuration every request runs with. Translations come from `opencode_core`; everything
//! here reaches the world only through [`host::Host`], which each runtime adapter implements.
//!
//! It is not HTTP: it parses no client request and shapes no response; `opencode-api` does
//! both. Each module has its own error type, which the API maps to a status in one place.

pub mod cache;
pub mod config;
pub mod executor;
pub mod host;
pub mod knowledge;
pub mod metrics;
pub mod search;
pub mod sse;

pub use host::{Body, ByteStream, Host, HostError};
