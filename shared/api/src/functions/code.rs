//! `POST /v1/code`: the chat body plus `language`, `stdin`, `run_timeout_ms` and
//! `max_attempts`, answered by [`opencode_runtime::modes::code`]; and `POST /v1/code/run`, a
//! program run as given, without a model.

use serde::Deserialize;

use opencode_core::flags::Flag;
use serde_json::json;

use opencode_core::routing::{Mode, Tier};
use opencode_core::sandbox::{self, ExecutionRequest, Language};
use opencode_runtime::bounded::Limits;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::modes::code::{self as mode, CodeJob};
use opencode_runtime::modes::Delivery;

use super::{parse_mode, Ctx, Handled};
use crate::error::ApiError;
use crate::platform::details::sandbox_error_json;
use crate::platform::request::{refuse_tools, requested_tier};
use crate::web;

/// The mode's own body fields, next to the chat body's.
const FIELDS: &[&str] = &["language", "stdin", "run_timeout_ms", "max_attempts"];
const MAX_RUN_TIMEOUT_MS: u64 = 60_000;
const MAX_STDIN_BYTES: usize = 64 * 1024;
/// Largest program `/v1/code/run` takes.
const MAX_CODE_BYTES: usize = 256 * 1024;
/// Write/run rounds unless the request says: one fix after a failed run, if the reflection depth
/// (`cognitive_features.system2.reflection_depth`, the most fixes) allows it.
const DEFAULT_ATTEMPTS: u32 = 2;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeFields {
    language: Option<String>,
    stdin: Option<String>,
    run_timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
}

impl CodeFields {
    fn validate(self, reflection_depth: u64) -> Result<(Language, String, Option<u64>, u32), ApiError> {
        let invalid = |msg: String| Err(ApiError::Validation(msg));
        let language = match self.language.as_deref() {
            None | Some("python") => Language::Python,
            Some("javascript") => Language::JavaScript,
            Some(other) => {
                let other: String = other.chars().take(32).collect();
                return invalid(format!("`language` must be `python` or `javascript`, got `{other}`"));
            }
        };
        let stdin = self.stdin.unwrap_or_default();
        if stdin.len() > MAX_STDIN_BYTES {
            return invalid(format!("`stdin` is longer than {MAX_STDIN_BYTES} bytes"));
        }
        if let Some(ms) = self.run_timeout_ms.filter(|ms| !(1..=MAX_RUN_TIMEOUT_MS).contains(ms)) {
            return invalid(format!("`run_timeout_ms` must be from 1 to {MAX_RUN_TIMEOUT_MS}, got {ms}"));
        }
        let most = u32::try_from(reflection_depth).unwrap_or(u32::MAX).saturating_add(1);
        let attempts = self.max_attempts.unwrap_or(DEFAULT_ATTEMPTS.min(most));
        if !(1..=most).contains(&attempts) {
            return invalid(format!(
                "`max_attempts` must be from 1 to {most} (`{}` allows {} fixes), got {attempts}",
                Flag::ReflectionDepth.path(),
                most.saturating_sub(1)
            ));
        }
        Ok((language, stdin, self.run_timeout_ms, attempts))
    }
}

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    match parts.uri.path().trim_end_matches('/') {
        "/v1/code/run" => return run(ctx, parts, body).await,
        crate::seed::SANDBOX_EXECUTE => return seed_execute(ctx, parts, body).await,
        _ => {}
    }
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (mut request, fields, dialect) = parse_mode::<CodeFields, false>(&parts, &bytes, Mode::Code, FIELDS)?;
    refuse_tools(&request, Mode::Code, false)?;
    let (language, stdin, run_timeout_ms, max_attempts) =
        fields.validate(ctx.config.flags.whole(Flag::ReflectionDepth))?;
    let sandbox = opencode_runtime::sandbox::config(&ctx.host).ok_or_else(|| {
        ApiError::NotConfigured("SANDBOX_URL is not set: the code mode runs programs in a Piston v2 sandbox".into())
    })?;
    // A bad SANDBOX_URL or SANDBOX_TOKEN is the deployment's fault: say so before any model call.
    sandbox::build_request(&sandbox, &ExecutionRequest::new(language, ""))
        .map_err(|err| ApiError::NotConfigured(err.to_string()))?;
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System2);
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    let job = CodeJob {
        chain: ctx.admit(&request, chain).await?,
        request,
        language,
        stdin,
        run_timeout_ms,
        max_attempts,
        sandbox,
        retry: ctx.config.retry.clone(),
        limits: Limits::from_flags(&ctx.config.flags),
        tier,
    };
    let delivery = if dialect.streams() { Delivery::Stream } else { Delivery::Whole };
    Ok(ctx.respond_in(dialect, mode::run(&ctx.host, job, delivery).await?))
}

