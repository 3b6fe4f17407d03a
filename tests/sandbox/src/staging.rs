//! The host directory each run's files and stdin are written to before the launcher copies
//! them into the run's private `/tmp`. Owned by uid 65534 (mode 0700) when the service runs
//! as root; removed when the run ends and, with everything left, on shutdown. A run's
//! directory is written and removed on Tokio's blocking threads (a request may carry tens of
//! thousands of files), never on the one thread that serves every connection.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::jail::SANDBOX_ID;

static INSTANCES: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub(crate) struct Staging {
    root: PathBuf,
    next: AtomicU64,
    hand_to_nobody: bool,
}

/// One run's directory: `files/` and `stdin`. Removed on drop.
#[derive(Debug)]
pub(crate) struct JobDir(PathBuf);

impl JobDir {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        let dir = std::mem::take(&mut self.0);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || std::fs::remove_dir_all(dir))),
            Err(_) => drop(std::fs::remove_dir_all(dir)),
        }
    }
}

impl Staging {
    /// A fresh directory under the system temp dir. `hand_to_nobody`: chown every run's
    /// directory to uid 65534 (the service runs as root and runs start as 65534).
    pub(crate) fn create(hand_to_nobody: bool) -> io::Result<Staging> {
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("opencode-sandbox-{}-{instance}", std::process::id()));
        // Traversable, not listable, by the run's uid.
        std::fs::DirBuilder::new().mode(0o711).create(&root)?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711))?;
        Ok(Staging { root, next: AtomicU64::new(0), hand_to_nobody })
    }

    /// Writes one run's files (relative names, already checked) and stdin.
    pub(crate) async fn job(&self, files: Vec<(String, Vec<u8>)>, stdin: Vec<u8>) -> io::Result<JobDir> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = JobDir(self.root.join(n.to_string()));
        let hand_to_nobody = self.hand_to_nobody;
        let writing = tokio::task::spawn_blocking(move || write_job(dir, &files, &stdin, hand_to_nobody));
        writing.await.map_err(|e| io::Error::other(format!("the staging thread failed: {e}")))?
    }
}

/// Runs on a blocking thread: a request may need tens of thousands of writes and chowns.
fn write_job(dir: JobDir, files: &[(String, Vec<u8>)], stdin: &[u8], hand_to_nobody: bool) -> io::Result<JobDir> {
    std::fs::DirBuilder::new().mode(0o700).create(dir.path())?;
    let files_dir = dir.path().join("files");
    std::fs::DirBuilder::new().mode(0o700).create(&files_dir)?;
    for (name, content) in files {
        let path = files_dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new().mode(0o700).recursive(true).create(parent)?;
        }
        std::fs::write(&path, content)?;
    }
    std::fs::write(dir.path().join("stdin"), stdin)?;
    if hand_to_nobody {
        hand_over(dir.path())?;
    }
    Ok(dir)
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// chown -R 65534:65534 (symlinks are never created here, so none is followed).
fn hand_over(path: &Path) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(SANDBOX_ID), Some(SANDBOX_ID))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            hand_over(&entry?.path())?;
        }
    }
    Ok(())
}
