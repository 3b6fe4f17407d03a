//! Embeddings: OpenAI `POST {prefix}/v1/embeddings` and Gemini `models/{model}:embedContent`
//! / `:batchEmbedContents`, in the vendors' JSON.
//!
//! The vectors are deterministic and carry enough meaning for retrieval tests: a hashed bag of
//! words. Text is lower-cased and cut into word tokens (letters and digits) and, for Chinese,
//! Japanese and Korean, into character bigrams; a short list of English stop words is left
//! out, and a plural `s` (`ies` → `y`) is stripped so `lasts` meets `last`. Each token adds ±1 at the dimension its FNV-1a hash picks, and the vector is
//! L2-normalized. Texts sharing words therefore score a higher cosine than unrelated texts,
//! which score near 0. Directives (`sim:...`) are removed before hashing.

use serde_json::{json, Value};

use crate::faults;
use crate::wire::{self, ErrorReply};
use crate::{gemini, openai};

/// OpenAI's text-embedding-3-small and ada-002 size; text-embedding-3-large is 3072.
const OPENAI_DIMS: usize = 1536;
/// gemini-embedding-001's default size; the older text-embedding-004 is 768.
const GEMINI_DIMS: usize = 3072;
const MAX_DIMS: u64 = 8192;
const OPENAI_MAX_INPUTS: usize = 2048;
const GEMINI_MAX_BATCH: usize = 100;

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "did", "do", "does", "for", "from", "how", "i", "in", "is",
    "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which", "who", "why",
    "with", "you", "your",
];

/// One embedding request, vendor-neutral.
#[derive(Debug, Clone)]
pub(crate) struct EmbedCall {
    pub model: String,
    pub inputs: Vec<String>,
    /// Dimensions per input.
    pub dims: Vec<usize>,
}

impl EmbedCall {
    /// The inputs with directives removed, for the `*K` counters.
    pub fn text(&self) -> String {
        faults::strip(&self.inputs.join(" ")).chars().take(200).collect()
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF | 0x20000..=0x2FA1F)
}

/// Word tokens and CJK bigrams of `text`, stop words left out.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    let text = faults::strip(text).to_lowercase();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() && !STOP_WORDS.contains(&word.as_str()) {
            out.push(stem(std::mem::take(word)));
        }
        word.clear();
    };
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        match run.len() {
            0 => {}
            1 => out.extend(run.first().map(char::to_string)),
            _ => out.extend(run.windows(2).map(|w| w.iter().collect::<String>())),
        }
        run.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            run.push(c);
        } else if c.is_alphanumeric() {
            flush_run(&mut run, &mut out);
            word.push(c);
        } else {
            flush_word(&mut word, &mut out);
            flush_run(&mut run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_run(&mut run, &mut out);
    out
}

/// Plurals to singular, crudely: `batteries` → `battery`, `lasts` → `last` (not `glass`).
fn stem(word: String) -> String {
    let n = word.chars().count();
    if n > 4 && word.ends_with("ies") {
        return format!("{}y", word.trim_end_matches("ies"));
    }
    if n > 3 && word.ends_with('s') && !word.ends_with("ss") {
        return word.trim_end_matches('s').to_owned();
    }
    word
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The unit vector of `text` in `dims` dimensions.
pub(crate) fn vector(text: &str, dims: usize) -> Vec<f32> {
    let dims = dims.max(1);
    let mut v = vec![0f32; dims];
    let mut add = |token: &str| {
        let h = fnv1a(token.as_bytes());
        let i = usize::try_from(h % dims as u64).unwrap_or(0);
        if let Some(x) = v.get_mut(i) {
            *x += if h >> 63 == 0 { 1.0 } else { -1.0 };
        }
    };
    let tokens = tokens(text);
    if tokens.is_empty() {
        // Real models never answer with a zero vector.
        add("");
    }
    tokens.iter().for_each(|t| add(t));
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else if let Some(x) = v.first_mut() {
        *x = 1.0;
    }
    v
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn bad(message: &str) -> ErrorReply {
    openai::error(400, message, "invalid_request_error", None, None)
}

/// Reads an OpenAI `/embeddings` body; rejects what OpenAI rejects.
pub(crate) fn openai_call(label: &str, body: &Value) -> Result<EmbedCall, ErrorReply> {
    let model = body.get("model").and_then(Value::as_str).unwrap_or_default();
    if model.is_empty() {
        return Err(bad("you must provide a model parameter"));
    }
    let inputs: Vec<String> =
        match body.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) if !items.is_empty() => {
                let texts: Option<Vec<String>> = items.iter().map(|i| i.as_str().map(str::to_owned)).collect();
                texts.ok_or_else(|| bad("'$.input' is invalid: provider-sim takes strings only."))?
            }
            _ => return Err(bad(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            )),
        };
    if inputs.len() > OPENAI_MAX_INPUTS {
        return Err(bad("'$.input' is invalid: an array must be 2048 dimensions or less."));
    }
    if inputs.iter().any(String::is_empty) {
        return Err(bad("'$.input' is invalid: an input cannot be an empty string."));
    }
    match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => {}
        Some(_) => return Err(bad("provider-sim answers encoding_format float only.")),
    }
    let dims = match body.get("dimensions") {
        None | Some(Value::Null) => {
            if model.contains("large") {
                3072
            } else {
                OPENAI_DIMS
            }
        }
        Some(d) => {
            if label == "openai" && !model.starts_with("text-embedding-3") {
                return Err(bad("This model does not support specifying dimensions."));
            }
            let d = d
                .as_u64()
                .filter(|d| (1..=MAX_DIMS).contains(d))
                .ok_or_else(|| bad("'dimensions' must be at least 1."))?;
            usize::try_from(d).unwrap_or(OPENAI_DIMS)
        }
    };
    Ok(EmbedCall { model: model.to_owned(), dims: vec![dims; inputs.len()], inputs })
}

