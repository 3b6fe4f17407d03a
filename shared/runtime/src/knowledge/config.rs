//! The knowledge settings: which provider and model embed, how documents are chunked, and how
//! similar a chunk must be to count as relevant.

use super::chunk::ChunkOptions;
use crate::config::{self, Config, ConfigError};
use crate::executor::RetryPolicy;
use crate::host::Host;
use opencode_core::providers::embeddings::supports_embeddings;
use opencode_core::providers::ProviderConfig;

pub const DEFAULT_CHUNK_CHARS: u64 = 1000;
pub const DEFAULT_CHUNK_OVERLAP: u64 = 150;
/// Cosine similarity below which a chunk is not relevant. Scores depend on the model: 0.2
/// suits OpenAI's text-embedding-3 models (unrelated text mostly scores under 0.15); calibrate
/// it for others with `KNOWLEDGE_MIN_SCORE`.
pub const DEFAULT_MIN_SCORE: f32 = 0.2;
const CHUNK_CHARS: std::ops::RangeInclusive<u64> = 100..=8000;

/// The embedding model per provider when `EMBEDDING_MODEL` is unset.
fn default_model(provider: &str) -> &'static str {
    match provider {
        "gemini" => "gemini-embedding-001",
        "compat" => "nomic-embed-text",
        _ => "text-embedding-3-small",
    }
}

/// Everything the knowledge mode reads from the configuration.
#[derive(Debug, Clone)]
pub struct KnowledgeConfig {
    /// The provider that embeds, its `model` being the embedding model.
    pub embedder: ProviderConfig,
    /// `EMBEDDING_DIMENSIONS`: asked of the provider when set (OpenAI `dimensions`, Gemini
    /// `outputDimensionality`).
    pub dimensions: Option<u32>,
    pub chunk_chars: usize,
    pub chunk_overlap: usize,
    pub min_score: f32,
    pub retry: RetryPolicy,
}

impl KnowledgeConfig {
    #[inline(never)]
    pub fn from_host<H: Host>(host: &H) -> Result<Self, ConfigError> {
        let base = Config::from_host(host)?;
        let not_configured = ConfigError::NotConfigured;
        let mut embedder = match host.var("EMBEDDING_PROVIDER").map(|p| p.trim().to_ascii_lowercase()) {
            Some(name) => {
                let provider = config::provider_named(host, &name).ok_or_else(|| {
                    not_configured(format!(
                        "EMBEDDING_PROVIDER `{name}` is not a configured provider (openai, gemini or compat, with its key or base url)"
                    ))
                })?;
                if !supports_embeddings(provider.kind) {
                    return Err(not_configured(format!("EMBEDDING_PROVIDER `{name}` has no embedding api; use openai, gemini or compat")));
                }
                provider
            }
            None => ["openai", "gemini"]
                .into_iter()
                .find_map(|name| config::provider_named(host, name))
                .ok_or_else(|| {
                    not_configured("no embedding provider: set OPENAI_API_KEY or GEMINI_API_KEY, or EMBEDDING_PROVIDER=compat with COMPAT_BASE_URL".into())
                })?,
        };
        embedder.model = host.var("EMBEDDING_MODEL").unwrap_or_else(|| default_model(&embedder.name).to_string());
        let dimensions =
            match host.var("EMBEDDING_DIMENSIONS") {
                None => None,
                Some(v) => Some(v.trim().parse::<u32>().ok().filter(|d| (1..=8192).contains(d)).ok_or_else(|| {
                    not_configured("EMBEDDING_DIMENSIONS must be a whole number from 1 to 8192".into())
                })?),
            };
        let chunk_chars = config::number(host, "KNOWLEDGE_CHUNK_CHARS", DEFAULT_CHUNK_CHARS)?;
        if !CHUNK_CHARS.contains(&chunk_chars) {
            return Err(not_configured(format!(
                "KNOWLEDGE_CHUNK_CHARS must be from {} to {}",
                CHUNK_CHARS.start(),
                CHUNK_CHARS.end()
            )));
        }
        let chunk_overlap =
            config::number(host, "KNOWLEDGE_CHUNK_OVERLAP", DEFAULT_CHUNK_OVERLAP.min(chunk_chars / 2))?;
        if chunk_overlap > chunk_chars / 2 {
            return Err(not_configured("KNOWLEDGE_CHUNK_OVERLAP must be at most half of KNOWLEDGE_CHUNK_CHARS".into()));
        }
        let min_score = match host.var("KNOWLEDGE_MIN_SCORE") {
            None => DEFAULT_MIN_SCORE,
            Some(v) => opencode_core::decimal(&v)
                .filter(|s| (-1.0..=1.0).contains(s))
                .map(|s| s as f32)
                .ok_or_else(|| not_configured("KNOWLEDGE_MIN_SCORE must be a number from -1 to 1".into()))?,
        };
        Ok(KnowledgeConfig {
            embedder,
            dimensions,
            chunk_chars: chunk_chars as usize,
            chunk_overlap: chunk_overlap as usize,
            min_score,
            retry: base.retry,
        })
    }

    /// The provider that embeds for a client that asked for `model` (OpenAI's embeddings
    /// API): `provider/model` is that provider, which must have an embedding API; a bare name
    /// is a model of the configured embedding provider.
    pub fn embedder_for<H: Host>(&self, host: &H, model: &str) -> Result<ProviderConfig, ConfigError> {
        let (mut provider, model) = match model.split_once('/') {
            Some((name, model)) => {
                let provider =
                    config::provider_named(host, name).filter(|p| supports_embeddings(p.kind)).ok_or_else(|| {
                        ConfigError::UnknownModel(format!(
                            "`{name}` is not a configured provider with an embedding api"
                        ))
                    })?;
                (provider, model)
            }
            None => (self.embedder.clone(), model),
        };
        if model.trim().is_empty() {
            return Err(ConfigError::UnknownModel("the embedding model name is empty".into()));
        }
        model.clone_into(&mut provider.model);
        Ok(provider)
    }

    pub fn chunking(&self, markdown: bool) -> ChunkOptions {
        ChunkOptions { size: self.chunk_chars, overlap: self.chunk_overlap, markdown }
    }
}
