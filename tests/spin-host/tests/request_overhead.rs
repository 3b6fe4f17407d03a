//! What spin-host adds to a request: a trivial probe request over a kept-alive connection,
//! against the same client talking to a bare TCP responder. Prints the measurement; the bound
//! asserted is loose (a shared CI machine) — run with `--release -- --nocapture` to measure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{probe_manifest, read_response, scratch, SpinHost};

fn p50_round_trip(addr: SocketAddr, path: &str, rounds: usize) -> Duration {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        writer.write_all(request.as_bytes()).unwrap();
        let response = read_response(&mut reader, start);
        assert_eq!(response.status, 200);
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// A keep-alive responder with no work at all: the floor of what this client can measure.
fn bare_responder() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            stream.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line.trim().is_empty() {
                        let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\npong");
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_trivial_request_adds_little_latency() {
    let dir = scratch("overhead");
    let host = SpinHost::start(&probe_manifest(&dir, "", ""), &[], &[]);
    // Warm up: the first request instantiates the component.
    p50_round_trip(host.addr, "/ping", 50);
    let spin = p50_round_trip(host.addr, "/ping", 2000);
    let bare = p50_round_trip(bare_responder(), "/ping", 2000);
    let added = spin.saturating_sub(bare);
    println!("request overhead: spin-host p50 {spin:?}, bare responder p50 {bare:?}, added {added:?}");
    // The target on the development machine is < 0.3 ms with a release build; the bound here
    // only catches regressions like a fresh instance or a recompile per request.
    assert!(added < Duration::from_millis(3), "added {added:?}");
}
