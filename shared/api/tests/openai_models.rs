//! `GET /v1/models` and `/v1/models/{id}` on the gateway, in OpenAI's shape.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use opencode_api::auth;
use opencode_runtime::Body;
use opencode_testkit::EPOCH_MS;
use serde_json::{json, Value};

fn get(path: &str) -> http::Request<Body> {
    let token = auth::issue(SECRET, "u", "t", "member", EPOCH_MS, 3600).unwrap();
    http::Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_list_names_each_providers_models_and_the_alias() {
    let host = test_host().with_var("OPENAI_MODEL", "gpt-x").with_var("OPENAI_STRONG_MODEL", "gpt-big");
    let (status, _, body) = serve(&host, "gateway", get("/v1/models")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<(&str, &str)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["owned_by"].as_str().unwrap()))
        .collect();
    assert_eq!(ids[0], ("opencode/auto", "opencode"));
    assert!(ids.contains(&("opencode/research", "opencode")), "{ids:?}");
    assert!(ids.contains(&("openai/gpt-x", "openai")), "{ids:?}");
    assert!(ids.contains(&("openai/gpt-big", "openai")), "{ids:?}");
    assert!(ids.iter().any(|(id, owner)| id.starts_with("anthropic/claude-") && *owner == "anthropic"), "{ids:?}");
    assert!(v["data"].as_array().unwrap().iter().all(|m| m["object"] == "model" && m["created"].is_u64()));
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no model twice");
}

#[tokio::test]
async fn one_model_by_its_encoded_id_or_a_404_in_openai_shape() {
    let host = test_host().with_var("OPENAI_MODEL", "gpt-x");
    let (status, _, body) = serve(&host, "gateway", get("/v1/models/openai%2Fgpt-x")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v, json!({"id": "openai/gpt-x", "object": "model", "created": 0, "owned_by": "openai"}));

    let (status, _, body) = serve(&host, "gateway", get("/v1/models/nobody%2Fnothing")).await;
    assert_eq!(status, 404, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");

    let unauthenticated = http::Request::get("/v1/models").body(Body::empty()).unwrap();
    let (status, _, body) = serve(&host, "gateway", unauthenticated).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["param"], Value::Null, "OpenAI's shape");

    let (status, _, _) = serve(&host, "gateway", user_request("/v1/models", &json!({}))).await;
    assert_eq!(status, 405);
}
