//! The Hierarchical Cognitive Cache: the [`CognitiveCache`] service the host offers plugins as
//! `sophon:host/hcc`.
//!
//! The store (SQLite), context assembly and wisdom retrieval live behind this trait; scopes
//! are enforced by the runtime before a call reaches it.

mod types;

pub use types::*;

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
