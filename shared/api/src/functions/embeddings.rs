//! `POST /v1/embeddings` (OpenAI's), answered by the gateway: the inputs embedded by the
//! provider the model names, with the embedder the knowledge function uses. (The knowledge
//! function, the largest Wasm, carries none of this endpoint's parsing and rendering.)

use opencode_core::providers::embeddings::{EmbeddingRequest, EmbeddingTask};
use opencode_runtime::executor;
use opencode_runtime::host::{Body, Host};
use opencode_runtime::knowledge;

use super::{Ctx, Handled};
use crate::openai::embeddings;
use crate::web;

/// `POST /v1/embeddings` (OpenAI's): the inputs embedded by the provider the model names.
pub(super) async fn handle<H: Host>(ctx: &Ctx<H>, parts: http::request::Parts, body: Body) -> Handled {
    let bytes = web::read_post(&parts, body, ctx.config.max_body_bytes).await?;
    let ask = embeddings::parse(&parts, &bytes)?;
    let config = knowledge::KnowledgeConfig::from_host(&ctx.host)?;
    let embedder = config.embedder_for(&ctx.host, &ask.model)?;
    let request = EmbeddingRequest { inputs: &ask.inputs, task: EmbeddingTask::Document, dimensions: ask.dimensions };
    ctx.admit_plain().await?;
    let (found, _) = executor::embed(&ctx.host, &embedder, &request, &config.retry).await?;
    Ok(web::json(http::StatusCode::OK, &embeddings::answer(&found.vectors, &found.usage, &embedder.model, ask.base64)))
}
