//! `GET /v1/models` and `GET /v1/models/{id}`: the configured models of each provider and the
//! platform's mode aliases, in OpenAI's list shape.
//!
//! A provider's model is listed as `provider/model`, the name that pins that provider whatever
//! the model's family (a bare name goes by family, so a compatible server's model named bare
//! would go to the first provider instead).

use serde_json::{json, Value};

use opencode_runtime::config::Config;

use crate::error::ApiError;

/// The path of the list; one model is below it.
pub const MODELS: &str = "/v1/models";

/// The aliases that name a mode (or the analyzer's choice) instead of a model, on every
/// vendor's path at the gateway.
const ALIASES: [&str; 7] = [
    "opencode/auto",
    "opencode/chat",
    "opencode/knowledge",
    "opencode/search",
    "opencode/code",
    "opencode/thinking",
    "opencode/research",
];

/// Every model a client can name, with its owner, in the configured order.
fn models(config: &Config) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = ALIASES.iter().map(|alias| ((*alias).to_owned(), "opencode")).collect();
    for (i, provider) in config.chain.iter().enumerate() {
        let more = [config.strong_models.get(i), config.reasoning_models.get(i)];
        for model in std::iter::once(&provider.model).chain(more.into_iter().flatten()) {
            let id = format!("{}/{model}", provider.name);
            if !out.iter().any(|(known, _)| *known == id) {
                out.push((id, provider.name.as_str()));
            }
        }
    }
    out
}

fn model_json(id: &str, owned_by: &str) -> Value {
    // When the model was made is not known here; OpenAI's field is required, so 0.
    json!({ "id": id, "object": "model", "created": 0, "owned_by": owned_by })
}

/// The answer to `GET` on `path` (the list, or one model by its percent-encoded id).
pub fn answer(config: &Config, path: &str) -> Result<Value, ApiError> {
    let models = models(config);
    let Some(id) = path.strip_prefix(MODELS).and_then(|rest| rest.strip_prefix('/')) else {
        let data: Vec<Value> = models.iter().map(|(id, owner)| model_json(id, owner)).collect();
        return Ok(json!({ "object": "list", "data": data }));
    };
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    models.iter().find(|(known, _)| *known == id).map(|(id, owner)| model_json(id, owner)).ok_or_else(|| {
        let shown: String = id.chars().take(128).collect();
        ApiError::UnknownModel(format!("The model `{shown}` does not exist or is not configured"))
    })
}
