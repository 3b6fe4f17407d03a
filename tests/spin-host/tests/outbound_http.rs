//! Outbound HTTP: `allowed_outbound_hosts` is enforced (a refused request fails in the guest
//! and is logged by the host), and an allowed upstream's body streams through chunk by chunk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::time::Duration;

use common::{encode, probe_manifest, probe_wasm, relay_wasm, request, scratch, slow_upstream, SpinHost};

/// The probe, allowed to call any port on 127.0.0.1 (where the tests' upstreams listen).
fn probe_allowed_loopback(name: &str) -> SpinHost {
    let manifest = probe_manifest(&scratch(name), "", r#"allowed_outbound_hosts = ["http://127.0.0.1:*"]"#);
    SpinHost::start(&manifest, &[], &[])
}

/// The relay fixture on `/relay` and the probe on everything else (its `/echo` is an upstream),
/// both allowed to call any port on 127.0.0.1.
fn relay_allowed_loopback(name: &str) -> SpinHost {
    let manifest = scratch(name).join("spin.toml");
    let text = format!(
        r#"spin_manifest_version = 2
[application]
name = "relay-test"

[[trigger.http]]
route = "/relay"
component = "relay"

[[trigger.http]]
route = "/..."
component = "probe"

[component.relay]
source = "{relay}"
allowed_outbound_hosts = ["http://127.0.0.1:*"]

[component.probe]
source = "{probe}"
"#,
        relay = relay_wasm().display(),
        probe = probe_wasm().display(),
    );
    std::fs::write(&manifest, text).unwrap();
    SpinHost::start(&manifest, &[], &[])
}

#[test]
fn an_allowed_upstream_streams_through_as_it_arrives() {
    let (upstream, seen) =
        slow_upstream(vec!["data: one\n\n", "data: two\n\n", "data: three\n\n"], Duration::from_millis(400));
    let host = probe_allowed_loopback("outbound-stream");

    let url = format!("http://{upstream}/v1/stream?x=1");
    let response = host.get(&format!("/fetch?url={}", encode(&url)));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "data: one\n\ndata: two\n\ndata: three\n\n");
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(seen.lock().unwrap().as_slice(), ["GET /v1/stream?x=1 HTTP/1.1"]);

    // The first event reached the client long before the upstream finished (800 ms).
    let (first_at, first) = &response.chunk_times[0];
    let (last_at, _) = response.chunk_times.last().unwrap();
    assert!(first.starts_with(b"data: one"), "{first:?}");
    assert!(*first_at < Duration::from_millis(500), "first chunk after {first_at:?}");
    assert!(*last_at >= Duration::from_millis(750), "last chunk after {last_at:?}");
}

#[test]
fn the_relay_posts_a_body_whole_and_answers_with_the_upstreams_reply() {
    // The benchmark's runtime floor: the relay posts to the probe's /echo over the network.
    let host = relay_allowed_loopback("outbound-relay");
    let echo = format!("http://{}/echo", host.addr);
    // Larger than one read frame (16 KiB), so the relay must gather several.
    let body: Vec<u8> = (0..50_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let response = request(
        host.addr,
        "POST",
        &format!("/relay?url={}", encode(&echo)),
        &[("content-type", "application/json")],
        &body,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.body, body);
    assert_eq!(response.header("content-length"), Some("50000"));

    let refused = request(host.addr, "POST", "/relay?url=http%3A%2F%2Flocalhost%3A1%2F", &[], b"{}");
    assert_eq!(refused.status, 502, "{}", refused.text());
}

#[test]
fn the_relay_imports_no_spin_interface_so_wasmtime_serve_can_run_it() {
    // The benchmark times the same Wasm under `wasmtime serve`, which links WASI alone.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model_async(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = wasmtime::component::Component::from_file(&engine, relay_wasm()).unwrap();
    let imports: Vec<String> = component.component_type().imports(&engine).map(|(name, _)| name.to_owned()).collect();
    assert!(imports.iter().any(|name| name.starts_with("wasi:http/")), "{imports:?}");
    assert!(!imports.iter().any(|name| name.starts_with("spin:")), "{imports:?}");
}

#[test]
fn the_streamed_relay_passes_the_upstreams_events_on_as_they_arrive() {
    // The benchmark's floor for a streamed chat's first byte.
    let (upstream, seen) = slow_upstream(vec!["data: one\n\n", "data: two\n\n"], Duration::from_millis(400));
    let host = relay_allowed_loopback("outbound-relay-stream");
    let url = format!("http://{upstream}/v1/chat/completions");
    let response = request(host.addr, "POST", &format!("/relay?stream=1&url={}", encode(&url)), &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "data: one\n\ndata: two\n\n");
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(seen.lock().unwrap().as_slice(), ["POST /v1/chat/completions HTTP/1.1"]);
    let (first_at, first) = &response.chunk_times[0];
    assert!(first.starts_with(b"data: one"), "{first:?}");
    assert!(*first_at < Duration::from_millis(350), "first chunk after {first_at:?}");
}

#[test]
fn a_host_not_in_allowed_outbound_hosts_is_refused_and_logged() {
    let (upstream, seen) = slow_upstream(vec!["never"], Duration::ZERO);
    let dir = scratch("outbound-denied");
    let manifest =
        probe_manifest(&dir, "", r#"allowed_outbound_hosts = ["http://localhost:1", "https://api.openai.com"]"#);
    let host = SpinHost::start(&manifest, &[], &[]);

    let response = host.get(&format!("/fetch?url={}", encode(&format!("http://{upstream}/secret?key=sk-1"))));
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(response.text().contains("refused by the runtime"), "{}", response.text());
    assert!(seen.lock().unwrap().is_empty(), "the request must not leave the host");
    std::thread::sleep(Duration::from_millis(100));
    let log = host.log();
    assert!(log.contains(&format!("\"probe\" denied outbound request to http://{upstream}")), "{log}");
    assert!(!log.contains("sk-1"), "the log must not carry the URL's query: {log}");

    // A component with no allowed hosts at all is refused too.
    let response = host.get(&format!("/special/fetch?url={}", encode(&format!("http://{upstream}/"))));
    assert_eq!(response.status, 502);
}

#[test]
fn an_unreachable_allowed_host_is_a_connection_error() {
    let host = probe_allowed_loopback("outbound-unreachable");
    // Port 1 on loopback refuses connections.
    let response = host.get(&format!("/fetch?url={}", encode("http://127.0.0.1:1/")));
    assert_eq!(response.status, 502);
    assert!(response.text().contains("connection failed"), "{}", response.text());
}
