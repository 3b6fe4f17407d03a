//! One run, supervised: stage the files, start bwrap, read stdout and stderr up to the cap,
//! kill the whole sandbox at the wall-clock deadline or the cap, and report in Piston's terms.
//!
//! Statuses, as Piston (through isolate) reports them: `RE` non-zero exit, `SG` killed by a
//! signal, `TO` time limit (wall clock here, or the CPU rlimit), `OL` / `EL` stdout / stderr
//! over the cap, `XX` the sandbox itself failed. Killing bwrap kills the sandbox's PID 1
//! (`--die-with-parent`), and with it every process of the run.
//!
//! bwrap reports a death by signal N as exit status 128+N, as a shell does: a program that
//! calls `exit(128 + N)` is reported as killed by signal N.

use std::ffi::OsString;
use std::pin::pin;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::cgroup::RunCgroup;
use crate::jail::{Jail, RunLimits, RunSpec};
use crate::runtimes::{Kind, Runtime};
use crate::staging::Staging;

/// How long to wait for the pipes to close once the program has exited or been killed.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
const SIGXCPU: i32 = 24;

/// Everything one run needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Relative names and contents; the first file is the program.
    pub files: Vec<(String, Vec<u8>)>,
    pub stdin: Vec<u8>,
    /// After the interpreter: the program file and its arguments.
    pub command: Vec<String>,
    pub timeout: Duration,
    pub cpu_ms: u64,
    pub memory_bytes: u64,
    pub max_output_bytes: usize,
    pub processes: u32,
    pub file_bytes: u64,
    pub open_files: u32,
    pub tmp_bytes: u64,
    pub shm_bytes: u64,
}

impl Job {
    /// A run of the interpreter alone with `args`, under the default limits.
    pub(crate) fn probe(args: &[&str], timeout: Duration) -> Job {
        let limits = crate::Limits::default();
        Job {
            files: Vec::new(),
            stdin: Vec::new(),
            command: args.iter().map(|a| (*a).to_owned()).collect(),
            timeout,
            cpu_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            memory_bytes: limits.memory_bytes,
            max_output_bytes: limits.max_output_bytes,
            processes: limits.max_processes,
            file_bytes: limits.max_file_bytes,
            open_files: limits.max_open_files,
            tmp_bytes: limits.tmp_bytes,
            shm_bytes: limits.shm_bytes,
        }
    }

    fn limits(&self, kind: Kind) -> RunLimits {
        // Address space also counts reservations that use no memory: V8 reserves about a
        // gigabyte up front. The data limit is what bounds the memory actually written.
        let reserve = match kind {
            Kind::Python => 128 << 20,
            Kind::Node => 2 << 30,
        };
        RunLimits {
            address_space: self.memory_bytes.saturating_add(reserve),
            data: self.memory_bytes,
            cpu_secs: self.cpu_ms.div_ceil(1000).max(1),
            processes: self.processes,
            file_bytes: self.file_bytes,
            open_files: self.open_files,
            tmp_bytes: self.tmp_bytes,
            shm_bytes: self.shm_bytes,
        }
    }
}

/// The `run` object of Piston's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RunResult {
    pub stdout: String,
    pub stderr: String,
    pub output: String,
    pub code: Option<i32>,
    pub signal: Option<&'static str>,
    pub status: Option<&'static str>,
    pub message: Option<String>,
    pub wall_time_ms: Option<u64>,
}

