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

mod chunk;
mod codec;
mod config;
mod index;
mod search;
mod store;

pub use chunk::{chunk, ChunkOptions};
pub use config::KnowledgeConfig;
pub use index::{
    delete, get, ingest, list, tenant_has_documents, Format, Ingested, NewDocument, MAX_LIST, MAX_METADATA_BYTES,
};
pub use search::{retrieve, Hit, Retrieval, MAX_TOP_K};
pub use store::{validate_id, DocumentMeta};
