//! The run this plugin is part of (`sophon:host/run`): budgets, progress, the best
//! submission, logging.

use crate::Result;
use crate::bindings::host::sophon::host::run as wit;

pub use crate::bindings::host::sophon::host::types::LogLevel;
pub use wit::{BestSubmission, NodeReport, RunBudget, RunInfo};

pub fn info() -> RunInfo {
    host!(wit::info(), crate::testing::with(|h| h.info()))
}

pub fn budget() -> RunBudget {
    host!(wit::budget(), crate::testing::with(|h| h.run_budget()))
}

/// Time kept back from the run's wall budget when sizing a job.
pub const JOB_MARGIN_MS: u64 = 5_000;

/// The wall time the next job may take: `limit_ms`, cut to the run's remaining wall budget
/// less [`JOB_MARGIN_MS`]; `None` when less than that margin and 5 more seconds are left.
pub fn job_time(limit_ms: u64) -> Option<u64> {
    fits(limit_ms, budget().wall_ms_left)
}

fn fits(limit_ms: u64, wall_ms_left: Option<u64>) -> Option<u64> {
    match wall_ms_left {
        None => Some(limit_ms),
        Some(left) if left > JOB_MARGIN_MS + 5_000 => Some(limit_ms.min(left - JOB_MARGIN_MS)),
        Some(_) => None,
    }
}

/// True once a budget is spent or the operator asked the run to stop.
pub fn should_stop() -> bool {
    host!(
        wit::should_stop(),
        crate::testing::with(|h| h.should_stop())
    )
}

/// Report a search node (counts one step of the step budget).
pub fn report_node(node: &NodeReport) -> Result<()> {
    host!(
        wit::report_node(node).map_err(Into::into),
        crate::testing::with(|h| h.report_node(node))
    )
}

/// A node report under construction: its id and operator (`draft`, `debug`, `improve` or the
/// strategy's own), then what is known of it; everything else is empty, `buggy` and
/// `valid-submission` false until said.
///
/// ```no_run
/// use sophon_sdk::run;
/// # fn main() -> sophon_sdk::Result<()> {
/// run::node("node-3", "improve")
///     .parent("node-1")
///     .plan("add target encoding")
///     .metric(0.912)
///     .valid()
///     .summary("target encoding: +0.004 AUC")
///     .report()?;
/// # Ok(())
/// # }
/// ```
pub fn node(id: impl Into<String>, operator: impl Into<String>) -> NodeBuilder {
    NodeBuilder(NodeReport {
        id: id.into(),
        parent: None,
        operator: operator.into(),
        worker: None,
        plan: String::new(),
        code: None,
        metric: None,
        buggy: false,
        valid_submission: false,
        summary: String::new(),
    })
}

/// See [`node`].
#[derive(Clone, Debug)]
pub struct NodeBuilder(NodeReport);

impl NodeBuilder {
    pub fn parent(mut self, parent: impl Into<String>) -> Self {
        self.0.parent = Some(parent.into());
        self
    }

    /// The worker that produced it (parallel strategies).
    pub fn worker(mut self, worker: u32) -> Self {
        self.0.worker = Some(worker);
        self
    }

    pub fn plan(mut self, plan: impl Into<String>) -> Self {
        self.0.plan = plan.into();
        self
    }

    /// The artifact id of the node's code.
    pub fn code(mut self, artifact: impl Into<String>) -> Self {
        self.0.code = Some(artifact.into());
        self
    }

    /// Its validation metric.
    pub fn metric(mut self, metric: f64) -> Self {
        self.0.metric = Some(metric);
        self
    }

    /// Its code failed (an exception, no submission).
    pub fn buggy(mut self) -> Self {
        self.0.buggy = true;
        self
    }

    /// Its submission passed `task::validate`.
    pub fn valid(mut self) -> Self {
        self.0.valid_submission = true;
        self
    }

    /// One paragraph: what was tried and what came of it.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.0.summary = summary.into();
        self
    }

    /// The report as built.
    pub fn build(self) -> NodeReport {
        self.0
    }

    /// Report it ([`report_node`]).
    pub fn report(self) -> Result<()> {
        report_node(&self.0)
    }
}

/// Claim `submission` (an artifact id) of `node` as the best so far; returns whether the host
/// accepted it as the new best.
pub fn report_best(node: &str, submission: &str, metric: f64) -> Result<bool> {
    host!(
        wit::report_best(node, submission, metric).map_err(Into::into),
        crate::testing::with(|h| h.report_best(node, submission, metric))
    )
}

/// The submission the host holds as the run's best (adopted through [`report_best`]), or
/// `None`. Since `sophon:host@0.2.0`: a plugin that calls it needs a host serving 0.2.0.
pub fn best() -> Option<BestSubmission> {
    host!(
        wit::best(),
        crate::testing::with(|h| h.best().map(|b| BestSubmission {
            node: b.node,
            submission: b.submission,
            metric: b.metric,
        }))
    )
}

/// Write a line to the run's log.
pub fn log(level: LogLevel, message: &str) {
    host!(
        wit::log(level, message),
        crate::testing::with(|h| h.log(level, message))
    )
}

/// `info!("...", args)`: log at info level through the host.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::run::log($crate::run::LogLevel::Info, &format!($($arg)*)) };
}

/// `warn!("...", args)`: log at warn level through the host.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::run::log($crate::run::LogLevel::Warn, &format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn jobs_get_their_limit_cut_to_the_time_left_less_a_margin() {
        assert_eq!(super::fits(60_000, None), Some(60_000));
        assert_eq!(super::fits(60_000, Some(600_000)), Some(60_000));
        assert_eq!(super::fits(60_000, Some(30_000)), Some(25_000));
        assert_eq!(super::fits(60_000, Some(10_000)), None);
    }
}
