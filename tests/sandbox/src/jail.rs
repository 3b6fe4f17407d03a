//! The bubblewrap command line of one run: namespaces, the read-only system, the private
//! `/tmp`, the identity and the rlimits.
//!
//! bwrap runs as host uid/gid 65534 (the service drops to it when it runs as root), so the
//! program is uid 65534 both inside and outside its user namespace: a program that escaped
//! its namespaces would still be `nobody`. Each run gets a user namespace of its own, which
//! is also what makes `RLIMIT_NPROC` count only that run's processes (the kernel counts per
//! user namespace and uid), so concurrent runs cannot starve each other.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::cgroup::{Cgroups, RunCgroup};
use crate::MemoryBound;

/// The host and sandbox identity of every run.
pub(crate) const SANDBOX_ID: u32 = 65534;

/// Where the run's staged files appear inside the sandbox (read-only), before the launcher
/// copies them into `/tmp`.
const JOB_MOUNT: &str = "/run/job";

/// System directories bound read-only when they exist (or recreated as the same symlink).
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The few files of `/etc` programs expect; the rest of `/etc` is not visible.
const ETC_FILES: &[&str] = &["/etc/passwd", "/etc/group", "/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"];

/// Copies the files into the private `/tmp`, then replaces itself with the limited program,
/// whose stdin is the request's stdin.
const LAUNCHER: &str = "cp -R /run/job/files/. /tmp/ && exec \"$@\" </run/job/stdin";

/// Holds bwrap back until the service has moved this shell into the run's cgroup and sent a
/// line; the shell then becomes bwrap. Without the line (the service failed) it just exits.
const GATE: &str = "read -r go && exec \"$0\" \"$@\" </dev/null";

#[derive(Debug, Clone)]
enum Mount {
    ReadOnly(PathBuf),
    Symlink { target: PathBuf, link: PathBuf },
}

/// What this machine offers for sandboxing, found once at startup.
#[derive(Debug)]
pub(crate) struct Jail {
    bwrap: PathBuf,
    prlimit: PathBuf,
    system: Vec<Mount>,
    /// The service runs as root: start bwrap as uid/gid 65534 rather than as root.
    drop_to_nobody: bool,
    /// Memory cgroups for runs, or why there are none.
    memory: Result<Cgroups, String>,
}

/// The rlimits of one run, applied by `prlimit` inside the sandbox to the program only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunLimits {
    pub address_space: u64,
    pub data: u64,
    pub cpu_secs: u64,
    pub processes: u32,
    pub file_bytes: u64,
    pub open_files: u32,
    pub tmp_bytes: u64,
    pub shm_bytes: u64,
}

/// One run: its language, extra read-only directory, staged files and command.
#[derive(Debug)]
pub(crate) struct RunSpec<'a> {
    pub language: &'a str,
    pub extra_read_only: Option<&'a Path>,
    pub job_dir: &'a Path,
    pub limits: &'a RunLimits,
    pub command: Vec<OsString>,
}