/// The seed's `POST /api/v1/sandbox/execute` — `{"code", "language"?, "timeout"?}` (seconds, 1 to
/// 120; the sandbox stops a run at 60) → `{"success", "stdout", "stderr", "return_value",
/// "execution_time", "error"}`. The sandbox runs Python and JavaScript: the seed's `bash` is a
/// 422 naming `language`.
async fn seed_execute<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ExecuteBody {
        code: String,
        language: Option<String>,
        timeout: Option<u64>,
        context: Option<serde_json::Value>,
    }
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let asked: ExecuteBody = web::parse_json(&parts, &bytes)?;
    if asked.code.trim().is_empty() || asked.code.len() > MAX_CODE_BYTES {
        return Err(ApiError::param("code", format!("`code` must be a program of 1 to {MAX_CODE_BYTES} bytes")));
    }
    if asked.language.as_deref() == Some("bash") {
        return Err(ApiError::param("language", "the sandbox runs `python` and `javascript`, not `bash`".into()));
    }
    if asked.timeout.is_some_and(|t| !(1..=120).contains(&t)) {
        return Err(ApiError::param("timeout", "`timeout` must be from 1 to 120 seconds".into()));
    }
    if asked.context.as_ref().is_some_and(|c| !c.is_null()) {
        return Err(ApiError::param("context", "`context` (variables given to the program) is not supported".into()));
    }
    let run_timeout_ms = asked.timeout.map(|t| t.saturating_mul(1000).min(MAX_RUN_TIMEOUT_MS));
    let fields = CodeFields { language: asked.language, stdin: None, run_timeout_ms, max_attempts: None };
    let (language, _, run_timeout_ms, _) = fields.validate(ctx.config.flags.whole(Flag::ReflectionDepth))?;
    let sandbox = opencode_runtime::sandbox::config(&ctx.host)
        .ok_or_else(|| ApiError::NotConfigured("SANDBOX_URL is not set".into()))?;
    let mut request = ExecutionRequest::new(language, asked.code);
    request.run_timeout_ms = run_timeout_ms;
    ctx.admit_plain().await?;
    let body = match opencode_runtime::sandbox::run(&ctx.host, &sandbox, &request).await {
        Ok(ran) => json!({
            "success": ran.exit_code == Some(0) && ran.status.is_none(),
            "stdout": ran.stdout,
            "stderr": ran.stderr,
            "return_value": null,
            "execution_time": ran.wall_time_ms.unwrap_or(0.0) / 1000.0,
            "error": ran.message.clone().or_else(|| ran.status.clone()),
        }),
        Err(err) => json!({
            "success": false, "stdout": "", "stderr": "", "return_value": null, "execution_time": 0.0,
            "error": err.to_string(),
        }),
    };
    Ok(web::json(http::StatusCode::OK, &body))
}

/// `POST /v1/code/run` — `{"language", "code", "stdin"?, "run_timeout_ms"?}`: runs a program in
/// the sandbox as given, without a model (the agent's `run_code` tool calls it). As in the code
/// mode, a sandbox that fails is a result (`execution: null`, `sandbox_error: {code, message}`),
/// not an error status.
async fn run<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RunBody {
        code: String,
        language: Option<String>,
        stdin: Option<String>,
        run_timeout_ms: Option<u64>,
    }
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
    let (language, stdin, run_timeout_ms, _) = fields.validate(ctx.config.flags.whole(Flag::ReflectionDepth))?;
    let sandbox = opencode_runtime::sandbox::config(&ctx.host)
        .ok_or_else(|| ApiError::NotConfigured("SANDBOX_URL is not set".into()))?;
    let mut request = ExecutionRequest::new(language, asked.code);
    request.stdin = stdin;
    request.run_timeout_ms = run_timeout_ms;
    ctx.admit_plain().await?;
    let ran = opencode_runtime::sandbox::run(&ctx.host, &sandbox, &request).await;
    let body = json!({
        "id": ctx.request_id,
        "object": "code.run",
        "language": language,
        "execution": ran.as_ref().ok(),
        "sandbox_error": sandbox_error_json(ran.as_ref().err()),
    });
    Ok(web::json(http::StatusCode::OK, &body))
}
