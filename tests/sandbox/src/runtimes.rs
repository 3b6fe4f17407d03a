//! The interpreters runs can use, found at startup by running each candidate inside the
//! sandbox: only what actually works there is listed.
//!
//! Python: the `python3` on PATH, resolved through shims such as pyenv's to the real
//! executable and its install prefix (bound read-only when it lies outside the system
//! directories), then `/usr/bin/python3`. A prefix uid 65534 cannot read (pyenv under a
//! `0700` `/root`) fails the probe, and the next candidate is tried. JavaScript: `node`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::jail::Jail;
use crate::run::{self, Job};
use crate::staging::Staging;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Python,
    Node,
}

/// One runtime, as `GET /api/v2/runtimes` lists it, and how to start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// Piston's language name: `python` or `javascript`.
    pub language: String,
    /// The interpreter's version, e.g. `3.11.2` or `20.20.2`.
    pub version: String,
    pub aliases: Vec<String>,
    /// `node` for JavaScript, as Piston names the runtime when a language has several.
    pub runtime: Option<String>,
    /// The interpreter's executable.
    pub interpreter: PathBuf,
    /// Bound read-only into runs when the interpreter lives outside the system directories.
    pub prefix: Option<PathBuf>,
    pub(crate) kind: Kind,
}

impl Runtime {
    fn new(kind: Kind, interpreter: PathBuf, prefix: Option<PathBuf>) -> Runtime {
        let (language, runtime) = match kind {
            Kind::Python => ("python", None),
            Kind::Node => ("javascript", Some("node".to_owned())),
        };
        Runtime {
            language: language.to_owned(),
            version: String::new(),
            aliases: Vec::new(),
            runtime,
            interpreter,
            prefix,
            kind,
        }
    }

    /// Piston's aliases for the language (its package definitions list the same ones).
    fn with_version(mut self, version: String) -> Runtime {
        self.aliases = match self.kind {
            Kind::Python => {
                let minor: Vec<&str> = version.split('.').take(2).collect();
                vec!["py".into(), "py3".into(), "python3".into(), format!("python{}", minor.join("."))]
            }
            Kind::Node => ["node-javascript", "node-js", "javascript", "js"].map(String::from).to_vec(),
        };
        self.version = version;
        self
    }

    /// The entry of `GET /api/v2/runtimes`.
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "language": self.language,
            "version": self.version,
            "aliases": self.aliases,
        });
        if let (Some(runtime), Some(map)) = (&self.runtime, entry.as_object_mut()) {
            map.insert("runtime".into(), json!(runtime));
        }
        entry
    }

    /// Whether a request's `language` names this runtime (its name or an alias, exactly).
    pub(crate) fn answers_to(&self, language: &str) -> bool {
        self.language == language || self.aliases.iter().any(|a| a == language)
    }
}

/// The runtime a request asks for: by name or alias, the version matching the selector.
pub(crate) fn find<'a>(runtimes: &'a [Runtime], language: &str, version: &str) -> Option<&'a Runtime> {
    runtimes.iter().find(|rt| rt.answers_to(language) && version_matches(&rt.version, version))
}

