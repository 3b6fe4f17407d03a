//! `POST /api/v2/execute`: the body checked in Piston's order and with Piston's messages
//! (`language is required as a string`, `python-9 runtime is unknown`, `run_timeout cannot
//! exceed the configured limit of 20000`, ...), then turned into a [`Job`].

use std::path::{Component, Path};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::decode;
use crate::run::Job;
use crate::runtimes::{self, Runtime};
use crate::Limits;

/// The runtime and job a request asks for, or the message of a 400 answer.
pub(crate) fn parse<'a>(body: &[u8], runtimes: &'a [Runtime], limits: &Limits) -> Result<(&'a Runtime, Job), String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let body = body.as_object().ok_or("request body must be a JSON object")?;
    let language = non_empty_string(body, "language").ok_or("language is required as a string")?;
    let version = non_empty_string(body, "version").ok_or("version is required as a string")?;
    let files = body.get("files").and_then(Value::as_array).ok_or("files is required as an array")?;
    let files = files.iter().enumerate().map(|(i, file)| parse_file(i, file)).collect::<Result<Vec<_>, _>>()?;
    let runtime = runtimes::find(runtimes, language, version)
        .ok_or_else(|| format!("{language}-{version} runtime is unknown"))?;
    let Some(program) = files.iter().find(|f| f.utf8).map(|f| f.name.clone()) else {
        return Err("files must include at least one utf8 encoded file".to_owned());
    };
    let run_timeout = constraint(body, "run_timeout", limits.max_run_timeout_ms)?;
    constraint(body, "compile_timeout", limits.max_run_timeout_ms)?;
    let run_cpu_time = constraint(body, "run_cpu_time", limits.max_run_timeout_ms)?;
    constraint(body, "compile_cpu_time", limits.max_run_timeout_ms)?;
    let run_memory = constraint(body, "run_memory_limit", limits.max_memory_bytes)?;
    constraint(body, "compile_memory_limit", limits.max_memory_bytes)?;
    let mut stdin = match body.get("stdin") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("stdin must be a string".to_owned()),
    };
    // Piston ends stdin with a newline when it does not already.
    if !stdin.ends_with('\n') {
        stdin.push('\n');
    }
    let args = match body.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("args must be an array of strings")?,
        Some(_) => return Err("args must be an array of strings".to_owned()),
    };
    let timeout_ms = run_timeout.unwrap_or(limits.run_timeout_ms);
    let job = Job {
        command: std::iter::once(program).chain(args).collect(),
        files: files.into_iter().map(|f| (f.name, f.content)).collect(),
        stdin: stdin.into_bytes(),
        timeout: Duration::from_millis(timeout_ms),
        cpu_ms: run_cpu_time.unwrap_or(timeout_ms),
        memory_bytes: run_memory.unwrap_or(limits.memory_bytes),
        max_output_bytes: limits.max_output_bytes,
        processes: limits.max_processes,
        file_bytes: limits.max_file_bytes,
        open_files: limits.max_open_files,
        tmp_bytes: limits.tmp_bytes,
        shm_bytes: limits.shm_bytes,
    };
    Ok((runtime, job))
}

struct File {
    name: String,
    content: Vec<u8>,
    utf8: bool,
}

fn parse_file(i: usize, file: &Value) -> Result<File, String> {
    let content = file
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("files[{i}].content is required as a string"))?;
    let name = match file.get("name") {
        None | Some(Value::Null) => format!("file{i}.code"),
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(_) => return Err(format!("files[{i}].name must be a non-empty string")),
    };
    let path = Path::new(&name);
    let inside = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside || name.contains('\0') || path.file_name().is_none() {
        return Err(format!("File path \"{name}\" tries to escape parent directory"));
    }
    // As Piston: an unknown encoding is taken as utf8.
    let (content, utf8) = match file.get("encoding").and_then(Value::as_str) {
        Some("base64") => (decode::base64(content), false),
        Some("hex") => (decode::hex(content), false),
        _ => (Some(content.as_bytes().to_vec()), true),
    };
    let content = content.ok_or_else(|| format!("files[{i}].content is not valid for its encoding"))?;
    Ok(File { name, content, utf8 })
}

