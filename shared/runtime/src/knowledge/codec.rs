//! The binary format of a stored vector part: some of one document's chunks, each with its
//! quantized embedding and its text.
//!
//! Why int8 with a per-vector scale: JSON floats cost ~10 bytes a value and a parse; f32 costs
//! 4; symmetric int8 (`q = round(x / scale)`, `scale = max|x| / 127`) costs 1, so a
//! 1536-dimension vector is 1.5 KiB and one Spin value (≤ 1 MB) holds a couple of hundred
//! chunks with their text. Ranking only needs cosine similarity, which the scale cancels out
//! of; the rounding moves a cosine by about 1e-3 (tested), far less than the distance between
//! a relevant chunk and an unrelated one. The scale is stored anyway so that vectors can be
//! restored (for example to move an index to Vectorize).
//!
//! Layout, little-endian:
//!
//! ```text
//! "OCK1" | model hash [8] | dims u32 | count u32 | id_len u8 | document id
//! then count × ( chunk u32 | scale f32 | dims × i8 | text_len u32 | text (UTF-8) )
//! ```
//!
//! The model hash identifies the embedding model (provider, model, dimensions): a part made by
//! another model is never compared with a question embedded by this one.

const MAGIC: &[u8; 4] = b"OCK1";

/// One stored chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    /// The chunk's number within its document, from 0.
    pub chunk: u32,
    pub scale: f32,
    pub vector: Vec<i8>,
    pub text: String,
}

impl StoredChunk {
    /// Quantizes `vector` (any length, finite values).
    pub fn new(chunk: u32, vector: &[f32], text: String) -> Self {
        let max = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        let vector = vector.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect();
        StoredChunk { chunk, scale, vector, text }
    }

    /// The vector as stored, back in floats (for moving an index elsewhere; tests use it now).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn restore(&self) -> Vec<f32> {
        self.vector.iter().map(|&q| f32::from(q) * self.scale).collect()
    }

    /// Cosine similarity with a unit-length `query` of the same dimensions (0 for a zero
    /// vector or a length mismatch).
    pub fn cosine(&self, query: &[f32]) -> f32 {
        if query.len() != self.vector.len() {
            return 0.0;
        }
        let (mut dot, mut norm) = (0f32, 0f32);
        for (&q, &x) in self.vector.iter().zip(query) {
            let q = f32::from(q);
            dot += q * x;
            norm += q * q;
        }
        if norm > 0.0 {
            dot / norm.sqrt()
        } else {
            0.0
        }
    }

    fn encoded_len(&self) -> usize {
        // chunk, scale and text_len, then the vector and the text.
        self.vector.len().saturating_add(self.text.len()).saturating_add(4 + 4 + 4)
    }
}

/// One stored part.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub model_hash: [u8; 8],
    pub dims: u32,
    pub document_id: String,
    pub chunks: Vec<StoredChunk>,
}