pub(crate) fn openai_response(call: &EmbedCall) -> Value {
    let data: Vec<Value> = call
        .inputs
        .iter()
        .zip(&call.dims)
        .enumerate()
        .map(|(i, (text, &dims))| json!({"object": "embedding", "index": i, "embedding": vector(text, dims)}))
        .collect();
    let tokens: u64 = call.inputs.iter().map(|t| words(t)).sum();
    json!({"object": "list", "data": data, "model": call.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

fn invalid(message: &str) -> ErrorReply {
    gemini::error(400, "INVALID_ARGUMENT", message)
}

/// One `EmbedContentRequest`: its text and dimensions.
fn gemini_one(request: &Value, default_dims: usize) -> Result<(String, usize), ErrorReply> {
    let text = request.get("content").and_then(|c| c.get("parts")).map(wire::content_text).unwrap_or_default();
    if text.is_empty() {
        return Err(invalid("* EmbedContentRequest.content: contents must not be empty"));
    }
    let dims = match request.get("outputDimensionality") {
        None | Some(Value::Null) => default_dims,
        Some(d) => {
            let d = d
                .as_u64()
                .filter(|d| (1..=MAX_DIMS).contains(d))
                .ok_or_else(|| invalid("outputDimensionality must be positive"))?;
            usize::try_from(d).unwrap_or(default_dims)
        }
    };
    Ok((text, dims))
}

/// Reads a Gemini `embedContent` (one) or `batchEmbedContents` (many) body for `model`.
pub(crate) fn gemini_call(model: &str, batch: bool, body: &Value) -> Result<EmbedCall, ErrorReply> {
    let default_dims = if model.contains("text-embedding-004") || model == "embedding-001" { 768 } else { GEMINI_DIMS };
    let requests: Vec<&Value> = if batch {
        let list = body.get("requests").and_then(Value::as_array).filter(|l| !l.is_empty());
        let list = list.ok_or_else(|| invalid("* BatchEmbedContentsRequest.requests: requests must not be empty"))?;
        if list.len() > GEMINI_MAX_BATCH {
            return Err(invalid("* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch"));
        }
        let path = format!("models/{model}");
        if list.iter().any(|r| r.get("model").and_then(Value::as_str) != Some(path.as_str())) {
            return Err(invalid(&format!(
                "* BatchEmbedContentsRequest.requests[].model: every request's model must be {path}"
            )));
        }
        list.iter().collect()
    } else {
        vec![body]
    };
    let mut call = EmbedCall { model: model.to_owned(), inputs: Vec::new(), dims: Vec::new() };
    for request in requests {
        let (text, dims) = gemini_one(request, default_dims)?;
        call.inputs.push(text);
        call.dims.push(dims);
    }
    Ok(call)
}

pub(crate) fn gemini_response(call: &EmbedCall, batch: bool) -> Value {
    let mut vectors = call.inputs.iter().zip(&call.dims).map(|(text, &dims)| json!({"values": vector(text, dims)}));
    if batch {
        json!({"embeddings": vectors.collect::<Vec<_>>()})
    } else {
        json!({"embedding": vectors.next().unwrap_or(Value::Null)})
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn shared_words_score_higher_than_unrelated_text() {
        let chunk = vector("The warranty covers the battery for two years after purchase.", 1536);
        let question = vector("How long does the battery warranty last?", 1536);
        let unrelated = vector("Sourdough bread needs a mature starter and a slow proof.", 1536);
        assert!(cosine(&chunk, &question) > 0.3, "{}", cosine(&chunk, &question));
        assert!(cosine(&unrelated, &question).abs() < 0.15);
        assert!((cosine(&chunk, &chunk) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn chinese_is_compared_by_character_bigrams() {
        assert_eq!(tokens("知识库，検索"), vec!["知识", "识库", "検索"]);
        assert_eq!(tokens("The batteries lasts; glass"), vec!["battery", "last", "glass"]);
        let doc = vector("退货政策：商品在三十天内可以退货。", 256);
        let question = vector("退货政策是什么？", 256);
        let other = vector("火车明天早上八点出发。", 256);
        assert!(cosine(&doc, &question) > cosine(&other, &question) + 0.2);
    }

    #[test]
    fn vectors_are_deterministic_unit_length_and_never_zero() {
        assert_eq!(vector("same text", 64), vector("same text", 64));
        for text in ["", "the of and", "sim:openai:status=500 hello"] {
            let v = vector(text, 64);
            assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5, "{text:?}");
        }
        assert_eq!(vector("sim:openai:status=500 hello", 64), vector("hello", 64));
    }
}
