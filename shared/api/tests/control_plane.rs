//! The control plane through the API, on the testkit's SQLite: keys, roles, limits, budgets,
//! the ledger, the audit log and the token exchange.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{in_process, openai_ok, serve, test_host, SECRET};
use opencode_api::auth;
use opencode_runtime::{Body, HostError};
use opencode_testkit::{TestHost, EPOCH_MS};
use serde_json::{json, Value};

fn host() -> TestHost {
    let host = test_host().with_upstream(|_req| async move {
        Ok::<_, HostError>(http::Response::builder().status(200).body(Body::from(openai_ok("hello"))).unwrap())
    });
    in_process(&host, &["admin", "chat", "knowledge"]);
    host
}

fn token(role: &str, tenant: &str) -> String {
    auth::issue(SECRET, &format!("{role}-user"), tenant, role, EPOCH_MS, 3600).unwrap()
}

fn request(method: &str, path: &str, credential: &str, body: Option<Value>) -> http::Request<Body> {
    let builder =
        http::Request::builder().method(method).uri(path).header("authorization", format!("Bearer {credential}"));
    match body {
        Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())).unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

async fn call(
    host: &TestHost,
    method: &str,
    path: &str,
    credential: &str,
    body: Option<Value>,
) -> (u16, http::HeaderMap, Value) {
    let (status, headers, text) = serve(host, "gateway", request(method, path, credential, body)).await;
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn hello() -> Value {
    json!({"messages": [{"role": "user", "content": "hi"}]})
}

/// Creates a key as `creator` and returns (key, id).
async fn new_key(host: &TestHost, creator: &str, body: Value) -> (String, String) {
    let (status, headers, created) = call(host, "POST", "/admin/keys", creator, Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    (created["key"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_key_is_created_used_listed_patched_and_revoked() {
    let host = host();
    let admin = token("admin", "acme");
    let (key, id) = new_key(&host, &admin, json!({"name": "ci", "modes": ["chat"]})).await;
    assert!(key.starts_with("ock_") && key.len() >= 36);

    // As the bearer, and as Anthropic's x-api-key.
    let (status, _, answer) = call(&host, "POST", "/v1/chat", &key, Some(hello())).await;
    assert_eq!(status, 200, "{answer}");
    let by_header = http::Request::post("/v1/chat/completions")
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"model": "opencode/chat", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
        ))
        .unwrap();
    let (status, _, text) = serve(&host, "chat", by_header).await;
    assert_eq!(status, 200, "{text}");
    // Its allow-list: chat only.
    let (status, _, refused) = call(&host, "POST", "/v1/knowledge", &key, Some(hello())).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")), "{refused}");

    let (_, _, listed) = call(&host, "GET", "/admin/keys", &admin, None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("key").is_none(), "the key is shown once: {listed}");
    assert_eq!(listed["data"][0]["prefix"], key[..12]);

    let (status, _, patched) =
        call(&host, "PATCH", &format!("/admin/keys/{id}"), &admin, Some(json!({"name": "ci-2", "modes": null}))).await;
    assert_eq!((status, patched["name"].as_str(), &patched["modes"]), (200, Some("ci-2"), &Value::Null));

    let (status, _, _) = call(&host, "DELETE", &format!("/admin/keys/{id}"), &admin, None).await;
    assert_eq!(status, 204);
    let (status, _, refused) = call(&host, "POST", "/v1/chat", &key, Some(hello())).await;
    assert_eq!((status, refused["error"]["message"].as_str()), (401, Some("invalid token: API key has been revoked")));

    host.run_background().await;
    let (_, _, audit) = call(&host, "GET", "/admin/audit", &admin, None).await;
    let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["auth.refused", "key.revoke", "key.update", "key.create"], "{audit}");
    assert_eq!(audit["data"][1]["target"], id);
    assert_eq!(audit["data"][1]["actor"], "admin-user");
}

#[tokio::test]
async fn admin_bodies_are_checked_field_by_field() {
    let host = host();
    let admin = token("admin", "acme");
    for (body, status, field) in [
        (json!({}), 422, "name"),
        (json!({"name": "x", "role": "wizard"}), 422, "role"),
        (json!({"name": "x", "limits": {"rpm": -1}}), 422, "limits.rpm"),
        (json!({"name": "x", "limits": {"rpm": 1, "burst": 2}}), 422, "limits"),
        (json!({"name": "x", "budget": {"usd": -5, "period": "day"}}), 422, "budget.usd"),
        (json!({"name": "x", "budget": {"usd": 5, "period": "week"}}), 422, "budget.period"),
        (json!({"name": "x", "expires_at": EPOCH_MS / 1000 - 10}), 422, "expires_at"),
        (json!({"name": "x", "modes": ["chat", "magic"]}), 422, "modes[1]"),
        (json!({"name": "x", "colour": "red"}), 422, "colour"),
        (json!({"name": "x", "role": "owner"}), 403, ""),
        (json!({"name": "x", "tenant": "other"}), 403, ""),
    ] {
        let (got, _, error) = call(&host, "POST", "/admin/keys", &admin, Some(body.clone())).await;
        assert_eq!(got, status, "{body} -> {error}");
        if !field.is_empty() {
            assert!(error["error"]["message"].as_str().unwrap().contains(&format!("`{field}")), "{body} -> {error}");
        }
    }
}

#[tokio::test]
async fn roles_are_refused_where_the_table_says() {
    let host = host();
    let (member, viewer) = (token("member", "acme"), token("viewer", "acme"));
    let (status, _, _) = call(&host, "POST", "/v1/chat", &viewer, Some(hello())).await;
    assert_eq!(status, 403, "a viewer makes no model calls");
    let (status, _, _) = call(&host, "GET", "/admin/usage", &viewer, None).await;
    assert_eq!(status, 200, "a viewer reads its tenant's usage");
    let (status, _, metrics) = call(&host, "GET", "/admin/metrics", &viewer, None).await;
    assert_eq!((status, &metrics["tenant"]), (200, &json!("acme")), "{metrics}");
    let (status, _, _) = call(&host, "GET", "/admin/audit", &viewer, None).await;
    assert_eq!(status, 403);
    for (method, path) in
        [("GET", "/admin/usage"), ("GET", "/admin/keys"), ("POST", "/admin/keys"), ("GET", "/admin/metrics")]
    {
        let (status, _, _) = call(&host, method, path, &member, Some(json!({"name": "x"}))).await;
        assert_eq!(status, 403, "a member: {method} {path}");
    }
    let doc = json!({"id": "d1", "text": "hello"});
    let (status, _, _) = call(&host, "POST", "/v1/knowledge/documents", &member, Some(doc)).await;
    assert_eq!(status, 403, "a member writes no knowledge");
    let (status, _, _) = call(&host, "DELETE", "/v1/knowledge/documents/d1", &member, None).await;
    assert_eq!(status, 403);
    let (status, _, body) = call(&host, "GET", "/v1/knowledge/documents", &member, None).await;
    assert_eq!(status, 200, "a member reads: {body}");
}

#[tokio::test]
async fn a_tenant_admin_is_blind_to_another_tenant() {
    let host = host();
    let (acme, globex, owner) = (token("admin", "acme"), token("admin", "globex"), token("owner", "ops"));
    let (_, id) = new_key(&host, &globex, json!({"name": "theirs"})).await;
    for (method, path) in [
        ("GET", format!("/admin/keys/{id}")),
        ("PATCH", format!("/admin/keys/{id}")),
        ("DELETE", format!("/admin/keys/{id}")),
    ] {
        let (status, _, body) = call(&host, method, &path, &acme, Some(json!({"name": "mine"}))).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (_, _, listed) = call(&host, "GET", "/admin/keys", &acme, None).await;
    assert_eq!(listed["data"], json!([]));
    let (status, _, _) = call(&host, "GET", "/admin/usage?tenant=globex", &acme, None).await;
    assert_eq!(status, 403);
    let (status, _, _) = call(&host, "GET", "/admin/tenants/globex/limits", &acme, None).await;
    assert_eq!(status, 404);
    // The owner sees and sets every tenant's.
    let (status, _, body) = call(&host, "GET", &format!("/admin/keys/{id}"), &owner, None).await;
    assert_eq!((status, &body["tenant"]), (200, &json!("globex")));
    let limits = json!({"limits": {"rpm": 100}, "budget": {"usd": 10, "period": "month"}});
    let (status, _, _) = call(&host, "PUT", "/admin/tenants/globex/limits", &globex, Some(limits.clone())).await;
    assert_eq!(status, 403, "a tenant admin reads its limits, an owner sets them");
    let (status, _, set) = call(&host, "PUT", "/admin/tenants/globex/limits", &owner, Some(limits)).await;
    assert_eq!((status, &set["limits"]["rpm"]), (200, &json!(100)), "{set}");
    let (status, _, read) = call(&host, "GET", "/admin/tenants/globex/limits", &globex, None).await;
    assert_eq!((status, &read["budget"]["period"]), (200, &json!("month")));
}

#[tokio::test]
async fn a_key_s_rate_limit_refuses_with_the_scope_and_when_to_retry() {
    let host = host();
    let admin = token("admin", "acme");
    let (key, _) = new_key(&host, &admin, json!({"name": "slow", "limits": {"rpm": 2, "tpm": 100000}})).await;
    let (status, headers, _) = call(&host, "POST", "/v1/chat", &key, Some(hello())).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-ratelimit-limit-requests"], "2");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "1");
    assert!(headers["x-ratelimit-reset-requests"].to_str().unwrap().ends_with('s'));
    assert_eq!(headers["x-ratelimit-limit-tokens"], "100000");
    call(&host, "POST", "/v1/chat", &key, Some(hello())).await;
    let (status, headers, refused) = call(&host, "POST", "/v1/chat", &key, Some(hello())).await;
    assert_eq!(status, 429);
    assert_eq!(refused["error"]["code"], "rate_limited");
    assert_eq!(refused["error"]["message"], "rate limit reached for this API key: requests per minute");
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn a_budget_reached_is_final_and_says_insufficient_quota_to_openai_clients() {
    let host = host();
    let owner = token("owner", "ops");
    // gpt-4.1-mini's price: a request reserves about a cent at most; $0.000001 is spent by one.
    let budget = json!({"budget": {"usd": 0.000001, "period": "day"}});
    let (status, _, _) = call(&host, "PUT", "/admin/tenants/acme/limits", &owner, Some(budget)).await;
    assert_eq!(status, 200);
    let member = token("member", "acme");
    let (status, _, _) = call(&host, "POST", "/v1/chat", &member, Some(hello())).await;
    assert_eq!(status, 200, "under budget");
    host.run_background().await;
    let body = json!({"model": "opencode/chat", "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, refused) = call(&host, "POST", "/v1/chat/completions", &member, Some(body)).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["type"], "insufficient_quota");
    assert_eq!(refused["error"]["code"], "budget_exceeded");
    assert_eq!(headers["x-should-retry"], "false");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("this tenant") && !message.contains('$') && !message.contains("0.0"), "{message}");
    let (_, _, audit) = call(&host, "GET", "/admin/audit", &owner, None).await;
    host.run_background().await;
    let (_, _, audit_after) = call(&host, "GET", "/admin/audit", &owner, None).await;
    assert!(
        audit_after["data"].as_array().unwrap().iter().any(|e| e["action"] == "budget.exceeded"),
        "{audit} {audit_after}"
    );
}

#[tokio::test]
async fn usage_is_in_the_ledger_and_reported_as_json_and_csv() {
    let host = host();
    let admin = token("admin", "acme");
    let (key, id) = new_key(&host, &admin, json!({"name": "reporting"})).await;
    for n in 0..3 {
        let body = json!({"messages": [{"role": "user", "content": format!("question {n}")}]});
        let (status, _, answer) = call(&host, "POST", "/v1/chat", &key, Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }
    call(&host, "POST", "/v1/chat", &token("member", "globex"), Some(hello())).await;
    host.run_background().await;
    let (status, _, report) = call(&host, "GET", "/admin/usage?group_by=key,model", &admin, None).await;
    assert_eq!(status, 200, "{report}");
    let rows = report["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "acme only: {report}");
    assert_eq!(rows[0]["key_id"], id);
    assert_eq!(rows[0]["requests"], 3);
    assert_eq!(rows[0]["input_tokens"], 9);
    let (status, headers, csv) = call(&host, "GET", "/admin/usage?group_by=day&format=csv", &admin, None).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.as_str().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "day,requests,errors,cache_hits,input_tokens,output_tokens,reasoning_tokens,cost_usd");
    assert!(lines[1].starts_with("2026-01-01,3,0,"), "{csv}");
    let (_, _, ledger) = call(&host, "GET", "/admin/usage/requests?limit=2", &admin, None).await;
    assert_eq!(ledger["data"].as_array().unwrap().len(), 2);
    assert_eq!(ledger["has_more"], true);
    let cursor = ledger["next_cursor"].as_str().unwrap();
    let (_, _, rest) =
        call(&host, "GET", &format!("/admin/usage/requests?limit=2&cursor={cursor}"), &admin, None).await;
    assert_eq!((rest["data"].as_array().unwrap().len(), &rest["has_more"]), (1, &json!(false)));
    let (status, _, bad) = call(&host, "GET", "/admin/usage?group_by=colour", &admin, None).await;
    assert_eq!(status, 400, "{bad}");
    let (_, _, everyone) = call(&host, "GET", "/admin/usage?group_by=tenant", &token("owner", "ops"), None).await;
    assert_eq!(everyone["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_key_is_exchanged_for_a_short_lived_token_and_a_password_is_not() {
    let host = host();
    let (key, id) = new_key(&host, &token("admin", "acme"), json!({"name": "exchange", "role": "member"})).await;
    let form = http::Request::post("/api/v1/auth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("username=alice&password=hunter2".to_string()))
        .unwrap();
    let (status, _, text) = serve(&host, "gateway", form).await;
    assert_eq!(status, 401, "{text}");
    let (status, _, exchanged) =
        call(&host, "POST", "/api/v1/auth/token", "not-a-credential", Some(json!({"api_key": key, "expires_in": 600})))
            .await;
    assert_eq!(status, 200, "{exchanged}");
    assert_eq!((exchanged["token_type"].as_str(), exchanged["expires_in"].as_u64()), (Some("bearer"), Some(600)));
    let jwt = exchanged["access_token"].as_str().unwrap().to_owned();
    let (status, _, _) = call(&host, "POST", "/v1/chat", &jwt, Some(hello())).await;
    assert_eq!(status, 200);
    let (status, _, too_long) =
        call(&host, "POST", "/api/v1/auth/token", &key, Some(json!({"expires_in": 7200}))).await;
    assert_eq!(status, 422, "{too_long}");
    let (_, _, by_bearer) = call(&host, "POST", "/api/v1/auth/token", &key, None).await;
    assert_eq!(by_bearer["expires_in"], 3600);
    // The token is the key's: its revocation ends the token too.
    call(&host, "DELETE", &format!("/admin/keys/{id}"), &token("admin", "acme"), None).await;
    let (status, _, _) = call(&host, "POST", "/v1/chat", &jwt, Some(hello())).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn unknown_roles_in_tokens_are_refused() {
    let host = host();
    let (status, _, body) = call(&host, "POST", "/v1/chat", &token("user", "acme"), Some(hello())).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("owner, admin, member, viewer"));
}

#[tokio::test(start_paused = true)]
async fn a_stream_the_client_left_is_billed_for_what_the_upstream_sent() {
    use futures::StreamExt as _;
    let host = test_host().with_upstream(|_req| async move {
        Ok::<_, HostError>(opencode_testkit::streamed_response(
            common::openai_chunks(&["one ", "two ", "three"]),
            50,
            false,
        ))
    });
    let admin = token("admin", "acme");
    in_process(&host, &["admin"]);
    let (key, _) = new_key(&host, &admin, json!({"name": "streamer"})).await;
    let body = json!({"messages": [{"role": "user", "content": "count"}], "stream": true});
    let response = opencode_api::serve_named("chat", host.clone(), request("POST", "/v1/chat", &key, Some(body))).await;
    assert_eq!(response.status(), 200);
    let Body::Stream(mut events) = response.into_body() else { panic!("a stream") };
    assert!(events.next().await.is_some(), "the client reads the start, then leaves");
    drop(events);
    host.run_background().await;
    let (_, _, ledger) = call(&host, "GET", "/admin/usage/requests", &admin, None).await;
    let row = &ledger["data"][0];
    assert_eq!(
        (row["status"].as_str(), row["input_tokens"].as_u64(), row["output_tokens"].as_u64()),
        (Some("ok"), Some(3), Some(2)),
        "{ledger}"
    );
}
