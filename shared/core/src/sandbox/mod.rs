//! The code sandbox, as a client of the Piston v2 API: a pure translation, no I/O.
//!
//! [`build_request`] turns an [`ExecutionRequest`] into `POST {SANDBOX_URL}/api/v2/execute`
//! (with `Authorization: Bearer {SANDBOX_TOKEN}` when a token is set: Piston has no auth of its
//! own, so a self-hosted one sits behind a proxy that checks it; the local `tests/sandbox`
//! checks the same header). [`parse_response`] reads Piston's answer (`language`, `version`,
//! `run: {stdout, stderr, output, code, signal, status, message, ...}`) into an [`Execution`],
//! and Piston's `{"message"}` error bodies into a [`SandboxError`]. A run that timed out or
//! overflowed its output is a normal [`Execution`] with Piston's `status` (`TO`, `OL`, `EL`,
//! ...), not an error. [`extract_code`] finds the program in a model's answer.
//!
//! The I/O is `opencode_runtime::sandbox`'s, bounded by [`fetch_timeout_ms`].

mod extract;
mod wire;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};

pub use extract::{extract_code, CodeBlock};

/// Piston's own default run timeout, used when a request sets none.
pub const DEFAULT_RUN_TIMEOUT_MS: u64 = 3_000;

/// Time on top of the run timeout for the sandbox to start, stage and answer.
pub const FETCH_MARGIN_MS: u64 = 10_000;

/// Where the sandbox is, from `SANDBOX_URL` and `SANDBOX_TOKEN`.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub url: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl SandboxConfig {
    /// `SANDBOX_URL` and `SANDBOX_TOKEN` from `var`; `None` when `SANDBOX_URL` is unset or
    /// empty (the `code` mode then cannot run code).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<SandboxConfig> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        Some(SandboxConfig { url: set("SANDBOX_URL")?.trim().to_owned(), token: set("SANDBOX_TOKEN") })
    }
}

/// The languages the platform asks the sandbox to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    JavaScript,
}

impl Language {
    /// A code-fence tag or a user's name for the language: `python`, `py`, `python3`, `js`,
    /// `javascript`, `node`, `nodejs`, `node-js`, `mjs`, ... (any case).
    pub fn from_alias(alias: &str) -> Option<Language> {
        match alias.trim().to_ascii_lowercase().as_str() {
            "python" | "py" | "python3" | "py3" => Some(Language::Python),
            "javascript" | "js" | "node" | "nodejs" | "node-js" | "node-javascript" | "mjs" | "cjs" => {
                Some(Language::JavaScript)
            }
            _ => None,
        }
    }

    /// The name Piston lists the runtime under (`GET /api/v2/runtimes`).
    pub fn piston_name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
        }
    }

    /// The file name the program is sent under.
    pub fn file_name(self) -> &'static str {
        match self {
            Language::Python => "main.py",
            Language::JavaScript => "main.js",
        }
    }
}

/// One file of the job; Piston runs the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// `None` lets Piston pick a name.
    pub name: Option<String>,
    pub content: String,
}

/// What to run, in Piston's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRequest {
    /// A Piston language name or alias (`python`, `javascript`, ...).
    pub language: String,
    /// `*` or a SemVer selector.
    pub version: String,
    pub files: Vec<SourceFile>,
    pub stdin: String,
    pub args: Vec<String>,
    /// `run_timeout`; `None` leaves it to the sandbox (3 s on a default Piston).
    pub run_timeout_ms: Option<u64>,
    /// `run_memory_limit` in bytes; `None` leaves it to the sandbox.
    pub run_memory_limit: Option<u64>,
}

impl ExecutionRequest {
    /// `code` as the one file of `language`, any version, no stdin or arguments.
    pub fn new(language: Language, code: impl Into<String>) -> ExecutionRequest {
        ExecutionRequest {
            language: language.piston_name().to_owned(),
            version: "*".to_owned(),
            files: vec![SourceFile { name: Some(language.file_name().to_owned()), content: code.into() }],
            stdin: String::new(),
            args: Vec::new(),
            run_timeout_ms: None,
            run_memory_limit: None,
        }
    }
}

/// The result of a run, whatever it was: Piston's run stage, flattened.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Execution {
    /// The runtime's name (not the alias asked for) and version.
    pub language: String,
    pub version: String,
    pub stdout: String,
    pub stderr: String,
    /// stdout and stderr interleaved as they were written.
    pub output: String,
    /// `None` when the program was killed by a signal.
    pub exit_code: Option<i32>,
    /// `SIGKILL`, `SIGSEGV`, ...
    pub signal: Option<String>,
    /// Piston's verdict when not a clean exit: `RE` runtime error, `SG` signal, `TO` timeout,
    /// `OL` / `EL` stdout / stderr over the limit (truncated), `XX` sandbox error.
    pub status: Option<String>,
    /// Piston's explanation of `status` (`Time limit exceeded`, `stdout length exceeded`, ...).
    pub message: Option<String>,
    pub wall_time_ms: Option<f64>,
    pub cpu_time_ms: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// The program never ran: a compiled language's compile stage failed (its output is here).
    pub compile_failed: bool,
}

