//! Piston v2's JSON, as its API documentation and source define it.

use serde::{Deserialize, Serialize};

use super::{Execution, ExecutionRequest, SandboxError};

#[derive(Debug, Serialize)]
pub(super) struct ExecuteBody<'a> {
    language: &'a str,
    version: &'a str,
    files: Vec<File<'a>>,
    stdin: &'a str,
    args: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    run_timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_memory_limit: Option<u64>,
}

#[derive(Debug, Serialize)]
struct File<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    content: &'a str,
}

impl<'a> From<&'a ExecutionRequest> for ExecuteBody<'a> {
    fn from(request: &'a ExecutionRequest) -> Self {
        ExecuteBody {
            language: &request.language,
            version: &request.version,
            files: request.files.iter().map(|f| File { name: f.name.as_deref(), content: &f.content }).collect(),
            stdin: &request.stdin,
            args: &request.args,
            run_timeout: request.run_timeout_ms,
            run_memory_limit: request.run_memory_limit,
        }
    }
}

/// `compile` is present only for compiled languages; `run` is missing when compiling failed.
#[derive(Debug, Deserialize)]
pub(super) struct ExecuteAnswer {
    language: String,
    version: String,
    run: Option<Stage>,
    compile: Option<Stage>,
}

/// A stage's result. Older Pistons send only stdout, stderr, output, code and signal.
#[derive(Debug, Deserialize)]
struct Stage {
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    #[serde(default)]
    output: String,
    code: Option<i32>,
    signal: Option<String>,
    status: Option<String>,
    message: Option<String>,
    cpu_time: Option<f64>,
    wall_time: Option<f64>,
    memory: Option<f64>,
}

impl ExecuteAnswer {
    pub(super) fn into_execution(self) -> Result<Execution, SandboxError> {
        let compile_failed = self.run.is_none() && self.compile.is_some();
        let stage = self
            .run
            .or(self.compile)
            .ok_or_else(|| SandboxError::Malformed("the answer has no run stage".to_owned()))?;
        Ok(Execution {
            language: self.language,
            version: self.version,
            stdout: stage.stdout,
            stderr: stage.stderr,
            output: stage.output,
            exit_code: stage.code,
            signal: stage.signal.filter(|s| !s.is_empty()),
            status: stage.status.filter(|s| !s.is_empty()),
            message: stage.message.filter(|s| !s.is_empty()),
            wall_time_ms: stage.wall_time,
            cpu_time_ms: stage.cpu_time,
            memory_bytes: stage.memory.filter(|m| *m >= 0.0).map(|m| m as u64),
            compile_failed,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    pub(super) message: Option<String>,
}
