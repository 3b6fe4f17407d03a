//! What the sandbox stops: endless loops (wall clock), fork bombs (processes counted per run),
//! memory hogs, floods of output and huge files, each reported with Piston's status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

fn assert_killed_for(run: &serde_json::Value, status: &str) {
    let brief = json!([run["status"], run["signal"], run["code"], run["message"], run["wall_time"]]);
    assert_eq!(run["status"], status, "{brief}");
    assert_eq!(run["signal"], "SIGKILL", "{brief}");
    assert!(run["code"].is_null(), "{brief}");
}

#[tokio::test]
async fn an_infinite_loop_is_killed_at_run_timeout_with_status_to() {
    let sandbox = common::start();
    for (language, code) in
        [("python", "while True:\n    pass"), ("js", "for (;;) {}"), ("python", "import time\ntime.sleep(60)")]
    {
        let started = Instant::now();
        let run = common::run(sandbox.addr(), language, code, json!({"run_timeout": 1000})).await;
        assert_killed_for(&run, "TO");
        assert_eq!(run["message"], "Time limit exceeded (wall clock)");
        let wall = run["wall_time"].as_u64().unwrap();
        assert!((1000..2500).contains(&wall), "wall_time {wall}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}

#[tokio::test]
async fn the_cpu_limit_stops_a_busy_program_with_a_longer_wall_clock() {
    let sandbox = common::start();
    // The CPU rlimit is run_cpu_time rounded up to seconds: 1 s here, against 5 s of wall clock.
    let run = common::run(
        sandbox.addr(),
        "python",
        "while True:\n    pass",
        json!({"run_timeout": 5000, "run_cpu_time": 1000}),
    )
    .await;
    assert_killed_for(&run, "TO");
    assert_eq!(run["message"], "Time limit exceeded");
    assert!(run["wall_time"].as_u64().unwrap() < 4000, "{run}");
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_other_runs_are_unaffected() {
    let sandbox = common::start();
    let marker = common::marker("forkbomb");
    let bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass";
    let addr = sandbox.addr();
    let args = json!({"run_timeout": 3000, "args": [marker]});
    let bombing = tokio::spawn(async move { common::run(addr, "python", bomb, args).await });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The bomb's processes, seen from the host: never more than the per-run limit (64).
    let during = common::host_processes(&marker);
    // Another run at the same time still starts processes of its own.
    let neighbour = common::run(
        addr,
        "python",
        "import subprocess\nprint([subprocess.run(['true']).returncode for _ in range(5)])",
        json!({}),
    )
    .await;
    let bomb = bombing.await.unwrap();
    assert_killed_for(&bomb, "TO");
    assert!(during.len() > 10, "the bomb did not fork: {during:?}");
    // 64 in the sandbox, plus bwrap's monitor outside it.
    assert!(during.len() <= 65, "{} processes", during.len());
    assert_eq!(neighbour["stdout"], "[0, 0, 0, 0, 0]\n", "{neighbour}");
    // Nothing of the bomb survives the run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(common::host_processes(&marker), Vec::new());
}

#[tokio::test]
async fn a_memory_hog_is_stopped_at_run_memory_limit() {
    let sandbox = common::start();
    let limit = json!({"run_memory_limit": 128 * 1024 * 1024});
    let python =
        common::run(sandbox.addr(), "python", "a = bytearray(1 << 30)\nprint('ALLOCATED')", limit.clone()).await;
    assert_eq!(python["status"], "RE", "{python}");
    assert!(python["stderr"].as_str().unwrap().contains("MemoryError"), "{python}");
    let growing = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))";
    let python = common::run(sandbox.addr(), "python", growing, limit.clone()).await;
    assert!(python["stderr"].as_str().unwrap().contains("MemoryError"), "{python}");
    let js = "const a = []; for (;;) a.push(new Array(1e6).fill(Math.random()))";
    let js = common::run(sandbox.addr(), "js", js, limit).await;
    assert_eq!(js["status"], "SG", "{js}");
    assert!(js["stderr"].as_str().unwrap().contains("heap out of memory"), "{js}");
    // The same program fits when it stays under the limit.
    let small = common::run(
        sandbox.addr(),
        "python",
        "a = bytearray(32 << 20)\nprint(len(a))",
        json!({"run_memory_limit": 128 << 20}),
    )
    .await;
    assert_eq!(small["stdout"], "33554432\n", "{small}");
}

#[tokio::test]
async fn huge_output_is_truncated_at_the_cap_with_status_ol_or_el() {
    let sandbox = common::start();
    let cap = sandbox::Limits::default().max_output_bytes;
    let run = common::run(sandbox.addr(), "python", "while True:\n    print('x' * 1000)", json!({})).await;
    assert_killed_for(&run, "OL");
    assert_eq!(run["message"], "stdout length exceeded");
    assert_eq!(run["stdout"].as_str().unwrap().len(), cap);
    let run = common::run(
        sandbox.addr(),
        "js",
        "process.stderr.write('e'.repeat(200000)); setTimeout(() => {}, 10000)",
        json!({}),
    )
    .await;
    assert_killed_for(&run, "EL");
    assert_eq!(run["stderr"].as_str().unwrap().len(), cap);
    assert_eq!(run["stdout"], "");
}

#[tokio::test]
async fn a_file_larger_than_the_limit_cannot_be_written() {
    let sandbox = common::start();
    let code = "with open('/tmp/big', 'wb') as f:\n    f.write(b'x' * (20 << 20))\nprint('WROTE')";
    let run = common::run(sandbox.addr(), "python", code, json!({})).await;
    // Python ignores SIGXFSZ, so the write fails with EFBIG instead of killing it.
    assert_eq!(run["status"], "RE", "{run}");
    assert!(run["stderr"].as_str().unwrap().contains("File too large"), "{run}");
    assert_eq!(run["stdout"], "");
}

/// The host's `Shmem` (tmpfs and shared memory) in bytes, from `/proc/meminfo`.
fn host_shmem() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("Shmem:")).unwrap().trim_end_matches("kB").trim().parse().unwrap();
    kib * 1024
}

