//! The `provider-sim` binary: flags, the one announced line, exit on SIGTERM / SIGINT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_provider-sim");

/// Starts the binary and reads its first line.
fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("provider-sim did not exit on the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

fn port_of(line: &str) -> u16 {
    let rest = line
        .strip_prefix("provider-sim listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    rest.trim_end().parse().unwrap()
}

#[tokio::test]
async fn port_zero_announces_one_line_serves_and_exits_on_sigterm() {
    let (mut child, line) = spawn(&["--port", "0"]);
    assert!(line.ends_with('\n'));
    let port = port_of(&line);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = common::send(addr, "GET", "/_sim/health", &[], None).await;
    assert_eq!(r.status, 200);
    let r = common::call(addr, "openai", "from the binary", false).await;
    assert_eq!(common::answer_text("openai", &r.json()), "Hello from openai (gpt-4o-mini). You said: from the binary");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child).success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut rest).unwrap();
    assert!(rest.is_empty(), "stderr: {rest}");
}

#[tokio::test]
async fn listen_flag_binds_the_given_loopback_address_and_exits_on_sigint() {
    let (mut child, line) = spawn(&["--listen", "127.0.0.1:0"]);
    assert_ne!(port_of(&line), 0);
    signal(&child, "INT");
    assert!(wait_exit(&mut child).success());
}

#[test]
fn non_loopback_addresses_and_bad_flags_are_refused() {
    for args in [&["--listen", "0.0.0.0:0"][..], &["--port", "nope"], &["--bogus"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}
