//! The `agent` function: chat on System 2, the agent loop with the platform's tools. Chat
//! forwards those requests here; all logic lives in opencode-core.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
opencode_cloudflare::entry!(Agent);

#[cfg(target_os = "wasi")]
opencode_spin::entry!(Agent);
