//! Language-model calls through the host (`sophon:host/llm`).
//!
//! The host owns providers, keys, retries, caching and budgets; a plugin builds a
//! [`ChatRequest`] and calls [`chat`] (blocking) or [`chat_async`] (concurrent, with
//! [`crate::rt::block_on`]).

use crate::bindings::host::sophon::host::llm as wit;
use crate::{Result, rt};

pub use wit::{
    CachePolicy, ChatRequest, Completion, FinishReason, JsonSchema, LlmBudget, Message, ModelInfo,
    ResponseFormat, Role, ToolCall, ToolChoice, ToolDef, Usage,
};

#[cfg(target_arch = "wasm32")]
type PendingHandle = wit::PendingCompletion;
#[cfg(not(target_arch = "wasm32"))]
type PendingHandle = crate::testing::MockPending;

/// A chat call started with [`start_chat`]; dropping it abandons the call.
pub struct PendingCompletion(PendingHandle);

impl PendingCompletion {
    /// Ready once the reply (or the error) is in.
    pub fn subscribe(&self) -> rt::Pollable {
        self.0.subscribe()
    }
    /// The outcome once the call has ended, `None` while it runs; asking again after taking
    /// the outcome is an `invalid-argument` error.
    // The WIT error converts; the mock host's is already an `Error`.
    #[allow(clippy::useless_conversion)]
    pub fn get(&self) -> Option<Result<Completion>> {
        self.0.get().map(|outcome| outcome.map_err(Into::into))
    }
    /// Abandon the call; a [`get`](Self::get) that has not taken the outcome yet reports
    /// `cancelled`.
    pub fn cancel(&self) {
        self.0.cancel()
    }
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            reasoning: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Message::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, content)
    }
}

impl ChatRequest {
    /// A request with these messages and every option at the host's default.
    pub fn new(messages: Vec<Message>) -> Self {
        ChatRequest {
            messages,
            model: None,
            temperature: None,
            top_p: None,
            max_tokens: None,
            stop: Vec::new(),
            seed: None,
            response_format: ResponseFormat::Text,
            tools: Vec::new(),
            tool_choice: None,
            prefill: None,
            cache: CachePolicy::Default,
            purpose: None,
        }
    }
    /// A single user message.
    pub fn user(prompt: impl Into<String>) -> Self {
        ChatRequest::new(vec![Message::user(prompt)])
    }
    /// A system message followed by a user message.
    pub fn system_user(system: impl Into<String>, user: impl Into<String>) -> Self {
        ChatRequest::new(vec![Message::system(system), Message::user(user)])
    }
    pub fn model(mut self, alias: impl Into<String>) -> Self {
        self.model = Some(alias.into());
        self
    }
    pub fn temperature(mut self, t: f32) -> Self {
        self.temperature = Some(t);
        self
    }
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Constrain the reply to this JSON Schema (strict where the provider supports it).
    pub fn json_schema(mut self, name: impl Into<String>, schema: impl Into<String>) -> Self {
        self.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: name.into(),
            schema: schema.into(),
            strict: true,
        });
        self
    }
    /// Continue a partially written assistant message (steerable reasoning).
    pub fn prefill(mut self, text: impl Into<String>) -> Self {
        self.prefill = Some(text.into());
        self
    }
    pub fn tool(mut self, tool: ToolDef) -> Self {
        self.tools.push(tool);
        self
    }
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }
    pub fn cache(mut self, policy: CachePolicy) -> Self {
        self.cache = policy;
        self
    }
    /// Label for accounting in the run report (e.g. `draft`, `review`).
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }
}

/// Ask and wait for the reply.
pub fn chat(request: &ChatRequest) -> Result<Completion> {
    host!(
        wit::chat(request).map_err(Into::into),
        crate::testing::with(|h| h.chat(request))
    )
}

/// Start a call without waiting for it.
pub fn start_chat(request: &ChatRequest) -> Result<PendingCompletion> {
    host!(
        wit::start_chat(request)
            .map(PendingCompletion)
            .map_err(Into::into),
        crate::testing::with(|h| h.start_chat(request)).map(PendingCompletion)
    )
}

/// Ask and await the reply; several of these run concurrently under [`rt::block_on`].
pub async fn chat_async(request: ChatRequest) -> Result<Completion> {
    let pending = start_chat(&request)?;
    wait_completion(&pending).await
}

/// Await a call started with [`start_chat`].
pub async fn wait_completion(pending: &PendingCompletion) -> Result<Completion> {
    loop {
        if let Some(outcome) = pending.get() {
            return outcome;
        }
        rt::wait(pending.subscribe()).await;
    }
}

/// Embedding vectors, one per input, from `model` (the plugin's default when `None`).
pub fn embed(inputs: &[String], model: Option<&str>) -> Result<Vec<Vec<f32>>> {
    host!(
        wit::embed(inputs, model).map_err(Into::into),
        crate::testing::with(|h| h.embed(inputs, model))
    )
}

/// Tokens `text` takes for `model` (the plugin's default when `None`).
pub fn count_tokens(text: &str, model: Option<&str>) -> Result<u32> {
    host!(
        wit::count_tokens(text, model).map_err(Into::into),
        crate::testing::with(|h| h.count_tokens(text, model))
    )
}

/// The models this plugin may use; the first is its default.
pub fn models() -> Vec<ModelInfo> {
    host!(wit::models(), crate::testing::with(|h| h.models()))
}

/// This plugin's LLM budget so far.
pub fn budget() -> LlmBudget {
    host!(wit::budget(), crate::testing::with(|h| h.llm_budget()))
}
