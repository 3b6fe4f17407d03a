//! The sandbox I/O: one Piston `execute` call (`opencode_core::sandbox` translates it), bounded
//! by the run's timeout plus a margin.
//!
//! A sandbox that is down, slow, refuses the token or answers garbage is a [`SandboxFailure`]
//! with a stable code, which the code mode reports as a result rather than an error: the
//! program was written and the caller gets it.

use std::fmt;

use opencode_core::sandbox::{self, Execution, ExecutionRequest, SandboxConfig, SandboxError};

use crate::executor::with_timeout;
use crate::host::Host;
use crate::trace::SpanGuard;
use opencode_core::telemetry::SpanKind;

/// The largest sandbox answer read: Piston repeats the output (stdout, stderr, output).
const MAX_SANDBOX_ANSWER_BYTES: usize = 4 << 20;

/// `SANDBOX_URL` and `SANDBOX_TOKEN`; `None` when no sandbox is configured.
pub fn config<H: Host>(host: &H) -> Option<SandboxConfig> {
    SandboxConfig::from_vars(|name| host.var(name))
}

/// Why a run has no execution: `code` is stable, `message` says what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxFailure {
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for SandboxFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// `POST /api/v2/execute` and its answer, bounded by the run's timeout plus a margin.
/// A CLIENT span of the request.
pub async fn run<H: Host>(
    host: &H,
    config: &SandboxConfig,
    request: &ExecutionRequest,
) -> Result<Execution, SandboxFailure> {
    let span = SpanGuard::start(host, SpanKind::Client, "sandbox run".to_owned());
    span.set("opencode.sandbox.language", request.language.as_str());
    let ran = run_unobserved(host, config, request).await;
    if let Err(failure) = &ran {
        span.fail(failure.code, &failure.message);
    }
    ran
}

async fn run_unobserved<H: Host>(
    host: &H,
    config: &SandboxConfig,
    request: &ExecutionRequest,
) -> Result<Execution, SandboxFailure> {
    let failure = |code, message: String| SandboxFailure { code, message };
    let http_request =
        sandbox::build_request(config, request).map_err(|e| failure("sandbox_misconfigured", e.to_string()))?;
    let timeout_ms = sandbox::fetch_timeout_ms(request);
    let call = async {
        let response = host
            .fetch(http_request)
            .await
            .map_err(|e| failure("sandbox_unreachable", format!("the sandbox could not be reached ({e})")))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect(MAX_SANDBOX_ANSWER_BYTES)
            .await
            .map_err(|e| failure("sandbox_unreachable", format!("the sandbox's answer could not be read ({e})")))?;
        sandbox::parse_response(status, &body).map_err(|err| {
            let code = match &err {
                SandboxError::Rejected { status: 401 | 403, .. } => "sandbox_unauthorized",
                SandboxError::Rejected { .. } => "sandbox_rejected",
                SandboxError::Failed { .. } => "sandbox_failed",
                _ => "sandbox_malformed",
            };
            failure(code, err.to_string())
        })
    };
    with_timeout(host, timeout_ms, call).await.unwrap_or_else(|| {
        Err(failure("sandbox_timeout", format!("the sandbox did not answer within {timeout_ms} ms")))
    })
}
