//! Embeddings: pure translations of the vendors' embedding APIs, like the chat dialects.
//!
//! - OpenAI (and OpenAI-compatible servers under their base URL): `POST {base}/embeddings`
//!   with `{"model", "input": [...], "encoding_format": "float", "dimensions"?}`; the answer
//!   is a `list` of `embedding` objects, each with its `index`, plus `usage.prompt_tokens`.
//! - Gemini: `POST {base}/v1beta/models/{model}:batchEmbedContents` with
//!   `{"requests": [{"model": "models/{model}", "content": {"parts": [{"text"}]}, "taskType"?,
//!   "outputDimensionality"?}]}` and the key in `x-goog-api-key`; the answer is
//!   `{"embeddings": [{"values": [...]}]}` in request order. Gemini reports no token usage here.
//!
//! Vectors come back as `f32`, checked: the count matches the inputs, every vector has the
//! same length, every value is finite.

#[cfg(test)]
mod tests;

use bytes::Bytes;
use http::header::{HeaderName, AUTHORIZATION};
use serde::{Deserialize, Serialize};

use super::{conventions, gemini, ProviderConfig, ProviderError, ProviderKind};
use crate::model::Usage;
use crate::outbound;

/// Most inputs OpenAI takes in one request is 2048; we send fewer so a batch of long chunks
/// stays well under its per-request token limit.
const OPENAI_BATCH: usize = 128;
/// `batchEmbedContents` takes at most 100 requests.
const GEMINI_BATCH: usize = 100;

/// What the vectors will be used for. Gemini tunes the embedding to the task; OpenAI ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingTask {
    /// A stored passage.
    Document,
    /// A question searched against stored passages.
    Query,
}

/// One embedding call: the texts in order, and the dimensions asked for (if any).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingRequest<'a> {
    pub inputs: &'a [String],
    pub task: EmbeddingTask,
    pub dimensions: Option<u32>,
}

/// The vectors, one per input in input order, and the tokens counted (when reported).
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub usage: Usage,
}

/// How many inputs one request may carry for this dialect.
pub fn max_batch(kind: ProviderKind) -> usize {
    match kind {
        ProviderKind::Gemini => GEMINI_BATCH,
        _ => OPENAI_BATCH,
    }
}

/// Whether this dialect has an embedding API the platform speaks.
pub fn supports_embeddings(kind: ProviderKind) -> bool {
    !matches!(kind, ProviderKind::Anthropic)
}

/// Builds the embedding request for `config`'s dialect and model.
pub fn build_request(
    config: &ProviderConfig,
    request: &EmbeddingRequest<'_>,
) -> Result<http::Request<Bytes>, ProviderError> {
    if request.inputs.is_empty() || request.inputs.len() > max_batch(config.kind) {
        return Err(ProviderError::Config(format!("an embedding batch holds 1 to {} inputs", max_batch(config.kind))));
    }
    if config.model.trim().is_empty() {
        return Err(ProviderError::Config(format!("provider {} has no embedding model", config.name)));
    }
    match config.kind {
        ProviderKind::OpenAi | ProviderKind::Compat => openai_request(config, request),
        ProviderKind::Gemini => gemini_request(config, request),
        ProviderKind::Anthropic => Err(ProviderError::Config(
            "anthropic has no embedding api; set EMBEDDING_PROVIDER to openai, gemini or compat".into(),
        )),
    }
}

/// Reads a successful (2xx) embedding response that should hold `expected` vectors.
pub fn parse_response(kind: ProviderKind, body: &[u8], expected: usize) -> Result<Embeddings, ProviderError> {
    let (vectors, usage) = match kind {
        ProviderKind::Gemini => {
            let response: GeminiResponse = conventions::parse_json(body)?;
            let usage = response.usage_metadata.map_or_else(Usage::default, |u| Usage {
                input_tokens: u.prompt_token_count.unwrap_or(0),
                ..Usage::default()
            });
            (response.embeddings.into_iter().map(|e| e.values).collect::<Vec<_>>(), usage)
        }
        _ => {
            let response: OpenAiResponse = conventions::parse_json(body)?;
            let mut data = response.data;
            // `index` says which input a vector belongs to; servers need not keep the order.
            data.sort_by_key(|d| d.index);
            if data.iter().enumerate().any(|(i, d)| d.index != i) {
                return Err(ProviderError::Malformed("embedding indexes are not 0..n".into()));
            }
            let usage =
                Usage { input_tokens: response.usage.and_then(|u| u.prompt_tokens).unwrap_or(0), ..Usage::default() };
            (data.into_iter().map(|d| d.embedding).collect(), usage)
        }
    };
    check(&vectors, expected)?;
    Ok(Embeddings { vectors, usage })
}