/// Why a stored value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored vector part is corrupt: {0}")]
pub struct CorruptPart(&'static str);

/// The bytes of a part header for `document_id`.
pub fn header_len(document_id: &str) -> usize {
    document_id.len().saturating_add(4 + 8 + 4 + 4 + 1)
}

/// Bytes `chunk` adds to a part.
pub fn chunk_len(chunk: &StoredChunk) -> usize {
    chunk.encoded_len()
}

/// Encodes a part. Document ids are at most 255 bytes (they are validated far shorter).
#[inline(never)]
pub fn encode(part: &Part) -> Vec<u8> {
    let id = part.document_id.as_bytes();
    let id = id.get(..id.len().min(255)).unwrap_or_default();
    let body = part.chunks.iter().fold(0usize, |n, chunk| n.saturating_add(chunk.encoded_len()));
    let mut out = Vec::with_capacity(header_len(&part.document_id).saturating_add(body));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&part.model_hash);
    out.extend_from_slice(&part.dims.to_le_bytes());
    out.extend_from_slice(&u32::try_from(part.chunks.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(id);
    for chunk in &part.chunks {
        out.extend_from_slice(&chunk.chunk.to_le_bytes());
        out.extend_from_slice(&chunk.scale.to_le_bytes());
        out.extend(chunk.vector.iter().map(|&q| q as u8));
        out.extend_from_slice(&u32::try_from(chunk.text.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(chunk.text.as_bytes());
    }
    out
}

/// Reads a part, refusing anything malformed instead of panicking.
#[inline(never)]
pub fn decode(bytes: &[u8]) -> Result<Part, CorruptPart> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4)? != MAGIC {
        return Err(CorruptPart("unknown format"));
    }
    let mut model_hash = [0u8; 8];
    model_hash.copy_from_slice(r.take(8)?);
    let dims = r.u32()?;
    let count = r.u32()?;
    let id_len = usize::from(r.take(1)?.first().copied().unwrap_or(0));
    let document_id = String::from_utf8(r.take(id_len)?.to_vec()).map_err(|_| CorruptPart("document id"))?;
    let dims_len = usize::try_from(dims).map_err(|_| CorruptPart("dims"))?;
    // Never trust a count for an allocation: each chunk takes at least 12 bytes + dims.
    // (On 32-bit Wasm, dims near u32::MAX would overflow that.)
    let chunk_min = dims_len.checked_add(12).ok_or(CorruptPart("dims"))?;
    let max_count = r.remaining().checked_div(chunk_min).unwrap_or(0);
    let count = usize::try_from(count).map_err(|_| CorruptPart("count"))?;
    if count > max_count {
        return Err(CorruptPart("count larger than the value"));
    }
    let mut chunks = Vec::with_capacity(count);
    for _ in 0..count {
        let chunk = r.u32()?;
        let scale = f32::from_le_bytes(r.array()?);
        let vector = r.take(dims_len)?.iter().map(|&b| b as i8).collect();
        let text_len = usize::try_from(r.u32()?).map_err(|_| CorruptPart("text length"))?;
        let text = String::from_utf8(r.take(text_len)?.to_vec()).map_err(|_| CorruptPart("text"))?;
        chunks.push(StoredChunk { chunk, scale, vector, text });
    }
    if r.remaining() != 0 {
        return Err(CorruptPart("trailing bytes"));
    }
    Ok(Part { model_hash, dims, document_id, chunks })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptPart> {
        let end = self.pos.checked_add(n).ok_or(CorruptPart("length"))?;
        let slice = self.bytes.get(self.pos..end).ok_or(CorruptPart("truncated"))?;
        self.pos = end;
        Ok(slice)
    }

    fn array(&mut self) -> Result<[u8; 4], CorruptPart> {
        let mut out = [0u8; 4];
        out.copy_from_slice(self.take(4)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, CorruptPart> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A deterministic pseudo-random unit vector.
    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 20_000) as f32 / 10_000.0 - 1.0
            })
            .collect();
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= norm);
        v
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    }

    #[test]
    fn a_part_round_trips_with_unicode_text() {
        let part = Part {
            model_hash: *b"12345678",
            dims: 4,
            document_id: "doc-1".into(),
            chunks: vec![
                StoredChunk::new(0, &[0.5, -0.5, 0.25, 0.0], "第一块 text".into()),
                StoredChunk::new(7, &[0.0, 0.0, 0.0, 0.0], String::new()),
            ],
        };
        let bytes = encode(&part);
        assert_eq!(bytes.len(), header_len("doc-1") + part.chunks.iter().map(chunk_len).sum::<usize>());
        assert_eq!(decode(&bytes).unwrap(), part);
        assert_eq!(part.chunks[0].vector, vec![127, -127, 64, 0]);
        assert_eq!(part.chunks[1].cosine(&[1.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn quantization_keeps_cosines_within_a_hundredth_and_the_ranking() {
        let dims = 1536;
        let query = unit(1, dims);
        let stored: Vec<StoredChunk> = (2..40)
            .map(|s| {
                // Mix the query in so that similarities spread over a useful range.
                let mut v = unit(s, dims);
                v.iter_mut().zip(&query).for_each(|(a, q)| *a += q * (s as f32 / 40.0));
                StoredChunk::new(s as u32, &v, String::new())
            })
            .collect();
        for chunk in &stored {
            let exact = cosine(&chunk.restore(), &query);
            let raw: Vec<f32> = {
                let mut v = unit(u64::from(chunk.chunk), dims);
                v.iter_mut().zip(&query).for_each(|(a, q)| *a += q * (chunk.chunk as f32 / 40.0));
                v
            };
            assert!((chunk.cosine(&query) - cosine(&raw, &query)).abs() < 0.01, "chunk {}", chunk.chunk);
            assert!((chunk.cosine(&query) - exact).abs() < 1e-4);
        }
        let mut ranked: Vec<_> = stored.iter().map(|c| (c.cosine(&query), c.chunk)).collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(ranked[0].1, 39);
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let part = Part {
            model_hash: [0; 8],
            dims: 3,
            document_id: "d".into(),
            chunks: vec![StoredChunk::new(0, &[1.0, 0.0, 0.0], "abc".into())],
        };
        let bytes = encode(&part);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        let mut huge_count = bytes.clone();
        huge_count[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge_count).is_err());
        let mut bad_utf8 = bytes;
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert!(decode(&bad_utf8).is_err());
        assert!(decode(b"JSON{}").is_err());
    }

    #[test]
    fn the_largest_dimension_count_is_an_error() {
        // 12 + dims overflows where usize is 32 bits (Wasm); here it is only too large.
        let mut bytes = encode(&Part { model_hash: [0; 8], dims: 0, document_id: "d".into(), chunks: Vec::new() });
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes[16..20].copy_from_slice(&1u32.to_le_bytes());
        assert!(decode(&bytes).is_err());
    }
}
