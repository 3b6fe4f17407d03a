//! Feature flags: the YAML file's defaults in effect, platform and tenant overrides through the
//! admin API (roles, audit, sources) taking effect at once, and what each switch changes: a
//! mode or a dialect refused with 403 `feature_disabled`, the cache, routing, the thinking
//! chain, the reflection depth, metrics.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::{json_response, TestHost, EPOCH_MS};
use serde_json::{json, Value};

/// `method path` on `function` as `role` of `tenant`: status and JSON body.
async fn call(
    host: &TestHost,
    function: &str,
    method: &str,
    path: &str,
    (tenant, role): (&str, &str),
    body: Option<Value>,
) -> (u16, Value) {
    let token = auth::issue(SECRET, &format!("{role}-of-{tenant}"), tenant, role, EPOCH_MS, 3600).unwrap();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let (status, _, text) = serve(host, function, request).await;
    host.run_background().await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

const OWNER: (&str, &str) = ("root", "owner");

/// A host whose OpenAI upstream counts its calls.
fn counting_host() -> (TestHost, Rc<Cell<u32>>) {
    let calls = Rc::new(Cell::new(0));
    let seen = Rc::clone(&calls);
    let host = test_host().with_upstream(move |_| {
        seen.set(seen.get() + 1);
        let n = seen.get();
        async move { Ok(json_response(200, &openai_ok(&format!("call {n}")))) }
    });
    in_process(&host, &["chat", "agent", "search", "knowledge", "code", "thinking", "research"]);
    (host, calls)
}

async fn flags(host: &TestHost, who: (&str, &str), query: &str) -> Value {
    let (status, body) = call(host, "admin", "GET", &format!("/admin/flags{query}"), who, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(start_paused = true)]
async fn the_files_defaults_are_in_effect_under_the_deploy_variables() {
    let host = test_host().with_var("CACHE_TTL_SECS", "90").with_var("AGENT_MAX_TIME_MS", "1500");
    let body = flags(&host, OWNER, "").await;
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/cognitive_features.yaml")).unwrap();
    assert!(file.contains("enable_cache: true") && file.contains("router: learned"));
    assert_eq!(body["tenant"], Value::Null);
    assert_eq!(body["flags"]["cognitive_features"]["enabled"], true);
    assert_eq!(body["flags"]["cognitive_features"]["system1"]["cache_max_size"], 100_000);
    assert_eq!(body["flags"]["platform"]["router"], "learned");
    assert_eq!(body["sources"]["cognitive_features.system1.cache_max_size"], "file");
    // A variable sets its flag at deploy time, in the flag's unit.
    assert_eq!(body["flags"]["cognitive_features"]["system1"]["cache_ttl"], 90);
    assert_eq!(body["sources"]["cognitive_features.system1.cache_ttl"], "variable CACHE_TTL_SECS");
    assert_eq!(body["flags"]["cognitive_features"]["system2"]["max_thinking_time"], 1.5);
    assert_eq!(body["sources"]["cognitive_features.system2.max_thinking_time"], "variable AGENT_MAX_TIME_MS");
    // A bad variable names itself and the flag.
    let host = test_host().with_var("AGENT_MAX_STEPS", "500");
    let (status, body) = call(&host, "chat", "POST", "/v1/chat", ("t", "member"), Some(hello())).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("AGENT_MAX_STEPS (platform.agent.max_steps): must be a whole number from 1 to 100"));
}

#[tokio::test(start_paused = true)]
async fn overrides_apply_without_a_restart_per_tenant_and_show_their_source() {
    let (host, calls) = counting_host();
    let off = json!({"platform": {"modes": {"search": false}}});
    let (status, body) = call(&host, "admin", "PUT", "/admin/flags", OWNER, Some(off)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sources"]["platform.modes.search"], "platform");
    let on = json!({"platform": {"modes": {"search": true}}});
    let (status, _) = call(&host, "admin", "PUT", "/admin/tenants/b/flags", ("b", "admin"), Some(on)).await;
    assert_eq!(status, 200);

    let ask = json!({"messages": [{"role": "user", "content": "latest news"}]});
    let (status, body) = call(&host, "search", "POST", "/v1/search", ("a", "member"), Some(ask.clone())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("feature_disabled")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`platform.modes.search` is off"), "{body}");
    assert_eq!(calls.get(), 0, "refused before any provider call");
    // Tenant b turned it back on for itself: served (the search itself is not configured).
    let (status, body) = call(&host, "search", "POST", "/v1/search", ("b", "member"), Some(ask)).await;
    assert_ne!(status, 403, "{body}");

    let seen_by_b = flags(&host, ("b", "admin"), "").await;
    assert_eq!(seen_by_b["tenant"], "b");
    assert_eq!(seen_by_b["flags"]["platform"]["modes"]["search"], true);
    assert_eq!(seen_by_b["sources"]["platform.modes.search"], "tenant");
    assert_eq!(seen_by_b["overrides"]["platform"], json!({"platform": {"modes": {"search": false}}}));
    let seen_by_owner = flags(&host, OWNER, "?tenant=a").await;
    assert_eq!(seen_by_owner["flags"]["platform"]["modes"]["search"], false);
    assert_eq!(seen_by_owner["sources"]["platform.modes.search"], "platform");

    // A `null` takes the override away: the file's value again.
    let back = json!({"platform": {"modes": {"search": null}}});
    let (_, body) = call(&host, "admin", "PUT", "/admin/flags", OWNER, Some(back)).await;
    assert_eq!(body["sources"]["platform.modes.search"], "file");
    assert_eq!(body["overrides"]["platform"], json!({}));

    let (_, audit) = call(&host, "admin", "GET", "/admin/audit", OWNER, None).await;
    let updates: Vec<&Value> =
        audit["data"].as_array().unwrap().iter().filter(|e| e["action"] == "flags.update").collect();
    assert_eq!(updates.len(), 3, "{audit}");
    assert!(updates.iter().any(|e| e["target"] == "b" && e["tenant"] == "b"), "{audit}");
}

#[tokio::test(start_paused = true)]
async fn who_may_change_which_flags() {
    let (host, _) = counting_host();
    let change = json!({"cognitive_features": {"system1": {"enable_cache": false}}});
    for (who, path, status) in [
        (("a", "admin"), "/admin/flags", 403),
        (("a", "admin"), "/admin/tenants/b/flags", 404),
        (("a", "member"), "/admin/tenants/a/flags", 403),
        (("a", "viewer"), "/admin/tenants/a/flags", 403),
        (("a", "admin"), "/admin/tenants/a/flags", 200),
        (OWNER, "/admin/tenants/b/flags", 200),
        (OWNER, "/admin/flags", 200),
    ] {
        let (got, body) = call(&host, "admin", "PUT", path, who, Some(change.clone())).await;
        assert_eq!(got, status, "{who:?} {path}: {body}");
    }
    let (status, _) = call(&host, "admin", "GET", "/admin/flags?tenant=b", ("a", "admin"), None).await;
    assert_eq!(status, 403, "another tenant's flags");
    let (status, _) = call(&host, "admin", "DELETE", "/admin/flags", OWNER, None).await;
    assert_eq!(status, 405);
}

#[tokio::test(start_paused = true)]
async fn a_bad_change_names_the_key_and_stores_nothing() {
    let (host, _) = counting_host();
    for (change, needle) in [
        (
            json!({"cognitive_features": {"system1": {"cache_tll": 5}}}),
            "`cognitive_features.system1.cache_tll`: unknown key",
        ),
        (
            json!({"cognitive_features": {"system1": {"cache_ttl": "soon"}}}),
            "`cognitive_features.system1.cache_ttl`: must be a whole number",
        ),
        (json!({"platform": {"router": "magic"}}), "`platform.router`: must be one of learned, lexicon, length, rules"),
        (json!({"platform": {"modes": true}}), "`platform.modes`: must be a mapping"),
        (json!([1]), "must be a flags document"),
    ] {
        let (status, body) = call(&host, "admin", "PUT", "/admin/flags", OWNER, Some(change)).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{needle}: {body}");
    }
    assert_eq!(flags(&host, OWNER, "").await["overrides"]["platform"], json!({}));
}

#[tokio::test(start_paused = true)]
async fn a_disabled_dialect_is_refused_in_that_dialect() {
    let (host, calls) = counting_host();
    let off = json!({"platform": {"dialects": {"openai_chat": false, "anthropic_messages": false}}});
    call(&host, "admin", "PUT", "/admin/tenants/a/flags", OWNER, Some(off)).await;
    let openai = json!({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) =
        call(&host, "gateway", "POST", "/v1/chat/completions", ("a", "member"), Some(openai.clone())).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "feature_disabled", "OpenAI's shape: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("platform.dialects.openai_chat"));
    // Spin routes it to chat directly: refused there too.
    let (status, _) = call(&host, "chat", "POST", "/v1/chat/completions", ("a", "member"), Some(openai.clone())).await;
    assert_eq!(status, 403);
    let anthropic =
        json!({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = call(&host, "gateway", "POST", "/v1/messages", ("a", "member"), Some(anthropic)).await;
    assert_eq!(status, 403);
    assert_eq!(body["type"], "error", "Anthropic's shape: {body}");
    assert_eq!(calls.get(), 0);
    // Another tenant, and the platform's own API, are served.
    let (status, _) = call(&host, "gateway", "POST", "/v1/chat/completions", ("b", "member"), Some(openai)).await;
    assert_eq!(status, 200);
    let (status, _) = call(&host, "chat", "POST", "/v1/chat", ("a", "member"), Some(hello())).await;
    assert_eq!(status, 200);
}

#[tokio::test(start_paused = true)]
async fn the_cache_switches_off_and_on_and_the_master_switch_turns_it_off() {
    let (host, calls) = counting_host();
    let ask = || call(&host, "chat", "POST", "/v1/chat", ("a", "member"), Some(hello()));
    ask().await;
    ask().await;
    assert_eq!(calls.get(), 1, "the second is a hit");
    let set = |doc: Value| call(&host, "admin", "PUT", "/admin/tenants/a/flags", OWNER, Some(doc));
    set(json!({"cognitive_features": {"system1": {"enable_cache": false}}})).await;
    let (_, body) = ask().await;
    assert_eq!(calls.get(), 2, "off: the provider answers ({body})");
    assert!(body.get("cache").is_none_or(|c| c != "hit"), "{body}");
    set(json!({"cognitive_features": {"system1": {"enable_cache": true}}})).await;
    ask().await;
    assert_eq!(calls.get(), 2, "on again: the stored answer is served");
    set(json!({"cognitive_features": {"enabled": false}})).await;
    ask().await;
    assert_eq!(calls.get(), 3, "the master switch turns the cache off");
}

#[tokio::test(start_paused = true)]
async fn routing_switches_bound_the_router() {
    let (host, _) = counting_host();
    let code = json!({"messages": [{"role": "user", "content": "Write a Python function that parses ISO dates, with unit tests, then prove its complexity step by step"}]});
    let route = || call(&host, "gateway", "POST", "/v1/route", ("a", "member"), Some(code.clone()));
    let (_, body) = route().await;
    assert_eq!(body["routing"]["mode"], "code", "{body}");
    let set = |doc: Value| call(&host, "admin", "PUT", "/admin/tenants/a/flags", OWNER, Some(doc));
    set(json!({"cognitive_features": {"routing": {"auto_mode_switch": false}}})).await;
    let (_, body) = route().await;
    assert_eq!(body["routing"]["mode"], "chat", "{body}");
    assert!(body["routing"]["reasons"][0].as_str().unwrap().contains("auto_mode_switch` is off"), "{body}");
    set(json!({"cognitive_features": {"routing": {"auto_mode_switch": true}}, "platform": {"modes": {"code": false}}}))
        .await;
    let (_, body) = route().await;
    assert_eq!(body["routing"]["mode"], "chat", "a mode that is off is never chosen: {body}");
    set(json!({"cognitive_features": {"routing": {"complexity_analysis": false}}})).await;
    let (_, body) = route().await;
    assert_eq!(body["routing"]["tier"], "system1", "{body}");
    set(json!({"cognitive_features": {"routing": {"smart_routing": false}}})).await;
    let (status, body) = route().await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("feature_disabled")), "{body}");
    let (status, body) = call(&host, "gateway", "POST", "/v1/process", ("a", "member"), Some(code.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["routing"]["mode"].as_str(), body["routing"]["router"].as_str()), (Some("chat"), Some("none")));
}

#[tokio::test(start_paused = true)]
async fn without_the_thinking_chain_system_2_chat_is_one_strong_call() {
    let (host, calls) = counting_host();
    let set = |doc: Value| call(&host, "admin", "PUT", "/admin/tenants/a/flags", OWNER, Some(doc));
    set(json!({"cognitive_features": {"system2": {"enable_thinking_chain": false}}})).await;
    let mut request = user_request("/v1/chat", &hello());
    let token = auth::issue(SECRET, "u", "a", "member", EPOCH_MS, 3600).unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request.headers_mut().insert("x-opencode-tier", "system2".parse().unwrap());
    let (status, _, text) = serve(&host, "chat", request).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(calls.get(), 1);
    let sent: Value = serde_json::from_slice(host.requests().last().unwrap().body()).unwrap();
    assert_eq!(sent["model"], "gpt-4.1", "the strong model: {sent}");
    assert!(sent.get("tools").is_none(), "no agent tools: {sent}");
}

#[tokio::test(start_paused = true)]
async fn the_reflection_depth_bounds_code_fix_rounds() {
    let (host, _) = counting_host();
    let body = json!({"messages": [{"role": "user", "content": "print 1"}], "max_attempts": 3});
    let set = |doc: Value| call(&host, "admin", "PUT", "/admin/tenants/a/flags", OWNER, Some(doc));
    set(json!({"cognitive_features": {"system2": {"reflection_depth": 1}}})).await;
    let (status, reply) = call(&host, "code", "POST", "/v1/code", ("a", "member"), Some(body)).await;
    assert_eq!(status, 422, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("from 1 to 2 (`cognitive_features.system2.reflection_depth` allows 1 fixes)"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_cognitive_metrics_a_request_is_not_counted() {
    let (host, _) = counting_host();
    let set = |doc: Value| call(&host, "admin", "PUT", "/admin/tenants/a/flags", OWNER, Some(doc));
    set(json!({"cognitive_features": {"metrics": {"cognitive_metrics": false}}})).await;
    call(&host, "chat", "POST", "/v1/chat", ("a", "member"), Some(hello())).await;
    call(&host, "chat", "POST", "/v1/chat", ("b", "member"), Some(hello())).await;
    let (_, report) = call(&host, "admin", "GET", "/admin/metrics", OWNER, None).await;
    assert_eq!(report["modes"]["chat"]["requests"], 1, "only tenant b's request: {report}");
}
