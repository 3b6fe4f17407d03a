//! `POST /v1/code/run` — `{"language", "code", "stdin"?, "run_timeout_ms"?}`: runs a program
//! in the sandbox as given, without a model (the System 2 chat agent's `run_code` tool calls
//! it). As in the code mode, a sandbox that fails is a result (`execution: null`,
//! `sandbox_error: {code, message}`), not an error status.

use serde::Deserialize;
use serde_json::json;

use super::super::{Ctx, Handled};
use super::{run_in_sandbox, CodeFields, MAX_CODE_BYTES};
use crate::error::ApiError;
use crate::web;
use opencode_core::sandbox::{ExecutionRequest, SandboxConfig};
use opencode_runtime::host::{Body, Host};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    code: String,
    language: Option<String>,
    stdin: Option<String>,
    run_timeout_ms: Option<u64>,
}

pub(in super::super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let asked: RunBody = web::parse_json(&parts, &bytes)?;
    if asked.code.trim().is_empty() || asked.code.len() > MAX_CODE_BYTES {
        return Err(ApiError::Validation(format!("`code` must be a program of 1 to {MAX_CODE_BYTES} bytes")));
    }
    let fields = CodeFields {
        language: asked.language,
        stdin: asked.stdin,
        run_timeout_ms: asked.run_timeout_ms,
        max_attempts: None,
    };
    let (language, stdin, run_timeout_ms, _) = fields.validate()?;
    let sandbox = SandboxConfig::from_vars(|name| ctx.host.var(name))
        .ok_or_else(|| ApiError::NotConfigured("SANDBOX_URL is not set".into()))?;
    let mut request = ExecutionRequest::new(language, asked.code);
    request.stdin = stdin;
    request.run_timeout_ms = run_timeout_ms;
    let (execution, sandbox_error) = match run_in_sandbox(&ctx.host, &sandbox, &request).await {
        Ok(execution) => (Some(execution), None),
        Err(failure) => (None, Some(failure)),
    };
    let body = json!({
        "id": ctx.request_id,
        "object": "code.run",
        "language": language,
        "execution": execution,
        "sandbox_error": sandbox_error,
    });
    Ok(web::json(http::StatusCode::OK, &body))
}
