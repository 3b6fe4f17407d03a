//! The admin function. `GET /health` is public and cheap: it reports the function's version
//! and which providers are configured (names and models, never keys), without calling them.

use serde_json::json;

use super::Ctx;
use crate::config::describe_chain;
use crate::error::ApiError;
use crate::host::{Body, Host};
use crate::web;

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts) -> Result<http::Response<Body>, ApiError> {
    let path = parts.uri.path();
    match (parts.method.as_str(), path) {
        ("GET" | "HEAD", "/health") => Ok(web::json(
            http::StatusCode::OK,
            &json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "providers": describe_chain(&ctx.config.chain),
                "auth_configured": ctx.config.jwt_secret.is_some(),
                "time_ms": ctx.host.now_ms(),
            }),
        )),
        (_, "/health") => Err(ApiError::MethodNotAllowed { method: parts.method.to_string(), path: path.into() }),
        _ if ctx.principal.as_ref().is_some_and(|p| !p.is_admin()) => {
            Err(ApiError::Forbidden("the admin API needs a token with role `admin`".into()))
        }
        _ => Err(ApiError::NotFound(path.to_string())),
    }
}
