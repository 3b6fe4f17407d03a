//! Code: the model writes a program for the task, a remote Piston v2 sandbox runs it (code never
//! runs inside the function), a failed run goes back to the model to be fixed (up to
//! `max_attempts` write/run rounds), and the model explains the result.
//!
//! It runs on a [`BoundedRun`]: every model call and sandbox run is a step within the System 2
//! limits. A sandbox that is down, slow, refuses the token or answers garbage is a result
//! (no execution, a `SandboxFailure`), not an error: the program was written and the caller
//! gets it. A limit reached mid-way is a result too, with what was done so far. Only a model
//! that fails on every provider is an error.

mod prompts;

use opencode_core::model::{ChatRequest, ChatResponse, FinishReason, Message};
use opencode_core::providers::ProviderConfig;
use opencode_core::routing::{Mode, Tier};
use opencode_core::sandbox::{extract_code, CodeBlock, Execution, ExecutionRequest, Language, SandboxConfig};

use super::{last_user_text, Delivery, ModeError};
use crate::answer::{event_stream, Answer, Details, Event, Failure, Head, Reply, Sink, Start, Streamed};
use crate::bounded::{BoundedRun, Limits, RunReport, Step, StepData, Stop};
use crate::executor::RetryPolicy;
use crate::host::Host;
use crate::sandbox::{self, SandboxFailure};

/// A task, checked.
#[derive(Debug, Clone)]
pub struct CodeJob {
    pub request: ChatRequest,
    pub language: Language,
    pub stdin: String,
    pub run_timeout_ms: Option<u64>,
    pub max_attempts: u32,
    pub sandbox: SandboxConfig,
    pub chain: Vec<ProviderConfig>,
    pub retry: RetryPolicy,
    pub limits: Limits,
    pub tier: Tier,
}

/// One write/run round.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub attempt: u32,
    pub code: CodeBlock,
    pub execution: Option<Execution>,
    pub sandbox_error: Option<SandboxFailure>,
}

/// What a code answer adds: the program, its runs and the run's steps.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeDetails {
    /// The last program's language (the one asked for when no program was found).
    pub language: Language,
    /// The last program found.
    pub code: Option<String>,
    pub runs: Vec<Round>,
    pub run: RunReport,
}

impl CodeDetails {
    /// The last run, when a program was run.
    pub fn execution(&self) -> Option<&Execution> {
        self.runs.last().and_then(|r| r.execution.as_ref())
    }

    /// Why the last program could not be run, when the sandbox failed.
    pub fn sandbox_error(&self) -> Option<&SandboxFailure> {
        self.runs.last().and_then(|r| r.sandbox_error.as_ref())
    }

    pub fn succeeded(&self) -> bool {
        self.execution().is_some_and(Execution::succeeded)
    }
}

impl Details for CodeDetails {
    type Progress = CodeProgress;
}

/// A code stream's progress.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeProgress {
    Step(Step),
    /// A program was found in the model's answer.
    Code {
        attempt: u32,
        code: CodeBlock,
    },
    /// The program ran, or the sandbox failed.
    Ran {
        attempt: u32,
        execution: Option<Execution>,
        sandbox_error: Option<SandboxFailure>,
    },
}

impl From<Step> for CodeProgress {
    fn from(step: Step) -> Self {
        CodeProgress::Step(step)
    }
}

/// Solves one task.
pub async fn run<H: Host>(host: &H, job: CodeJob, delivery: Delivery) -> Result<Reply<CodeDetails>, ModeError> {
    if delivery == Delivery::Whole {
        let mut run = BoundedRun::new(host, job.chain.clone(), job.retry.clone(), job.limits, None);
        let outcome = solve(&mut run, host, &job, None).await?;
        return Ok(Reply::whole(answer(&run, &job, outcome)));
    }
    let host = host.clone();
    let events = event_stream(move |sink: Sink<CodeDetails>| async move {
        sink.send(Event::Start(Box::new(Start::new(Mode::Code, Some(job.tier)))));
        let mut run = BoundedRun::new(&host, job.chain.clone(), job.retry.clone(), job.limits, Some(&sink));
        let result = solve(&mut run, &host, &job, Some(&sink)).await.map(|outcome| answer(&run, &job, outcome));
        sink.end(result.map_err(Failure::from));
    });
    Ok(Reply::Stream(Streamed { head: Head::default(), events }))
}

/// What the rounds produced.
#[derive(Default)]
struct Outcome {
    code: Option<CodeBlock>,
    runs: Vec<Round>,
    /// The model's explanation, when it wrote one.
    explanation: Option<ChatResponse>,
    /// The message when the model did not explain (no code, sandbox error, a limit).
    text: String,
}

fn answer<H: Host>(run: &BoundedRun<'_, H, CodeDetails>, job: &CodeJob, outcome: Outcome) -> Answer<CodeDetails> {
    let answered = run.answered();
    let response = outcome.explanation.unwrap_or(ChatResponse {
        text: outcome.text,
        thinking: None,
        thinking_signature: None,
        model: answered.model.clone(),
        finish_reason: FinishReason::Stop,
        usage: run.usage(),
        tool_calls: Vec::new(),
    });
    let details = CodeDetails {
        language: outcome.code.as_ref().map_or(job.language, |c| c.language),
        code: outcome.code.map(|c| c.code),
        runs: outcome.runs,
        run: run.report(),
    };
    let mut answer = Answer::new(Mode::Code, answered, response, details);
    answer.response.usage = run.usage();
    answer.cost_usd = run.cost_usd();
    answer
}

