//! Routers chosen by configuration (`ROUTER`, `ROUTER_RULES`, `ROUTER_STRONG_SHARE`,
//! `ROUTER_TENANTS`) and A/B variants (`EXPERIMENTS`): sticky per subject, on every answer
//! (`x-variant`), applied to routing and models, summed per variant in `/admin/metrics`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{TestHost, EPOCH_MS};
use serde_json::{json, Value};

fn request(path: &str, subject: &str, tenant: &str, role: &str, body: Option<&Value>) -> http::Request<Body> {
    let token = auth::issue(SECRET, subject, tenant, role, EPOCH_MS, 3600).unwrap();
    let builder = http::Request::builder()
        .method(if body.is_some() { "POST" } else { "GET" })
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()
}

/// `/v1/route` as `subject` of `tenant`: status, headers, body.
async fn route_as(host: &TestHost, subject: &str, tenant: &str, text: &str) -> (u16, http::HeaderMap, Value) {
    let body = json!({"messages": [{"role": "user", "content": text}]});
    let (status, headers, text) =
        serve(host, "gateway", request("/v1/route", subject, tenant, "member", Some(&body))).await;
    (status, headers, serde_json::from_str(&text).unwrap())
}

async fn route(host: &TestHost, text: &str) -> Value {
    let (status, _, body) = route_as(host, "u", "t", text).await;
    assert_eq!(status, 200, "{body}");
    body["routing"].clone()
}

const CODE: &str = "Write a Python function that parses ISO dates, with unit tests";

#[tokio::test(start_paused = true)]
async fn each_router_is_selectable_and_named() {
    let routing = route(&test_host(), CODE).await;
    assert_eq!(routing["router"], "learned", "the default: {routing}");
    assert!(routing["reasons"][0].as_str().unwrap().starts_with("mode code: probability"), "{routing}");
    for name in ["learned", "lexicon", "length"] {
        let routing = route(&test_host().with_var("ROUTER", name), CODE).await;
        assert_eq!(routing["router"], name, "{routing}");
        assert_eq!(routing["mode"], "code", "{name}: {routing}");
    }
    let length = route(&test_host().with_var("ROUTER", "length"), CODE).await;
    assert!(length["reasons"][1].as_str().unwrap().starts_with("62 characters: score 0.17"), "{length}");

    for (name, value, needle) in [
        ("ROUTER", "magic", "ROUTER (platform.router): must be one of learned, lexicon, length, rules"),
        ("ROUTER_STRONG_SHARE", "lots", "ROUTER_RULES: `strong_share` must be a number"),
        ("ROUTER_STRONG_SHARE", "1.5", "`strong_share` must be a number in [0, 1]"),
        ("ROUTER_RULES", r#"[{"match": "x"}]"#, "rule 1: name a `mode`, a `tier` or both"),
        ("ROUTER_RULES", "{not json", "the rules must be a JSON list"),
        ("ROUTER_TENANTS", r#"{"t": {"router": "fast"}}"#, "ROUTER_TENANTS: tenant `t`"),
    ] {
        let (status, _, body) = route_as(&test_host().with_var(name, value), "u", "t", CODE).await;
        assert_eq!((status, body["error"]["code"].as_str().unwrap()), (503, "not_configured"), "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{name}: {body}");
    }
    let (status, _, body) = route_as(&test_host().with_var("ROUTER", "rules"), "u", "t", CODE).await;
    assert_eq!(status, 503, "the rules router without rules: {body}");
}

#[tokio::test(start_paused = true)]
async fn rules_are_tried_first() {
    let rules = r#"[{"match": ["invoice", "發票"], "mode": "knowledge", "tier": "system1"},
                    {"match": "urgent", "tier": "system2"}]"#;
    let host = test_host().with_var("ROUTER", "rules").with_var("ROUTER_RULES", rules);
    let routing = route(&host, "Where is the INVOICE from March? Write Python to parse it.").await;
    assert_eq!((routing["mode"].as_str(), routing["tier"].as_str()), (Some("knowledge"), Some("system1")));
    assert_eq!(routing["router"], "rules");
    assert_eq!(routing["reasons"][0], "rule 1 matched `invoice`");
    let routing = route(&host, "幫我找一下上個月的發票").await;
    assert_eq!(routing["mode"], "knowledge", "{routing}");
    // A rule naming only the tier: the router decides the mode, and is named.
    let routing = route(&host, "urgent: say hello to the team").await;
    assert_eq!((routing["tier"].as_str(), routing["router"].as_str()), (Some("system2"), Some("learned")));
    assert_eq!(routing["reasons"][0], "rule 2 matched `urgent`");
    // No rule: the learned router.
    let routing = route(&host, CODE).await;
    assert_eq!((routing["mode"].as_str(), routing["router"].as_str()), (Some("code"), Some("learned")));
    // Rules apply over any router.
    let lexicon = test_host().with_var("ROUTER", "lexicon").with_var("ROUTER_RULES", rules);
    assert_eq!(route(&lexicon, "the invoice please").await["mode"], "knowledge");
}

fn labelled_prompts() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/routing/prompts.jsonl"));
    text.unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["prompt"].as_str().unwrap().to_owned())
        .collect()
}

/// The share of `prompts` routed to System 2.
async fn strong_share(host: &TestHost, prompts: &[String]) -> f64 {
    let mut strong = 0;
    for prompt in prompts {
        strong += usize::from(route(host, prompt).await["tier"] == "system2");
    }
    strong as f64 / prompts.len() as f64
}