/// Piston takes a SemVer selector; this accepts the forms clients send: `*`, an exact
/// version, a prefix (`3`, `3.11`) and x-ranges (`3.x`, `20.*.*`).
pub(crate) fn version_matches(version: &str, selector: &str) -> bool {
    let selector = selector.trim().trim_start_matches(['=', 'v']);
    if selector.is_empty() || selector == "*" {
        return true;
    }
    let mut have = version.split('.');
    selector.split('.').all(|want| match have.next() {
        Some(_) if matches!(want, "x" | "X" | "*") => true,
        Some(part) => match (part.parse::<u64>(), want.parse::<u64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        None => false,
    })
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Every runtime that works in the sandbox on this machine. Candidates that do not are named
/// on stderr with bwrap's or the interpreter's reason.
pub(crate) async fn discover(jail: &Jail, staging: &Staging) -> Vec<Runtime> {
    let mut found = Vec::new();
    let mut python = Vec::new();
    if let Some((exe, prefix)) = resolve_python().await {
        python.push((exe, Some(prefix)));
    }
    python.push((PathBuf::from("/usr/bin/python3"), None));
    for (exe, prefix) in python {
        let Ok(exe) = std::fs::canonicalize(&exe) else {
            continue;
        };
        let prefix = prefix.filter(|p| !jail.is_visible(p) && exe.starts_with(p));
        let candidate = Runtime::new(Kind::Python, exe, prefix);
        let code = "import platform; print(platform.python_version())";
        if let Some(rt) = probe(jail, staging, candidate, &["-c", code]).await {
            found.push(rt);
            break;
        }
    }
    if let Some(exe) = crate::jail::which("node").and_then(|e| std::fs::canonicalize(e).ok()) {
        // A node outside the system directories is bound with its install prefix (bin/..).
        let prefix =
            (!jail.is_visible(&exe)).then(|| exe.parent().and_then(Path::parent).map(Path::to_path_buf)).flatten();
        let candidate = Runtime::new(Kind::Node, exe, prefix);
        if let Some(rt) = probe(jail, staging, candidate, &["-p", "process.versions.node"]).await {
            found.push(rt);
        }
    }
    found
}

/// The real interpreter behind `python3` on PATH and its install prefix, asked of the
/// interpreter itself (a pyenv shim is a script that execs the selected version).
async fn resolve_python() -> Option<(PathBuf, PathBuf)> {
    let shim = crate::jail::which("python3")?;
    let asking = tokio::process::Command::new(shim)
        .args(["-c", "import sys; print(sys.executable); print(sys.base_prefix)"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PROBE_TIMEOUT, asking).await.ok()?.ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let mut lines = text.lines();
    let exe = PathBuf::from(lines.next()?);
    let prefix = PathBuf::from(lines.next()?);
    (output.status.success() && exe.is_absolute() && prefix.is_absolute()).then_some((exe, prefix))
}

/// Runs `candidate` in the sandbox; its first line of output is its version.
async fn probe(jail: &Jail, staging: &Staging, candidate: Runtime, args: &[&str]) -> Option<Runtime> {
    let job = Job::probe(args, PROBE_TIMEOUT);
    let result = run::execute(jail, staging, &candidate, job).await;
    let version = result.stdout.lines().next().unwrap_or_default().trim().to_owned();
    if result.code == Some(0) && !version.is_empty() {
        return Some(candidate.with_version(version));
    }
    let reason =
        result.stderr.lines().chain(result.message.as_deref()).next().unwrap_or("no version printed").to_owned();
    eprintln!(
        "sandbox: {} at {} does not run in the sandbox, skipped: {reason}",
        candidate.language,
        candidate.interpreter.display()
    );
    None
}

/// A Python and a Node runtime as discovery would list them, for tests of request handling.
#[cfg(test)]
pub(crate) fn fixtures() -> Vec<Runtime> {
    vec![
        Runtime::new(Kind::Python, "/usr/bin/python3".into(), None).with_version("3.11.2".into()),
        Runtime::new(Kind::Node, "/usr/bin/node".into(), None).with_version("20.1.0".into()),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn version_selectors() {
        for (selector, expected) in [
            ("*", true),
            ("", true),
            ("3.11.2", true),
            ("3", true),
            ("3.11", true),
            ("3.x", true),
            ("3.*.*", true),
            ("v3.11.2", true),
            ("3.12", false),
            ("2", false),
            ("3.11.2.1", false),
            ("latest", false),
        ] {
            assert_eq!(version_matches("3.11.2", selector), expected, "{selector}");
        }
    }

    #[test]
    fn runtimes_answer_to_pistons_aliases() {
        let all = fixtures();
        for alias in ["python", "py", "py3", "python3", "python3.11"] {
            assert_eq!(find(&all, alias, "*").unwrap().language, "python", "{alias}");
        }
        for alias in ["javascript", "js", "node-js", "node-javascript"] {
            assert_eq!(find(&all, alias, "20").unwrap().language, "javascript", "{alias}");
        }
        assert!(find(&all, "ruby", "*").is_none());
        assert!(find(&all, "js", "18").is_none());
        assert_eq!(
            all[1].to_json(),
            json!({"language": "javascript", "version": "20.1.0", "runtime": "node",
                   "aliases": ["node-javascript", "node-js", "javascript", "js"]})
        );
        assert!(all[0].to_json().get("runtime").is_none());
    }
}
