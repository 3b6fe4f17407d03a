//! Knowledge: retrieval-augmented answers over documents a tenant ingested.
//!
//! A document is split into overlapping chunks (`chunk`), each chunk embedded by ONE
//! configured embedding model (`config`, through `executor::embed`), and stored with its
//! int8-quantized vector in the `data` KV store (`codec`, `store`). A question is embedded
//! with the same model and compared with every chunk of the tenant (`search`); the best few
//! above a relevance threshold become numbered sources for the answer. Everything is per
//! tenant (the JWT's `tenant` claim); one tenant never reads another's keys.
//!
//! What it is not: a vector database. Search is a linear scan, fine for thousands of chunks
//! per tenant (see `search` for the limit). Cloudflare Vectorize is not used yet.

mod catalog;
mod chunk;
mod codec;
mod config;
mod index;
mod search;
mod store;

pub use catalog::{revision, MAX_DOCUMENTS};
pub use chunk::{chunk, ChunkOptions};
pub use config::KnowledgeConfig;
pub use index::{
    delete, get, ingest, list, tenant_has_documents, Format, Ingested, NewDocument, MAX_LIST, MAX_METADATA_BYTES,
};
pub use search::{retrieve, Hit, Retrieval, MAX_TOP_K};
pub use store::{validate_id, DocumentMeta};

use crate::config::ConfigError;
use crate::executor::ProvidersFailed;

/// What can go wrong with a tenant's knowledge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnowledgeError {
    /// The document or question cannot be indexed or answered as given.
    #[error("{0}")]
    Invalid(String),
    /// No such document.
    #[error("{0}")]
    NotFound(String),
    /// The index was built with another embedding model than the one configured.
    #[error("{0}")]
    Conflict(String),
    /// The KV store failed.
    #[error("the knowledge store failed: {0}")]
    Store(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The embedding provider failed (retried, never a fallback: see `executor::embed`).
    #[error(transparent)]
    Embedding(#[from] ProvidersFailed),
}
