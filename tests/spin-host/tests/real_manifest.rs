//! The repository's own `spin.toml` runs: every function component loads, and function routes
//! answer with the core's JSON (not spin-host's plain-text 404 or 500).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{build_functions, workspace, SpinHost};

#[test]
fn the_repository_manifest_serves_every_function_route() {
    build_functions();
    // Isolate from the developer's environment: no SPIN_VARIABLE_* reaches the host here.
    let host = SpinHost::start(&workspace().join("spin.toml"), &[], &[]);

    for path in [
        "/health",
        "/admin/status",
        "/v1/chat",
        "/v1/chat/completions",
        "/v1/knowledge",
        "/v1/knowledge/search",
        "/v1/search",
        "/v1/code",
        "/v1/thinking",
        "/v1/research",
        "/v1/search/results",
        "/v1/code/run",
        "/v1/unknown",
    ] {
        let response = host.get(path);
        let text = response.text();
        assert!(
            response.header("content-type").is_some_and(|t| t.starts_with("application/json")),
            "{path}: {} {:?} {text}",
            response.status,
            response.headers
        );
        assert!(text.trim_start().starts_with('{'), "{path}: {text}");
        if response.status >= 400 {
            // The core's error envelope.
            assert!(text.contains("\"error\""), "{path}: {text}");
        }
    }
    assert!(!host.log().contains("failed"), "{}", host.log());
}
