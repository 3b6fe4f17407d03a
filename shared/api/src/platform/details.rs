//! How the platform's dialect writes each mode's details and progress events.

use serde_json::{json, Map, Value};

use opencode_core::sandbox::Execution;
use opencode_runtime::agent::AgentDetails;
use opencode_runtime::bounded::{RunReport, Step, StepData};
use opencode_runtime::knowledge::Retrieval;
use opencode_runtime::modes::code::{CodeDetails, CodeProgress, Round};
use opencode_runtime::modes::knowledge::{round, KnowledgeDetails};
use opencode_runtime::modes::research::{ResearchDetails, ResearchProgress, SearchEntry};
use opencode_runtime::modes::search::{SearchDetails, SearchProgress};
use opencode_runtime::modes::thinking::ThinkingDetails;
use opencode_runtime::sandbox::SandboxFailure;
use opencode_runtime::search::SearchOutcome;
use opencode_runtime::Body;

use super::render::{citation_json, usage_json, PlatformDetails};
use crate::error::ApiError;
use crate::web;

impl PlatformDetails for ThinkingDetails {
    fn fields(&self, _: &str, out: &mut Map<String, Value>) {
        let reasoning =
            json!({"effort": self.reasoning.effort.as_str(), "budget_tokens": self.reasoning.budget_tokens});
        out.insert("reasoning".into(), reasoning);
    }

    fn progress(progress: &Self::Progress, _: &str) -> (&'static str, Value) {
        match *progress {}
    }
}

impl PlatformDetails for SearchDetails {
    fn fields(&self, _: &str, out: &mut Map<String, Value>) {
        out.insert("search".into(), search_json(&self.search));
    }

    fn progress(progress: &SearchProgress, _: &str) -> (&'static str, Value) {
        match progress {
            SearchProgress::Searched(found) => ("search", search_json(found)),
            SearchProgress::Citations(citations) => {
                ("citations", json!({ "citations": citations.iter().map(citation_json).collect::<Vec<_>>() }))
            }
        }
    }

    fn headers(&self, response: &mut http::Response<Body>) {
        web::set_header(response, "x-search-provider", &self.search.provider);
    }
}

fn search_json(found: &SearchOutcome) -> Value {
    json!({
        "provider": found.provider,
        "query": found.query,
        "results": found.results.len(),
        "attempts": found.attempts.len(),
        "attempt_log": found.attempts,
    })
}

impl PlatformDetails for KnowledgeDetails {
    fn fields(&self, _: &str, out: &mut Map<String, Value>) {
        out.insert("found".into(), json!(self.found));
        out.insert("retrieval".into(), retrieval_json(&self.retrieval));
    }

    fn progress(retrieval: &Retrieval, _: &str) -> (&'static str, Value) {
        ("retrieve", retrieval_json(retrieval))
    }
}

pub fn retrieval_json(r: &Retrieval) -> Value {
    json!({
        "chunks": r.hits.len(),
        "top_scores": r.hits.iter().map(|h| round(h.score)).collect::<Vec<_>>(),
        "best_score": r.top_score.map(round),
        "threshold": round(r.threshold),
        "chunks_searched": r.chunks_searched,
        "truncated": r.truncated,
        "embedding": r.embedding.as_ref().map(|e| json!({
            "provider": e.provider,
            "model": e.model,
            "input_tokens": r.usage.input_tokens,
        })),
    })
}

impl PlatformDetails for CodeDetails {
    fn fields(&self, _: &str, out: &mut Map<String, Value>) {
        out.insert("language".into(), json!(self.language));
        out.insert("code".into(), json!(self.code));
        out.insert("succeeded".into(), json!(self.succeeded()));
        out.insert("execution".into(), self.execution().map_or(Value::Null, execution_json));
        out.insert("sandbox_error".into(), sandbox_error_json(self.sandbox_error()));
        out.insert("runs".into(), Value::Array(self.runs.iter().map(round_json).collect()));
        out.insert("agent".into(), run_json(&self.run));
    }

    fn progress(progress: &CodeProgress, _: &str) -> (&'static str, Value) {
        match progress {
            CodeProgress::Step(step) => ("step", step_json(step)),
            CodeProgress::Code { attempt, code } => {
                ("code", json!({"attempt": attempt, "language": code.language, "code": code.code}))
            }
            CodeProgress::Ran { attempt, execution, sandbox_error } => {
                let execution = execution.as_ref().map_or(Value::Null, execution_json);
                let sandbox_error = sandbox_error_json(sandbox_error.as_ref());
                ("execution", json!({"attempt": attempt, "execution": execution, "sandbox_error": sandbox_error}))
            }
        }
    }
}

