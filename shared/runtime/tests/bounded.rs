//! The System 2 agent runtime: steps are recorded and every limit stops the loop.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_api::agent::{Agent, LimitHit, Limits, Stop};
use opencode_core::model::{ChatRequest, Message};
use opencode_runtime::config::Config;
use opencode_runtime::Body;
use serde_json::json;

fn request() -> ChatRequest {
    ChatRequest { messages: vec![Message::user("go")], ..ChatRequest::default() }
}

fn host() -> opencode_testkit::TestHost {
    test_host().with_upstream(|_| async move { Ok(http::Response::new(Body::from(openai_ok("ok")))) })
}

#[tokio::test(start_paused = true)]
async fn steps_are_recorded_until_the_step_limit() {
    let host = host();
    let config = Config::from_host(&host).unwrap();
    let limits = Limits { max_steps: 3, ..Limits::default() };
    let mut agent = Agent::new(&host, config.chain.clone(), config.retry.clone(), limits, None);
    agent.think("plan", &request()).await.unwrap();
    let tool = agent
        .act("search", json!({"q": "x"}), async { Ok::<_, String>(vec![1, 2]) }, |v| json!(v.len()))
        .await
        .unwrap();
    assert_eq!(tool, Ok(vec![1, 2]));
    let failed = agent.act("sandbox", json!({}), async { Err::<u8, _>("exit 1") }, |_| json!(null)).await.unwrap();
    assert_eq!(failed, Err("exit 1"), "a tool's failure is its result");
    assert_eq!(agent.think("write", &request()).await, Err(Stop::Limit(LimitHit::Steps)));
    let report = agent.report();
    assert_eq!(report["steps"].as_array().unwrap().len(), 3);
    assert_eq!(report["steps"][0]["kind"], "model");
    assert_eq!(report["steps"][0]["provider"], "openai");
    assert_eq!(report["steps"][1]["result"], 2);
    assert_eq!(report["steps"][2]["ok"], false);
    assert_eq!(report["stopped"]["limit"], "steps");
    assert_eq!(agent.usage().total_tokens(), 5);
}

#[tokio::test(start_paused = true)]
async fn token_and_time_limits_stop_the_loop() {
    let host = host();
    let config = Config::from_host(&host).unwrap();
    let mut agent = Agent::new(
        &host,
        config.chain.clone(),
        config.retry.clone(),
        Limits { max_tokens: 6, ..Limits::default() },
        None,
    );
    agent.think("a", &request()).await.unwrap();
    agent.think("b", &request()).await.unwrap();
    assert_eq!(agent.think("c", &request()).await, Err(Stop::Limit(LimitHit::Tokens)));

    let mut agent = Agent::new(
        &host,
        config.chain.clone(),
        config.retry.clone(),
        Limits { max_time_ms: 1_000, ..Limits::default() },
        None,
    );
    let slow = async {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        Ok::<_, String>(())
    };
    assert_eq!(agent.act("sleep", json!({}), slow, |_| json!(null)).await, Err(Stop::Limit(LimitHit::Time)));
    assert_eq!(agent.report()["stopped"]["limit"], "time");
}
