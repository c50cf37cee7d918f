//! What every capability shares: its error type and its default limits.
//!
//! Each capability (`llm`, `jobs`, `hcc`, `task`, `run`, `artifacts`) is a plain Rust service
//! behind a trait, testable without wasm; the runtime adapts them to WIT. Their failures use
//! [`CapabilityError`], which mirrors `sophon:host/types.error` case for case, so a plugin sees
//! exactly the kind and message the capability produced.

pub mod work;

/// Limits a plugin gets where neither its manifest nor its grant names one, so that every
/// capability is finite by default (`sophon plugin run --grant-requested` included). An
/// operator raises them in the plugin's grant.
pub mod defaults {
    /// LLM calls in flight at once (`llm.max-concurrent`).
    pub const LLM_MAX_CONCURRENT: u64 = 4;
    /// LLM requests per run (`llm.max-requests`).
    pub const LLM_MAX_REQUESTS: u64 = 10_000;
    /// LLM tokens per run, prompt and completion (`llm.max-tokens`).
    pub const LLM_MAX_TOKENS: u64 = 50_000_000;
    /// LLM dollars per run, where the price table knows the model (`llm.max-cost-usd`).
    pub const LLM_MAX_COST_USD: f64 = 50.0;
    /// Jobs queued or running at once (`jobs.max-concurrent`).
    pub const JOBS_MAX_CONCURRENT: u64 = 4;
    /// GPUs per job (`jobs.max-gpus`).
    pub const JOBS_MAX_GPUS: u64 = 1;
    /// GPU-hours per run (`jobs.gpu-hours`).
    pub const JOBS_GPU_HOURS: f64 = 24.0;
}

use serde::{Deserialize, Serialize};

/// Why a capability call failed. Messages are written for the plugin author: what went wrong
/// and, where there is one, the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum CapabilityError {
    #[error("not granted: {0}")]
    NotGranted(String),
    #[error("budget exhausted: {0}")]
    BudgetExhausted(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("rate limited: {0}")]
    RateLimited(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("upstream error: {0}")]
    Upstream(String),
    #[error("malformed reply: {0}")]
    MalformedReply(String),
    #[error("cancelled: {0}")]
    Cancelled(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result of a capability call.
pub type CapResult<T> = Result<T, CapabilityError>;
