//! Starting and stopping: port 0 picks a free port, SIGTERM exits cleanly, and a manifest that
//! cannot run is refused at startup with a reason; instances serve their quota and retire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::{probe_manifest, scratch, SpinHost};

#[test]
fn sigterm_stops_the_host_cleanly() {
    let dir = scratch("lifecycle-term");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    assert_ne!(host.addr.port(), 0);
    assert_eq!(host.get("/ping").text(), "pong");
    let status = host.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_missing_component_file_is_a_startup_error() {
    let dir = scratch("lifecycle-missing");
    let manifest = std::fs::read_to_string(probe_manifest(&dir, "", "")).unwrap();
    let broken = dir.join("broken.toml");
    let wasm = common::probe_wasm();
    std::fs::write(&broken, manifest.replacen(&wasm.display().to_string(), "/nonexistent/x.wasm", 1)).unwrap();
    let log = SpinHost::try_start(&broken, &[], &[]).err().expect("must not start");
    assert!(log.contains("/nonexistent/x.wasm"), "{log}");
}

#[test]
fn invalid_outbound_hosts_and_routes_are_startup_errors() {
    let dir = scratch("lifecycle-invalid");
    let bad_host = probe_manifest(&dir, "", r#"allowed_outbound_hosts = ["api.openai.com"]"#);
    let log = SpinHost::try_start(&bad_host, &[], &[]).err().expect("must not start");
    assert!(log.contains("api.openai.com"), "{log}");
}

#[test]
fn every_serving_thread_answers_and_shares_the_stores() {
    let dir = scratch("lifecycle-threads");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &["--threads", "3"]);
    // Many connections at once: whichever thread accepts each, every one is served, and a value
    // written through one connection is read through the others.
    let addr = host.addr;
    let writers: Vec<_> = (0..12)
        .map(|n| {
            std::thread::spawn(move || {
                let put = common::request(addr, "PUT", &format!("/kv/data/k{n}"), &[], format!("v{n}").as_bytes());
                assert_eq!(put.status, 204, "{}", put.text());
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let readers: Vec<_> = (0..12)
        .map(|n| std::thread::spawn(move || common::request(addr, "GET", &format!("/kv/data/k{n}"), &[], b"").text()))
        .collect();
    for (n, reader) in readers.into_iter().enumerate() {
        assert_eq!(reader.join().unwrap(), format!("v{n}"));
    }
}

#[test]
fn an_instance_serves_its_quota_and_the_next_starts_from_the_declared_memory() {
    use spin_host::runtime::MAX_REUSE;
    let dir = scratch("lifecycle-reuse");
    // One thread, requests one after another: each component has one instance at a time.
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &["--threads", "1"]);
    // Two instances retire and their slots are handed on; each successor's counters start over.
    for n in 0..2 * MAX_REUSE + 3 {
        let served = n % MAX_REUSE + 1;
        let count = common::request(host.addr, "GET", "/count", &[], b"");
        assert_eq!(count.text(), format!("{} {served}", 1000 + served), "request {n}");
    }
}

#[test]
fn a_thread_count_that_is_not_positive_is_refused() {
    let dir = scratch("lifecycle-threads-zero");
    let log =
        SpinHost::try_start(&probe_manifest(&dir, "", ""), &[], &["--threads", "0"]).err().expect("must not start");
    assert!(log.contains("--threads 0"), "{log}");
}
