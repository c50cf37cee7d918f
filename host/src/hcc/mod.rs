//! The Hierarchical Cognitive Cache: the [`CognitiveCache`] service the host offers plugins as
//! `sophon:host/hcc`.
//!
//! - [`store`]: the SQLite store (event log, phases, knowledge, wisdom), one per workspace;
//! - [`context`]: context assembly under a token budget, with [`tokens`] counting;
//! - [`embed`], [`index`], [`wisdom`]: embeddings and top-k wisdom retrieval;
//! - [`promote`]: the promotion policy's contract and the checks on what it returns;
//! - [`quote`]: wisdom and knowledge quoted as data in prompts (stripped, capped, provenance);
//! - [`sources`]: memory by source run (provenance, listing, deletion);
//! - [`service`]: [`RunHcc`], one run's view, which implements [`CognitiveCache`];
//! - [`simulate`]: a synthetic run for `sophon hcc simulate` and the benchmarks.
//!
//! Scopes are enforced by the runtime before a call reaches the trait.

pub mod config;
pub mod context;
pub mod embed;
pub mod index;
pub mod promote;
pub mod quote;
pub mod schema;
pub mod service;
pub mod simulate;
pub mod sources;
pub mod store;
pub mod tokens;
mod types;
pub mod wisdom;

pub use config::{EmbedderChoice, HccConfig, HccConfigError, HccSettings};
pub use embed::{Embedder, HashedEmbedder, LlmEmbedder};
pub use promote::Promoter;
pub use service::{FinishReport, RunHcc, RunHccError, RunSpec};
pub use store::{HccStore, StoreError};
pub use types::*;
pub use wisdom::{WisdomHit, WisdomRecord};

/// Largest event content or plan the HCC stores, in bytes.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Longest query of a `context` or `search` call, in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Longest event node id, `other` event kind name, or context model name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

use crate::capability::CapResult;

/// The HCC of one run, as seen by one plugin.
#[async_trait::async_trait]
pub trait CognitiveCache: Send + Sync {
    async fn record_event(&self, event: Event) -> CapResult<u64>;
    async fn begin_phase(&self, plan: String) -> CapResult<u32>;
    async fn end_phase(&self) -> CapResult<Option<KnowledgeUnit>>;
    async fn context(&self, request: ContextRequest) -> CapResult<AssembledContext>;
    async fn events(
        &self,
        phase: Option<u32>,
        after: u64,
        limit: u32,
    ) -> CapResult<Vec<StoredEvent>>;
    async fn knowledge(&self) -> CapResult<Vec<KnowledgeUnit>>;
    async fn search(&self, layer: Layer, query: String, k: u32) -> CapResult<Vec<Hit>>;
    async fn stats(&self) -> CapResult<HccStats>;
}
