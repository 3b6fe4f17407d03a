//! The functions: one handler per deployable Wasm function, and the shared request wrapper
//! (request id, configuration, authentication, error mapping) every one of them runs in.

mod admin;
pub mod chat;
mod gateway;
mod knowledge;
pub mod route;

use crate::auth::{self, Principal};
use crate::config::Config;
use crate::error::ApiError;
use crate::host::{Body, Host};
use crate::web;

/// Every function the platform deploys, by name.
pub const FUNCTIONS: &[&str] =
    &["gateway", "chat", "knowledge", "search", "code", "thinking", "research", "admin"];

/// What a handler gets besides the request.
pub struct Ctx<H: Host> {
    pub host: H,
    pub config: Config,
    pub request_id: String,
    pub principal: Option<Principal>,
}

/// Runs the named function on one request. Always answers; never panics on input.
pub async fn serve<H: Host>(function: &str, host: H, request: http::Request<Body>) -> http::Response<Body> {
    let request_id = web::request_id(&host, request.headers());
    let mut response = match run(function, host, request, &request_id).await {
        Ok(response) => response,
        Err(err) => web::error(&err, &request_id),
    };
    web::set_header(&mut response, web::REQUEST_ID, &request_id);
    response
}

async fn run<H: Host>(
    function: &str,
    host: H,
    request: http::Request<Body>,
    request_id: &str,
) -> Result<http::Response<Body>, ApiError> {
    if function == "gateway" && request.uri().path() != "/v1/route" {
        // The gateway only routes: each function authenticates for itself, so a request that
        // reaches a function directly (Spin routes, service bindings) is checked the same way.
        // `/v1/route` runs nothing but the analyzer, so the gateway answers it itself.
        return gateway::handle(&host, request, request_id).await;
    }
    let config = Config::from_host(&host)?;
    let (parts, body) = request.into_parts();
    let public = function == "admin" && parts.uri.path() == "/health";
    let principal = if public {
        None
    } else {
        Some(auth::authenticate(&parts.headers, config.jwt_secret.as_deref(), host.now_ms())?)
    };
    let ctx = Ctx { host, config, request_id: request_id.to_string(), principal };
    match function {
        "gateway" => route::handle(&ctx, parts, body).await,
        "chat" => chat::handle(&ctx, parts, body).await,
        "knowledge" => knowledge::handle(&ctx, parts, body).await,
        "admin" => admin::handle(&ctx, parts).await,
        mode if FUNCTIONS.contains(&mode) => Err(ApiError::NotImplemented(mode.to_string())),
        other => Err(ApiError::NotFound(format!("function `{other}`"))),
    }
}
