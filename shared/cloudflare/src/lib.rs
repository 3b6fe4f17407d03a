//! opencode-cloudflare: the `opencode_runtime::Host` on Cloudflare Workers.
//!
//! It is the only place that knows about the `worker` crate. It turns an incoming Workers
//! request into an `http::Request<opencode_runtime::Body>`, hands it to `opencode_runtime::serve`,
//! and turns the answer back into a Workers response, streaming `Body::Stream` chunk by chunk.
//! `WorkersHost` gives the core outbound `fetch` (response bodies stream), service bindings
//! to sibling functions (binding = upper-case function name), Workers KV (store `cache` is
//! binding `CACHE`), SQL (D1 binding `DB`; each scope's counters in a Durable Object of class
//! `Counters`, binding `COUNTERS`), vars and secrets, `Date.now()`, timers,
//! `crypto.getRandomValues` and `ctx.wait_until`. Each function crate is one line:
//! `entry!(Chat)`; admin's, `entry!(Admin, counters)`, also exports the `Counters` class.
//!
//! It is not logic: no routing, parsing, retries or expiry decisions live here (TTLs are only
//! passed on to KV as a hint). It must not panic on any input: a panic on Workers resets the
//! whole Wasm instance and kills every request in flight on it, so every failure becomes a
//! `HostError` or a plain 500 response.
//!
//! On any target other than `wasm32-unknown-unknown` the crate is empty, so a native
//! `cargo build --workspace` never compiles the `worker` SDK.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod convert;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod host;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod kv;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod sql;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod stream;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use host::WorkersHost;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use serve_impl::{into_web_response, serve_raw};

/// What [`entry!`] expands to needs; not part of the API.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[doc(hidden)]
pub mod __private {
    pub use crate::sql::CountersStore;
    pub use opencode_api::functions;
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod serve_impl {
    use crate::convert;
    use crate::host::WorkersHost;
    use opencode_api::Function;
    use worker::web_sys;

    /// Runs function `F` on the raw `web_sys::Request` the runtime hands over; this is what
    /// [`entry!`](crate::entry) expands to. (`worker`'s own `HttpRequest` conversion is not
    /// used: it panics on an HTTP version string it does not know.)
    pub async fn serve_raw<F: Function>(
        request: web_sys::Request,
        env: worker::Env,
        ctx: worker::Context,
    ) -> worker::Result<web_sys::Response> {
        match convert::request_from_web(&request).await {
            Ok(request) => respond::<F>(request, env, ctx).await,
            Err(message) => convert::plain_response(400, message),
        }
    }

    async fn respond<F: Function>(
        request: http::Request<opencode_runtime::Body>,
        env: worker::Env,
        ctx: worker::Context,
    ) -> worker::Result<web_sys::Response> {
        let host = WorkersHost::new(env, ctx);
        into_web_response(opencode_api::serve::<F, _>(host, request).await)
    }

    /// Turns a core response into the runtime's, streaming `Body::Stream` chunk by chunk.
    /// [`serve_raw`] uses it; it is public for Workers that drive [`WorkersHost`] without
    /// `opencode_runtime::serve` (the adapter's own runtime tests). A response the runtime refuses
    /// (a status outside 200–599, say) becomes a plain 500.
    pub fn into_web_response(response: http::Response<opencode_runtime::Body>) -> worker::Result<web_sys::Response> {
        match convert::response_to_web(response) {
            Ok(response) => Ok(response),
            Err(error) => {
                worker::console_error!("opencode: could not build the response: {error}");
                convert::plain_response(500, "the response could not be built")
            }
        }
    }
}

/// Expands to the Workers `fetch` entry point of one function: `entry!(Chat);` (a type in
/// `opencode_api::functions`) in the function crate's `lib.rs`. The crate needs `worker` (its `#[event]` macro names
/// `::worker` paths) and `opencode-cloudflare` as dependencies for `wasm32-unknown-unknown`.
///
/// No `#[event(start)]` panic hook is added: `worker` already installs one that logs the
/// panic message and marks the instance for reinitialisation.
///
/// `entry!(Admin, counters)` also exports the Durable Object class `Counters`
/// ([`counters_object!`]): one function's Worker carries it (admin's), and every Worker binds
/// `COUNTERS` to that script.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[macro_export]
macro_rules! entry {
    ($function:ident, counters) => {
        $crate::entry!($function);
        $crate::counters_object!();
    };
    ($function:ident) => {
        #[::worker::event(fetch)]
        async fn fetch(
            request: ::worker::web_sys::Request,
            env: ::worker::Env,
            ctx: ::worker::Context,
        ) -> ::worker::Result<::worker::web_sys::Response> {
            $crate::serve_raw::<$crate::__private::functions::$function>(request, env, ctx).await
        }
    };
}

/// Expands to the Durable Object class `Counters`: the exact counters of one scope, in the
/// object's own SQLite storage (declare it in `new_sqlite_classes`). It creates
/// `opencode_runtime::sql::COUNTERS_TABLE` when it starts and runs the one statement each
/// request carries (what `WorkersHost::sql` sends for `Database::Counters`). A macro, not a type
/// here: a class exported from this crate would be in every function's Wasm, and only the
/// Worker that hosts the objects needs it.
///
/// The class is exported with `wasm_bindgen` directly rather than `worker`'s
/// `#[durable_object]`, which hands the object a `worker::Request` and converts its
/// `worker::Response` back (conversions that unwrap inside `worker`): here the runtime's own
/// request and response go through, as in [`entry!`], and admin's Wasm is 3.7 KiB (gzipped)
/// smaller for it. worker-build exports the class like any other (`export class Counters`).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[macro_export]
macro_rules! counters_object {
    () => {
        /// The exact counters of one scope: an SQL executor over its own SQLite storage.
        #[::worker::wasm_bindgen::prelude::wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
        pub struct Counters {
            store: $crate::__private::CountersStore,
        }

        // Kept as written: rustfmt re-indents a multi-line attribute inside a macro on every run.
        #[rustfmt::skip]
        #[::worker::wasm_bindgen::prelude::wasm_bindgen(
            wasm_bindgen = ::worker::wasm_bindgen,
            wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
            js_sys = ::worker::js_sys
        )]
        impl Counters {
            #[wasm_bindgen(constructor)]
            pub fn new(state: ::worker::worker_sys::DurableObjectState, _env: ::worker::wasm_bindgen::JsValue) -> Self {
                Self { store: $crate::__private::CountersStore::new(&state) }
            }

            pub async fn fetch(
                &self,
                request: ::worker::web_sys::Request,
            ) -> ::std::result::Result<::worker::web_sys::Response, ::worker::wasm_bindgen::JsValue> {
                self.store.fetch(&request).await
            }
        }
    };
}
