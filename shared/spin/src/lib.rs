//! opencode-spin: the [`opencode_runtime::Host`] on Fermyon Spin (spin-sdk 7, WASIp3 `wasi:http`).
//!
//! It is a thin adapter and nothing more: [`SpinHost`] maps each capability the core asks for
//! onto one Spin interface — outbound HTTP onto the `wasi:http` client (response bodies stream
//! through unbuffered, so provider SSE reaches the client chunk by chunk), sibling functions onto
//! `http://<name>.spin.internal` service chaining, KV onto `spin:key-value` stores opened by
//! label (`cache`, `data`), configuration onto the component's Spin variables (the core's
//! `OPENAI_API_KEY` is the variable `openai_api_key`), time onto `wasi:clocks`, randomness onto
//! `wasi:random`, background work onto a task spawned inside the component-model task so it runs
//! after the response has been returned. [`serve`] converts one request and response, and
//! [`entry!`] exports a function crate as a Spin HTTP component.
//!
//! It is not where logic goes: every decision is `opencode_runtime::serve`'s. It keeps nothing in
//! module statics, because Spin and wasmtime reuse one WASIp3 instance for many requests, and
//! it never panics on outside input. Natively (for `cargo test`) the crate is only its pure
//! helpers in [`wire`]; the adapter itself compiles for `target_os = "wasi"`.

pub mod wire;

#[cfg(target_os = "wasi")]
mod host;
#[cfg(target_os = "wasi")]
mod serve;

#[cfg(target_os = "wasi")]
pub use host::{body_stream, send, SpinHost};
#[cfg(target_os = "wasi")]
pub use serve::{serve, ResponseBody};

/// What [`entry!`] expands to needs; not part of the API.
#[cfg(target_os = "wasi")]
#[doc(hidden)]
pub mod __private {
    pub use crate::serve::handle;
    pub use opencode_api::functions;
    pub use spin_sdk::wasip3;
}

/// Exports the crate as a Spin HTTP component (`wasi:http/handler@0.3.0`) that runs the named
/// core function on every request: `opencode_spin::entry!(Chat);` (a type in
/// `opencode_api::functions`) at the top level of a
/// function crate's `lib.rs`, under `#[cfg(target_os = "wasi")]`. The crate needs only
/// `opencode-spin` as a dependency for it.
#[macro_export]
macro_rules! entry {
    ($function:ident) => {
        #[doc(hidden)]
        #[allow(unsafe_code)]
        mod __opencode_spin_entry {
            struct Component;

            $crate::__private::wasip3::http::service::export!(Component);

            impl $crate::__private::wasip3::exports::http::handler::Guest for Component {
                async fn handle(
                    request: $crate::__private::wasip3::http::types::Request,
                ) -> ::core::result::Result<
                    $crate::__private::wasip3::http::types::Response,
                    $crate::__private::wasip3::http::types::ErrorCode,
                > {
                    $crate::__private::handle::<$crate::__private::functions::$function>(request).await
                }
            }
        }
    };
}
