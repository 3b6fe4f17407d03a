//! A small HTTP/1.1 client for the sandbox's tests, and helpers to run code and to look at the
//! host's processes while a run is going on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

pub fn start() -> sandbox::SandboxHandle {
    sandbox::start("127.0.0.1:0").expect("the sandbox starts (is bubblewrap installed?)")
}

/// One request on a fresh connection: status and the body parsed as JSON.
pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, _, value) = send_full(addr, method, path, headers, body).await;
    (status, value)
}

/// [`send`], with the answer's headers.
pub async fn send_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, Value) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let request = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(response.headers().get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, headers, value)
}

/// `POST /api/v2/execute` of one file with `extra` fields merged in; asserts a 200 and
/// returns the whole answer.
pub async fn execute(addr: SocketAddr, language: &str, code: &str, extra: Value) -> Value {
    let mut body = json!({"language": language, "version": "*", "files": [{"content": code}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, answer) = send(addr, "POST", "/api/v2/execute", &[], &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// `n` runs of 1.5 s sent at once; their statuses, headers and answers, in the order sent.
pub async fn slow_runs_at_once(addr: SocketAddr, n: usize) -> Vec<(u16, http::HeaderMap, Value)> {
    let body = json!({"language": "python", "version": "*",
                      "files": [{"content": "import time\ntime.sleep(1.5)\nprint('done')"}]})
    .to_string();
    let sending: Vec<_> = (0..n)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move { send_full(addr, "POST", "/api/v2/execute", &[], &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for answer in sending {
        answers.push(answer.await.unwrap());
    }
    answers
}

/// Like [`execute`] but returns only `run`.
pub async fn run(addr: SocketAddr, language: &str, code: &str, extra: Value) -> Value {
    execute(addr, language, code, extra).await["run"].clone()
}

/// Host processes whose command line contains `marker`, with their real uid.
pub fn host_processes(marker: &str) -> Vec<(u32, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(marker) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|uid| uid.parse().ok())
            .unwrap();
        found.push((pid, uid));
    }
    found
}

/// A marker unique to this test process and call site.
pub fn marker(name: &str) -> String {
    format!("sandbox-test-{name}-{}", std::process::id())
}