fn round_json(round: &Round) -> Value {
    json!({
        "attempt": round.attempt,
        "language": round.code.language,
        "code": round.code.code,
        "execution": round.execution.as_ref().map_or(Value::Null, execution_json),
        "sandbox_error": sandbox_error_json(round.sandbox_error.as_ref()),
    })
}

/// A run with Piston's fields and the verdicts the platform reads off them.
pub fn execution_json(execution: &Execution) -> Value {
    let mut value = json!(execution);
    if let Some(map) = value.as_object_mut() {
        map.insert("succeeded".into(), json!(execution.succeeded()));
        map.insert("timed_out".into(), json!(execution.timed_out()));
        map.insert("output_truncated".into(), json!(execution.output_truncated()));
    }
    value
}

pub fn sandbox_error_json(failure: Option<&SandboxFailure>) -> Value {
    failure.map_or(Value::Null, |f| json!({"code": f.code, "message": f.message}))
}

impl PlatformDetails for ResearchDetails {
    fn fields(&self, request_id: &str, out: &mut Map<String, Value>) {
        out.insert("sub_questions".into(), json!(self.sub_questions));
        let searches = self.searches.iter().map(|entry| search_entry_json(entry, request_id)).collect();
        out.insert("searches".into(), Value::Array(searches));
        out.insert("agent".into(), run_json(&self.run));
    }

    fn progress(progress: &ResearchProgress, request_id: &str) -> (&'static str, Value) {
        match progress {
            ResearchProgress::Step(step) => ("step", step_json(step)),
            ResearchProgress::Plan { sub_questions } => ("plan", json!({ "sub_questions": sub_questions })),
            ResearchProgress::Searched(entry) => ("search", search_entry_json(entry, request_id)),
            ResearchProgress::Read { urls } => ("read", json!({ "sources": urls.len(), "urls": urls })),
            ResearchProgress::Write { sources } => ("write", json!({ "sources": sources })),
        }
    }
}

fn search_entry_json(entry: &SearchEntry, request_id: &str) -> Value {
    match entry {
        SearchEntry::Found { query, provider, results } => {
            json!({ "query": query, "provider": provider, "results": results })
        }
        SearchEntry::Failed { query, error } => {
            json!({ "query": query, "error": ApiError::from(error.clone()).to_json(request_id) })
        }
        SearchEntry::Skipped { query } => json!({ "query": query, "skipped": "limit reached" }),
    }
}

impl PlatformDetails for AgentDetails {
    fn fields(&self, _: &str, out: &mut Map<String, Value>) {
        out.insert("agent".into(), run_json(&self.run));
    }

    fn progress(step: &Step, _: &str) -> (&'static str, Value) {
        ("step", step_json(step))
    }
}

/// A bounded run as answers report it: `{steps, limits, elapsed_ms, stopped?}`.
fn run_json(run: &RunReport) -> Value {
    let mut report = json!({
        "steps": run.steps.iter().map(step_json).collect::<Vec<_>>(),
        "limits": run.limits,
        "elapsed_ms": run.elapsed_ms,
    });
    if let (Some(hit), Some(map)) = (run.stopped, report.as_object_mut()) {
        map.insert("stopped".into(), json!({ "limit": hit, "message": hit.describe() }));
    }
    report
}

fn step_json(step: &Step) -> Value {
    match step {
        Step::Model(step) => {
            let mut out = json!({
                "index": step.index,
                "kind": "model",
                "name": step.name,
                "provider": step.provider,
                "model": step.model,
                "ms": step.ms,
                "usage": usage_json(&step.usage, step.cost_usd),
            });
            if let (false, Some(map)) = (step.tool_calls.is_empty(), out.as_object_mut()) {
                map.insert("tool_calls".into(), json!(step.tool_calls));
            }
            out
        }
        Step::Tool(step) => {
            let (ok, key, value) = match &step.outcome {
                Ok(data) => (true, "result", step_data_json(data)),
                Err(err) => (false, "error", json!(err)),
            };
            json!({
                "index": step.index,
                "kind": "tool",
                "name": step.name,
                "input": step_data_json(&step.input),
                "ms": step.ms,
                "ok": ok,
                key: value,
            })
        }
    }
}

fn step_data_json(data: &StepData) -> Value {
    match data {
        StepData::Query { query } => json!({ "query": query }),
        StepData::Program { language, bytes, stdin_bytes } => {
            json!({ "language": language, "bytes": bytes, "stdin_bytes": stdin_bytes })
        }
        StepData::Call { tool, arguments } => json!({ "tool": tool, "arguments": arguments }),
        StepData::Found { provider, results } => json!({ "provider": provider, "results": results }),
        StepData::Hits { hits } => json!({ "hits": hits }),
        StepData::Ran { status, exit_code, stdout_bytes } => {
            json!({ "status": status, "exit_code": exit_code, "stdout_bytes": stdout_bytes })
        }
    }
}
