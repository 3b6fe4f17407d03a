//! Shared test plumbing: build the probe and relay fixtures, start spin-host on a manifest, and
//! a tiny HTTP/1.1 client that records when each body chunk arrives (to prove streaming).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("running cargo");
    assert!(status.success(), "cargo {args:?} failed");
}

/// Builds the probe fixture (once per test binary) and returns its `.wasm`.
pub fn probe_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| fixture_wasm("probe")).clone()
}

/// Builds the relay fixture (once per test binary) and returns its `.wasm`.
pub fn relay_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| fixture_wasm("relay")).clone()
}

/// Builds `tests/spin-host/fixtures/<name>` for wasm32-wasip2 and returns its `.wasm`.
fn fixture_wasm(name: &str) -> PathBuf {
    let manifest = format!("tests/spin-host/fixtures/{name}/Cargo.toml");
    cargo(&["build", "--release", "--target", "wasm32-wasip2", "--manifest-path", &manifest]);
    let wasm = target_dir().join(format!("wasm32-wasip2/release/spin_host_{name}.wasm"));
    assert!(wasm.exists(), "{} was not built", wasm.display());
    wasm
}

/// Builds the platform's function components with scripts/spin/build.
pub fn build_functions() {
    // The build script knows which profile each component uses (spin.toml points there).
    let status = Command::new(workspace().join("scripts/spin/build"))
        .arg("--components")
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir())
        .status()
        .expect("running scripts/spin/build");
    assert!(status.success(), "scripts/spin/build --components failed");
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("spin-host-tests").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running spin-host; killed when dropped.
pub struct SpinHost {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl SpinHost {
    /// Starts spin-host on `manifest` with extra environment, waiting until it listens.
    pub fn start(manifest: &Path, env: &[(&str, &str)], extra_args: &[&str]) -> Self {
        Self::try_start(manifest, env, extra_args).unwrap_or_else(|log| panic!("spin-host did not start:\n{log}"))
    }

    /// Like [`SpinHost::start`], returning spin-host's stderr if it exits before listening.
    pub fn try_start(manifest: &Path, env: &[(&str, &str)], extra_args: &[&str]) -> Result<Self, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spin-host"));
        command
            .arg("--manifest")
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting spin-host");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[spin-host] {line}");
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let read = stdout.read_line(&mut line).unwrap_or(0);
        if read == 0 {
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            return Err(log.lock().unwrap().clone());
        }
        let addr = line
            .trim()
            .strip_prefix("spin-host listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        std::thread::spawn(move || for _ in stdout.lines() {});
        Ok(Self { child, addr, log })
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "spin-host did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }
}

impl Drop for SpinHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a manifest running the probe as component `probe` on `/...` and as the private
/// component `echo`; `extra` is appended to `[component.probe]`'s table.
pub fn probe_manifest(dir: &Path, variables: &str, probe_extra: &str) -> PathBuf {
    let wasm = probe_wasm();
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "probe-test"

[variables]
{variables}

[[trigger.http]]
route = "/..."
component = "probe"

[[trigger.http]]
route = "/special/..."
component = "special"

[[trigger.http]]
route = {{ private = true }}
component = "echo"

[component.probe]
source = "{wasm}"
key_value_stores = ["default", "data"]
sqlite_databases = ["default"]
{probe_extra}

[component.special]
source = "{wasm}"

[component.echo]
source = "{wasm}"
key_value_stores = ["data"]
sqlite_databases = ["default"]
"#,
        wasm = wasm.display()
    );
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// One response, with the time each body chunk arrived (relative to the request).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunk_times: Vec<(Duration, Vec<u8>)>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the whole response.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let start = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_response(&mut BufReader::new(stream), start)
}

/// Reads one response from `reader`: head, then a chunked or sized body.
pub fn read_response(reader: &mut impl BufRead, start: Instant) -> Response {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).expect("status line").parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (k, v) = trimmed.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    let mut chunk_times = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
            if size == 0 {
                line.clear();
                let _ = reader.read_line(&mut line);
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk).unwrap();
            chunk_times.push((start.elapsed(), chunk.clone()));
            body.extend_from_slice(&chunk);
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
    } else if let Some(length) = find("content-length") {
        body = vec![0; length.parse().unwrap()];
        reader.read_exact(&mut body).unwrap();
        chunk_times.push((start.elapsed(), body.clone()));
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    Response { status, headers, body, chunk_times }
}

/// A local upstream that answers every request with `chunks`, one every `gap`, chunked.
/// Returns its address and a log of the request lines it saw.
pub fn slow_upstream(chunks: Vec<&'static str>, gap: Duration) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let chunks = chunks.clone();
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                log.lock().unwrap().push(line.trim().to_owned());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                );
                for (i, chunk) in chunks.iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(gap);
                    }
                    let _ = stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
                    let _ = stream.flush();
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            });
        }
    });
    (addr, seen)
}

/// Percent-encodes a URL for a query parameter.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
