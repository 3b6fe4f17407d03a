//! The seed's documents at the gateway ([`crate::seed::documents`]): an upload is read here and
//! indexed by the knowledge function, on the caller's behalf and with errors in the seed's shape.

use bytes::Bytes;

use super::dialect::DIALECT_HEADER;
use super::{gateway, Ctx, Handled};
use crate::error::ApiError;
use crate::seed::documents::{self, STATUS, UPLOAD};
use crate::web;
use opencode_runtime::host::{Body, Host};

pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&http::Method::POST, UPLOAD) => {
            let bytes = web::read_body(&parts, body, ctx.config.max_body_bytes).await?;
            let upload = documents::read_upload(&parts, &bytes)?;
            let mut random = [0u8; 12];
            ctx.host.random_bytes(&mut random);
            let task_id = format!("upload-{}", opencode_core::hex(&random));
            let body = documents::document(&task_id, &upload);
            let indexed = knowledge(ctx, &parts, http::Method::POST, "/v1/knowledge/documents", body).await?;
            if !indexed.status().is_success() {
                return Ok(indexed);
            }
            Ok(web::json(http::StatusCode::OK, &documents::uploaded(&task_id, &upload.filename)))
        }
        (&http::Method::GET, _) if path.starts_with(STATUS) => {
            let task_id = path.get(STATUS.len()..).unwrap_or_default();
            opencode_runtime::knowledge::validate_id(task_id)?;
            let path = format!("/v1/knowledge/documents/{task_id}");
            let found = knowledge(ctx, &parts, http::Method::GET, &path, Bytes::new()).await?;
            if !found.status().is_success() {
                return Ok(found);
            }
            Ok(web::json(http::StatusCode::OK, &documents::completed(task_id)))
        }
        (method, _) => Err(ApiError::MethodNotAllowed { method: method.to_string(), path: path.to_owned() }),
    }
}

/// Calls the knowledge function as the caller, asking for errors in the seed's shape (they pass
/// through as they come).
async fn knowledge<H: Host>(
    ctx: &Ctx<H>,
    parts: &http::request::Parts,
    method: http::Method,
    path: &str,
    body: Bytes,
) -> Handled {
    let mut request = gateway::on_behalf(&parts.headers, &ctx.request_id, path, None, body)?;
    *request.method_mut() = method;
    request.headers_mut().insert(DIALECT_HEADER, http::HeaderValue::from_static("seed"));
    gateway::call(&ctx.host, "knowledge", request).await
}
