//! `sophon:host/llm`: chat (blocking or started in the background), embeddings, token counts.
//!
//! A started chat runs on the host's executor as a tokio task under the host-call timeout;
//! its `pending-completion` resource is a pollable, so a plugin can wait on several at once.
//! At most `llm.max-concurrent` (granted) and never more than [`MAX_PENDING`] calls of one
//! instance may be pending at a time.

use super::answer;
use super::convert::{Conv, record, unit_enum};
use crate::capability::CapabilityError;
use crate::capability::work::offload;
use crate::llm as cap;
use crate::runtime::bindings::host::sophon::host::{llm, types};
use crate::runtime::manifest::Capability;
use crate::runtime::resources::PendingChat;
use crate::runtime::state::{PluginState, bounded, call};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, subscribe};

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

/// Hard cap on pending calls per instance, whatever the grants say.
pub const MAX_PENDING: u64 = 256;

impl llm::HostPendingCompletion for PluginState {
    async fn subscribe(
        &mut self,
        this: Resource<PendingChat>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<PendingChat>,
    ) -> wasmtime::Result<Option<Result<llm::Completion, types::Error>>> {
        let pending = self.table.get_mut(&this)?;
        if pending.taken {
            return Ok(Some(Err(types::Error::InvalidArgument(
                "this call's outcome was already taken".into(),
            ))));
        }
        let finished = pending.task.as_ref().is_none_or(|t| t.is_finished());
        // In a journaled run, whether the call had finished when the plugin looked is
        // replayed too (waiting for it if it had).
        let finished = match &self.services.journal {
            Some(journal) => journal.answer_timing("llm-get", finished),
            None => finished,
        };
        if !finished {
            return Ok(None);
        }
        let pending = self.table.get_mut(&this)?;
        pending.settle().await;
        pending.taken = true;
        let outcome = pending.outcome.take().expect("settled");
        self.pending_llm_calls = self.pending_llm_calls.saturating_sub(1);
        Ok(Some(answer(outcome)?))
    }

    async fn cancel(&mut self, this: Resource<PendingChat>) -> wasmtime::Result<()> {
        let pending = self.table.get_mut(&this)?;
        if let Some(task) = pending.task.take() {
            task.abort();
            pending.outcome = Some(Err(CapabilityError::Cancelled(
                "cancelled by the plugin".into(),
            )));
        }
        Ok(())
    }

    async fn drop(&mut self, this: Resource<PendingChat>) -> wasmtime::Result<()> {
        let pending = self.table.delete(this)?;
        if !pending.taken {
            self.pending_llm_calls = self.pending_llm_calls.saturating_sub(1);
        }
        Ok(())
    }
}

impl llm::Host for PluginState {
    async fn chat(&mut self, request: llm::ChatRequest) -> WitResult<llm::Completion> {
        let service = self.service(Capability::Llm, &self.services.llm);
        let limit = self.deadline();
        answer(
            call(service, limit, "the LLM call", |s| async move {
                let request: cap::ChatRequest = request.conv();
                s.admit(&request)?;
                s.chat(request).await
            })
            .await,
        )
    }

    async fn start_chat(&mut self, request: llm::ChatRequest) -> WitResult<Resource<PendingChat>> {
        let service = match self.service(Capability::Llm, &self.services.llm) {
            Ok(service) => service,
            Err(e) => return Ok(Err(e.into())),
        };
        let granted = self
            .identity
            .grants
            .llm
            .as_ref()
            .and_then(|l| l.max_concurrent)
            .unwrap_or(MAX_PENDING)
            .min(MAX_PENDING);
        if self.pending_llm_calls >= granted {
            return Ok(Err(types::Error::BudgetExhausted(format!(
                "plugin `{}` already has {} LLM calls pending, its limit (llm.max-concurrent); \
                 take the outcome of one (pending-completion.get) or drop it first",
                self.identity.name, self.pending_llm_calls
            ))));
        }
        let request: cap::ChatRequest = request.conv();
        if let Err(e) = service.admit(&request) {
            return Ok(Err(e.into()));
        }
        let timeout = self.deadline();
        let task =
            tokio::spawn(
                async move { bounded(timeout, "the LLM call", service.chat(request)).await },
            );
        let pending = PendingChat {
            task: Some(task),
            outcome: None,
            taken: false,
        };
        self.pending_llm_calls += 1;
        Ok(Ok(self.table.push(pending)?))
    }

