//! Routes match like Spin's (exact and `/...` wildcards, longest wins) and the guest gets
//! Spin's routing headers; clock and randomness come from WASI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{probe_manifest, scratch, SpinHost};

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_owned()
}

#[test]
fn the_longest_route_wins_and_sets_spin_headers() {
    let dir = scratch("routing");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);

    let special = host.get("/special/info?x=1").text();
    assert_eq!(field(&special, "matched-route"), "/special/...");
    assert_eq!(field(&special, "component-route"), "/special");
    assert_eq!(field(&special, "path-info"), "/info");
    assert!(field(&special, "uri").starts_with("http://127.0.0.1:"), "{special}");
    assert!(field(&special, "uri").ends_with("/special/info?x=1"), "{special}");

    let catch_all = host.get("/info").text();
    assert_eq!(field(&catch_all, "matched-route"), "/...");
    assert_eq!(field(&catch_all, "path-info"), "/info");

    // `/specialx` is not under `/special/...`: the catch-all probe answers, without a handler.
    let near_miss = host.get("/specialx/ping");
    assert_eq!(near_miss.status, 404);
    assert!(near_miss.text().starts_with("probe: no handler"), "{}", near_miss.text());
}

#[test]
fn unrouted_paths_get_a_host_404() {
    let dir = scratch("routing-404");
    let manifest =
        std::fs::read_to_string(probe_manifest(&dir, "", "")).unwrap().replace("route = \"/...\"", "route = \"/ping\"");
    let path = dir.join("exact.toml");
    std::fs::write(&path, manifest).unwrap();
    let host = SpinHost::start(&path, &[], &[]);
    assert_eq!(host.get("/ping").text(), "pong");
    assert_eq!(host.get("/ping/deeper").status, 404, "an exact route is not a prefix");
    let missing = host.get("/pong");
    assert_eq!((missing.status, missing.text().as_str()), (404, "not found\n"));
}

#[test]
fn clock_and_randomness_come_from_the_host() {
    let dir = scratch("routing-clock");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let now: u64 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis().try_into().unwrap();
    let first = host.get("/info").text();
    let guest_now: u64 = field(&first, "now-ms").parse().unwrap();
    assert!(guest_now.abs_diff(now) < 5_000, "{guest_now} vs {now}");
    let second = host.get("/info").text();
    assert_eq!(field(&first, "random").len(), 32);
    assert_ne!(field(&first, "random"), field(&second, "random"));
}
