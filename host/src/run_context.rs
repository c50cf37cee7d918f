//! The run contract: the [`RunContext`] service a run offers its plugins as `sophon:host/run`
//! (who the run is, its budgets, progress, best submission, log) and the types it speaks in.
//! It sits below the plugin runtime, which adapts it to WIT, and below the orchestrator
//! (`crate::run`), which implements it.

use crate::capability::{CapResult, CapabilityError};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// Longest node id (and parent id) a node report may carry.
pub const MAX_NODE_ID_BYTES: usize = 256;
/// Longest operator name.
pub const MAX_OPERATOR_BYTES: usize = 64;
/// Longest plan.
pub const MAX_PLAN_BYTES: usize = 64 * 1024;
/// Longest code.
pub const MAX_CODE_BYTES: usize = 1 << 20;
/// Longest summary.
pub const MAX_SUMMARY_BYTES: usize = 4 * 1024;

impl NodeReport {
    /// Refuse a report the run cannot record: an empty id, a metric that is not a finite
    /// number, or a field over its size limit (`too-large`, naming the field and the limit).
    pub fn check(&self) -> CapResult<()> {
        if self.id.is_empty() {
            return Err(CapabilityError::InvalidArgument(
                "node-report.id must not be empty".into(),
            ));
        }
        let fields = [
            ("id", self.id.len(), MAX_NODE_ID_BYTES),
            (
                "parent",
                self.parent.as_ref().map_or(0, String::len),
                MAX_NODE_ID_BYTES,
            ),
            ("operator", self.operator.len(), MAX_OPERATOR_BYTES),
            ("plan", self.plan.len(), MAX_PLAN_BYTES),
            (
                "code",
                self.code.as_ref().map_or(0, String::len),
                MAX_CODE_BYTES,
            ),
            ("summary", self.summary.len(), MAX_SUMMARY_BYTES),
        ];
        for (field, size, limit) in fields {
            if size > limit {
                return Err(CapabilityError::TooLarge(format!(
                    "node-report.{field} is {size} bytes; a run records at most {limit} bytes of it \
                     (keep the full text in an artifact and report a shorter one)"
                )));
            }
        }
        if self.metric.is_some_and(|m| !m.is_finite()) {
            return Err(CapabilityError::InvalidArgument(format!(
                "node {}: the metric must be a finite number or none",
                self.id
            )));
        }
        Ok(())
    }
}

/// The refusal of a node reported past the run's step budget.
pub fn steps_spent(limit: u32) -> CapabilityError {
    CapabilityError::BudgetExhausted(format!(
        "the run's step budget of {limit} nodes is spent (--max-steps): no more nodes are \
         recorded; finish and return"
    ))
}

/// The refusal of a best-submission claim for a node the run never recorded (never reported,
/// or refused, e.g. past the step budget): a best submission always belongs to a recorded node.
pub fn unrecorded_best(node: &str) -> CapabilityError {
    CapabilityError::InvalidArgument(format!(
        "node {node} was not recorded by this run: report it with run.report-node (within the \
         step budget) before claiming its submission as the best"
    ))
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
        // tracing escapes ESC and C1 but keeps line breaks and bidi controls: one escaped line.
        let message = crate::term::line(message);
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
    /// The best submission adopted so far (`None`: none yet). Must be cheap.
    fn best(&self) -> Option<Best>;
    /// A log line from plugin `plugin`.
    fn log(&self, plugin: &str, level: LogLevel, message: &str);

    /// Time left in the run's wall-clock budget (`None`: it has none). The runtime cuts the
    /// deadline of every host call a strategy makes to it. Must be cheap; it is not an answer
    /// to the plugin, so it is never journaled.
    fn time_left(&self) -> Option<Duration> {
        None
    }
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
