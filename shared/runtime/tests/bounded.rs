//! The bounded run (the System 2 loop): steps are recorded and every limit stops the loop.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use opencode_core::model::{ChatRequest, Message};
use opencode_runtime::agent::AgentDetails;
use opencode_runtime::bounded::{BoundedRun, LimitHit, Limits, Step, StepData, Stop};
use opencode_runtime::config::Config;
use opencode_runtime::Body;
use opencode_testkit::TestHost;
use serde_json::json;

fn request() -> ChatRequest {
    ChatRequest { messages: vec![Message::user("go")], ..ChatRequest::default() }
}

fn host() -> TestHost {
    let answer = json!({"id":"c","object":"chat.completion","created":1,"model":"gpt-x",
        "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})
    .to_string();
    TestHost::new()
        .with_var("OPENAI_API_KEY", "ko")
        .with_var("OPENAI_BASE_URL", "http://up/v1")
        .with_var("PROVIDER_ORDER", "openai")
        .with_var("ATTEMPT_TIMEOUT_MS", "1000")
        .with_upstream(move |_| {
            let answer = answer.clone();
            async move { Ok(http::Response::new(Body::from(answer))) }
        })
}

fn run(host: &TestHost, limits: Limits) -> BoundedRun<'static, TestHost, AgentDetails> {
    let config = Config::from_host(host).unwrap();
    BoundedRun::new(host, config.chain.clone(), config.retry.clone(), limits, None)
}

fn query() -> StepData {
    StepData::Query { query: "x".into() }
}

#[tokio::test(start_paused = true)]
async fn steps_are_recorded_until_the_step_limit() {
    let host = host();
    let mut run = run(&host, Limits { max_steps: 3, ..Limits::default() });
    run.think("plan", &request()).await.unwrap();
    let tool = run.act("search", query(), async { Ok::<_, String>(vec![1, 2]) }, |v| StepData::Hits { hits: v.len() });
    assert_eq!(tool.await.unwrap(), Ok(vec![1, 2]));
    let failed = run.act("sandbox", query(), async { Err::<u8, _>("exit 1") }, |_| StepData::Hits { hits: 0 });
    assert_eq!(failed.await.unwrap(), Err("exit 1"), "a tool's failure is its result");
    assert_eq!(run.think("write", &request()).await, Err(Stop::Limit(LimitHit::Steps)));
    let report = run.report();
    assert_eq!(report.steps.len(), 3);
    assert!(matches!(&report.steps[0], Step::Model(step) if step.provider == "openai"), "{:?}", report.steps[0]);
    assert!(matches!(&report.steps[1], Step::Tool(step) if step.outcome == Ok(StepData::Hits { hits: 2 })));
    assert!(matches!(&report.steps[2], Step::Tool(step) if step.outcome.is_err()));
    assert_eq!(report.stopped, Some(LimitHit::Steps));
    assert_eq!(run.usage().total_tokens(), 5);
}

#[tokio::test(start_paused = true)]
async fn token_and_time_limits_stop_the_loop() {
    let host = host();
    let mut tokens = run(&host, Limits { max_tokens: 6, ..Limits::default() });
    tokens.think("a", &request()).await.unwrap();
    tokens.think("b", &request()).await.unwrap();
    assert_eq!(tokens.think("c", &request()).await, Err(Stop::Limit(LimitHit::Tokens)));

    let mut time = run(&host, Limits { max_time_ms: 1_000, ..Limits::default() });
    let slow = async {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        Ok::<_, String>(())
    };
    assert_eq!(time.act("sleep", query(), slow, |_| query()).await, Err(Stop::Limit(LimitHit::Time)));
    assert_eq!(time.report().stopped, Some(LimitHit::Time));
}