/// The whole flow. Limits end it with what it has; a failed model call is the error.
async fn solve<H: Host>(
    run: &mut BoundedRun<'_, H, CodeDetails>,
    host: &H,
    job: &CodeJob,
    sink: Option<&Sink<CodeDetails>>,
) -> Result<Outcome, Stop> {
    let mut outcome = Outcome::default();
    let result = match rounds(run, host, job, sink, &mut outcome).await {
        Ok(Some(text)) => Ok(text),
        Ok(None) => run.write(&prompts::explain(job, &outcome)).await.map(|answer| {
            outcome.explanation = Some(answer);
            String::new()
        }),
        Err(stop) => Err(stop),
    };
    match result {
        Ok(_) if outcome.explanation.is_some() => {}
        Ok(text) => say(&mut outcome, sink, text),
        Err(Stop::Limit(hit)) => {
            let done = if outcome.runs.is_empty() { "No program was run" } else { "The last run's result is attached" };
            say(&mut outcome, sink, format!("The code run stopped early: {}. {done}.", hit.describe()));
        }
        Err(stop) => return Err(stop),
    }
    Ok(outcome)
}

/// A message the platform writes itself, streamed as one delta.
fn say(outcome: &mut Outcome, sink: Option<&Sink<CodeDetails>>, text: String) {
    if let Some(sink) = sink {
        sink.delta(text.clone());
    }
    outcome.text = text;
}

/// Write, run, and fix while rounds remain. `Some(message)` when the answer is the platform's
/// own (no code, sandbox error); `None` when the model should explain the result.
async fn rounds<H: Host>(
    run: &mut BoundedRun<'_, H, CodeDetails>,
    host: &H,
    job: &CodeJob,
    sink: Option<&Sink<CodeDetails>>,
    outcome: &mut Outcome,
) -> Result<Option<String>, Stop> {
    let mut request = prompts::write(job);
    let mut attempt = 1;
    loop {
        let name = if attempt == 1 { "write_code" } else { "fix_code" };
        let Some(code) = write_code(run, job, name, &request).await? else {
            let tag = job.language.piston_name();
            return Ok(Some(format!(
                "No code was produced: the model's answer had no fenced `{tag}` code block, so nothing was run."
            )));
        };
        if let Some(sink) = sink {
            sink.progress(CodeProgress::Code { attempt, code: code.clone() });
        }
        outcome.code = Some(code.clone());
        let (execution, sandbox_error) = match execute(run, host, job, &code).await? {
            Ok(execution) => (Some(execution), None),
            Err(failure) => (None, Some(failure)),
        };
        if let Some(sink) = sink {
            let (execution, sandbox_error) = (execution.clone(), sandbox_error.clone());
            sink.progress(CodeProgress::Ran { attempt, execution, sandbox_error });
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
            attempt = attempt.saturating_add(1);
            continue;
        }
        outcome.runs.push(round);
        return Ok(None);
    }
}

/// A model step that should answer with a program; an answer without one is asked once more.
async fn write_code<H: Host>(
    run: &mut BoundedRun<'_, H, CodeDetails>,
    job: &CodeJob,
    name: &str,
    request: &ChatRequest,
) -> Result<Option<CodeBlock>, Stop> {
    let answer = run.think(name, request).await?;
    if let Some(code) = program(job, &answer.text) {
        return Ok(Some(code));
    }
    let again = prompts::again(job, request, &answer.text);
    let answer = run.think(name, &again).await?;
    Ok(program(job, &answer.text))
}

/// The program in `text`, if it is in the language asked for.
fn program(job: &CodeJob, text: &str) -> Option<CodeBlock> {
    extract_code(text, Some(job.language)).filter(|c| c.language == job.language)
}

/// One sandbox run as a step.
async fn execute<H: Host>(
    run: &mut BoundedRun<'_, H, CodeDetails>,
    host: &H,
    job: &CodeJob,
    code: &CodeBlock,
) -> Result<Result<Execution, SandboxFailure>, Stop> {
    let mut request = ExecutionRequest::new(code.language, code.code.clone());
    request.stdin.clone_from(&job.stdin);
    request.run_timeout_ms = job.run_timeout_ms;
    let input = StepData::Program { language: code.language, bytes: code.code.len(), stdin_bytes: job.stdin.len() };
    let summary = |e: &Execution| StepData::Ran {
        status: e.status.clone(),
        exit_code: e.exit_code,
        stdout_bytes: e.stdout.len(),
    };
    run.act("sandbox", input, sandbox::run(host, &job.sandbox, &request), summary).await
}

/// The user's last message: the task.
fn task(request: &ChatRequest) -> &str {
    last_user_text(request)
}

/// The request with other messages, keeping the caller's sampling settings.
fn with_messages(request: &ChatRequest, messages: Vec<Message>) -> ChatRequest {
    ChatRequest { messages, ..request.clone() }
}