fn non_empty_string<'b>(body: &'b Map<String, Value>, key: &str) -> Option<&'b str> {
    body.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A limit the request may lower: absent, null or 0 means the default (Piston skips falsy
/// values), -1 too (Piston's "no limit", here the default); more than `max` is refused.
fn constraint(body: &Map<String, Value>, name: &str, max: u64) -> Result<Option<u64>, String> {
    let value = match body.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(_) => return Err(format!("If specified, {name} must be a number")),
    };
    if value == 0.0 || value == -1.0 {
        return Ok(None);
    }
    if value.is_nan() {
        return Err(format!("If specified, {name} must be a number"));
    }
    if value > max as f64 {
        return Err(format!("{name} cannot exceed the configured limit of {max}"));
    }
    if value < 0.0 {
        return Err(format!("{name} must be non-negative"));
    }
    Ok(Some(value as u64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    fn runtimes() -> Vec<Runtime> {
        crate::runtimes::fixtures()
    }

    fn error(body: Value) -> String {
        let all = runtimes();
        parse(body.to_string().as_bytes(), &all, &Limits::default()).unwrap_err()
    }

    #[test]
    fn bad_bodies_get_pistons_messages() {
        let file = json!([{"content": "print(1)"}]);
        for (body, message) in [
            (json!({}), "language is required as a string"),
            (json!({"language": 3}), "language is required as a string"),
            (json!({"language": "python"}), "version is required as a string"),
            (json!({"language": "python", "version": "*"}), "files is required as an array"),
            (json!({"language": "python", "version": "*", "files": [{}]}), "files[0].content is required as a string"),
            (json!({"language": "cobol", "version": "*", "files": file}), "cobol-* runtime is unknown"),
            (json!({"language": "py", "version": "2", "files": file}), "py-2 runtime is unknown"),
            (
                json!({"language": "py", "version": "*", "files": file, "run_timeout": "1"}),
                "If specified, run_timeout must be a number",
            ),
            (
                json!({"language": "py", "version": "*", "files": file, "run_timeout": 999_999}),
                "run_timeout cannot exceed the configured limit of 20000",
            ),
            (
                json!({"language": "py", "version": "*", "files": file, "run_memory_limit": -5}),
                "run_memory_limit must be non-negative",
            ),
            (json!({"language": "py", "version": "*", "files": file, "args": [1]}), "args must be an array of strings"),
            (json!({"language": "py", "version": "*", "files": file, "stdin": 5}), "stdin must be a string"),
            (
                json!({"language": "py", "version": "*", "files": [{"name": "../x.py", "content": ""}]}),
                "File path \"../x.py\" tries to escape parent directory",
            ),
            (
                json!({"language": "py", "version": "*", "files": [{"name": "/etc/x", "content": ""}]}),
                "File path \"/etc/x\" tries to escape parent directory",
            ),
            (
                json!({"language": "py", "version": "*", "files": [{"content": "aGk=", "encoding": "base64"}]}),
                "files must include at least one utf8 encoded file",
            ),
        ] {
            assert_eq!(error(body.clone()), message, "{body}");
        }
        assert!(error(json!([])).contains("JSON object"));
    }

    #[test]
    fn a_good_body_becomes_a_job_with_defaults_and_pistons_stdin_newline() {
        let all = runtimes();
        let body = json!({
            "language": "python3", "version": "3.x",
            "files": [{"name": "main.py", "content": "print(input())"},
                      {"name": "data/x.bin", "content": "AAE=", "encoding": "base64"}],
            "stdin": "hi", "args": ["a", "b c"], "run_timeout": 1500, "run_memory_limit": -1,
        });
        let (runtime, job) = parse(body.to_string().as_bytes(), &all, &Limits::default()).unwrap();
        assert_eq!(runtime.language, "python");
        assert_eq!(job.command, ["main.py", "a", "b c"]);
        assert_eq!(job.files[1], ("data/x.bin".to_owned(), vec![0, 1]));
        assert_eq!(job.stdin, b"hi\n");
        assert_eq!(job.timeout, Duration::from_millis(1500));
        assert_eq!(job.cpu_ms, 1500);
        assert_eq!(job.memory_bytes, Limits::default().memory_bytes);
    }
}
