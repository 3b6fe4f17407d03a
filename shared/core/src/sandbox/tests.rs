#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::{json, Value};

use super::*;

fn config(url: &str, token: Option<&str>) -> SandboxConfig {
    SandboxConfig { url: url.to_owned(), token: token.map(str::to_owned) }
}

fn body_json(request: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(request.body()).unwrap()
}

#[test]
fn the_request_is_pistons_execute_body() {
    let mut request = ExecutionRequest::new(Language::JavaScript, "console.log(process.argv)");
    request.stdin = "in".into();
    request.args = vec!["1".into(), "2".into()];
    request.run_timeout_ms = Some(3000);
    request.run_memory_limit = Some(128 << 20);
    let http = build_request(&config("http://127.0.0.1:2000", None), &request).unwrap();
    assert_eq!(http.method(), http::Method::POST);
    assert_eq!(http.uri(), "http://127.0.0.1:2000/api/v2/execute");
    assert_eq!(http.headers()["content-type"], "application/json");
    assert!(http.headers().get("authorization").is_none());
    assert_eq!(
        body_json(&http),
        json!({
            "language": "javascript", "version": "*",
            "files": [{"name": "main.js", "content": "console.log(process.argv)"}],
            "stdin": "in", "args": ["1", "2"],
            "run_timeout": 3000, "run_memory_limit": 134217728,
        })
    );
    // Unset limits are left to the sandbox, and a file may go without a name.
    let mut bare = ExecutionRequest::new(Language::Python, "print(1)");
    bare.files[0].name = None;
    let body = body_json(&build_request(&config("http://h", None), &bare).unwrap());
    assert_eq!(body["files"], json!([{"content": "print(1)"}]));
    assert!(body.get("run_timeout").is_none() && body.get("run_memory_limit").is_none());
}

#[test]
fn base_urls_are_normalized_to_the_endpoint() {
    for base in [
        "http://piston:2000",
        "http://piston:2000/",
        "http://piston:2000/api/v2",
        "http://piston:2000/api/v2/",
        "http://piston:2000/api/v2/execute",
        " http://piston:2000 ",
    ] {
        assert_eq!(endpoint(base, "execute").unwrap(), "http://piston:2000/api/v2/execute", "{base}");
    }
    assert_eq!(
        endpoint("https://emkc.org/api/v2/piston", "runtimes").unwrap(),
        "https://emkc.org/api/v2/piston/runtimes"
    );
    assert_eq!(endpoint("https://sb.example/proxy", "execute").unwrap(), "https://sb.example/proxy/api/v2/execute");
    for bad in ["", "piston:2000", "ftp://piston", "http://", "not a url"] {
        assert_eq!(endpoint(bad, "execute"), Err(SandboxError::InvalidUrl), "{bad}");
    }
}

#[test]
fn the_token_goes_as_a_sensitive_bearer_header() {
    let request = ExecutionRequest::new(Language::Python, "print(1)");
    let http = build_request(&config("http://h", Some("s3cret")), &request).unwrap();
    let header = &http.headers()["authorization"];
    assert_eq!(header, "Bearer s3cret");
    assert!(header.is_sensitive());
    assert!(!format!("{http:?}").contains("s3cret"));
    assert!(!format!("{:?}", config("http://h", Some("s3cret"))).contains("s3cret"));
    let runtimes = runtimes_request(&config("http://h/", Some("s3cret"))).unwrap();
    assert_eq!(
        (runtimes.method(), runtimes.uri().to_string()),
        (&http::Method::GET, "http://h/api/v2/runtimes".to_owned())
    );
    assert_eq!(runtimes.headers()["authorization"], "Bearer s3cret");
    assert_eq!(
        build_request(&config("http://h", Some("bad\ntoken")), &request).unwrap_err(),
        SandboxError::InvalidToken
    );
}

#[test]
fn the_documented_answer_parses() {
    // docs/api-v2.md's example (a Piston without the isolate statistics).
    let body = br#"{
      "run": {
        "stdout": "[\n  '/piston/packages/node/15.10.0/bin/node',\n  '/piston/jobs/e87afa0d-6c2a-40b8-a824-ffb9c5c6cb64/my_cool_code.js',\n  '1',\n  '2',\n  '3'\n]\n",
        "stderr": "",
        "code": 0,
        "signal": null,
        "output": "[\n  '/piston/packages/node/15.10.0/bin/node',\n  '/piston/jobs/e87afa0d-6c2a-40b8-a824-ffb9c5c6cb64/my_cool_code.js',\n  '1',\n  '2',\n  '3'\n]\n"
      },
      "language": "javascript",
      "version": "15.10.0"
    }"#;
    let run = parse_response(200, body).unwrap();
    assert_eq!((run.language.as_str(), run.version.as_str()), ("javascript", "15.10.0"));
    assert!(run.stdout.ends_with("'3'\n]\n"));
    assert_eq!((run.exit_code, run.signal.as_deref(), run.status.as_deref()), (Some(0), None, None));
    assert!(run.succeeded() && !run.timed_out() && !run.output_truncated());
}

