//! opencode-runtime: what the platform does, over the [`host::Host`] trait.
//!
//! It is every mode (`modes`, and `agent`: chat on System 2) ending in the one typed answer and
//! event stream of `answer`; the bounded System 2 loop they share (`bounded`); the executor (the
//! only code that sends provider requests: timeouts, retries, backoff, `Retry-After`, fallback,
//! the stream's commit point), web search and sandbox I/O; knowledge (RAG) over the KV store,
//! the System 1 answer cache, metrics, each request's trace (`trace`), and the configuration every request runs with.
//! Translations come from `opencode_core`; everything here reaches the world only through
//! [`host::Host`], which each runtime adapter implements.
//!
//! It is not HTTP: it parses no client request and shapes no response; `opencode-api` does
//! both. Each module has its own error type, which the API maps to a status in one place.

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod agent;
pub mod answer;
pub mod bounded;
pub mod cache;
pub mod config;
pub mod control;
pub mod executor;
pub mod flags;
pub mod guard;
pub mod host;
pub mod knowledge;
pub mod log;
pub mod metrics;
pub mod modes;
pub mod sandbox;
pub mod search;
pub mod sql;
pub mod sse;
pub mod trace;
pub mod webhooks;

pub use host::{Body, ByteStream, Host, HostError, RequestHost};
