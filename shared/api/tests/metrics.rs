//! Per-tier metrics: recorded for every mode request, summed by the admin function.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{TestHost, EPOCH_MS};
use serde_json::{json, Value};

fn host() -> TestHost {
    // Chat forwards System 2 to the agent function, served here by its real handler.
    let test_host = test_host().with_function("agent", |host, req| async move {
        opencode_api::serve_named("agent", host, req.map(Body::from)).await
    });
    test_host.with_upstream(|req| async move {
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        let answer = if body["stream"] == true { openai_chunks(&["a", "b"]).concat() } else { openai_ok("fine") };
        Ok(http::Response::new(Body::from(answer)))
    })
}

async fn admin(host: &TestHost, role: &str, query: &str) -> (u16, Value) {
    let token = auth::issue(SECRET, "ops", "t", role, EPOCH_MS, 3600).unwrap();
    let request = http::Request::get(format!("/admin/metrics{query}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = opencode_api::serve_named("admin", host.clone(), request).await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect(1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(start_paused = true)]
async fn every_mode_request_is_counted_per_tier_with_cache_hits_and_tokens() {
    let host = host();
    send(&host, hello()).await; // miss
    host.run_background().await; // the cache write
    send(&host, hello()).await; // hit
    let (status, _, body) = send(&host, json!({"messages":[{"role":"user","content":"stream"}],"stream":true})).await;
    assert_eq!(status, 200, "{body}");
    let mut strong = chat(json!({"messages":[{"role":"user","content":"hard"}]}));
    strong.headers_mut().insert("x-opencode-tier", "system2".parse().unwrap());
    let response = opencode_api::serve_named("chat", host.clone(), strong).await;
    assert_eq!(response.status(), 200);
    let (status, _, _) = send(&host, json!({"messages":[]})).await;
    assert_eq!(status, 422);
    host.run_background().await;

    let (status, body) = admin(&host, "owner", "").await;
    assert_eq!(status, 200, "{body}");
    let s1 = &body["tiers"]["system1"];
    assert_eq!(s1["requests"], 4, "{body}");
    assert_eq!(s1["errors"], 1);
    assert_eq!(s1["cache"]["lookups"], 3, "the 422 never reached the cache: {body}");
    assert_eq!(s1["cache"]["hits"], 1);
    // miss 3+2, hit reports what the answer cost (3+2), stream 3+2.
    assert_eq!(s1["tokens"]["input"], 9);
    assert_eq!(s1["tokens"]["output"], 6);
    // gpt-4.1-mini at $0.40 / $1.60 per million: 4.4 millionths of a dollar per call; the hit
    // cost nothing. System 2's gpt-4.1 ($2 / $8): 22 millionths.
    assert_eq!(s1["cost_usd"], 0.0000088);
    assert_eq!(body["tiers"]["system2"]["cost_usd"], 0.000022);
    let s2 = &body["tiers"]["system2"];
    assert_eq!(s2["requests"], 1);
    assert_eq!(s2["cache"]["lookups"], 1, "system 2 reports x-cache: miss: {body}");
    assert_eq!(body["modes"]["chat"]["requests"], 5);
    assert_eq!(body["window"]["hours"], 24);

    let sent: Vec<Value> = host.requests().iter().map(|r| serde_json::from_slice(r.body()).unwrap()).collect();
    assert!(sent.iter().any(|b| b["model"] == "gpt-4.1"), "system 2 runs the strong model: {sent:?}");
}

#[tokio::test(start_paused = true)]
async fn metrics_need_an_admin_and_a_sane_window() {
    let host = host();
    let (status, body) = admin(&host, "member", "").await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (403, "forbidden"));
    let (status, _) = admin(&host, "owner", "?hours=0").await;
    assert_eq!(status, 400);
    let (status, _) = admin(&host, "owner", "?hours=abc").await;
    assert_eq!(status, 400);
    let (status, body) = admin(&host, "owner", "?hours=1").await;
    assert_eq!(status, 200);
    assert_eq!(body["tiers"], json!({}));
}

fn totals(requests: usize) -> Vec<u8> {
    use opencode_core::routing::{Mode, Tier};
    use opencode_runtime::metrics::{Record, Sample};
    let mut record = Record::default();
    for _ in 0..requests {
        record.add(
            &Sample {
                mode: Mode::Chat,
                tier: Tier::System1,
                latency_ms: 5,
                cache: None,
                usage: Default::default(),
                cost_usd: 0.0,
                error: false,
            },
            None,
        );
    }
    serde_json::to_vec(&record).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_closed_hour_is_summed_once_then_read_from_its_roll_up() {
    use opencode_runtime::metrics::{hour_of, key, roster};
    use opencode_runtime::Host as _;
    let host = host();
    let closed = hour_of(EPOCH_MS) - 2;
    let current = hour_of(EPOCH_MS);
    for (hour, instance, n) in [(closed, "a", 2), (closed, "b", 3), (current, "c", 4)] {
        host.kv_put("data", &key(hour, instance), totals(n), None).await.unwrap();
    }
    // Each hour's roster names the instances that wrote totals for it, as their writes leave it.
    host.kv_put("data", &roster(closed), br#"["a","b"]"#.to_vec(), None).await.unwrap();
    host.kv_put("data", &roster(current), br#"["c"]"#.to_vec(), None).await.unwrap();
    let (status, body) = admin(&host, "owner", "?hours=3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["tiers"]["system1"]["requests"].as_u64(), body["instance_hours"].as_u64()), (Some(9), Some(3)));
    assert_eq!(body["hours_rolled_up"], 0);
    host.run_background().await;
    let rollups: Vec<String> =
        host.kv_snapshot("data").into_keys().filter(|k| k.starts_with("metrics-rollup/")).collect();
    assert_eq!(rollups, [format!("metrics-rollup/{closed}")], "only the closed hour is rolled up");

    // The instance keys are no longer read: the roll-up answers for the closed hour.
    host.kv_delete("data", &key(closed, "a")).await.unwrap();
    host.kv_delete("data", &key(closed, "b")).await.unwrap();
    let (_, body) = admin(&host, "owner", "?hours=3").await;
    // The first report was a request too: its own instance's totals (a `/metrics` series, no
    // tier) are an instance-hour more.
    assert_eq!((body["tiers"]["system1"]["requests"].as_u64(), body["instance_hours"].as_u64()), (Some(9), Some(4)));
    assert_eq!((body["hours_rolled_up"].as_u64(), body["truncated"].as_bool()), (Some(1), Some(false)));
}

#[tokio::test(start_paused = true)]
async fn an_instances_writes_put_it_on_its_hours_roster_once() {
    use opencode_runtime::metrics::{hour_of, roster};
    let host = host();
    send(&host, hello()).await;
    host.run_background().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    send(&host, hello()).await;
    host.run_background().await;
    let listed = host.kv_snapshot("data").remove(&roster(hour_of(EPOCH_MS))).unwrap();
    let names: Vec<String> = serde_json::from_slice(&listed).unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    let (_, body) = admin(&host, "owner", "?hours=1").await;
    assert_eq!(body["tiers"]["system1"]["requests"], 2, "{body}");
}

/// The seed's `GET /api/v1/metrics`: the same totals grouped by its cognitive levels, for admins
/// only (they are every tenant's), errors in the seed's shape.
#[tokio::test(start_paused = true)]
async fn the_seeds_metrics_group_modes_by_cognitive_level() {
    let host = host();
    send(&host, hello()).await;
    let (status, _, _) = send(&host, json!({"messages":[]})).await;
    assert_eq!(status, 422);
    host.run_background().await;
    let get = |role: &str| {
        let token = auth::issue(SECRET, "ops", "t", role, EPOCH_MS, 3600).unwrap();
        http::Request::get("/api/v1/metrics")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    in_process(&host, &["admin"]);
    let (status, _, text) = serve(&host, "gateway", get("member")).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error_code"], "FORBIDDEN");
    let (status, _, text) = serve(&host, "gateway", get("owner")).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["system1"]["request_count"], 2, "{v}");
    assert_eq!(v["system1"]["success_rate"], 0.5);
    assert_eq!(v["system1"]["total_tokens"], 5);
    assert_eq!(v["system2"]["request_count"], 0);
    assert_eq!(v["agent"], json!({"request_count": 0, "avg_latency_ms": 0.0, "success_rate": 0.0, "total_tokens": 0}));
    assert_eq!(v["total_requests"], 2);
}