#[test]
fn statuses_of_the_isolate_piston_parse() {
    let timed_out = br#"{"language": "python", "version": "3.12.0", "run": {
        "stdout": "", "stderr": "", "output": "", "code": null, "signal": "SIGKILL",
        "message": "Time limit exceeded", "status": "TO", "cpu_time": 3012, "wall_time": 3105.2, "memory": 8192000}}"#;
    let run = parse_response(200, timed_out).unwrap();
    assert!(run.timed_out() && !run.succeeded());
    assert_eq!((run.exit_code, run.signal.as_deref()), (None, Some("SIGKILL")));
    assert_eq!(run.message.as_deref(), Some("Time limit exceeded"));
    assert_eq!((run.cpu_time_ms, run.wall_time_ms, run.memory_bytes), (Some(3012.0), Some(3105.2), Some(8_192_000)));

    let flood = br#"{"language": "python", "version": "3.12.0", "run": {
        "stdout": "xxxx", "stderr": "", "output": "xxxx", "code": null, "signal": "SIGKILL",
        "message": "stdout length exceeded", "status": "OL", "cpu_time": null, "wall_time": null, "memory": null}}"#;
    let run = parse_response(200, flood).unwrap();
    assert!(run.output_truncated() && !run.timed_out());

    let failed = br#"{"language": "python", "version": "3.12.0", "run": {
        "stdout": "", "stderr": "Traceback ...\nZeroDivisionError: division by zero\n", "output": "Traceback ...\nZeroDivisionError: division by zero\n",
        "code": 1, "signal": null, "message": "Exited with error status 1", "status": "RE"}}"#;
    let run = parse_response(200, failed).unwrap();
    assert_eq!((run.exit_code, run.status.as_deref()), (Some(1), Some("RE")));
    assert!(run.stderr.contains("ZeroDivisionError"));
}

#[test]
fn a_failed_compile_stage_is_the_result() {
    let body = br#"{"language": "c", "version": "10.2.0",
        "compile": {"stdout": "", "stderr": "main.c:1: error", "output": "main.c:1: error", "code": 1, "signal": null}}"#;
    let run = parse_response(200, body).unwrap();
    assert!(run.compile_failed && !run.succeeded());
    assert_eq!(run.stderr, "main.c:1: error");
}