impl RunResult {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "stdout": self.stdout,
            "stderr": self.stderr,
            "output": self.output,
            "code": self.code,
            "signal": self.signal,
            "status": self.status,
            "message": self.message,
            // Not measured: CPU time and peak memory would need cgroups or wait4.
            "cpu_time": null,
            "wall_time": self.wall_time_ms,
            "memory": null,
        })
    }

    fn internal(message: String) -> RunResult {
        RunResult { status: Some("XX"), message: Some(message), ..RunResult::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    Timeout,
    StdoutLimit,
    StderrLimit,
}

/// Runs `job` with `runtime` in a fresh sandbox. Never fails: a sandbox that cannot start is
/// an `XX` result.
pub(crate) async fn execute(jail: &Jail, staging: &Staging, runtime: &Runtime, mut job: Job) -> RunResult {
    let dir = match staging.job(std::mem::take(&mut job.files), std::mem::take(&mut job.stdin)).await {
        Ok(dir) => dir,
        Err(e) => return RunResult::internal(format!("cannot stage the files: {e}")),
    };
    let limits = job.limits(runtime.kind);
    let mut command: Vec<OsString> = vec![runtime.interpreter.clone().into()];
    if runtime.kind == Kind::Node {
        // V8 then fails with its own "heap out of memory" before the data limit aborts it.
        let heap_mib = (job.memory_bytes >> 20).saturating_mul(3) / 4;
        command.push(format!("--max-old-space-size={}", heap_mib.max(16)).into());
    }
    command.extend(job.command.iter().map(OsString::from));
    let spec = RunSpec {
        language: &runtime.language,
        extra_read_only: runtime.prefix.as_deref(),
        job_dir: dir.path(),
        limits: &limits,
        command,
    };
    // Dropped after the child: removed once the run's processes are gone.
    let cgroup = match jail.cgroup(job.memory_bytes) {
        Ok(cgroup) => cgroup,
        Err(e) => return RunResult::internal(format!("cannot create the run's memory cgroup: {e}")),
    };
    let started = Instant::now();
    let mut child = match jail.command(&spec, cgroup.is_some()).spawn() {
        Ok(child) => child,
        Err(e) => return RunResult::internal(format!("cannot start bwrap: {e}")),
    };
    if let Some(cgroup) = &cgroup {
        if let Err(e) = admit(&mut child, cgroup).await {
            return RunResult::internal(format!("cannot put the run in its memory cgroup: {e}"));
        }
    }
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut capture = Capture::new(job.max_output_bytes);
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    let mut deadline = pin!(tokio::time::sleep(job.timeout));
    let mut grace = pin!(tokio::time::sleep(Duration::MAX / 4));
    let (mut stopped, mut exit, mut ending) = (None, None, false);
    while stdout.is_some() || stderr.is_some() || exit.is_none() {
        let mut stop = None;
        tokio::select! {
            // In order, not at random: when both pipes have data, stdout's was written first
            // (a program's writes are sequential), so `output` keeps the order it wrote in.
            // Output limits bound how long one pipe can hold the loop.
            biased;
            read = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => match read {
                Some(bytes) if !capture.out(bytes) => stop = Some(Stopped::StdoutLimit),
                Some(_) => {}
                None => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => match read {
                Some(bytes) if !capture.err(bytes) => stop = Some(Stopped::StderrLimit),
                Some(_) => {}
                None => stderr = None,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status);
                ending = true;
            },
            () = &mut deadline, if stopped.is_none() && exit.is_none() => stop = Some(Stopped::Timeout),
            // Something still holds the pipes after the end: stop reading.
            () = &mut grace => break,
        }
        if let (Some(reason), None) = (stop, stopped) {
            stopped = Some(reason);
            let _ = child.start_kill();
            ending = true;
        }
        if std::mem::take(&mut ending) {
            grace.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
        }
    }
    let exit = match exit {
        Some(exit) => exit,
        None => child.wait().await,
    };
    let wall_time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut result = capture.finish();
    result.wall_time_ms = Some(wall_time_ms);
    match exit {
        Ok(status) => classify(&mut result, stopped, status.code()),
        Err(e) => {
            result.status = Some("XX");
            result.message = Some(format!("cannot wait for the sandbox: {e}"));
        }
    }
    result
}

/// Moves the gated child into the run's cgroup, then lets it start bwrap.
async fn admit(child: &mut tokio::process::Child, cgroup: &RunCgroup) -> std::io::Result<()> {
    let pid = child.id().ok_or_else(|| std::io::Error::other("the child has already exited"))?;
    cgroup.enter(pid)?;
    let mut gate = child.stdin.take().ok_or_else(|| std::io::Error::other("the child has no stdin"))?;
    gate.write_all(b"go\n").await
}

/// Reads the next chunk; `None` at the end of the stream (or on a read error).
async fn read_some<'b, R: AsyncRead + Unpin>(stream: &mut Option<R>, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let stream = stream.as_mut()?;
    match stream.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => buf.get(..n),
    }
}

