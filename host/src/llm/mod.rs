//! LLM access: the [`LanguageModel`] service the host offers plugins as `sophon:host/llm`.
//!
//! Backends (OpenAI-compatible providers, the embedded local model), retries, caching and
//! budgets live behind this trait; the runtime only adapts it to WIT.

pub mod budget;
pub mod cache;
pub mod cassette;
pub mod config;
pub mod count;
pub mod hub;
pub mod limits;
pub mod local;
pub mod openai;
pub mod provider;
pub mod retry;
pub mod template;
mod types;

pub use types::*;

use crate::capability::CapResult;
use crate::capability::work::Cancel;

/// A language-model service scoped to one plugin: its grants, budget and default model.
///
/// Implementations enforce the plugin's budget (refusing with `budget-exhausted` before a call
/// that would exceed it), refuse oversized input with `too-large` before doing any work on it
/// (see [`limits`]) and never panic on a bad provider reply (that is `malformed-reply`).
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// Ask and wait for the reply.
    async fn chat(&self, request: ChatRequest) -> CapResult<Completion>;

    /// Check that `request` may be sent now (grants, budget), before it is started in the
    /// background. The default accepts everything.
    fn admit(&self, _request: &ChatRequest) -> CapResult<()> {
        Ok(())
    }

    /// One embedding vector per input, in order, and what the call was charged.
    async fn embed(&self, inputs: Vec<String>, model: Option<String>) -> CapResult<Embeddings>;

    /// Tokens `text` takes for `model` (the default model when `None`). CPU work: callers run
    /// it off the executor ([`crate::capability::work::offload`]); it stops with `cancelled`
    /// soon after `cancel` is set.
    fn count_tokens(&self, text: &str, model: Option<&str>, cancel: &Cancel) -> CapResult<u32>;

    /// The models this plugin may use; the first is its default.
    fn models(&self) -> Vec<ModelInfo>;

    /// This plugin's usage and limits so far.
    fn budget(&self) -> LlmBudget;

    /// Account a call (`kind`: `llm-chat` or `llm-embed`) that a resumed run's journal
    /// answered: its usage counts against the budgets as if it were made now. The default
    /// accounts nothing.
    fn replayed(&self, _kind: &str, _usage: &Usage) {}
}
