//! What a program cannot do in the sandbox, proven by running programs on the real service:
//! reach the network, write outside its private `/tmp`, see the host's `/tmp`, run as anything
//! but uid 65534 without capabilities.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use serde_json::json;

#[tokio::test]
async fn no_network_a_host_listener_on_loopback_is_unreachable() {
    let sandbox = common::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        r#"
import socket
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("example.com", 80)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("CONNECTED", host)
    except OSError as e:
        print("blocked", host, type(e).__name__)
print(sorted(name for _, name in socket.if_nameindex()))
"#
    );
    let run = common::run(sandbox.addr(), "python", &code, json!({})).await;
    let stdout = run["stdout"].as_str().unwrap();
    assert_eq!(run["code"], 0, "{run}");
    assert!(!stdout.contains("CONNECTED"), "{stdout}");
    assert_eq!(stdout.matches("blocked").count(), 3, "{stdout}");
    // Only the sandbox's own loopback exists.
    assert!(stdout.contains("['lo']"), "{stdout}");
    assert!(listener.accept().is_err(), "the host listener saw a connection");

    let js = "require('net').connect(PORT, '127.0.0.1').on('connect', () => console.log('CONNECTED')).on('error', e => console.log('blocked', e.code))"
        .replace("PORT", &port.to_string());
    let run = common::run(sandbox.addr(), "js", &js, json!({})).await;
    assert_eq!(run["stdout"], "blocked ECONNREFUSED\n", "{run}");
}

#[tokio::test]
async fn no_writes_outside_tmp_and_tmp_is_writable() {
    let sandbox = common::start();
    let repo = env!("CARGO_MANIFEST_DIR");
    let escape = std::path::Path::new(repo).join("written-by-the-sandbox");
    let code = format!(
        r#"
import os
for path in ["/etc/passwd", "/etc/new", "/root/new", "/usr/new", "/new", "/proc/sys/kernel/hostname", "{escape}"]:
    try:
        with open(path, "a") as f:
            f.write("x")
        print("WROTE", path)
    except OSError as e:
        print("refused", path, e.strerror)
with open("/tmp/ok.txt", "w") as f:
    f.write("fine")
print("tmp", open("/tmp/ok.txt").read(), os.getcwd())
"#,
        escape = escape.display()
    );
    let run = common::run(sandbox.addr(), "python", &code, json!({})).await;
    let stdout = run["stdout"].as_str().unwrap();
    assert!(!stdout.contains("WROTE"), "{stdout}");
    assert_eq!(stdout.matches("refused").count(), 7, "{stdout}");
    assert!(stdout.contains("tmp fine /tmp"), "{stdout}");
    assert!(!escape.exists());
}

#[tokio::test]
async fn tmp_is_private_host_files_are_invisible_and_runs_do_not_share_it() {
    let sandbox = common::start();
    let planted = std::env::temp_dir().join(common::marker("planted"));
    std::fs::write(&planted, "host secret").unwrap();
    let code = format!(
        "import os\nprint(os.path.exists({:?}), sorted(os.listdir('/tmp')))\nopen('/tmp/left-behind', 'w').write('x')",
        planted.display().to_string()
    );
    let run = common::run(sandbox.addr(), "python", &code, json!({})).await;
    std::fs::remove_file(&planted).unwrap();
    assert_eq!(run["stdout"], "False ['file0.code']\n", "{run}");
    let again = common::run(sandbox.addr(), "python", "import os; print(os.listdir('/tmp'))", json!({})).await;
    assert_eq!(again["stdout"], "['file0.code']\n", "{again}");
}

#[tokio::test]
async fn runs_as_uid_65534_on_the_host_too_without_capabilities() {
    let sandbox = common::start();
    let code = r#"
import os, sys, time
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
caps = {k: status[k].strip() for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]}
print(os.getuid(), os.getgid(), os.getgroups(), set(caps.values()), status["NoNewPrivs"].strip())
sys.stdout.flush()
time.sleep(1.5)
"#;
    let marker = common::marker("uid");
    let addr = sandbox.addr();
    let running = tokio::spawn(async move { common::run(addr, "python", code, json!({"args": [marker]})).await });
    // While it sleeps, look at it from the host.
    let marker = common::marker("uid");
    let mut seen = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen = common::host_processes(&marker);
        if seen.len() >= 2 {
            break;
        }
    }
    let run = running.await.unwrap();
    assert_eq!(run["stdout"], "65534 65534 [] {'0000000000000000'} 1\n", "{run}");
    assert!(!seen.is_empty(), "the run was not seen on the host");
    // Run as root, the service starts runs as 65534; run by another user, runs are that
    // user on the host (and 65534 only inside their user namespace).
    let expected = match own_uid() {
        0 => 65534,
        uid => uid,
    };
    for (pid, uid) in &seen {
        assert_eq!(*uid, expected, "host process {pid} of the run is uid {uid}");
    }
}

#[tokio::test]
async fn javascript_sees_the_same_jail() {
    let sandbox = common::start();
    let code = r#"
const fs = require('fs');
let wrote = [];
for (const p of ['/etc/x', '/usr/x', '/x']) { try { fs.writeFileSync(p, 'x'); wrote.push(p) } catch (e) { } }
console.log(process.getuid(), process.getgid(), fs.readdirSync('/tmp'), process.cwd(), wrote.length, require('os').hostname());
"#;
    let run = common::run(sandbox.addr(), "javascript", code, json!({})).await;
    assert_eq!(run["stdout"], "65534 65534 [ 'file0.code' ] /tmp 0 sandbox\n", "{run}");
}

fn own_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let ids = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    ids.split_whitespace().next().unwrap().parse().unwrap()
}