#[tokio::test]
async fn dev_and_dev_shm_cannot_fill_the_hosts_memory() {
    let sandbox = common::start();
    let cap = sandbox::Limits::default().shm_bytes;
    // 1 GiB into each, in 8 MiB files (under the 10 MB file limit).
    let code = r#"
import errno
def fill(dir):
    total, chunk = 0, b'x' * (1 << 20)
    try:
        for i in range(128):
            with open(f'{dir}/f{i}', 'wb') as f:
                for _ in range(8):
                    total += f.write(chunk)
    except OSError as e:
        return total, errno.errorcode[e.errno]
    return total, 'none'
print(*fill('/dev/shm'), *fill('/dev'))
"#;
    let addr = sandbox.addr();
    let filling = tokio::spawn(async move { common::run(addr, "python", code, json!({"run_timeout": 10000})).await });
    // The host's shared memory, watched for the whole run.
    let before = host_shmem();
    let mut peak = before;
    while !filling.is_finished() {
        peak = peak.max(host_shmem());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let run = filling.await.unwrap();
    let stdout = run["stdout"].as_str().unwrap();
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(fields.len(), 4, "{run}");
    let (shm, shm_error, dev, dev_error) = (fields[0].parse::<u64>().unwrap(), fields[1], fields[2], fields[3]);
    assert!(shm <= cap, "{shm} bytes written to /dev/shm: {run}");
    assert_eq!(shm_error, "ENOSPC", "{run}");
    assert_eq!((dev, dev_error), ("0", "EROFS"), "{run}");
    // Other tests run at the same time, hence the margin: the program tried 2 GiB.
    let rise = peak.saturating_sub(before);
    assert!(rise < 256 << 20, "the host's shared memory rose by {} MiB", rise >> 20);
    // Python's multiprocessing still finds its semaphores in /dev/shm.
    let pool = "import multiprocessing as mp\nwith mp.Pool(2) as p:\n    print(p.map(abs, [-1, -2, 3]))";
    let run = common::run(addr, "python", pool, json!({})).await;
    assert_eq!(run["stdout"], "[1, 2, 3]\n", "{run}");
}

#[tokio::test]
async fn forked_children_share_one_memory_limit_where_cgroups_allow() {
    let sandbox = common::start();
    let (_, headers, _) = common::send_full(sandbox.addr(), "GET", "/api/v2/runtimes", &[], "").await;
    let header = headers.get("x-sandbox-memory-limit").map(|v| v.to_str().unwrap().to_owned());
    if let sandbox::MemoryBound::PerProcess(why) = sandbox.memory_bound() {
        assert_eq!(header.as_deref(), Some("process"));
        eprintln!("skipped: no memory cgroup on this machine, so memory is bounded per process only ({why})");
        return;
    }
    assert_eq!(header.as_deref(), Some("run"));
    // Children that each stay under the per-process limit (128 MiB) and hold their memory
    // at the same time; each prints its exit status.
    let children = |mib: u32| {
        format!(
            r#"
import os, time
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        a = bytearray({mib} << 20)
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
print(*sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in kids))
"#
        )
    };
    let limit = json!({"run_memory_limit": 128 << 20, "run_timeout": 10000});
    // 4 x 20 MiB fits in 128 MiB.
    let fits = common::run(sandbox.addr(), "python", &children(20), limit.clone()).await;
    assert_eq!(fits["stdout"], "0 0 0 0\n", "{fits}");
    // 4 x 100 MiB does not: the kernel kills children (SIGKILL) to keep the run within it.
    let over = common::run(sandbox.addr(), "python", &children(100), limit).await;
    let codes: Vec<&str> = over["stdout"].as_str().unwrap().split_whitespace().collect();
    let parent_killed = over["status"] == "SG" && over["signal"] == "SIGKILL";
    assert!(parent_killed || codes.contains(&"-9"), "{over}");
    assert!(!codes.iter().all(|c| *c == "0"), "{over}");
}

#[tokio::test]
async fn without_cgroups_runs_still_work_under_per_process_limits() {
    let options = sandbox::Options { rlimits_only: true, ..Default::default() };
    let sandbox = sandbox::start_with("127.0.0.1:0", options).unwrap();
    assert!(matches!(sandbox.memory_bound(), sandbox::MemoryBound::PerProcess(_)));
    let (_, headers, _) = common::send_full(sandbox.addr(), "GET", "/api/v2/runtimes", &[], "").await;
    assert_eq!(headers["x-sandbox-memory-limit"], "process");
    let run = common::run(sandbox.addr(), "python", "a = bytearray(1 << 30)", json!({})).await;
    assert!(run["stderr"].as_str().unwrap().contains("MemoryError"), "{run}");
    let run = common::run(sandbox.addr(), "js", "console.log(6 * 7)", json!({})).await;
    assert_eq!(run["stdout"], "42\n", "{run}");
}
