//! `spin:key-value`: stores by label, access limited to a component's declared stores,
//! shared between components, listed by prefix, and kept on disk with `--kv-dir`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{probe_manifest, request, scratch, SpinHost};

const CHAIN: &str = r#"allowed_outbound_hosts = ["http://echo.spin.internal"]"#;

#[test]
fn values_round_trip_and_deletes_remove_them() {
    let dir = scratch("kv-round-trip");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    assert_eq!(host.get("/kv/default/greeting").status, 404);
    let put = request(host.addr, "PUT", "/kv/default/greeting", &[], b"hello \xff bytes");
    assert_eq!(put.status, 204, "{}", put.text());
    let got = host.get("/kv/default/greeting");
    assert_eq!((got.status, got.body.as_slice()), (200, &b"hello \xff bytes"[..]));
    assert_eq!(request(host.addr, "DELETE", "/kv/default/greeting", &[], b"").status, 204);
    assert_eq!(host.get("/kv/default/greeting").status, 404);
    // Deleting a missing key is not an error.
    assert_eq!(request(host.addr, "DELETE", "/kv/default/greeting", &[], b"").status, 204);
}

#[test]
fn keys_are_listed_by_prefix_sorted_and_limited() {
    let dir = scratch("kv-list");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    for key in ["u:3", "u:1", "x:9", "u:2"] {
        assert_eq!(request(host.addr, "PUT", &format!("/kv/data/{key}"), &[], b"v").status, 204);
    }
    assert_eq!(host.get("/kv-list/data?prefix=u%3A&limit=10").text(), "u:1\nu:2\nu:3");
    assert_eq!(host.get("/kv-list/data?prefix=u%3A&limit=2").text(), "u:1\nu:2");
    assert_eq!(host.get("/kv-list/data?prefix=&limit=0").text(), "");
}

#[test]
fn a_store_the_component_did_not_declare_is_refused() {
    let dir = scratch("kv-denied");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let response = host.get("/kv/cache/anything");
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(response.text().contains("store cache"), "{}", response.text());
    // `special` declares no store at all.
    assert_eq!(host.get("/special/kv/default/x").status, 502);
}

#[test]
fn components_naming_the_same_store_share_its_data() {
    let dir = scratch("kv-shared");
    let host = SpinHost::start(&probe_manifest(&dir, "", CHAIN), &[], &[]);
    assert_eq!(request(host.addr, "PUT", "/kv/data/shared", &[], b"from probe").status, 204);
    let via_echo = host.get("/chain/echo/kv/data/shared");
    assert_eq!((via_echo.status, via_echo.text().as_str()), (200, "from probe"));
}

#[test]
fn a_kv_dir_keeps_values_across_restarts() {
    let dir = scratch("kv-dir");
    let manifest = probe_manifest(&dir, "", "");
    let kv_dir = dir.join("kv");
    let kv_arg = kv_dir.to_str().unwrap();
    let host = SpinHost::start(&manifest, &[], &["--kv-dir", kv_arg]);
    assert_eq!(request(host.addr, "PUT", "/kv/data/durable", &[], b"still here").status, 204);
    assert!(host.terminate().success());

    let host = SpinHost::start(&manifest, &[], &["--kv-dir", kv_arg]);
    assert_eq!(host.get("/kv/data/durable").text(), "still here");
    // Without the directory the store starts empty.
    drop(host);
    let host = SpinHost::start(&manifest, &[], &[]);
    assert_eq!(host.get("/kv/data/durable").status, 404);
}