fn check(vectors: &[Vec<f32>], expected: usize) -> Result<(), ProviderError> {
    if vectors.len() != expected {
        return Err(ProviderError::Malformed(format!("{} embeddings for {expected} inputs", vectors.len())));
    }
    let dims = vectors.first().map_or(0, Vec::len);
    if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
        return Err(ProviderError::Malformed("embeddings are empty or of different lengths".into()));
    }
    if vectors.iter().flatten().any(|x| !x.is_finite()) {
        return Err(ProviderError::Malformed("an embedding holds a value that is not a finite number".into()));
    }
    Ok(())
}

#[derive(Serialize)]
struct OpenAiRequest<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
}

#[derive(Deserialize)]
struct OpenAiResponse {
    data: Vec<OpenAiEmbedding>,
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiEmbedding {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    prompt_tokens: Option<u64>,
}

fn openai_request(
    config: &ProviderConfig,
    request: &EmbeddingRequest<'_>,
) -> Result<http::Request<Bytes>, ProviderError> {
    let uri = outbound::endpoint(&config.base_url, "embeddings")?;
    let key = match config.kind {
        ProviderKind::Compat => conventions::api_key(config),
        _ => Some(conventions::required_key(config)?),
    };
    let mut headers = Vec::new();
    if let Some(key) = key {
        headers.push((AUTHORIZATION, outbound::secret(&format!("Bearer {key}"))?));
    }
    let body = OpenAiRequest {
        model: &config.model,
        input: request.inputs,
        encoding_format: "float",
        dimensions: request.dimensions,
    };
    Ok(outbound::post_json(uri, headers, &body)?)
}

#[derive(Serialize)]
struct GeminiRequest<'a> {
    requests: Vec<GeminiEmbedRequest<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GeminiEmbedRequest<'a> {
    model: &'a str,
    content: GeminiContent<'a>,
    task_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Serialize)]
struct GeminiContent<'a> {
    parts: [GeminiPart<'a>; 1],
}

#[derive(Serialize)]
struct GeminiPart<'a> {
    text: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiResponse {
    #[serde(default)]
    embeddings: Vec<GeminiEmbedding>,
    usage_metadata: Option<GeminiUsage>,
}

#[derive(Deserialize)]
struct GeminiEmbedding {
    #[serde(default)]
    values: Vec<f32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiUsage {
    prompt_token_count: Option<u64>,
}

fn gemini_request(
    config: &ProviderConfig,
    request: &EmbeddingRequest<'_>,
) -> Result<http::Request<Bytes>, ProviderError> {
    let model = gemini::model_path(&config.model)?;
    let uri = outbound::endpoint(&config.base_url, &format!("v1beta/{model}:batchEmbedContents"))?;
    let headers =
        vec![(HeaderName::from_static("x-goog-api-key"), outbound::secret(conventions::required_key(config)?)?)];
    let task_type = match request.task {
        EmbeddingTask::Document => "RETRIEVAL_DOCUMENT",
        EmbeddingTask::Query => "RETRIEVAL_QUERY",
    };
    let requests = request
        .inputs
        .iter()
        .map(|text| GeminiEmbedRequest {
            model: &model,
            content: GeminiContent { parts: [GeminiPart { text }] },
            task_type,
            output_dimensionality: request.dimensions,
        })
        .collect();
    Ok(outbound::post_json(uri, headers, &GeminiRequest { requests })?)
}
