//! The Piston v2 API as clients see it: the answer's shape, stdin and args reaching the
//! program, several files, the runtimes list, `{"message"}` errors, the optional token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use serde_json::{json, Value};

#[tokio::test]
async fn stdin_and_args_reach_python_and_javascript() {
    let sandbox = common::start();
    let extra = json!({"stdin": "line one\nline two", "args": ["a", "b c", "--flag"]});
    let py = "import sys\nprint(sys.argv[1:], sys.stdin.read().splitlines())";
    let run = common::run(sandbox.addr(), "py", py, extra.clone()).await;
    assert_eq!(run["stdout"], "['a', 'b c', '--flag'] ['line one', 'line two']\n", "{run}");
    let js = "const lines = require('fs').readFileSync(0, 'utf8').split('\\n').filter(Boolean);\nconsole.log(JSON.stringify([process.argv.slice(2), lines]))";
    let run = common::run(sandbox.addr(), "node-js", js, extra).await;
    assert_eq!(run["stdout"], "[[\"a\",\"b c\",\"--flag\"],[\"line one\",\"line two\"]]\n", "{run}");
}

#[tokio::test]
async fn the_answer_has_pistons_shape() {
    let sandbox = common::start();
    let answer = common::execute(
        sandbox.addr(),
        "python3",
        "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)\nsys.exit(3)",
        json!({"version": "3"}),
    )
    .await;
    assert_eq!(answer["language"], "python");
    assert!(answer["version"].as_str().unwrap().starts_with("3."));
    let run = &answer["run"];
    let keys: Vec<&str> = run.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["code", "cpu_time", "memory", "message", "output", "signal", "status", "stderr", "stdout", "wall_time"]
    );
    assert_eq!(run["stdout"], "out\n");
    assert_eq!(run["stderr"], "err\n");
    assert_eq!(run["output"], "out\nerr\n");
    assert_eq!((run["code"].clone(), run["signal"].clone()), (json!(3), Value::Null));
    assert_eq!((run["status"].clone(), run["message"].clone()), (json!("RE"), json!("Exited with error status 3")));
    let ok = common::run(sandbox.addr(), "javascript", "console.log(1 + 1)", json!({})).await;
    assert_eq!((ok["stdout"].clone(), ok["code"].clone(), ok["status"].clone()), (json!("2\n"), json!(0), Value::Null));
    let killed =
        common::run(sandbox.addr(), "python", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", json!({}))
            .await;
    assert_eq!(
        (killed["status"].clone(), killed["signal"].clone(), killed["code"].clone()),
        (json!("SG"), json!("SIGSEGV"), Value::Null)
    );
}

#[tokio::test]
async fn the_first_file_runs_and_the_others_sit_beside_it() {
    let sandbox = common::start();
    let body = json!({
        "language": "python", "version": "*",
        "files": [
            {"name": "main.py", "content": "import helper\nprint(helper.greet(), open('data/n.bin', 'rb').read())"},
            {"name": "helper.py", "content": "def greet():\n    return 'hi'"},
            {"name": "data/n.bin", "content": "AAEC", "encoding": "base64"},
        ],
    });
    let (status, answer) = common::send(sandbox.addr(), "POST", "/api/v2/execute", &[], &body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["run"]["stdout"], "hi b'\\x00\\x01\\x02'\n", "{answer}");
}

#[tokio::test]
async fn runtimes_lists_what_runs_here() {
    let sandbox = common::start();
    let (status, list) = common::send(sandbox.addr(), "GET", "/api/v2/runtimes", &[], "").await;
    assert_eq!(status, 200);
    let languages: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["language"].as_str().unwrap()).collect();
    assert_eq!(languages, ["python", "javascript"]);
    assert!(list[0]["aliases"].as_array().unwrap().contains(&json!("py")));
    assert_eq!(list[1]["runtime"], "node");
    assert!(list[1]["aliases"].as_array().unwrap().contains(&json!("js")));
    // Every version listed is the one that answers.
    for runtime in list.as_array().unwrap() {
        let answer = common::execute(
            sandbox.addr(),
            runtime["language"].as_str().unwrap(),
            "",
            json!({"version": runtime["version"]}),
        )
        .await;
        assert_eq!(answer["version"], runtime["version"]);
    }
}

