//! `POST /v1/embeddings`: OpenAI's embeddings body and answer, over the runtime's embedder.

use ct_codecs::{Base64, Encoder};
use serde::Deserialize;
use serde_json::{json, Value};

use opencode_core::model::Usage;

use crate::error::ApiError;
use crate::web;

/// The path.
pub const EMBEDDINGS: &str = "/v1/embeddings";

/// OpenAI's limit on inputs per request.
const MAX_INPUTS: usize = 2048;

/// An embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsAsk {
    pub inputs: Vec<String>,
    pub model: String,
    /// `encoding_format: "base64"`: each vector as the base64 of its little-endian `f32`s.
    pub base64: bool,
    pub dimensions: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    input: Value,
    model: String,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
    /// Accepted, not stored.
    #[allow(dead_code)]
    user: Option<String>,
}

/// Reads and checks a body.
pub fn parse(parts: &http::request::Parts, bytes: &[u8]) -> Result<EmbeddingsAsk, ApiError> {
    let body: Body = web::parse_json(parts, bytes)?;
    let invalid = |message: &str| ApiError::param("input", message.to_owned());
    let inputs = match body.input {
        Value::String(one) => vec![one],
        Value::Array(list) if list.iter().all(Value::is_string) => {
            list.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        }
        Value::Array(_) => {
            return Err(invalid("`input` must be a string or a list of strings; token arrays are not supported"))
        }
        _ => return Err(invalid("`input` must be a string or a list of strings")),
    };
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(invalid("`input` must hold from 1 to 2048 strings"));
    }
    if inputs.iter().any(|input| input.trim().is_empty()) {
        return Err(invalid("`input` must not contain empty strings"));
    }
    if body.model.trim().is_empty() {
        return Err(ApiError::param("model", "`model` is required".into()));
    }
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::param("encoding_format", "`encoding_format` must be `float` or `base64`".into()))
        }
    };
    if body.dimensions.is_some_and(|d| !(1..=8192).contains(&d)) {
        return Err(ApiError::param("dimensions", "`dimensions` must be from 1 to 8192".into()));
    }
    Ok(EmbeddingsAsk { inputs, model: body.model, base64, dimensions: body.dimensions })
}

/// The answer: a `list` of `embedding` objects in input order, the model and the usage.
pub fn answer(vectors: &[Vec<f32>], usage: &Usage, model: &str, base64: bool) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 { json!(encode(vector)) } else { json!(vector) };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens },
    })
}

/// A vector as the SDKs decode `base64`: its `f32`s, little-endian, in base64.
fn encode(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    // Encoding only fails when the output length overflows, which a vector cannot reach.
    Base64::encode_to_string(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn base64_vectors_are_little_endian_f32s() {
        // 1.0 = 0x3f800000, -2.0 = 0xc0000000, little-endian.
        assert_eq!(encode(&[1.0, -2.0]), "AACAPwAAAMA=");
        let answer = answer(&[vec![1.0, -2.0]], &Usage { input_tokens: 3, ..Usage::default() }, "m", true);
        assert_eq!(answer["data"][0], json!({"object": "embedding", "index": 0, "embedding": "AACAPwAAAMA="}));
        assert_eq!(answer["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    }
}
