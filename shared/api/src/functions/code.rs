//! `POST /v1/code`: the model writes a program for the task, a remote Piston v2 sandbox runs
//! it over HTTP (code never runs inside the function), a failed run goes back to the model to
//! be fixed (up to `max_attempts` write/run rounds), and the model explains the result.
//!
//! It runs on the System 2 agent ([`crate::agent`]): every model call and sandbox run is a
//! step, bounded by the agent's limits. A sandbox that is down, slow, refuses the token or
//! answers garbage is a result (`execution: null`, `sandbox_error: {code, message}`), not a
//! 5xx: the program was written and the caller gets it. A limit reached mid-way is a result
//! too, with what was done so far. Only a model that fails on every provider is an error.
//!
//! Stream: `start`, `step`s (from the agent), `code` when a program is found, `execution`
//! after each run, the explanation as `delta`s, `usage`, `done`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::mode::{answer_json, done_json, event_stream, parse_mode_body, requested_tier, Emitter};
use super::Ctx;
use crate::agent::{Agent, Limits, Stop};
use crate::error::ApiError;
use crate::web;
use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, Message, Role};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::{Mode, Tier};
use opencode_core::sandbox::{self, extract_code, CodeBlock, Execution, ExecutionRequest, Language, SandboxConfig};
use opencode_runtime::executor::{with_timeout, Answered, RetryPolicy};
use opencode_runtime::host::{Body, Host};

mod prompts;
pub(super) mod run;

/// The mode's own body fields, next to the chat body's.
const FIELDS: &[&str] = &["language", "stdin", "run_timeout_ms", "max_attempts"];
const MAX_RUN_TIMEOUT_MS: u64 = 60_000;
const MAX_STDIN_BYTES: usize = 64 * 1024;
/// Largest program `/v1/code/run` takes.
const MAX_CODE_BYTES: usize = 256 * 1024;
const MAX_ATTEMPTS: u32 = 3;
const DEFAULT_ATTEMPTS: u32 = 2;
/// The largest sandbox answer read: Piston repeats the output (stdout, stderr, output).
const MAX_SANDBOX_ANSWER_BYTES: usize = 4 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeFields {
    language: Option<String>,
    stdin: Option<String>,
    run_timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
}

/// What to do, checked.
struct Job {
    request: ChatRequest,
    language: Language,
    stdin: String,
    run_timeout_ms: Option<u64>,
    max_attempts: u32,
    sandbox: SandboxConfig,
}

impl CodeFields {
    fn validate(self) -> Result<(Language, String, Option<u64>, u32), ApiError> {
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
        let attempts = self.max_attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            return invalid(format!("`max_attempts` must be from 1 to {MAX_ATTEMPTS}, got {attempts}"));
        }
        Ok((language, stdin, self.run_timeout_ms, attempts))
    }
}