#[tokio::test]
async fn bad_requests_get_400_with_pistons_message() {
    let sandbox = common::start();
    let addr = sandbox.addr();
    for (body, message) in [
        ("{not json", "request body is not valid JSON"),
        ("{}", "language is required as a string"),
        (r#"{"language": "python", "version": "*"}"#, "files is required as an array"),
        (r#"{"language": "cobol", "version": "*", "files": [{"content": ""}]}"#, "cobol-* runtime is unknown"),
        (
            r#"{"language": "python", "version": "*", "files": [{"content": ""}], "run_timeout": 60000}"#,
            "run_timeout cannot exceed the configured limit of 20000",
        ),
        (
            r#"{"language": "python", "version": "*", "files": [{"name": "../../etc/x", "content": ""}]}"#,
            "tries to escape parent directory",
        ),
    ] {
        let (status, answer) = common::send(addr, "POST", "/api/v2/execute", &[], body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(message), "{body}: {answer}");
    }
    let (status, answer) = common::send(addr, "GET", "/api/v2/execute", &[], "").await;
    assert_eq!((status, answer["message"].is_string()), (405, true));
    let (status, answer) = common::send(addr, "GET", "/api/v2/nope", &[], "").await;
    assert_eq!((status, answer["message"].is_string()), (404, true));
    let huge =
        format!(r#"{{"language": "python", "version": "*", "files": [{{"content": "{}"}}]}}"#, "x".repeat(3 << 20));
    let (status, _) = common::send(addr, "POST", "/api/v2/execute", &[], &huge).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn with_a_token_requests_need_the_bearer_header() {
    let options = sandbox::Options { token: Some("s3cret-token".into()), ..Default::default() };
    let sandbox = sandbox::start_with("127.0.0.1:0", options).unwrap();
    let addr = sandbox.addr();
    let body = r#"{"language": "python", "version": "*", "files": [{"content": "print(1)"}]}"#;
    for headers in [&[][..], &[("authorization", "Bearer wrong-token!")], &[("authorization", "s3cret-token")]] {
        let (status, answer) = common::send(addr, "POST", "/api/v2/execute", headers, body).await;
        assert_eq!(status, 401, "{headers:?}");
        assert!(!answer["message"].as_str().unwrap().contains("s3cret"));
        let (status, _) = common::send(addr, "GET", "/api/v2/runtimes", headers, "").await;
        assert_eq!(status, 401);
    }
    let (status, answer) =
        common::send(addr, "POST", "/api/v2/execute", &[("authorization", "Bearer s3cret-token")], body).await;
    assert_eq!((status, answer["run"]["stdout"].clone()), (200, json!("1\n")));
}

#[tokio::test]
async fn requests_beyond_the_runs_and_the_queue_get_503_with_retry_after() {
    let limits = sandbox::Limits { max_concurrent_runs: 1, max_queued_runs: 1, ..Default::default() };
    let sandbox = sandbox::start_with("127.0.0.1:0", sandbox::Options { limits, ..Default::default() }).unwrap();
    // One runs, one waits for it, the third is refused at once.
    let answers = common::slow_runs_at_once(sandbox.addr(), 3).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(status, _, _)| *status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 503], "{answers:?}");
    for (status, headers, answer) in &answers {
        if *status == 200 {
            assert_eq!(answer["run"]["stdout"], "done\n", "{answer}");
        } else {
            assert!(answer["message"].as_str().unwrap().contains("busy"), "{answer}");
            let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1, "{headers:?}");
        }
    }
    // Refused and finished requests leave the queue: the next one runs.
    let run = common::run(sandbox.addr(), "python", "print(1)", json!({})).await;
    assert_eq!(run["stdout"], "1\n", "{run}");
}

/// How many files of the run staging `d/` the service has written so far: it stages under
/// `$TMPDIR/opencode-sandbox-<pid>-<n>/<run>/files/`.
fn staged_in_d() -> Option<usize> {
    let prefix = format!("opencode-sandbox-{}-", std::process::id());
    let services = std::fs::read_dir(std::env::temp_dir()).ok()?.flatten();
    let runs = services.filter(|s| s.file_name().to_string_lossy().starts_with(&prefix));
    let runs = runs.filter_map(|s| std::fs::read_dir(s.path()).ok()).flatten().flatten();
    runs.filter_map(|run| std::fs::read_dir(run.path().join("files/d")).ok()).map(Iterator::count).next()
}

#[tokio::test]
async fn staging_many_files_does_not_hold_up_other_requests() {
    let sandbox = common::start();
    let addr = sandbox.addr();
    // Ten thousand files to write: a second's work or more here.
    const FILES: usize = 10_000;
    let mut files = vec![json!({"name": "main.py", "content": "import os\nprint(len(os.listdir('d')))"})];
    files.extend((0..FILES).map(|i| json!({"name": format!("d/{i}"), "content": ""})));
    let body = json!({"language": "python", "version": "*", "files": files, "run_timeout": 20000}).to_string();
    let staging = tokio::spawn(async move { common::send(addr, "POST", "/api/v2/execute", &[], &body).await });
    let started = std::time::Instant::now();
    while staged_in_d().is_none_or(|n| n == 0) {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "staging never started");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    // Asked while the files are being written, the runtimes list answers before they all are.
    let (status, _) = common::send(addr, "GET", "/api/v2/runtimes", &[], "").await;
    assert_eq!(status, 200);
    let staged = staged_in_d();
    assert!(staged.is_some_and(|n| n < FILES), "{staged:?} of {FILES} files were staged by the answer");
    let (status, answer) = staging.await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["run"]["stdout"], format!("{FILES}\n"), "{answer}");
}
