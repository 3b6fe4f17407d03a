//! Retrieval: embed the question with the index's model, score every stored chunk of the
//! tenant by cosine similarity, keep the best `k` above the relevance threshold.
//!
//! Scaling limit: a search reads every vector part of the tenant (the catalog, then one read
//! per part, eight at a time): about 2–5 KB per stored chunk (1536 int8
//! dimensions plus the text), so a few thousand chunks cost some MB of reads per question.
//! It stops at `MAX_SCAN_PARTS` parts (the rest is not searched and the retrieval says
//! `truncated`). Larger corpora need a vector database (Cloudflare Vectorize).

use serde::Serialize;

use super::catalog;
use super::codec;
use super::config::KnowledgeConfig;
use super::index::model_conflict;
use super::store::{self, Keys, Manifest};
use super::KnowledgeError;
use crate::executor::{self, Answered};
use crate::host::Host;
use crate::trace::SpanGuard;
use opencode_core::model::Usage;
use opencode_core::providers::embeddings::{EmbeddingRequest, EmbeddingTask};
use opencode_core::telemetry::SpanKind;

/// Most vector parts one search reads.
pub const MAX_SCAN_PARTS: usize = 1000;
/// Parts read (and held in memory) at once.
const SCAN_BATCH: usize = 16;
pub const MAX_TOP_K: usize = 20;

/// One retrieved chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub document_id: String,
    pub chunk: u32,
    pub score: f32,
    pub text: String,
}

/// What a search found, and what it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retrieval {
    /// The best chunks at or above `threshold`, best first; empty means nothing relevant.
    pub hits: Vec<Hit>,
    /// The best score seen, relevant or not (`None` when nothing was stored).
    pub top_score: Option<f32>,
    pub threshold: f32,
    /// Chunks compared with the question.
    pub chunks_searched: usize,
    /// Whether parts were left unread (see the module's scaling note).
    pub truncated: bool,
    /// Tokens the question's embedding cost.
    pub usage: Usage,
    /// Who embedded the question (`None` when the knowledge base is empty: no call is made).
    #[serde(skip)]
    pub embedding: Option<Answered>,
}

/// The best `k` (1 to 20) chunks of `tenant`'s knowledge for `question`. Reusable by any mode
/// (the System 2 agent uses it as a tool): configuration comes from `host`.
/// A span of the request.
pub async fn retrieve<H: Host>(host: &H, tenant: &str, question: &str, k: usize) -> Result<Retrieval, KnowledgeError> {
    let span = SpanGuard::start(host, SpanKind::Internal, "knowledge retrieval".to_owned());
    let retrieved = retrieve_unobserved(host, tenant, question, k).await;
    match &retrieved {
        Ok(retrieval) => {
            span.set("opencode.knowledge.chunks_searched", retrieval.chunks_searched as u64);
            span.set("opencode.knowledge.hits", retrieval.hits.len() as u64);
        }
        Err(err) => span.fail("knowledge_error", &err.to_string()),
    }
    retrieved
}

async fn retrieve_unobserved<H: Host>(
    host: &H,
    tenant: &str,
    question: &str,
    k: usize,
) -> Result<Retrieval, KnowledgeError> {
    let config = KnowledgeConfig::from_host(host)?;
    let k = k.clamp(1, MAX_TOP_K);
    let keys = Keys::for_tenant(tenant);
    let mut retrieval = Retrieval {
        hits: Vec::new(),
        top_score: None,
        threshold: config.min_score,
        chunks_searched: 0,
        truncated: false,
        usage: Usage::default(),
        embedding: None,
    };
    let Some(manifest) = store::get_json::<H, Manifest>(host, &keys.manifest()).await? else {
        return Ok(retrieval);
    };
    let embedder = &config.embedder;
    let wanted = store::model_id(&embedder.name, &embedder.model, config.dimensions);
    if manifest.model_id() != wanted {
        return Err(model_conflict(&manifest.model_id(), &wanted));
    }
    let (part_keys, truncated) = catalog::read(host, &keys).await?.part_keys(&keys, MAX_SCAN_PARTS);
    if part_keys.is_empty() {
        return Ok(retrieval);
    }
    retrieval.truncated = truncated;

    let inputs = [question.to_owned()];
    let request = EmbeddingRequest { inputs: &inputs, task: EmbeddingTask::Query, dimensions: config.dimensions };
    let (embeddings, answered) = executor::embed(host, embedder, &request, &config.retry).await?;
    retrieval.usage = embeddings.usage;
    retrieval.embedding = Some(answered);
    let query = normalized(embeddings.vectors.into_iter().next().unwrap_or_default());
    if u32::try_from(query.len()).ok() != Some(manifest.dims) {
        return Err(model_conflict(
            &format!("{} ({} dimensions)", manifest.model_id(), manifest.dims),
            &format!("{wanted} ({} dimensions)", query.len()),
        ));
    }

    let hash = manifest.model_hash();
    let mut best: Vec<Hit> = Vec::with_capacity(k.saturating_add(1));
    // In batches, so that only one batch of parts is in memory at a time.
    let mut pending = part_keys.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<String> = pending.by_ref().take(SCAN_BATCH).collect();
        for read in store::get_many(host, batch).await? {
            // Missing (deleted since the listing) and unreadable parts are skipped, and so
            // are parts of another model (never compared).
            match read.and_then(|bytes| codec::decode(&bytes).ok()) {
                Some(part) if part.model_hash == hash => score(part, &query, k, &mut best, &mut retrieval),
                _ => {}
            }
        }
    }
    retrieval.hits = best;
    Ok(retrieval)
}

/// Scores a part's chunks against `query`, keeping the best `k` at or above the threshold in
/// `best` (best first).
fn score(part: codec::Part, query: &[f32], k: usize, best: &mut Vec<Hit>, retrieval: &mut Retrieval) {
    for chunk in part.chunks {
        retrieval.chunks_searched = retrieval.chunks_searched.saturating_add(1);
        let score = chunk.cosine(query);
        retrieval.top_score = Some(retrieval.top_score.map_or(score, |s| s.max(score)));
        if score < retrieval.threshold || (best.len() == k && best.last().is_some_and(|w| w.score >= score)) {
            continue;
        }
        let hit = Hit { document_id: part.document_id.clone(), chunk: chunk.chunk, score, text: chunk.text };
        let at = best.partition_point(|h| h.score >= score);
        best.insert(at, hit);
        best.truncate(k);
    }
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