#[tokio::test(start_paused = true)]
async fn the_strong_share_knob_moves_the_observed_share() {
    let prompts: Vec<String> = labelled_prompts().into_iter().step_by(3).collect();
    // The length router's table is exact on the labelled prompts (nothing was trained on them).
    for target in [0.2, 0.5, 0.8] {
        let host = test_host().with_var("ROUTER", "length").with_var("ROUTER_STRONG_SHARE", &target.to_string());
        let observed = strong_share(&host, &prompts).await;
        assert!((observed - target).abs() <= 0.06, "length, target {target}: {observed:.3}");
    }
    // The learned router's table is from held-out scores; on its own training prompts it is
    // surer, so the share moves less than the target, but it moves.
    let learned = |share: &str| test_host().with_var("ROUTER_STRONG_SHARE", share);
    let (low, high) = (strong_share(&learned("0.1"), &prompts).await, strong_share(&learned("0.9"), &prompts).await);
    assert!(high - low >= 0.3, "learned: {low:.3} at 10%, {high:.3} at 90%");
    let routing = route(&learned("0.25"), "hello").await;
    assert!(routing["reasons"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .contains("set for 25% strong calls"));
}

#[tokio::test(start_paused = true)]
async fn a_tenant_overrides_the_platform() {
    let host = test_host()
        .with_var("ROUTER", "length")
        .with_var("ROUTER_TENANTS", r#"{"acme": {"router": "lexicon", "threshold": 0.99}}"#);
    let (_, _, acme) = route_as(&host, "u", "acme", CODE).await;
    assert_eq!(
        (acme["routing"]["router"].as_str(), acme["routing"]["tier"].as_str()),
        (Some("lexicon"), Some("system1"))
    );
    let (_, _, other) = route_as(&host, "u", "t", CODE).await;
    assert_eq!(other["routing"]["router"], "length", "{other}");
}

const AB: &str = r#"{"name": "router-ab", "variants": [
    {"name": "control", "weight": 1},
    {"name": "lexicon", "weight": 1, "router": "lexicon", "model": "openai/gpt-4.1-nano"}]}"#;

#[tokio::test(start_paused = true)]
async fn variants_are_sticky_named_on_every_answer_and_applied_to_routing() {
    let host = test_host().with_var("EXPERIMENTS", AB);
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..200 {
        let subject = format!("user-{i}");
        let (status, headers, body) = route_as(&host, &subject, "t", CODE).await;
        assert_eq!(status, 200, "{body}");
        let variant = headers["x-variant"].to_str().unwrap().to_owned();
        assert_eq!(body["variant"], variant.as_str());
        let router = if variant == "lexicon" { "lexicon" } else { "learned" };
        assert_eq!(body["routing"]["router"], router, "{body}");
        let (_, again, _) = route_as(&host, &subject, "t", "something else entirely").await;
        assert_eq!(again["x-variant"], variant.as_str(), "sticky per subject");
        *seen.entry(variant).or_default() += 1;
    }
    assert!(seen.values().all(|n| (70..=130).contains(n)), "close to the weights: {seen:?}");

    // No experiment, no header; a broken one is a configuration error naming it.
    let (_, headers, _) = route_as(&test_host(), "u", "t", CODE).await;
    assert!(headers.get("x-variant").is_none());
    let broken = test_host().with_var("EXPERIMENTS", r#"{"name": "x", "variants": []}"#);
    let (status, _, body) = route_as(&broken, "u", "t", CODE).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EXPERIMENTS: `variants` must be a list of at least one variant"),
        "{body}"
    );
}

/// The first subject in `variant` of [`AB`].
async fn subject_in(host: &TestHost, variant: &str) -> String {
    for i in 0.. {
        let subject = format!("user-{i}");
        let (_, headers, _) = route_as(host, &subject, "t", "hi").await;
        if headers["x-variant"] == variant {
            return subject;
        }
    }
    unreachable!()
}

#[tokio::test(start_paused = true)]
async fn a_variant_picks_the_model_and_metrics_are_summed_per_variant() {
    let host = test_host().with_var("EXPERIMENTS", AB).with_upstream(|req| async move {
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        assert!(body["stream"] != true);
        Ok(http::Response::new(Body::from(openai_ok("fine"))))
    });
    let cheap = subject_in(&host, "lexicon").await;
    let control = subject_in(&host, "control").await;
    let hello = json!({"messages": [{"role": "user", "content": "hello"}]});
    for (subject, times) in [(&cheap, 2), (&control, 1)] {
        for _ in 0..times {
            let (status, headers, body) =
                serve(&host, "chat", request("/v1/chat", subject, "t", "member", Some(&hello))).await;
            assert_eq!(status, 200, "{body}");
            assert!(headers.get("x-variant").is_some());
            host.run_background().await; // the cache write
        }
    }
    // A request naming its own model keeps it.
    let named = json!({"messages": [{"role": "user", "content": "hello again"}], "model": "gpt-4.1"});
    let (status, _, _) = serve(&host, "chat", request("/v1/chat", &cheap, "t", "member", Some(&named))).await;
    assert_eq!(status, 200);
    host.run_background().await;
    let models: Vec<String> = host
        .requests()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(r.body()).unwrap()["model"].as_str().unwrap().to_owned())
        .collect();
    // The cheap variant's first call is sent, its second is the cached answer.
    assert_eq!(models, ["gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1"], "{models:?}");

    let (status, _, body) = serve(&host, "admin", request("/admin/metrics", "ops", "t", "owner", None)).await;
    assert_eq!(status, 200, "{body}");
    let metrics: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metrics["variants"]["lexicon"]["requests"], 3, "{metrics}");
    assert_eq!(metrics["variants"]["lexicon"]["cache"]["hits"], 1, "{metrics}");
    assert_eq!(metrics["variants"]["control"]["requests"], 1, "{metrics}");
    assert_eq!(metrics["modes"]["chat"]["requests"], 4, "{metrics}");
}
