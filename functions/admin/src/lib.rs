//! The `admin` function. All logic lives in opencode-core; this crate only names the function
//! to each runtime's entry point.

// On Workers admin's script also hosts the `Counters` Durable Objects every Worker binds.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
opencode_cloudflare::entry!(Admin, counters);

#[cfg(target_os = "wasi")]
opencode_spin::entry!(Admin);