#[test]
fn pistons_error_bodies_become_clear_errors() {
    assert_eq!(
        parse_response(400, br#"{"message": "python-9.9 runtime is unknown"}"#).unwrap_err(),
        SandboxError::Rejected { status: 400, message: "python-9.9 runtime is unknown".into() }
    );
    let limit =
        parse_response(400, br#"{"message": "run_timeout cannot exceed the configured limit of 3000"}"#).unwrap_err();
    assert!(limit.to_string().contains("run_timeout cannot exceed the configured limit of 3000"), "{limit}");
    // A proxy's page is not echoed.
    assert_eq!(
        parse_response(502, b"<html>Bad Gateway</html>").unwrap_err(),
        SandboxError::Failed { status: 502, message: "no message".into() }
    );
    assert_eq!(
        parse_response(401, br#"{"message": "missing or wrong token"}"#).unwrap_err(),
        SandboxError::Rejected { status: 401, message: "missing or wrong token".into() }
    );
    let long = format!(r#"{{"message": "{}"}}"#, "m".repeat(5000));
    let SandboxError::Failed { message, .. } = parse_response(500, long.as_bytes()).unwrap_err() else { panic!() };
    assert_eq!(message.len(), 300);
    assert!(matches!(parse_response(200, b"{}"), Err(SandboxError::Malformed(_))));
    assert!(matches!(parse_response(200, b"not json"), Err(SandboxError::Malformed(_))));
}

#[test]
fn the_documented_runtimes_list_parses() {
    let body = br#"[
      {"language": "bash", "version": "5.1.0", "aliases": ["sh"]},
      {"language": "javascript", "version": "15.10.0", "aliases": ["node-javascript", "node-js", "javascript", "js"], "runtime": "node"}
    ]"#;
    let list = parse_runtimes(200, body).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].runtime.as_deref(), Some("node"));
    assert!(list[0].runtime.is_none());
    assert!(matches!(parse_runtimes(401, b"{}"), Err(SandboxError::Rejected { status: 401, .. })));
}

#[test]
fn the_fetch_timeout_covers_the_run() {
    let mut request = ExecutionRequest::new(Language::Python, "");
    assert_eq!(fetch_timeout_ms(&request), DEFAULT_RUN_TIMEOUT_MS + FETCH_MARGIN_MS);
    request.run_timeout_ms = Some(5000);
    assert_eq!(fetch_timeout_ms(&request), 5000 + FETCH_MARGIN_MS);
}

#[test]
fn language_aliases() {
    for alias in ["python", "Python", "py", "python3", "py3"] {
        assert_eq!(Language::from_alias(alias), Some(Language::Python), "{alias}");
    }
    for alias in ["javascript", "JS", "node", "nodejs", "node-js", "mjs"] {
        assert_eq!(Language::from_alias(alias), Some(Language::JavaScript), "{alias}");
    }
    for other in ["", "bash", "typescript", "json", "pycon"] {
        assert_eq!(Language::from_alias(other), None, "{other}");
    }
}

#[test]
fn the_first_runnable_block_is_extracted() {
    let answer = "Here is the plan:\n\n```bash\npip install nothing\n```\n\n```python\nimport sys\nprint(sum(map(int, sys.argv[1:])))\n```\n\nAnd in JS:\n```js\nconsole.log(1)\n```\n";
    let block = extract_code(answer, None).unwrap();
    assert_eq!(block.language, Language::Python);
    assert_eq!(block.code, "import sys\nprint(sum(map(int, sys.argv[1:])))\n");

    let js = extract_code("~~~ javascript title=\"x\"\nconst a = '```';\nconsole.log(a)\n~~~", None).unwrap();
    assert_eq!((js.language, js.code.as_str()), (Language::JavaScript, "const a = '```';\nconsole.log(a)\n"));

    let longer = extract_code("````py\n```\nnot the end\n````\n", None).unwrap();
    assert_eq!(longer.code, "```\nnot the end\n");

    let indented = extract_code("1. Run this:\n   ```python\n   print('hi')\n     x = 1\n   ```\n", None).unwrap();
    assert_eq!(indented.code, "print('hi')\n  x = 1\n");

    let braces = extract_code("```{.python .numberLines}\nprint(2)\n```", None).unwrap();
    assert_eq!(braces.language, Language::Python);
}

#[test]
fn untagged_other_and_unclosed_blocks() {
    let untagged = "```\nprint(3)\n```";
    assert_eq!(extract_code(untagged, None), None);
    let block = extract_code(untagged, Some(Language::Python)).unwrap();
    assert_eq!((block.language, block.code.as_str()), (Language::Python, "print(3)\n"));
    // A tagged runnable block wins over an earlier untagged one.
    let both = "```\nprint(3)\n```\n```node\nconsole.log(4)\n```";
    assert_eq!(extract_code(both, Some(Language::Python)).unwrap().language, Language::JavaScript);
    assert_eq!(extract_code("```bash\nls\n```\n```json\n{}\n```", Some(Language::Python)), None);
    assert_eq!(extract_code("```python\nprint('cut off", None), None);
    assert_eq!(extract_code("no code at all", Some(Language::Python)), None);
    assert_eq!(extract_code("    ```python\n    indented four: not a fence\n    ```", None), None);
}

#[test]
fn config_comes_from_the_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    };
    assert_eq!(SandboxConfig::from_vars(vars(&[])), None);
    assert_eq!(SandboxConfig::from_vars(vars(&[("SANDBOX_URL", " ")])), None);
    let trimmed = SandboxConfig::from_vars(vars(&[("SANDBOX_URL", " http://127.0.0.1:2000 "), ("SANDBOX_TOKEN", "")]));
    assert_eq!(trimmed, Some(config("http://127.0.0.1:2000", None)));
    let with_token = SandboxConfig::from_vars(vars(&[("SANDBOX_URL", "http://h"), ("SANDBOX_TOKEN", "t")]));
    assert_eq!(with_token, Some(config("http://h", Some("t"))));
}
