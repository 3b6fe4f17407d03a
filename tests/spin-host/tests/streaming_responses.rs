//! Response and request bodies stream: each chunk the guest yields reaches the client when it
//! is produced, and `Host::sleep` waits without blocking the instance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::time::{Duration, Instant};

use common::{probe_manifest, request, scratch, SpinHost};

#[test]
fn chunks_reach_the_client_as_the_guest_yields_them() {
    let dir = scratch("stream-out");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let response = host.get("/stream?n=4&ms=300");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "chunk 0\nchunk 1\nchunk 2\nchunk 3\n");
    assert_eq!(response.chunk_times.len(), 4, "one HTTP chunk per guest chunk");
    let times: Vec<Duration> = response.chunk_times.iter().map(|(t, _)| *t).collect();
    assert!(times[0] < Duration::from_millis(250), "{times:?}");
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(200), "{times:?}");
    }
}

#[test]
fn sleeping_requests_do_not_hold_up_others() {
    let dir = scratch("stream-concurrent");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let addr = host.addr;
    let slow = std::thread::spawn(move || request(addr, "GET", "/stream?n=2&ms=1500", &[], b""));
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    assert_eq!(host.get("/ping").text(), "pong");
    assert!(start.elapsed() < Duration::from_millis(1000), "{:?}", start.elapsed());
    assert_eq!(slow.join().unwrap().text(), "chunk 0\nchunk 1\n");
}

#[test]
fn request_bodies_reach_the_guest() {
    let dir = scratch("stream-in");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let response = request(host.addr, "POST", "/echo", &[], &body);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body);
}