impl Jail {
    /// Finds bwrap, prlimit, the system directories and, when `cgroups`, memory cgroups.
    pub(crate) fn detect(cgroups: bool) -> io::Result<Jail> {
        let bwrap =
            which("bwrap").ok_or_else(|| missing("bwrap is not on PATH: install the Debian package bubblewrap"))?;
        let prlimit = which("prlimit").ok_or_else(|| missing("prlimit is not on PATH: install util-linux"))?;
        if !Path::new("/bin/sh").exists() {
            return Err(missing("/bin/sh is missing"));
        }
        let mut system = Vec::new();
        for dir in SYSTEM_DIRS.iter().map(Path::new) {
            match std::fs::symlink_metadata(dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    system.push(Mount::Symlink { target: std::fs::read_link(dir)?, link: dir.to_path_buf() })
                }
                Ok(meta) if meta.is_dir() => system.push(Mount::ReadOnly(dir.to_path_buf())),
                _ => {}
            }
        }
        system.extend(ETC_FILES.iter().map(PathBuf::from).filter(|f| f.exists()).map(Mount::ReadOnly));
        let memory = if cgroups { Cgroups::detect() } else { Err("turned off by the service's options".to_owned()) };
        let jail = Jail { bwrap, prlimit, system, drop_to_nobody: effective_uid()? == 0, memory };
        if !jail.is_visible(&jail.prlimit) {
            return Err(missing("prlimit is outside the system directories bound into runs"));
        }
        Ok(jail)
    }

    /// Whether `path` is inside one of the system directories every run sees.
    pub(crate) fn is_visible(&self, path: &Path) -> bool {
        self.system.iter().any(|m| match m {
            Mount::ReadOnly(dir) => path.starts_with(dir),
            Mount::Symlink { link, .. } => path.starts_with(link),
        })
    }

    /// bwrap's arguments for one run.
    pub(crate) fn args(&self, spec: &RunSpec<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let id = SANDBOX_ID.to_string();
        push(&mut args, &["--uid", &id, "--gid", &id, "--clearenv"]);
        push(&mut args, &["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]);
        push(&mut args, &["--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp"]);
        push(&mut args, &["--setenv", "LANG", "C.UTF-8"]);
        push(&mut args, &["--setenv", "PISTON_LANGUAGE", spec.language]);
        for mount in &self.system {
            match mount {
                Mount::ReadOnly(path) => ro_bind(&mut args, path, path),
                Mount::Symlink { target, link } => {
                    args.push("--symlink".into());
                    args.push(target.into());
                    args.push(link.into());
                }
            }
        }
        if let Some(dir) = spec.extra_read_only {
            ro_bind(&mut args, dir, dir);
        }
        // bwrap's `/dev` is a tmpfs the program owns: give `/dev/shm` a size-limited tmpfs of
        // its own and make the rest read-only (the device nodes are separate mounts and stay
        // usable), so neither can fill the host's memory.
        let shm_size = spec.limits.shm_bytes.to_string();
        push(&mut args, &["--proc", "/proc", "--dev", "/dev", "--size", &shm_size, "--tmpfs", "/dev/shm"]);
        push(&mut args, &["--remount-ro", "/dev"]);
        let tmp_size = spec.limits.tmp_bytes.to_string();
        push(&mut args, &["--size", &tmp_size, "--tmpfs", "/tmp"]);
        ro_bind(&mut args, spec.job_dir, Path::new(JOB_MOUNT));
        // The root itself is a tmpfs bwrap built the mount points on: freeze it too.
        push(&mut args, &["--remount-ro", "/", "--chdir", "/tmp"]);
        push(&mut args, &["--", "/bin/sh", "-c", LAUNCHER, "sandbox"]);
        args.push(self.prlimit.clone().into());
        let l = spec.limits;
        for limit in [
            format!("--as={}", l.address_space),
            format!("--data={}", l.data),
            // SIGXCPU at the soft limit (reported as a timeout), SIGKILL a second later.
            format!("--cpu={}:{}", l.cpu_secs, l.cpu_secs.saturating_add(1)),
            format!("--nproc={}", l.processes),
            format!("--fsize={}", l.file_bytes),
            format!("--nofile={}", l.open_files),
            "--core=0".to_owned(),
            "--".to_owned(),
        ] {
            args.push(limit.into());
        }
        args.extend(spec.command.iter().cloned());
        args
    }

    /// What bounds a run's memory here.
    pub(crate) fn memory_bound(&self) -> MemoryBound {
        match &self.memory {
            Ok(cgroups) => MemoryBound::RunTotal(cgroups.describe()),
            Err(reason) => MemoryBound::PerProcess(reason.clone()),
        }
    }

    /// A memory cgroup of `limit` bytes for one run, when this machine has them.
    pub(crate) fn cgroup(&self, limit: u64) -> io::Result<Option<RunCgroup>> {
        match &self.memory {
            Ok(cgroups) => cgroups.create(limit).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The bwrap process of one run, not yet started: no environment, its own process group
    /// (a Ctrl-C meant for the service does not reach it), killed if the service drops it.
    /// `gated`: behind [`GATE`], waiting for a line on its stdin.
    pub(crate) fn command(&self, spec: &RunSpec<'_>, gated: bool) -> tokio::process::Command {
        let mut command = if gated {
            let mut shell = tokio::process::Command::new("/bin/sh");
            shell.args(["-c", GATE]).arg(&self.bwrap).stdin(Stdio::piped());
            shell
        } else {
            let mut bwrap = tokio::process::Command::new(&self.bwrap);
            bwrap.stdin(Stdio::null());
            bwrap
        };
        command
            .args(self.args(spec))
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if self.drop_to_nobody {
            command.uid(SANDBOX_ID).gid(SANDBOX_ID);
        }
        command
    }

    /// Whether runs are started as host uid 65534 (the service runs as root) and staged files
    /// must be handed to that uid.
    pub(crate) fn drops_to_nobody(&self) -> bool {
        self.drop_to_nobody
    }
}

fn push(args: &mut Vec<OsString>, items: &[&str]) {
    args.extend(items.iter().map(OsString::from));
}

fn ro_bind(args: &mut Vec<OsString>, source: &Path, dest: &Path) {
    args.push("--ro-bind".into());
    args.push(source.into());
    args.push(dest.into());
}

fn missing(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, message.to_owned())
}

/// The first executable file called `name` on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|file| {
        std::fs::metadata(file).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

/// The effective uid, from `/proc/self/status` (no libc needed).
fn effective_uid() -> io::Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| io::Error::other("cannot read the effective uid from /proc/self/status"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn jail() -> Jail {
        Jail {
            bwrap: "/usr/bin/bwrap".into(),
            prlimit: "/usr/bin/prlimit".into(),
            system: vec![
                Mount::ReadOnly("/usr".into()),
                Mount::Symlink { target: "usr/bin".into(), link: "/bin".into() },
            ],
            drop_to_nobody: true,
            memory: Err("not in unit tests".into()),
        }
    }

    #[test]
    fn the_command_line_isolates_and_limits_the_program() {
        let limits = RunLimits {
            address_space: 1000,
            data: 500,
            cpu_secs: 3,
            processes: 64,
            file_bytes: 77,
            open_files: 32,
            tmp_bytes: 4096,
            shm_bytes: 2048,
        };
        let spec = RunSpec {
            language: "python",
            extra_read_only: Some(Path::new("/opt/py")),
            job_dir: Path::new("/tmp/stage/1"),
            limits: &limits,
            command: vec!["/usr/bin/python3".into(), "main.py".into(), "a b".into()],
        };
        let args: Vec<String> = jail().args(&spec).into_iter().map(|a| a.into_string().unwrap()).collect();
        let line = args.join(" ");
        for expected in [
            "--unshare-all --unshare-user --disable-userns --die-with-parent --new-session --cap-drop ALL",
            "--uid 65534 --gid 65534 --clearenv",
            "--ro-bind /usr /usr --symlink usr/bin /bin --ro-bind /opt/py /opt/py",
            "--dev /dev --size 2048 --tmpfs /dev/shm --remount-ro /dev",
            "--size 4096 --tmpfs /tmp --ro-bind /tmp/stage/1 /run/job --remount-ro / --chdir /tmp",
            "/usr/bin/prlimit --as=1000 --data=500 --cpu=3:4 --nproc=64 --fsize=77 --nofile=32 --core=0 --",
        ] {
            assert!(line.contains(expected), "{expected:?} not in {line}");
        }
        assert!(!line.contains("--share-net"));
        // The program's own arguments stay single arguments.
        assert_eq!(&args[args.len() - 3..], ["/usr/bin/python3", "main.py", "a b"]);
    }
}
