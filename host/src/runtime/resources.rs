//! The resources plugins hold across calls — a background LLM call, a submitted job — as
//! the host stores them in a plugin's resource table. Kept apart from the host functions that
//! create them so the WIT bindings (which name these types) depend on nothing of the host.

use crate::capability::{CapResult, CapabilityError};
use crate::llm as cap;
use std::sync::Arc;
use wasmtime_wasi::p2::Pollable;

/// A chat call running in the background for a plugin.
pub struct PendingChat {
    pub(in crate::runtime) task: Option<tokio::task::JoinHandle<CapResult<cap::Completion>>>,
    pub(in crate::runtime) outcome: Option<CapResult<cap::Completion>>,
    pub(in crate::runtime) taken: bool,
}

impl PendingChat {
    /// Wait for the call's outcome. Cancel-safe: `wasi:io/poll` drops the readiness futures of
    /// pollables that were not ready, so the task handle stays in place until it has finished.
    pub(in crate::runtime) async fn settle(&mut self) {
        if self.outcome.is_none()
            && let Some(task) = self.task.as_mut()
        {
            let joined = task.await;
            self.task = None;
            self.outcome = Some(match joined {
                Ok(result) => result,
                Err(e) if e.is_cancelled() => {
                    Err(CapabilityError::Cancelled("the call was cancelled".into()))
                }
                Err(e) => Err(CapabilityError::Internal(format!(
                    "the LLM call failed inside the host: {e}"
                ))),
            });
        }
    }
}

impl Drop for PendingChat {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[async_trait::async_trait]
impl Pollable for PendingChat {
    async fn ready(&mut self) {
        self.settle().await;
    }
}

/// A job a plugin submitted.
pub struct RunningJob {
    pub(in crate::runtime) handle: Arc<dyn crate::jobs::JobHandle>,
}

#[async_trait::async_trait]
impl Pollable for RunningJob {
    async fn ready(&mut self) {
        self.handle.wait().await;
    }
}
