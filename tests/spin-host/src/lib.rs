//! spin-host: a native runner for this project's Spin components, for local development and
//! tests on machines where the Spin CLI cannot be installed.
//!
//! It reads `spin.toml` (manifest version 2) and serves every HTTP route on one address with
//! wasmtime 48: WASI (p2 and p3), `wasi:http@0.3.0`, `spin:key-value@3.0.0` (in memory, or
//! file-backed with `--kv-dir`), `spin:sqlite@3.1.0` (the `default` database, shared by all
//! components: in memory, or in a file with `--sqlite-file`; `--sqlite` runs SQL at startup as
//! `spin up --sqlite` does), `spin:variables@3.0.0` and `wasi:config/store` (values from
//! `SPIN_VARIABLE_<NAME>`, then manifest defaults), `allowed_outbound_hosts` (enforced) and
//! `http://<component>.spin.internal` service chaining, in process, and outbound connection
//! pooling (as Spin does by default).
//!
//! It is not Spin: no runtime-config file, no Redis or cron triggers, no `files`, no OCI
//! sources, no `:param` route segments. Users with the Spin CLI run `spin up` (Spin 4.1 or
//! later, for `wasi:http/handler@0.3.0`) on the same manifest.

mod client;
pub mod kv;
pub mod manifest;
pub mod outbound;
pub mod routes;
pub mod runtime;
pub mod server;
mod spin_api;
pub mod sqlite;
