//! The code mode end to end in process: the core handler on the test host, whose outbound
//! HTTP really goes to the provider simulator (playing the model) and the local Piston
//! sandbox (running the programs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opencode_runtime::{Body, HostError};
use opencode_testkit::TestHost;
use serde_json::{json, Value};

/// One request on a fresh connection, the answer read whole.
async fn fetch(request: http::Request<Bytes>) -> Result<http::Response<Body>, HostError> {
    let connect = |e: &dyn std::fmt::Display| HostError::Connect(e.to_string());
    let authority = request.uri().authority().cloned().ok_or_else(|| connect(&"no authority"))?;
    let stream = tokio::net::TcpStream::connect(authority.as_str()).await.map_err(|e| connect(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| connect(&e))?;
    tokio::spawn(conn);
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(http::header::HOST, authority.as_str().parse().unwrap());
    parts.uri = parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse().unwrap();
    let response =
        sender.send_request(http::Request::from_parts(parts, Full::new(body))).await.map_err(|e| connect(&e))?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| HostError::Body(e.to_string()))?.to_bytes();
    Ok(http::Response::from_parts(parts, Body::from(bytes)))
}

struct Rig {
    host: TestHost,
    _sim: provider_sim::SimHandle,
    _sandbox: Option<sandbox::SandboxHandle>,
}

/// The simulator as OpenAI then Anthropic, and `sandbox_url` (none: a fresh local sandbox).
fn rig_with(sandbox_url: Option<String>, extra: &[(&str, &str)]) -> Rig {
    let sim = provider_sim::start("127.0.0.1:0").unwrap();
    let (sandbox, url) = match sandbox_url {
        Some(url) => (None, url),
        None => {
            let sandbox = sandbox::start("127.0.0.1:0").expect("the sandbox starts (is bubblewrap installed?)");
            let url = sandbox.url();
            (Some(sandbox), url)
        }
    };
    let mut host = test_host()
        .with_var("OPENAI_BASE_URL", &format!("{}/v1", sim.url()))
        .with_var("ANTHROPIC_BASE_URL", &sim.url())
        .with_var("ATTEMPT_TIMEOUT_MS", "10000")
        .with_var("SANDBOX_URL", &url)
        .with_upstream(fetch);
    for (name, value) in extra {
        host = host.with_var(name, value);
    }
    Rig { host, _sim: sim, _sandbox: sandbox }
}

fn rig() -> Rig {
    rig_with(None, &[])
}

