//! Text embeddings for wisdom retrieval and HCC search.
//!
//! Two embedders ship:
//! - [`HashedEmbedder`], the offline default: **not a language model**. It hashes the
//!   lower-cased words and word pairs of a text into 256 signed buckets (feature hashing),
//!   weights each by `1 + ln(count)` and L2-normalises. Similar wording gives similar vectors;
//!   synonyms do not. Deterministic across machines and versions (its id names the scheme).
//! - [`LlmEmbedder`]: any OpenAI-compatible `/v1/embeddings` endpoint through the `llm`
//!   capability.
//!
//! Vectors carry their embedder's [`Embedder::id`]; the store never compares vectors of
//! different ids.

use crate::capability::{CapResult, CapabilityError};
use crate::llm::hub::LlmHub;
use std::sync::Arc;

/// Turns texts into unit vectors.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// Names the vector space: same id, comparable vectors.
    fn id(&self) -> String;
    /// One vector per text, in order, each L2-normalised (zero vectors stay zero).
    async fn embed(&self, texts: &[String]) -> CapResult<Vec<Vec<f32>>>;
}

/// Dimensions of [`HashedEmbedder`] vectors.
pub const HASHED_DIMS: usize = 256;

/// The offline embedder: feature-hashed word unigrams and bigrams.
#[derive(Clone, Copy, Debug, Default)]
pub struct HashedEmbedder;

impl HashedEmbedder {
    pub const ID: &'static str = "hashed-tf-256-v1";

    /// The vector of one text (synchronous: it is pure arithmetic).
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let words: Vec<String> = words(text).collect();
        let mut counts = std::collections::HashMap::<u64, u32>::new();
        for (i, word) in words.iter().enumerate() {
            *counts.entry(fnv1a(word.as_bytes())).or_default() += 1;
            if let Some(next) = words.get(i + 1) {
                let pair = format!("{word} {next}");
                *counts.entry(fnv1a(pair.as_bytes())).or_default() += 1;
            }
        }
        let mut vector = vec![0f32; HASHED_DIMS];
        for (hash, count) in counts {
            let bucket = (hash % HASHED_DIMS as u64) as usize;
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            vector[bucket] += sign * (1.0 + (count as f32).ln());
        }
        normalize(&mut vector);
        vector
    }
}

#[async_trait::async_trait]
impl Embedder for HashedEmbedder {
    fn id(&self) -> String {
        Self::ID.to_string()
    }

    async fn embed(&self, texts: &[String]) -> CapResult<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

/// Embeddings from an LLM provider's OpenAI-compatible embeddings endpoint.
pub struct LlmEmbedder {
    hub: Arc<LlmHub>,
    alias: Option<String>,
    id: String,
}

impl LlmEmbedder {
    /// Embeds through provider `alias` (the hub's default when `None`). Fails when the hub
    /// has no such provider.
    pub fn new(hub: Arc<LlmHub>, alias: Option<String>) -> CapResult<LlmEmbedder> {
        let id = format!("llm:{}", hub.embedding_identity(alias.as_deref())?);
        Ok(LlmEmbedder { hub, alias, id })
    }
}

#[async_trait::async_trait]
impl Embedder for LlmEmbedder {
    fn id(&self) -> String {
        self.id.clone()
    }

    async fn embed(&self, texts: &[String]) -> CapResult<Vec<Vec<f32>>> {
        let mut vectors = self
            .hub
            .embed(texts.to_vec(), self.alias.as_deref())
            .await?;
        if vectors.len() != texts.len() {
            return Err(CapabilityError::MalformedReply(format!(
                "the embeddings endpoint returned {} vectors for {} inputs",
                vectors.len(),
                texts.len()
            )));
        }
        let dims = vectors.first().map_or(0, Vec::len);
        if vectors.iter().any(|v| v.len() != dims || v.is_empty()) {
            return Err(CapabilityError::MalformedReply(
                "the embeddings endpoint returned vectors of differing or zero length".into(),
            ));
        }
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }
}

/// Scale `v` to unit length (a zero or non-finite vector becomes all zeros).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm.is_finite() && norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v.iter_mut().for_each(|x| *x = 0.0);
    }
}

/// Cosine similarity of two unit vectors (0 when their lengths differ).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its",
    "of", "on", "or", "that", "the", "this", "to", "was", "were", "will", "with",
];

/// Lower-cased alphanumeric words, without stop words, single letters or bare numbers.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1 && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
}

/// 64-bit FNV-1a: stable across platforms and releases (vectors are stored).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_descriptions_score_higher_than_unrelated_ones() {
        let e = HashedEmbedder;
        let tabular = e.vector("tabular binary classification, roc-auc, passengers transported");
        let tabular2 = e.vector("tabular binary classification with accuracy on passenger data");
        let images = e.vector("image segmentation of cells, dice coefficient");
        assert!(cosine(&tabular, &tabular2) > 0.3);
        assert!(cosine(&tabular, &tabular2) > cosine(&tabular, &images) + 0.2);
        assert!((cosine(&tabular, &tabular) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn vectors_are_stable_and_unit_length() {
        let v = HashedEmbedder.vector("LightGBM beats logistic regression");
        assert_eq!(v.len(), HASHED_DIMS);
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        // Pinned: a change to the scheme must change `HashedEmbedder::ID`.
        assert_eq!(fnv1a(b"lightgbm"), 0xcfc3_1736_00c0_f419);
        assert!(
            HashedEmbedder
                .vector("the a of 123")
                .iter()
                .all(|x| *x == 0.0)
        );
    }
}
