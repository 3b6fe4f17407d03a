//! The `sandbox` binary: the one announced line, `--token` / `SANDBOX_TOKEN`, `--max-queue` /
//! `SANDBOX_MAX_QUEUE`, exit on SIGTERM and SIGINT, refusal of non-loopback addresses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sandbox");

/// The running binary; killed if a test ends without stopping it.
struct Service {
    child: Child,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Service, u16) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut service = Service { child, stderr: Some(stderr) };
    let mut line = String::new();
    BufReader::new(service.child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line
        .strip_prefix("sandbox listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .trim_end()
        .parse()
        .unwrap();
    (service, port)
}

/// Sends `signal`, waits for a clean exit and returns what the binary wrote on stderr.
fn stop(mut service: Service, signal: &str) -> String {
    let child = &mut service.child;
    let sent = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return service.stderr.take().unwrap().join().unwrap();
        }
        if Instant::now() > deadline {
            panic!("the sandbox did not exit on SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn announces_one_line_runs_code_and_exits_on_sigterm() {
    let (child, port) = spawn(&["--port", "0"], &[("SANDBOX_TOKEN", "")]);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let run = common::run(addr, "python", "print(6 * 7)", serde_json::json!({})).await;
    assert_eq!(run["stdout"], "42\n");
    let stderr = stop(child, "TERM");
    // It says on stderr what bounds a run's memory here.
    assert!(stderr.lines().any(|l| l.starts_with("sandbox: run_memory_limit bounds each")), "{stderr}");
}

#[tokio::test]
async fn the_token_comes_from_the_flag_or_the_environment() {
    for (args, env) in [(&["--token", "flag-token"][..], &[][..]), (&[], &[("SANDBOX_TOKEN", "flag-token")][..])] {
        let (child, port) = spawn(args, env);
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let (status, _) = common::send(addr, "GET", "/api/v2/runtimes", &[], "").await;
        assert_eq!(status, 401);
        let (status, _) =
            common::send(addr, "GET", "/api/v2/runtimes", &[("authorization", "Bearer flag-token")], "").await;
        assert_eq!(status, 200);
        stop(child, "INT");
    }
}

#[test]
fn non_loopback_addresses_and_bad_flags_are_refused() {
    for args in [&["--listen", "0.0.0.0:0"][..], &["--port", "nope"], &["--bogus"], &["--max-queue", "-1"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn the_queue_bound_comes_from_the_flag_or_the_environment() {
    for (args, env) in [(&["--max-queue", "0"][..], &[][..]), (&[], &[("SANDBOX_MAX_QUEUE", "0")][..])] {
        let (child, port) = spawn(args, env);
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        // Four run at once and none may wait: the fifth is refused.
        let answers = common::slow_runs_at_once(addr, 5).await;
        let refused = answers.iter().filter(|(status, _, _)| *status == 503).count();
        assert_eq!(refused, 1, "{args:?} {env:?}: {answers:?}");
        stop(child, "TERM");
    }
}
