//! One agent run: the [`RunContext`] service a run offers its plugins as `sophon:host/run`
//! (budgets, progress, best submission, log), and the pieces of `sophon run`:
//!
//! - [`live::LiveRun`]: the run context of a real run (budgets, validated best submission
//!   copied at once);
//! - [`dir::RunDir`]: the run directory;
//! - [`events`]: what a run reports as it goes;
//! - [`execute`]: one run end to end, from competition id to grade;
//! - [`demo`]: the demo competition Sophon prepares itself;
//! - [`session::SessionRun`]: an in-memory run context for `sophon plugin run` and tests.

pub mod config;
pub mod demo;
pub mod dir;
pub mod events;
pub mod execute;
pub mod journal;
pub mod journaled;
pub mod live;
pub mod policy;
pub mod services;
pub mod session;

use crate::capability::CapResult;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub competition_id: String,
    pub seed: u64,
    pub arm: Option<String>,
}

/// Usage so far against the limits (`None` = unlimited).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunBudget {
    pub elapsed_ms: u64,
    pub wall_ms_left: Option<u64>,
    pub steps_used: u32,
    pub steps_left: Option<u32>,
    pub tokens_used: u64,
    pub tokens_left: Option<u64>,
    pub cost_used_usd: f64,
    pub cost_left_usd: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub id: String,
    pub parent: Option<String>,
    pub operator: String,
    pub worker: Option<u32>,
    pub plan: String,
    pub code: Option<String>,
    pub metric: Option<f64>,
    pub buggy: bool,
    pub valid_submission: bool,
    pub summary: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// Write a plugin's log line to Sophon's own log at this level.
    pub fn trace(self, plugin: &str, message: &str) {
        match self {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// The run a plugin belongs to, as that plugin sees it.
#[async_trait::async_trait]
pub trait RunContext: Send + Sync {
    fn info(&self) -> RunInfo;
    fn budget(&self) -> RunBudget;
    /// True once a budget is spent or a stop was requested. Must be cheap: strategies poll it.
    fn should_stop(&self) -> bool;
    async fn report_node(&self, node: NodeReport) -> CapResult<()>;
    /// Validate and, if better, adopt `submission` as the run's best; returns whether adopted.
    async fn report_best(&self, node: String, submission: String, metric: f64) -> CapResult<bool>;
    /// A log line from plugin `plugin`.
    fn log(&self, plugin: &str, level: LogLevel, message: &str);
}

/// The best submission so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub node: String,
    /// The submission's artifact id.
    pub submission: String,
    pub metric: f64,
}

/// What a strategy's `run` returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub best_node: Option<String>,
    pub nodes: u32,
    pub summary: String,
}
