//! Ingesting, listing, reading and deleting a tenant's documents.

use super::catalog;
use super::codec::{self, Part, StoredChunk};
use super::config::KnowledgeConfig;
use super::store::{self, kv_failed, DocumentMeta, Keys, Manifest, STORE};
use super::KnowledgeError;
use crate::executor::{self, Answered};
use crate::host::Host;
use opencode_core::model::Usage;
use opencode_core::providers::embeddings::{EmbeddingRequest, EmbeddingTask};

/// Most chunks one document may have (a 1 MiB text in 1000-char chunks has ~1200).
pub const MAX_CHUNKS: usize = 5000;
/// Most documents one listing returns.
pub const MAX_LIST: usize = 1000;
/// Metadata larger than this (as JSON) is refused.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// How a document's text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
}

impl Format {
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "text" => Some(Format::Text),
            "markdown" => Some(Format::Markdown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
        }
    }
}

/// A document to ingest, validated.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub id: String,
    pub text: String,
    pub format: Format,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// What an ingest did.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub document: DocumentMeta,
    pub dims: u32,
    /// Whether a document with this id was replaced.
    pub replaced: bool,
    pub usage: Usage,
    pub embedding: Answered,
}

/// Chunks, embeds and stores `doc` for `tenant`, replacing a document with the same id.
/// Nothing is written unless every chunk was embedded.
pub async fn ingest<H: Host>(host: &H, tenant: &str, doc: NewDocument) -> Result<Ingested, KnowledgeError> {
    store::validate_id(&doc.id)?;
    let config = KnowledgeConfig::from_host(host)?;
    let keys = Keys::for_tenant(tenant);
    let embedder = &config.embedder;
    let wanted = store::model_id(&embedder.name, &embedder.model, config.dimensions);
    let manifest: Option<Manifest> = store::get_json(host, &keys.manifest()).await?;
    // An index built with another model can only be rebuilt once it is empty.
    let reusable = match &manifest {
        Some(m) if m.model_id() != wanted => {
            if has_documents(host, &keys).await? {
                return Err(model_conflict(&m.model_id(), &wanted));
            }
            None
        }
        other => other.clone(),
    };

    let texts = super::chunk::chunk(&doc.text, &config.chunking(doc.format == Format::Markdown));
    if texts.is_empty() {
        return Err(KnowledgeError::Invalid("`text` has nothing to index".into()));
    }
    if texts.len() > MAX_CHUNKS {
        return Err(KnowledgeError::Invalid(format!(
            "the document makes {} chunks, more than the {MAX_CHUNKS} allowed: split it",
            texts.len()
        )));
    }
    let request = EmbeddingRequest { inputs: &texts, task: EmbeddingTask::Document, dimensions: config.dimensions };
    let (embeddings, answered) = executor::embed(host, embedder, &request, &config.retry).await?;
    let dims = embeddings.vectors.first().map_or(0, Vec::len);
    let dims = u32::try_from(dims).map_err(|_| KnowledgeError::Invalid("the embedding is too long".into()))?;
    let now = host.now_ms();
    let manifest = match reusable {
        Some(m) if m.dims != dims => {
            return Err(model_conflict(
                &format!("{} ({} dimensions)", m.model_id(), m.dims),
                &format!("{wanted} ({dims} dimensions)"),
            ))
        }
        Some(m) => m,
        None => {
            let m = Manifest {
                provider: embedder.name.clone(),
                model: embedder.model.clone(),
                requested_dimensions: config.dimensions,
                dims,
                created_ms: now,
            };
            store::put_json(host, &keys.manifest(), &m).await?;
            m
        }
    };

    let chunks: Vec<StoredChunk> = texts
        .into_iter()
        .zip(&embeddings.vectors)
        .enumerate()
        .map(|(i, (text, vector))| StoredChunk::new(u32::try_from(i).unwrap_or(u32::MAX), vector, text))
        .collect();
    let chunk_count = chunks.len();
    let parts = pack_parts(&manifest, &doc.id, chunks);
    let previous: Option<DocumentMeta> = store::get_json(host, &keys.document(&doc.id)).await?;
    let part_count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    // The catalog first records every part this document may leave (the old version's too),
    // so that an ingest cut short leaves nothing a delete cannot find.
    let listed = catalog::read(host, &keys).await?.docs.get(&doc.id).copied().unwrap_or(0);
    let old_parts = listed.max(previous.as_ref().map_or(0, |p| p.parts));
    catalog::set(host, &keys, &doc.id, Some(old_parts.max(part_count))).await?;
    // One part after another: a document has few parts, and this keeps the Wasm small.
    for (n, part) in (0u32..).zip(&parts) {
        host.kv_put(STORE, &keys.part(&doc.id, n), codec::encode(part), None).await.map_err(kv_failed)?;
    }
    // A shorter replacement leaves the old document's higher parts behind: remove them.
    for n in part_count..old_parts {
        host.kv_delete(STORE, &keys.part(&doc.id, n)).await.map_err(kv_failed)?;
    }
    let document = DocumentMeta {
        id: doc.id.clone(),
        format: doc.format.as_str().into(),
        metadata: doc.metadata,
        chunks: u32::try_from(chunk_count).unwrap_or(u32::MAX),
        parts: part_count,
        chars: doc.text.chars().count() as u64,
        model: manifest.model_id(),
        created_ms: previous.as_ref().map_or(now, |p| p.created_ms),
        updated_ms: now,
    };
    store::put_json(host, &keys.document(&doc.id), &document).await?;
    catalog::set(host, &keys, &doc.id, Some(part_count)).await?;
    Ok(Ingested { document, dims, replaced: previous.is_some(), usage: embeddings.usage, embedding: answered })
}