fn task(text: &str, extra: Value) -> Value {
    let mut body = json!({"messages": [{"role": "user", "content": text}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

async fn code(host: &TestHost, body: Value) -> (u16, Value) {
    let mut request = chat(body);
    *request.uri_mut() = "/v1/code".parse().unwrap();
    let response = opencode_api::serve_named("code", host.clone(), request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect(1 << 22).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn step_names(answer: &Value) -> Vec<String> {
    answer["agent"]["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_program_runs_and_its_output_is_explained() {
    let rig = rig();
    let (status, answer) = code(&rig.host, task("add them\n```python\nprint(2+3)\n```", json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["object"], "code.answer");
    assert_eq!(answer["mode"], "code");
    assert_eq!(answer["language"], "python");
    assert_eq!(answer["code"], "print(2+3)\n");
    assert_eq!(answer["succeeded"], true);
    assert_eq!(answer["execution"]["stdout"], "5\n");
    assert_eq!(answer["execution"]["stderr"], "");
    assert_eq!(answer["execution"]["exit_code"], 0);
    assert_eq!(answer["execution"]["status"], Value::Null);
    assert_eq!(answer["sandbox_error"], Value::Null);
    assert_eq!(answer["runs"].as_array().unwrap().len(), 1);
    assert_eq!(step_names(&answer), ["write_code", "sandbox", "write"]);
    // The explanation is the model's (the simulator echoes the explain prompt's task).
    let explanation = answer["message"]["content"].as_str().unwrap();
    assert!(explanation.starts_with("Hello from openai"), "{explanation}");
    let steps = answer["agent"]["steps"].as_array().unwrap();
    let step_tokens: u64 = steps.iter().filter_map(|s| s["usage"]["total_tokens"].as_u64()).sum();
    assert_eq!(answer["usage"]["total_tokens"], step_tokens, "usage is every model step's");
}

#[tokio::test]
async fn javascript_and_stdin_reach_the_sandbox() {
    let rig = rig();
    let program =
        "```js\nlet s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(s.trim().toUpperCase()));\n```";
    let (status, answer) = code(&rig.host, task(program, json!({"language": "javascript", "stdin": "abc\n"}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["language"], "javascript");
    assert_eq!(answer["execution"]["stdout"], "ABC\n");
}

#[tokio::test]
async fn a_failing_program_goes_back_to_the_model_and_the_fix_runs() {
    let rig = rig();
    let text = "```python\nimport sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n```\n```python fix\nprint('fixed')\n```";
    let (status, answer) = code(&rig.host, task(text, json!({"max_attempts": 2}))).await;
    assert_eq!(status, 200, "{answer}");
    let runs = answer["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["execution"]["exit_code"], 3);
    assert_eq!(runs[0]["execution"]["stderr"], "bad input\n");
    assert_eq!(runs[0]["execution"]["succeeded"], false);
    assert_eq!(runs[1]["code"], "print('fixed')\n");
    assert_eq!(answer["code"], "print('fixed')\n");
    assert_eq!(answer["execution"]["stdout"], "fixed\n");
    assert_eq!(answer["succeeded"], true);
    assert_eq!(step_names(&answer), ["write_code", "sandbox", "fix_code", "sandbox", "write"]);
}

#[tokio::test]
async fn a_program_that_keeps_failing_is_reported_with_its_stderr_and_exit_code() {
    let rig = rig();
    let text = "```python\nraise ValueError('nope')\n```";
    let (status, answer) = code(&rig.host, task(text, json!({"max_attempts": 2}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["runs"].as_array().unwrap().len(), 2, "the fix round returned the same program");
    assert_eq!(answer["succeeded"], false);
    assert_eq!(answer["execution"]["exit_code"], 1);
    assert_eq!(answer["execution"]["status"], "RE");
    assert!(answer["execution"]["stderr"].as_str().unwrap().contains("ValueError: nope"), "{answer}");
    assert!(answer["message"]["content"].as_str().unwrap().starts_with("Hello from"), "the model explains");
}

#[tokio::test]
async fn an_endless_program_times_out_as_a_result() {
    let rig = rig();
    let text = "```python\nwhile True:\n    pass\n```";
    let (status, answer) = code(&rig.host, task(text, json!({"max_attempts": 1, "run_timeout_ms": 500}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["execution"]["status"], "TO");
    assert_eq!(answer["execution"]["timed_out"], true);
    assert_eq!(answer["succeeded"], false);
    assert_eq!(answer["sandbox_error"], Value::Null);
}

#[tokio::test]
async fn output_over_the_limit_is_cut_and_said() {
    let rig = rig();
    let text = "```python\nwhile True:\n    print('x' * 1000)\n```";
    let (status, answer) = code(&rig.host, task(text, json!({"max_attempts": 1}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["execution"]["status"], "OL");
    assert_eq!(answer["execution"]["output_truncated"], true);
    assert!(answer["execution"]["stdout"].as_str().unwrap().len() <= 64 * 1024);
}

#[tokio::test]
async fn a_sandbox_that_is_down_is_a_clear_result_not_a_500() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let rig = rig_with(Some(format!("http://{closed}")), &[]);
    let (status, answer) = code(&rig.host, task("```python\nprint(1)\n```", json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["code"], "print(1)\n", "the program is still delivered");
    assert_eq!(answer["execution"], Value::Null);
    assert_eq!(answer["sandbox_error"]["code"], "sandbox_unreachable");
    assert_eq!(answer["succeeded"], false);
    let text = answer["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("The code could not be run: the sandbox could not be reached"), "{text}");
    assert_eq!(step_names(&answer), ["write_code", "sandbox"], "no fix round, no explanation call");
}

#[tokio::test]
async fn a_wrong_sandbox_token_is_said_without_the_token() {
    let sandbox = sandbox::start_with(
        "127.0.0.1:0",
        sandbox::Options { token: Some("right-token".into()), ..Default::default() },
    )
    .unwrap();
    let rig = rig_with(Some(sandbox.url()), &[("SANDBOX_TOKEN", "wrong-token")]);
    let (status, answer) = code(&rig.host, task("```python\nprint(1)\n```", json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sandbox_error"]["code"], "sandbox_unauthorized");
    assert!(!answer.to_string().contains("wrong-token"));
}

#[tokio::test]
async fn without_a_sandbox_the_mode_is_not_configured() {
    let rig = rig();
    let host = rig.host.clone().with_var("SANDBOX_URL", "");
    let (status, answer) = code(&host, task("print 1", json!({}))).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "not_configured");
    assert!(answer["error"]["message"].as_str().unwrap().contains("SANDBOX_URL"), "{answer}");
    let host = rig.host.clone().with_var("SANDBOX_URL", "ftp://nope");
    assert_eq!(code(&host, task("print 1", json!({}))).await.0, 503);
}

#[tokio::test]
async fn bad_bodies_are_422() {
    let rig = rig();
    for extra in [
        json!({"language": "ruby"}),
        json!({"max_attempts": 0}),
        json!({"max_attempts": 4}),
        json!({"run_timeout_ms": 0}),
        json!({"run_timeout_ms": 600000}),
        json!({"stdin": 3}),
        json!({"languages": "python"}),
    ] {
        let (status, answer) = code(&rig.host, task("x", extra.clone())).await;
        assert_eq!(status, 422, "{extra}: {answer}");
        assert_eq!(answer["error"]["code"], "validation_failed", "{extra}: {answer}");
    }
    assert!(rig._sim.requests().is_empty(), "no model was called");
}

#[tokio::test]
async fn an_answer_without_code_is_asked_again_then_said() {
    let host = test_host()
        .with_var("SANDBOX_URL", "http://sandbox.invalid")
        .with_upstream(|_| async move { Ok(http::Response::new(Body::from(openai_ok("I would rather not.")))) });
    let (status, answer) = code(&host, task("write code", json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["code"], Value::Null);
    assert_eq!(answer["execution"], Value::Null);
    assert_eq!(step_names(&answer), ["write_code", "write_code"]);
    assert!(answer["message"]["content"].as_str().unwrap().starts_with("No code was produced"));
    assert!(host.requests().iter().all(|r| r.uri().host() != Some("sandbox.invalid")), "nothing was run");
}

#[tokio::test]
async fn the_step_limit_ends_the_run_with_what_it_has() {
    let rig = rig_with(None, &[("AGENT_MAX_STEPS", "2")]);
    let (status, answer) = code(&rig.host, task("```python\nprint(7)\n```", json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["execution"]["stdout"], "7\n");
    assert_eq!(answer["agent"]["stopped"]["limit"], "steps");
    assert!(answer["message"]["content"].as_str().unwrap().contains("step limit"), "{answer}");
}

#[tokio::test]
async fn the_stream_shows_each_step_the_code_the_run_and_the_explanation() {
    let rig = rig();
    let text = "```python\nraise SystemExit(2)\n```\n```python fix\nprint('ok')\n```";
    let (status, body) = code(&rig.host, task(text, json!({"stream": true}))).await;
    assert_eq!(status, 200);
    let body = body.as_str().unwrap();
    let events: Vec<(String, Value)> = body
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|frame| {
            let mut lines = frame.lines();
            let event = lines.next().unwrap().strip_prefix("event: ").unwrap().to_owned();
            let data = serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
            (event, data)
        })
        .collect();
    let mut names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    names.dedup();
    assert_eq!(
        names,
        ["start", "step", "code", "step", "execution", "step", "code", "step", "execution", "delta", "usage", "done"],
        "{body}"
    );
    assert_eq!(events[0].1["mode"], "code");
    assert_eq!(events[0].1["tier"], "system2");
    let executions: Vec<&Value> = events.iter().filter(|(e, _)| e == "execution").map(|(_, d)| d).collect();
    assert_eq!(executions[0]["execution"]["exit_code"], 2);
    assert_eq!(executions[1]["execution"]["stdout"], "ok\n");
    let deltas: String =
        events.iter().filter(|(e, _)| e == "delta").map(|(_, d)| d["text"].as_str().unwrap()).collect();
    assert!(deltas.starts_with("Hello from openai"), "{deltas}");
    let done = &events.last().unwrap().1;
    assert_eq!(done["execution"]["stdout"], "ok\n");
    assert_eq!(done["message"], Value::Null, "the text came as deltas");
    assert_eq!(done["usage"], events[events.len() - 2].1);
}