impl Execution {
    /// The program ran to the end and exited with 0.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.status.is_none() && !self.compile_failed
    }

    /// Stopped at the wall-clock or CPU time limit.
    pub fn timed_out(&self) -> bool {
        self.status.as_deref() == Some("TO")
    }

    /// stdout or stderr went over the sandbox's limit and was cut.
    pub fn output_truncated(&self) -> bool {
        matches!(self.status.as_deref(), Some("OL" | "EL"))
    }
}

/// Why there is no [`Execution`]. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    #[error("SANDBOX_URL is not an absolute http(s) url")]
    InvalidUrl,
    #[error("SANDBOX_TOKEN contains characters not allowed in a header")]
    InvalidToken,
    /// A 4xx: Piston's `message` (`python-9 runtime is unknown`, `run_timeout cannot exceed
    /// the configured limit of 3000`, ...), or the status alone when the body had none.
    #[error("the sandbox refused the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the sandbox failed (HTTP {status}): {message}")]
    Failed { status: u16, message: String },
    #[error("the sandbox's answer is not Piston's: {0}")]
    Malformed(String),
}

/// `POST {url}/api/v2/execute` with Piston's JSON body.
pub fn build_request(config: &SandboxConfig, request: &ExecutionRequest) -> Result<http::Request<Bytes>, SandboxError> {
    let body = wire::ExecuteBody::from(request);
    let body = serde_json::to_vec(&body).map_err(|e| SandboxError::Malformed(e.to_string()))?;
    let mut http_request = authorized(config, http::Method::POST, "execute", Bytes::from(body))?;
    http_request.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(http_request)
}

/// `GET {url}/api/v2/runtimes`, e.g. for a health check.
pub fn runtimes_request(config: &SandboxConfig) -> Result<http::Request<Bytes>, SandboxError> {
    authorized(config, http::Method::GET, "runtimes", Bytes::new())
}

/// Piston's answer to `execute`, or its error.
pub fn parse_response(status: u16, body: &[u8]) -> Result<Execution, SandboxError> {
    check_status(status, body)?;
    let answer: wire::ExecuteAnswer =
        serde_json::from_slice(body).map_err(|e| SandboxError::Malformed(format!("invalid execute answer: {e}")))?;
    answer.into_execution()
}

/// One entry of `GET /api/v2/runtimes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Runtime {
    pub language: String,
    pub version: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub runtime: Option<String>,
}

/// Piston's answer to `runtimes`, or its error.
pub fn parse_runtimes(status: u16, body: &[u8]) -> Result<Vec<Runtime>, SandboxError> {
    check_status(status, body)?;
    serde_json::from_slice(body).map_err(|e| SandboxError::Malformed(format!("invalid runtimes answer: {e}")))
}

/// How long to wait for the sandbox: the run's own timeout plus [`FETCH_MARGIN_MS`].
pub fn fetch_timeout_ms(request: &ExecutionRequest) -> u64 {
    request.run_timeout_ms.unwrap_or(DEFAULT_RUN_TIMEOUT_MS).saturating_add(FETCH_MARGIN_MS)
}

/// The endpoint for `name` under the base URL. `SANDBOX_URL` may be the host root
/// (`http://piston:2000`), the API root (`.../api/v2`, or the public `.../api/v2/piston`) or
/// the endpoint itself; a trailing slash does not matter.
pub fn endpoint(base: &str, name: &str) -> Result<http::Uri, SandboxError> {
    let base = base.trim().trim_end_matches('/');
    let base = base.strip_suffix("/execute").or_else(|| base.strip_suffix("/runtimes")).unwrap_or(base);
    let url = if base.ends_with("/api/v2") || base.ends_with("/api/v2/piston") {
        format!("{base}/{name}")
    } else {
        format!("{base}/api/v2/{name}")
    };
    let uri: http::Uri = url.parse().map_err(|_| SandboxError::InvalidUrl)?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(SandboxError::InvalidUrl);
    }
    Ok(uri)
}

fn authorized(
    config: &SandboxConfig,
    method: http::Method,
    name: &str,
    body: Bytes,
) -> Result<http::Request<Bytes>, SandboxError> {
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = endpoint(&config.url, name)?;
    if let Some(token) = config.token.as_deref().filter(|t| !t.is_empty()) {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| SandboxError::InvalidToken)?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    Ok(request)
}

/// Non-2xx statuses become errors carrying Piston's `message` (bounded, never the body as is).
fn check_status(status: u16, body: &[u8]) -> Result<(), SandboxError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let message = serde_json::from_slice::<wire::ErrorBody>(body)
        .ok()
        .and_then(|e| e.message)
        .map(|m| m.chars().take(300).collect())
        .unwrap_or_else(|| "no message".to_owned());
    if (400..500).contains(&status) {
        Err(SandboxError::Rejected { status, message })
    } else {
        Err(SandboxError::Failed { status, message })
    }
}
