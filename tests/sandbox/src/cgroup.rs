//! A memory cgroup per run, so `run_memory_limit` bounds all of a run's processes together
//! (and the files it keeps in its tmpfs mounts, which are memory too), where the machine lets
//! the service create one. Found once at startup; without one, only the per-process rlimits
//! bound memory.
//!
//! The run's cgroup is a child of the service's own memory cgroup (cgroup v2 when the memory
//! controller is there, else v1). bwrap is started behind a shell that waits on its stdin
//! until the service has moved it into the cgroup, so every process of the run starts inside.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

static NEXT: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// Where runs' memory cgroups are created.
#[derive(Debug)]
pub(crate) struct Cgroups {
    version: Version,
    parent: PathBuf,
}

impl Cgroups {
    /// The memory cgroups runs can get on this machine, or why there are none.
    pub(crate) fn detect() -> Result<Cgroups, String> {
        let read = |path| std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
        let candidates = locate(&read("/proc/self/cgroup")?, &read("/proc/self/mountinfo")?);
        if candidates.is_empty() {
            return Err("no memory cgroup hierarchy is mounted".to_owned());
        }
        let mut reasons = Vec::new();
        for (version, parent) in candidates {
            let cgroups = Cgroups { version, parent };
            match cgroups.prepare().and_then(|()| cgroups.probe()) {
                Ok(()) => return Ok(cgroups),
                Err(e) => reasons.push(format!("{}: {e}", cgroups.describe())),
            }
        }
        Err(reasons.join("; "))
    }

    /// `cgroup v1 memory under <dir>`, for the startup report.
    pub(crate) fn describe(&self) -> String {
        let version = match self.version {
            Version::V1 => "v1",
            Version::V2 => "v2",
        };
        format!("cgroup {version} memory under {}", self.parent.display())
    }

    /// A new cgroup holding at most `limit` bytes of memory (swap included).
    pub(crate) fn create(&self, limit: u64) -> io::Result<RunCgroup> {
        sweep(Duration::ZERO);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = self.parent.join(format!("opencode-sandbox-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir)?;
        let run = RunCgroup { dir: dir.clone() };
        let limit = limit.to_string();
        match self.version {
            Version::V1 => {
                // The memory limit first: memsw (memory + swap) may never be below it.
                std::fs::write(dir.join("memory.limit_in_bytes"), &limit)?;
                write_if_present(&dir.join("memory.memsw.limit_in_bytes"), &limit)?;
            }
            Version::V2 => {
                std::fs::write(dir.join("memory.max"), &limit)?;
                write_if_present(&dir.join("memory.swap.max"), "0")?;
            }
        }
        Ok(run)
    }

    /// v2 only lets a cgroup's children use the controllers its `cgroup.subtree_control` lists.
    fn prepare(&self) -> Result<(), String> {
        if self.version == Version::V1 {
            return Ok(());
        }
        let listed = |file: &str| {
            std::fs::read_to_string(self.parent.join(file))
                .map(|s| s.split_whitespace().any(|c| c == "memory"))
                .map_err(|e| format!("cannot read {file}: {e}"))
        };
        if !listed("cgroup.controllers")? {
            return Err("the memory controller is not available to this cgroup".to_owned());
        }
        if listed("cgroup.subtree_control")? {
            return Ok(());
        }
        std::fs::write(self.parent.join("cgroup.subtree_control"), "+memory")
            .map_err(|e| format!("cannot enable the memory controller for child cgroups: {e}"))
    }

    /// Creates a cgroup and moves a waiting shell into it, as every run will.
    fn probe(&self) -> Result<(), String> {
        let run = self.create(64 << 20).map_err(|e| format!("cannot create a child cgroup: {e}"))?;
        let mut shell = Command::new("/bin/sh")
            .args(["-c", "read -r go"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start /bin/sh: {e}"))?;
        let entered = run.enter(shell.id()).map_err(|e| format!("cannot move a process into a child cgroup: {e}"));
        let _ = shell.kill();
        let _ = shell.wait();
        entered
    }
}

/// One run's cgroup; removed once its processes are gone.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dir: PathBuf,
}

impl RunCgroup {
    /// Moves process `pid` (and so all it will start) into the cgroup.
    pub(crate) fn enter(&self, pid: u32) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }
}

impl Drop for RunCgroup {
    /// Removes the cgroup if it is empty; else (its last processes are still exiting, which
    /// takes some milliseconds after bwrap is gone) leaves it to [`sweep`].
    fn drop(&mut self) {
        if !removed(&self.dir) {
            pending().push(std::mem::take(&mut self.dir));
        }
    }
}

/// Cgroups of finished runs that were not empty yet.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes the finished runs' cgroups that are empty now, trying again for up to `patience`
/// while some are not. Every new run sweeps with no patience; the service, once stopped,
/// with some.
pub(crate) fn sweep(patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let mut left = pending();
        left.retain(|dir| !removed(dir));
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        drop(left);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the (empty) cgroup is gone now.
fn removed(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

fn write_if_present(file: &Path, value: &str) -> io::Result<()> {
    match std::fs::write(file, value) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The service's own memory cgroup directories, v2 first, from `/proc/self/cgroup` and
/// `/proc/self/mountinfo`.
fn locate(proc_cgroup: &str, mountinfo: &str) -> Vec<(Version, PathBuf)> {
    let mut found = Vec::new();
    for (version, wanted) in [(Version::V2, None), (Version::V1, Some("memory"))] {
        // `ID:controllers:path`; v2's line is `0::path`.
        let path = proc_cgroup.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let matches = match wanted {
                None => controllers.is_empty(),
                Some(name) => controllers.split(',').any(|c| c == name),
            };
            matches.then_some(path)
        });
        let Some(path) = path else { continue };
        // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`
        let mount = mountinfo.lines().find_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let mut fs = fs.split_whitespace();
            let (fstype, superoptions) = (fs.next()?, fs.nth(1).unwrap_or_default());
            let matches = match wanted {
                None => fstype == "cgroup2",
                Some(name) => fstype == "cgroup" && superoptions.split(',').any(|o| o == name),
            };
            let mut fields = mount.split_whitespace().skip(3);
            matches.then_some((fields.next()?, fields.next()?))
        });
        let Some((root, mount_point)) = mount else { continue };
        // The hierarchy may be mounted from below its root (in a container): the path is
        // relative to that root.
        if let Ok(relative) = Path::new(path).strip_prefix(root) {
            found.push((version, Path::new(mount_point).join(relative)));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw";

    #[test]
    fn finds_the_services_own_cgroups_v2_first() {
        let proc_cgroup = "4:memory:/process_api/abc\n1:cpu:/\n0::/init.scope\n";
        assert_eq!(
            locate(proc_cgroup, MOUNTINFO),
            [
                (Version::V2, PathBuf::from("/sys/fs/cgroup/unified/init.scope")),
                (Version::V1, PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")),
            ]
        );
        // Pure v2, mounted from below its root as in a container.
        let mountinfo = "1 0 0:1 /ctr /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(locate("0::/ctr/app\n", mountinfo), [(Version::V2, PathBuf::from("/sys/fs/cgroup/app"))]);
        // Memory shares a v1 hierarchy with another controller.
        let mountinfo = "1 0 0:1 / /cg/mem rw - cgroup cgroup rw,cpu,memory";
        assert_eq!(locate("3:cpu,memory:/a\n", mountinfo), [(Version::V1, PathBuf::from("/cg/mem/a"))]);
        assert_eq!(locate("4:memory:/a\n", "32 31 0:29 / /cg rw - cgroup cgroup rw,cpu"), []);
    }
}
