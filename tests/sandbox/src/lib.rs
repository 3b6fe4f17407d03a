//! `sandbox`: a local code-execution service speaking the Piston v2 API, for development and
//! tests of the platform's `code` mode.
//!
//! `POST /api/v2/execute` runs a Python 3 or JavaScript (Node) program under bubblewrap
//! (`bwrap`) and answers in Piston's documented shape (`language`, `version`, `run: {stdout,
//! stderr, output, code, signal, status, message, cpu_time, wall_time, memory}`), with Piston's
//! status codes (`RE`, `SG`, `TO`, `OL`, `EL`, `XX`) and its `{"message"}` errors.
//! `GET /api/v2/runtimes` lists the interpreters found at startup.
//!
//! Every run gets its own user, mount, PID, network, IPC, UTS and cgroup namespaces: no network
//! (only a private loopback), a read-only view of the system directories, a private tmpfs
//! `/tmp` holding the files as the working directory, a read-only `/dev` but for a small
//! `/dev/shm`, host uid/gid 65534 with every capability dropped and no further user namespaces,
//! rlimits on memory (address space and data), CPU time, processes (counted per sandbox), file
//! size and open files, and a memory cgroup per run where the machine allows; the service
//! itself enforces the wall-clock timeout and output caps. The README's sandbox section says
//! what each limit does and does not cover.
//!
//! What it is not: a hardened multi-tenant service. Production deployments point `SANDBOX_URL`
//! at a self-hosted Piston. It binds loopback addresses only.
//!
//! ```no_run
//! let sandbox = sandbox::start("127.0.0.1:0")?;
//! println!("SANDBOX_URL={}", sandbox.url());
//! # Ok::<(), std::io::Error>(())
//! ```

mod cgroup;
mod decode;
mod jail;
mod request;
mod run;
mod runtimes;
mod server;
mod staging;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use runtimes::Runtime;

/// Limits every run gets; requests may ask for less, never for more.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `run_timeout` when the request sets none, in milliseconds.
    pub run_timeout_ms: u64,
    /// The largest `run_timeout` (and `compile_timeout`) a request may ask for.
    pub max_run_timeout_ms: u64,
    /// `run_memory_limit` when the request sets none (or -1), in bytes.
    pub memory_bytes: u64,
    /// The largest `run_memory_limit` a request may ask for.
    pub max_memory_bytes: u64,
    /// Bytes of stdout, and separately of stderr, kept before the run is stopped.
    pub max_output_bytes: usize,
    /// Processes (and threads) one run may have at once.
    pub max_processes: u32,
    /// Largest file a run may write, in bytes.
    pub max_file_bytes: u64,
    /// File descriptors one process may hold.
    pub max_open_files: u32,
    /// Size of the private `/tmp` (the program's files count against it).
    pub tmp_bytes: u64,
    /// Size of `/dev/shm` (POSIX shared memory and semaphores); the rest of `/dev` is read-only.
    pub shm_bytes: u64,
    /// Runs at once; later requests wait for a slot.
    pub max_concurrent_runs: usize,
    /// Requests that may wait for a slot; beyond them, requests get 503 at once.
    pub max_queued_runs: usize,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            run_timeout_ms: 3_000,
            max_run_timeout_ms: 20_000,
            memory_bytes: 256 * MIB,
            max_memory_bytes: 1024 * MIB,
            max_output_bytes: 64 * 1024,
            max_processes: 64,
            max_file_bytes: 10 * MIB,
            max_open_files: 256,
            tmp_bytes: 64 * MIB,
            shm_bytes: 16 * MIB,
            max_concurrent_runs: 4,
            // Two rounds of default runs: a request waits at most about 6 s for its turn,
            // within the 10 s the platform's code mode allows on top of the run timeout.
            max_queued_runs: 8,
            max_request_bytes: 2 * MIB as usize,
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// What bounds a run's memory on this machine, found at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryBound {
    /// `run_memory_limit` bounds the run as a whole (every process and its tmpfs files),
    /// through a memory cgroup per run; the text names the hierarchy.
    RunTotal(String),
    /// No memory cgroup can be used here (the text says why): `run_memory_limit` bounds
    /// each process on its own, through rlimits.
    PerProcess(String),
}

impl std::fmt::Display for MemoryBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryBound::RunTotal(how) => write!(f, "run_memory_limit bounds each run's total ({how})"),
            MemoryBound::PerProcess(why) => {
                write!(f, "run_memory_limit bounds each process, not a run's total (no memory cgroup: {why})")
            }
        }
    }
}

/// How the service is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// When set, requests must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    pub limits: Limits,
    /// Bound memory with the per-process rlimits only, even where memory cgroups work.
    pub rlimits_only: bool,
}

/// A running sandbox service. It stops when dropped or on [`SandboxHandle::shutdown`].
#[derive(Debug)]
pub struct SandboxHandle {
    addr: SocketAddr,
    runtimes: Vec<Runtime>,
    memory_bound: MemoryBound,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SandboxHandle {
    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the value for `SANDBOX_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The runtimes found at startup, as `GET /api/v2/runtimes` lists them.
    pub fn runtimes(&self) -> &[Runtime] {
        &self.runtimes
    }

    /// What bounds a run's memory, as found at startup.
    pub fn memory_bound(&self) -> &MemoryBound {
        &self.memory_bound
    }

    /// Stops serving, kills every run in progress and returns once it has.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// [`start_with`] and default [`Options`] (no token).
///
/// # Errors
/// See [`start_with`].
pub fn start(addr: impl ToSocketAddrs) -> io::Result<SandboxHandle> {
    start_with(addr, Options::default())
}

/// Finds bubblewrap and the interpreters, binds `addr` (a loopback address; port 0 picks a
/// free port) and serves on a thread of its own with its own Tokio runtime. Returns once the
/// socket is bound.
///
/// # Errors
/// The address is not a loopback address or cannot be bound; `bwrap`, `prlimit` or a shell
/// is missing; the staging directory or the runtime cannot be created.
pub fn start_with(addr: impl ToSocketAddrs, options: Options) -> io::Result<SandboxHandle> {
    let loopback: Vec<SocketAddr> = addr.to_socket_addrs()?.filter(|a| a.ip().is_loopback()).collect();
    if loopback.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "sandbox binds loopback addresses only"));
    }
    let jail = jail::Jail::detect(!options.rlimits_only)?;
    let memory_bound = jail.memory_bound();
    let staging = staging::Staging::create(jail.drops_to_nobody())?;
    let std_listener = std::net::TcpListener::bind(loopback.as_slice())?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (stop, stopped) = oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<Vec<Runtime>>>();
    // Discovery runs probes in the sandbox, so it runs on the service's own runtime: `start`
    // may be called from async code, where blocking on another runtime is not allowed.
    let thread = std::thread::Builder::new().name(format!("sandbox:{}", addr.port())).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let found = runtimes::discover(&jail, &staging).await;
            let _ = ready_tx.send(Ok(found.clone()));
            let state = Arc::new(server::State::new(options, jail, staging, found));
            server::serve(listener, state, stopped).await;
        });
        // Dropping the runtime drops every task; each run's child is killed on drop.
        drop(runtime);
        // Their cgroups empty a moment later.
        cgroup::sweep(std::time::Duration::from_secs(5));
    })?;
    let ready = ready_rx.recv().unwrap_or_else(|_| Err(io::Error::other("sandbox thread ended before serving")));
    let mut handle = SandboxHandle { addr, runtimes: Vec::new(), memory_bound, stop: Some(stop), thread: Some(thread) };
    handle.runtimes = ready?;
    Ok(handle)
}