pub(super) async fn handle<H: Host>(
    ctx: &Ctx<H>,
    parts: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, ApiError> {
    if parts.uri.path().trim_end_matches('/') == "/v1/code/run" {
        return run::handle(ctx, parts, body).await;
    }
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let (chat, fields) = parse_mode_body::<CodeFields>(&parts, &bytes, FIELDS)?;
    let (mut request, stream) = chat.validate()?;
    super::mode::refuse_tools(&request, Mode::Code, false)?;
    let (language, stdin, run_timeout_ms, max_attempts) = fields.validate()?;
    let sandbox = SandboxConfig::from_vars(|name| ctx.host.var(name)).ok_or_else(|| {
        ApiError::NotConfigured("SANDBOX_URL is not set: the code mode runs programs in a Piston v2 sandbox".into())
    })?;
    // A bad SANDBOX_URL or SANDBOX_TOKEN is the deployment's fault: say so before any model call.
    sandbox::build_request(&sandbox, &ExecutionRequest::new(language, ""))
        .map_err(|err| ApiError::NotConfigured(err.to_string()))?;
    let tier = requested_tier(&parts.headers).unwrap_or(Tier::System2);
    let chain = ctx.config.tier_chain_for(tier, request.model.take().as_deref())?;
    let run = Run {
        host: ctx.host.clone(),
        chain,
        retry: ctx.config.retry.clone(),
        limits: Limits::from_host(&ctx.host)?,
        request_id: ctx.request_id.clone(),
        tier,
        job: Job { request, language, stdin, run_timeout_ms, max_attempts, sandbox },
    };
    if stream {
        return Ok(event_stream(&ctx.request_id, move |emitter| async move { run.stream(emitter).await }));
    }
    let mut agent = Agent::new(&run.host, run.chain.clone(), run.retry.clone(), run.limits, None);
    let outcome = solve(&mut agent, &run.host, &run.job, None).await.map_err(ApiError::from)?;
    Ok(web::json(http::StatusCode::OK, &Value::Object(run.answer(&agent, outcome))))
}

/// One request's work, owned so that a stream can carry it.
struct Run<H: Host> {
    host: H,
    chain: Vec<ProviderConfig>,
    retry: RetryPolicy,
    limits: Limits,
    request_id: String,
    tier: Tier,
    job: Job,
}

impl<H: Host> Run<H> {
    async fn stream(self, emitter: Emitter) {
        emitter.send("start", &json!({"id": self.request_id, "mode": Mode::Code.as_str(), "tier": self.tier}));
        let mut agent = Agent::new(&self.host, self.chain.clone(), self.retry.clone(), self.limits, Some(&emitter));
        match solve(&mut agent, &self.host, &self.job, Some(&emitter)).await {
            Ok(outcome) => {
                let answer = self.answer(&agent, outcome);
                emitter.send("usage", &agent.usage_json());
                emitter.send("done", &done_json(answer));
            }
            Err(Stop::Broken(failure)) => emitter.stream_failed(&failure),
            Err(stop) => emitter.error(&ApiError::from(stop)),
        }
    }

    /// The JSON answer: the common fields, then the program, its last run and the rounds.
    fn answer(&self, agent: &Agent<'_, H>, outcome: Outcome) -> Map<String, Value> {
        let answered = agent.answered().cloned().unwrap_or_else(|| Answered::nobody(&self.chain));
        let response = outcome.explanation.unwrap_or(ChatResponse {
            text: outcome.text,
            thinking: None,
            model: answered.model.clone(),
            finish_reason: FinishReason::Stop,
            usage: agent.usage(),
            tool_calls: Vec::new(),
        });
        let mut answer = answer_json(&self.request_id, Mode::Code, &response, &answered);
        let last = outcome.runs.last();
        let execution = last.and_then(|r| r.execution.as_ref());
        let code = outcome.code.as_ref();
        answer.extend([
            ("usage".to_owned(), agent.usage_json()),
            ("citations".to_owned(), json!([])),
            ("language".to_owned(), json!(code.map_or(self.job.language, |c| c.language))),
            ("code".to_owned(), json!(code.map(|c| &c.code))),
            ("succeeded".to_owned(), json!(execution.is_some_and(Execution::succeeded))),
            ("execution".to_owned(), execution.map_or(Value::Null, execution_json)),
            ("sandbox_error".to_owned(), json!(last.and_then(|r| r.sandbox_error.as_ref()))),
            ("runs".to_owned(), Value::Array(outcome.runs.iter().map(Round::to_json).collect())),
            ("agent".to_owned(), agent.report()),
        ]);
        answer
    }
}

/// Why a run has no execution: `code` is stable, `message` says what happened.
#[derive(Debug, Clone, serde::Serialize)]
struct SandboxFailure {
    code: &'static str,
    message: String,
}

impl std::fmt::Display for SandboxFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// One write/run round.
struct Round {
    attempt: u32,
    code: CodeBlock,
    execution: Option<Execution>,
    sandbox_error: Option<SandboxFailure>,
}

impl Round {
    fn to_json(&self) -> Value {
        json!({
            "attempt": self.attempt,
            "language": self.code.language,
            "code": self.code.code,
            "execution": self.execution.as_ref().map_or(Value::Null, execution_json),
            "sandbox_error": self.sandbox_error,
        })
    }
}

fn execution_json(execution: &Execution) -> Value {
    let mut value = json!(execution);
    if let Some(map) = value.as_object_mut() {
        map.insert("succeeded".into(), json!(execution.succeeded()));
        map.insert("timed_out".into(), json!(execution.timed_out()));
        map.insert("output_truncated".into(), json!(execution.output_truncated()));
    }
    value
}

/// What the rounds produced.
#[derive(Default)]
struct Outcome {
    /// The last program found.
    code: Option<CodeBlock>,
    runs: Vec<Round>,
    /// The model's explanation, when it wrote one.
    explanation: Option<ChatResponse>,
    /// The message when the model did not explain (no code, sandbox error, a limit).
    text: String,
}

/// The whole flow. Limits end it with what it has; a failed model call is the error.
async fn solve<H: Host>(
    agent: &mut Agent<'_, H>,
    host: &H,
    job: &Job,
    emitter: Option<&Emitter>,
) -> Result<Outcome, Stop> {
    let mut outcome = Outcome::default();
    let result = match rounds(agent, host, job, emitter, &mut outcome).await {
        Ok(Some(text)) => Ok(text),
        Ok(None) => {
            let request = prompts::explain(job, &outcome);
            agent.write(&request).await.map(|answer| {
                outcome.explanation = Some(answer);
                String::new()
            })
        }
        Err(stop) => Err(stop),
    };
    match result {
        Ok(_) if outcome.explanation.is_some() => {}
        Ok(text) => say(&mut outcome, emitter, text),
        Err(Stop::Limit(hit)) => {
            let done = if outcome.runs.is_empty() { "No program was run" } else { "The last run's result is attached" };
            say(&mut outcome, emitter, format!("The code run stopped early: {}. {done}.", hit.describe()));
        }
        Err(stop) => return Err(stop),
    }
    Ok(outcome)
}

/// A message the platform writes itself, streamed as one delta.
fn say(outcome: &mut Outcome, emitter: Option<&Emitter>, text: String) {
    if let Some(emitter) = emitter {
        emitter.send("delta", &json!({ "text": text }));
    }
    outcome.text = text;
}

/// Write, run, and fix while rounds remain. `Some(message)` when the answer is the
/// platform's own (no code, sandbox error); `None` when the model should explain the result.
async fn rounds<H: Host>(
    agent: &mut Agent<'_, H>,
    host: &H,
    job: &Job,
    emitter: Option<&Emitter>,
    outcome: &mut Outcome,
) -> Result<Option<String>, Stop> {
    let mut request = prompts::write(job);
    let mut attempt = 1;
    loop {
        let name = if attempt == 1 { "write_code" } else { "fix_code" };
        let Some(code) = write_code(agent, job, name, &request).await? else {
            let tag = job.language.piston_name();
            return Ok(Some(format!(
                "No code was produced: the model's answer had no fenced `{tag}` code block, so nothing was run."
            )));
        };
        if let Some(emitter) = emitter {
            emitter.send("code", &json!({"attempt": attempt, "language": code.language, "code": code.code}));
        }
        outcome.code = Some(code.clone());
        let run = execute(agent, host, job, &code).await?;
        let (execution, sandbox_error) = match run {
            Ok(execution) => (Some(execution), None),
            Err(failure) => (None, Some(failure)),
        };
        if let Some(emitter) = emitter {
            let execution = execution.as_ref().map_or(Value::Null, execution_json);
            emitter.send(
                "execution",
                &json!({"attempt": attempt, "execution": execution, "sandbox_error": sandbox_error}),
            );
        }
        let round = Round { attempt, code, execution, sandbox_error };
        if let Some(failure) = &round.sandbox_error {
            let message = format!("The code could not be run: {}. The program is attached, unrun.", failure.message);
            outcome.runs.push(round);
            return Ok(Some(message));
        }
        let failed = round.execution.as_ref().is_some_and(|e| !e.succeeded());
        if failed && attempt < job.max_attempts {
            request = prompts::fix(job, &round);
            outcome.runs.push(round);
            attempt += 1;
            continue;
        }
        outcome.runs.push(round);
        return Ok(None);
    }
}

/// A model step that should answer with a program; an answer without one is asked once more.
async fn write_code<H: Host>(
    agent: &mut Agent<'_, H>,
    job: &Job,
    name: &str,
    request: &ChatRequest,
) -> Result<Option<CodeBlock>, Stop> {
    let answer = agent.think(name, request).await?;
    if let Some(code) = program(job, &answer.text) {
        return Ok(Some(code));
    }
    let again = prompts::again(job, request, &answer.text);
    let answer = agent.think(name, &again).await?;
    Ok(program(job, &answer.text))
}

/// The program in `text`, if it is in the language asked for.
fn program(job: &Job, text: &str) -> Option<CodeBlock> {
    extract_code(text, Some(job.language)).filter(|c| c.language == job.language)
}

/// One sandbox run as an agent step.
async fn execute<H: Host>(
    agent: &mut Agent<'_, H>,
    host: &H,
    job: &Job,
    code: &CodeBlock,
) -> Result<Result<Execution, SandboxFailure>, Stop> {
    let mut request = ExecutionRequest::new(code.language, code.code.clone());
    request.stdin.clone_from(&job.stdin);
    request.run_timeout_ms = job.run_timeout_ms;
    let input = json!({"language": code.language, "bytes": code.code.len(), "stdin_bytes": job.stdin.len()});
    let summary = |e: &Execution| json!({"status": e.status, "exit_code": e.exit_code, "stdout_bytes": e.stdout.len()});
    agent.act("sandbox", input, run_in_sandbox(host, &job.sandbox, &request), summary).await
}

/// `POST /api/v2/execute` and its answer, bounded by the run's timeout plus a margin.
async fn run_in_sandbox<H: Host>(
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
                sandbox::SandboxError::Rejected { status: 401 | 403, .. } => "sandbox_unauthorized",
                sandbox::SandboxError::Rejected { .. } => "sandbox_rejected",
                sandbox::SandboxError::Failed { .. } => "sandbox_failed",
                _ => "sandbox_malformed",
            };
            failure(code, err.to_string())
        })
    };
    with_timeout(host, timeout_ms, call).await.unwrap_or_else(|| {
        Err(failure("sandbox_timeout", format!("the sandbox did not answer within {timeout_ms} ms")))
    })
}

/// The user's last message: the task.
fn task(request: &ChatRequest) -> &str {
    request.messages.iter().rev().find(|m| m.role == Role::User).map_or("", |m| m.content.as_str())
}

/// The request with other messages, keeping the caller's sampling settings.
fn with_messages(request: &ChatRequest, messages: Vec<Message>) -> ChatRequest {
    ChatRequest { messages, ..request.clone() }
}
