//! [`Provider`]: one LLM backend (an OpenAI-compatible endpoint, the embedded local server).
//!
//! A provider only talks to its model: retries and timeouts are its business; budgets, caching,
//! cassettes, prices and accounting are the [`super::hub::LlmHub`]'s. Every method is
//! cancel-safe: dropping the future abandons the HTTP request.

use super::types::{ChatRequest, Completion, ModelInfo};
use crate::capability::CapResult;

/// A piece of a reply as it streams in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta<'a> {
    Text(&'a str),
    Reasoning(&'a str),
}

/// Receives streamed pieces (for progress displays and `sophon llm chat`).
pub type DeltaSink<'a> = &'a (dyn Fn(Delta<'_>) + Send + Sync);

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The model behind this provider (its `alias` is the provider's name).
    fn model_info(&self) -> ModelInfo;

    /// What identifies this provider's answers for caching: endpoint and model.
    fn cache_identity(&self) -> String;

    /// What identifies this provider's embeddings: vectors with different identities live in
    /// different spaces and are never compared or served from each other's cache.
    fn embedding_identity(&self) -> String {
        self.cache_identity()
    }

    /// The model its embeddings come from (priced by this name).
    fn embedding_model(&self) -> String {
        self.model_info().name
    }

    /// One chat call. `usage.cost_usd` and `usage.cache_hit` are left for the caller.
    async fn chat(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> CapResult<Completion>;

    /// One embedding per input, in order.
    async fn embed(&self, inputs: &[String]) -> CapResult<Vec<Vec<f32>>>;
}