    async fn embed(
        &mut self,
        inputs: Vec<String>,
        model: Option<String>,
    ) -> WitResult<Vec<Vec<f32>>> {
        let service = self.service(Capability::Llm, &self.services.llm);
        let limit = self.deadline();
        answer(
            call(service, limit, "the embedding call", |s| async move {
                cap::limits::check_embed(&inputs, model.as_deref())?;
                Ok(s.embed(inputs, model).await?.vectors)
            })
            .await,
        )
    }

    /// Checked for size before any work, then counted off the executor within the deadline;
    /// a count past its deadline stops at its next chunk.
    async fn count_tokens(&mut self, text: String, model: Option<String>) -> WitResult<u32> {
        let service = self.service(Capability::Llm, &self.services.llm);
        let limit = self.deadline();
        answer(
            call(service, limit, "counting tokens", |s| async move {
                cap::limits::check_count(&text, model.as_deref())?;
                offload(move |cancel| s.count_tokens(&text, model.as_deref(), cancel)).await
            })
            .await,
        )
    }

    fn models(&mut self) -> wasmtime::Result<Vec<llm::ModelInfo>> {
        Ok(match self.service(Capability::Llm, &self.services.llm) {
            Ok(service) => service.models().conv(),
            Err(_) => Vec::new(),
        })
    }

    fn budget(&mut self) -> wasmtime::Result<llm::LlmBudget> {
        Ok(match self.service(Capability::Llm, &self.services.llm) {
            Ok(service) => service.budget().conv(),
            Err(_) => cap::LlmBudget::default().conv(),
        })
    }
}

unit_enum!(
    llm::Role,
    cap::Role {
        System,
        User,
        Assistant,
        Tool
    }
);
unit_enum!(
    llm::CachePolicy,
    cap::CachePolicy {
        Default,
        Prefer,
        Bypass
    }
);
unit_enum!(
    llm::FinishReason,
    cap::FinishReason {
        Stop,
        Length,
        ToolCalls,
        ContentFilter,
        Other
    }
);
record!(
    llm::ToolCall,
    cap::ToolCall {
        id,
        name,
        arguments
    }
);
record!(
    llm::Message,
    cap::Message {
        role,
        content,
        reasoning,
        tool_calls,
        tool_call_id
    }
);
record!(
    llm::ToolDef,
    cap::ToolDef {
        name,
        description,
        parameters
    }
);
record!(
    llm::JsonSchema,
    cap::JsonSchema {
        name,
        schema,
        strict
    }
);
record!(llm::ChatRequest => cap::ChatRequest {
    messages, model, temperature, top_p, max_tokens, stop, seed, response_format, tools,
    tool_choice, prefill, cache, purpose
});
record!(cap::Usage => llm::Usage {
    model, prompt_tokens, completion_tokens, reasoning_tokens, cost_usd, latency_ms, cache_hit
});
record!(cap::Completion => llm::Completion { text, reasoning, tool_calls, finish, usage });
record!(cap::ModelInfo => llm::ModelInfo {
    alias, name, context_window, supports_prefill, supports_json_schema, supports_tools, reasoning
});
record!(cap::LlmBudget => llm::LlmBudget {
    tokens_used, tokens_limit, requests_used, requests_limit, cost_used_usd, cost_limit_usd
});

impl Conv<cap::ToolChoice> for llm::ToolChoice {
    fn conv(self) -> cap::ToolChoice {
        match self {
            llm::ToolChoice::Auto => cap::ToolChoice::Auto,
            llm::ToolChoice::None => cap::ToolChoice::None,
            llm::ToolChoice::Required => cap::ToolChoice::Required,
            llm::ToolChoice::Named(name) => cap::ToolChoice::Named(name),
        }
    }
}

impl Conv<cap::ResponseFormat> for llm::ResponseFormat {
    fn conv(self) -> cap::ResponseFormat {
        match self {
            llm::ResponseFormat::Text => cap::ResponseFormat::Text,
            llm::ResponseFormat::JsonObject => cap::ResponseFormat::JsonObject,
            llm::ResponseFormat::JsonSchema(s) => cap::ResponseFormat::JsonSchema(s.conv()),
        }
    }
}