pub(super) fn model_conflict(index: &str, configured: &str) -> KnowledgeError {
    KnowledgeError::Conflict(format!(
        "this knowledge base was built with the embedding model {index}, but {configured} is configured: \
         vectors of different models cannot be mixed; restore the configuration, or delete every document first"
    ))
}

/// Groups chunks into parts of at most `PART_BYTES` each.
fn pack_parts(manifest: &Manifest, id: &str, chunks: Vec<StoredChunk>) -> Vec<Part> {
    let header = codec::header_len(id);
    let new_part = || Part {
        model_hash: manifest.model_hash(),
        dims: manifest.dims,
        document_id: id.to_owned(),
        chunks: Vec::new(),
    };
    let mut parts = vec![new_part()];
    let mut size = header;
    for chunk in chunks {
        let len = codec::chunk_len(&chunk);
        if size.saturating_add(len) > store::PART_BYTES && parts.last().is_some_and(|p| !p.chunks.is_empty()) {
            parts.push(new_part());
            size = header;
        }
        size = size.saturating_add(len);
        if let Some(part) = parts.last_mut() {
            part.chunks.push(chunk);
        }
    }
    parts
}

async fn has_documents<H: Host>(host: &H, keys: &Keys) -> Result<bool, KnowledgeError> {
    Ok(!catalog::read(host, keys).await?.docs.is_empty())
}

/// Whether `tenant` has stored any document.
pub async fn tenant_has_documents<H: Host>(host: &H, tenant: &str) -> Result<bool, KnowledgeError> {
    has_documents(host, &Keys::for_tenant(tenant)).await
}

/// A tenant's documents, in id order: at most `limit`, and whether there were more.
pub async fn list<H: Host>(host: &H, tenant: &str, limit: usize) -> Result<(Vec<DocumentMeta>, bool), KnowledgeError> {
    let keys = Keys::for_tenant(tenant);
    let limit = limit.clamp(1, MAX_LIST);
    let catalog = catalog::read(host, &keys).await?;
    let more = catalog.docs.len() > limit;
    let names = catalog.docs.keys().take(limit).map(|id| keys.document(id)).collect();
    let mut documents = Vec::with_capacity(limit.min(catalog.docs.len()));
    for bytes in super::store::get_many(host, names).await? {
        // A document deleted between the catalog's read and this one is simply not listed.
        documents.extend(bytes.and_then(|b| serde_json::from_slice::<DocumentMeta>(&b).ok()));
    }
    Ok((documents, more))
}

/// One document's metadata.
pub async fn get<H: Host>(host: &H, tenant: &str, id: &str) -> Result<DocumentMeta, KnowledgeError> {
    store::validate_id(id)?;
    store::get_json(host, &Keys::for_tenant(tenant).document(id))
        .await?
        .ok_or_else(|| KnowledgeError::NotFound(format!("document `{id}`")))
}

/// Removes a document and its vectors; `NotFound` when there is none.
pub async fn delete<H: Host>(host: &H, tenant: &str, id: &str) -> Result<(), KnowledgeError> {
    let meta = get(host, tenant, id).await?;
    let keys = Keys::for_tenant(tenant);
    // Parts an interrupted ingest may have left beyond the recorded count are in the catalog.
    let listed = catalog::read(host, &keys).await?.docs.get(id).copied().unwrap_or(0);
    // The metadata goes first: from then on the document is gone for get, then for list.
    host.kv_delete(STORE, &keys.document(id)).await.map_err(kv_failed)?;
    catalog::set(host, &keys, id, None).await?;
    for n in 0..meta.parts.max(listed) {
        host.kv_delete(STORE, &keys.part(id, n)).await.map_err(kv_failed)?;
    }
    Ok(())
}
