//! The `gateway` function. All logic lives in opencode-core; this crate only names the function
//! to each runtime's entry point.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
opencode_cloudflare::entry!(Gateway);

#[cfg(target_os = "wasi")]
opencode_spin::entry!(Gateway);
