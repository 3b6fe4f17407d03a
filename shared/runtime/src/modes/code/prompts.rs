//! What the code mode asks the model. The provider simulator recognises [`CODE_MARKER`] and
//! [`FIX_MARKER`] (see tests/provider-sim/README.md), so keep them word for word.

use super::{task, with_messages, CodeJob as Job, Outcome, Round};
use opencode_core::model::{ChatRequest, Message, Role};
use opencode_core::sandbox::{Execution, Language};

/// In every prompt that must be answered with a program.
pub const CODE_MARKER: &str = "Reply with exactly one fenced code block";
/// In the prompt of a fix round.
pub const FIX_MARKER: &str = "Fix the failing program";
/// The most of each output stream shown to the model; the answer carries all of it.
const OUTPUT_CHARS: usize = 4_000;

fn name(language: Language) -> &'static str {
    match language {
        Language::Python => "Python 3",
        Language::JavaScript => "JavaScript (Node.js)",
    }
}

fn system(language: Language, extra: &str) -> Message {
    let tag = language.piston_name();
    let content = format!(
        "You write programs that a sandbox runs for the user. {CODE_MARKER} tagged `{tag}` holding \
         a complete {} program for the user's task, then one or two sentences on how it works. \
         The program reads any input from stdin and prints its results to stdout; it has no \
         network.{extra}",
        name(language)
    );
    Message::system(content)
}

fn user(content: String) -> Message {
    Message::user(content)
}

/// The first round: the caller's conversation under the system prompt.
pub fn write(job: &Job) -> ChatRequest {
    let mut messages = vec![system(job.language, "")];
    messages.extend(job.request.messages.iter().cloned());
    with_messages(&job.request, messages)
}

/// Asks once more after an answer without a usable program.
pub fn again(job: &Job, request: &ChatRequest, answer: &str) -> ChatRequest {
    let tag = job.language.piston_name();
    let mut messages = request.messages.clone();
    messages.push(Message::assistant(answer.to_owned()));
    messages.push(user(format!(
        "Task:\n{}\n\nYour answer had no fenced code block tagged `{tag}`. {CODE_MARKER} tagged `{tag}`.",
        task(&job.request)
    )));
    with_messages(&job.request, messages)
}

/// A fix round: the task, the program that failed and how it failed, in one user message
/// after the caller's earlier messages.
pub fn fix(job: &Job, round: &Round) -> ChatRequest {
    let extra = format!(" {FIX_MARKER}: find why it failed and correct it.");
    let mut messages = vec![system(job.language, &extra)];
    let task_text = task(&job.request);
    let last_user = job.request.messages.iter().rposition(|m| m.role == Role::User);
    messages
        .extend(job.request.messages.iter().enumerate().filter(|(i, _)| Some(*i) != last_user).map(|(_, m)| m.clone()));
    let result = round.execution.as_ref().map_or_else(String::new, result);
    messages.push(user(format!(
        "Task:\n{task_text}\n\nThis program failed:\n```{}\n{}```\n\n{result}\n\n{FIX_MARKER}.",
        round.code.language.piston_name(),
        round.code.code
    )));
    with_messages(&job.request, messages)
}

/// The final step: explain what the program did.
pub fn explain(job: &Job, outcome: &Outcome) -> ChatRequest {
    let system = Message::system(
        "A program was written for the user's task and run in a sandbox. Explain briefly to \
         the user what the program does and what its run shows; if the run failed, say why. \
         Do not repeat the whole program.",
    );
    let mut messages = vec![system];
    if let (Some(code), Some(round)) = (&outcome.code, outcome.runs.last()) {
        let result = round.execution.as_ref().map_or_else(String::new, result);
        messages.push(user(format!(
            "Task:\n{}\n\nProgram ({}):\n{}\n{result}",
            task(&job.request),
            name(code.language),
            indent(&code.code)
        )));
    }
    with_messages(&job.request, messages)
}

/// A run, as the model reads it.
fn result(execution: &Execution) -> String {
    let mut verdict = match (execution.exit_code, &execution.signal) {
        (Some(code), _) => format!("Exit code: {code}."),
        (None, Some(signal)) => format!("Killed by {signal}."),
        (None, None) => "No exit code.".to_owned(),
    };
    if let Some(message) = &execution.message {
        verdict.push_str(&format!(" Sandbox: {message}."));
    }
    format!("{verdict}\nstdout:\n{}\nstderr:\n{}", indent(&cut(&execution.stdout)), indent(&cut(&execution.stderr)))
}

fn cut(text: &str) -> String {
    let mut out: String = text.chars().take(OUTPUT_CHARS).collect();
    if out.len() < text.len() {
        out.push_str("\n[... cut]");
    }
    out
}

/// Output and code indented rather than fenced, so a fence inside them cannot end a block.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
