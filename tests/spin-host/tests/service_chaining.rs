//! `http://<component>.spin.internal` reaches that component in process, private components
//! included, and only when the caller's `allowed_outbound_hosts` allows it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{probe_manifest, scratch, SpinHost};

#[test]
fn a_chained_request_reaches_a_private_component() {
    let dir = scratch("chain-private");
    let manifest = probe_manifest(&dir, "", r#"allowed_outbound_hosts = ["http://*.spin.internal"]"#);
    let host = SpinHost::start(&manifest, &[], &[]);
    let response = host.get("/chain/echo/info?q=1");
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    assert!(text.contains("uri=http://echo.spin.internal/info?q=1"), "{text}");
    assert!(text.contains("path-info=/info"), "{text}");
    // Chained requests stream like any other.
    let streamed = host.get("/chain/echo/stream?n=3&ms=200");
    assert_eq!(streamed.text(), "chunk 0\nchunk 1\nchunk 2\n");
    assert!(streamed.chunk_times.len() >= 2, "{:?}", streamed.chunk_times);
}

#[test]
fn a_private_component_has_no_public_route() {
    let dir = scratch("chain-no-route");
    let mut manifest = std::fs::read_to_string(probe_manifest(&dir, "", "")).unwrap();
    manifest = manifest.replace("route = \"/...\"", "route = \"/probe/...\"");
    let path = dir.join("private.toml");
    std::fs::write(&path, manifest).unwrap();
    let host = SpinHost::start(&path, &[], &[]);
    assert_eq!(host.get("/probe/ping").text(), "pong");
    assert_eq!(host.get("/echo/ping").status, 404);
    assert_eq!(host.get("/ping").status, 404);
}

#[test]
fn chaining_needs_the_target_in_allowed_outbound_hosts() {
    let dir = scratch("chain-denied");
    let manifest = probe_manifest(&dir, "", r#"allowed_outbound_hosts = ["http://special.spin.internal"]"#);
    let host = SpinHost::start(&manifest, &[], &[]);
    assert_eq!(host.get("/chain/special/ping").text(), "pong");
    let denied = host.get("/chain/echo/ping");
    assert_eq!(denied.status, 502, "{}", denied.text());
    assert!(denied.text().contains("refused"), "{}", denied.text());
}

#[test]
fn chaining_to_an_unknown_component_is_no_service() {
    let dir = scratch("chain-unknown");
    let manifest = probe_manifest(&dir, "", r#"allowed_outbound_hosts = ["http://*.spin.internal"]"#);
    let host = SpinHost::start(&manifest, &[], &[]);
    let response = host.get("/chain/ghost/ping");
    assert_eq!(response.status, 502);
    assert!(response.text().contains("no such service: ghost"), "{}", response.text());
    let response = host.get("/chain/Bad.Name/ping");
    assert!(response.text().contains("no such service"), "{}", response.text());
}