/// Status, message, code and signal from why the run stopped and bwrap's exit code.
fn classify(result: &mut RunResult, stopped: Option<Stopped>, code: Option<i32>) {
    let (status, message) = match stopped {
        Some(Stopped::Timeout) => ("TO", "Time limit exceeded (wall clock)".to_owned()),
        Some(Stopped::StdoutLimit) => ("OL", "stdout length exceeded".to_owned()),
        Some(Stopped::StderrLimit) => ("EL", "stderr length exceeded".to_owned()),
        None => match code {
            Some(0) => return result.code = Some(0),
            Some(c) if c - 128 == SIGXCPU => ("TO", "Time limit exceeded".to_owned()),
            Some(c) if (129..=192).contains(&c) => {
                result.signal = Some(signal_name(c - 128));
                ("SG", format!("Caught fatal signal {}", c - 128))
            }
            Some(c) => {
                result.code = Some(c);
                ("RE", format!("Exited with error status {c}"))
            }
            None => ("XX", "the sandbox was killed from outside".to_owned()),
        },
    };
    if status == "TO" || status == "OL" || status == "EL" {
        // As Piston: the run was killed, so there is no exit code.
        result.signal = Some("SIGKILL");
    }
    result.status = Some(status);
    result.message = Some(message);
}

fn signal_name(signal: i32) -> &'static str {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(signal - 1).ok().and_then(|i| NAMES.get(i).copied()).unwrap_or("SIGRT")
}

/// stdout, stderr and both in arrival order, each stream kept up to the cap.
struct Capture {
    cap: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    output: Vec<u8>,
}

impl Capture {
    fn new(cap: usize) -> Capture {
        Capture { cap, stdout: Vec::new(), stderr: Vec::new(), output: Vec::new() }
    }

    /// Keeps what fits; false when the stream went over the cap.
    fn out(&mut self, bytes: &[u8]) -> bool {
        keep(self.cap, &mut self.stdout, &mut self.output, bytes)
    }

    fn err(&mut self, bytes: &[u8]) -> bool {
        keep(self.cap, &mut self.stderr, &mut self.output, bytes)
    }

    fn finish(self) -> RunResult {
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        RunResult {
            stdout: text(self.stdout),
            stderr: text(self.stderr),
            output: text(self.output),
            ..RunResult::default()
        }
    }
}

fn keep(cap: usize, stream: &mut Vec<u8>, output: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let room = cap.saturating_sub(stream.len());
    let kept = bytes.get(..room.min(bytes.len())).unwrap_or_default();
    stream.extend_from_slice(kept);
    output.extend_from_slice(kept);
    kept.len() == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(stopped: Option<Stopped>, code: Option<i32>) -> RunResult {
        let mut result = RunResult::default();
        classify(&mut result, stopped, code);
        result
    }

    #[test]
    fn exit_codes_and_stops_map_to_pistons_statuses() {
        let ok = classified(None, Some(0));
        assert_eq!((ok.code, ok.status, ok.signal), (Some(0), None, None));
        let re = classified(None, Some(3));
        assert_eq!((re.code, re.status), (Some(3), Some("RE")));
        assert_eq!(re.message.as_deref(), Some("Exited with error status 3"));
        let sg = classified(None, Some(128 + 11));
        assert_eq!((sg.code, sg.signal, sg.status), (None, Some("SIGSEGV"), Some("SG")));
        let cpu = classified(None, Some(128 + 24));
        assert_eq!((cpu.status, cpu.signal), (Some("TO"), Some("SIGKILL")));
        let wall = classified(Some(Stopped::Timeout), Some(137));
        assert_eq!((wall.code, wall.status, wall.signal), (None, Some("TO"), Some("SIGKILL")));
        assert_eq!(classified(Some(Stopped::StdoutLimit), None).status, Some("OL"));
        assert_eq!(classified(Some(Stopped::StderrLimit), None).status, Some("EL"));
    }

    #[test]
    fn capture_keeps_each_stream_up_to_the_cap_in_arrival_order() {
        let mut capture = Capture::new(4);
        assert!(capture.out(b"ab"));
        assert!(capture.err(b"E"));
        assert!(!capture.out(b"cdef"));
        let result = capture.finish();
        assert_eq!(result.stdout, "abcd");
        assert_eq!(result.stderr, "E");
        assert_eq!(result.output, "abEcd");
    }
}
