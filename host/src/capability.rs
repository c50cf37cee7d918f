//! What every capability shares: its error type.
//!
//! Each capability (`llm`, `jobs`, `hcc`, `task`, `run`, `artifacts`) is a plain Rust service
//! behind a trait, testable without wasm; the runtime adapts them to WIT. Their failures use
//! [`CapabilityError`], which mirrors `sophon:host/types.error` case for case, so a plugin sees
//! exactly the kind and message the capability produced.

pub mod work;

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
