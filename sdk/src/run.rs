//! The run this plugin is part of (`sophon:host/run`): budgets, progress, the best
//! submission, logging.

use crate::Result;
use crate::bindings::host::sophon::host::run as wit;

pub use crate::bindings::host::sophon::host::types::LogLevel;
pub use wit::{NodeReport, RunBudget, RunInfo};

pub fn info() -> RunInfo {
    wit::info()
}

pub fn budget() -> RunBudget {
    wit::budget()
}

/// True once a budget is spent or the operator asked the run to stop.
pub fn should_stop() -> bool {
    wit::should_stop()
}

/// Report a search node (counts one step of the step budget).
pub fn report_node(node: &NodeReport) -> Result<()> {
    Ok(wit::report_node(node)?)
}

/// Claim `submission` (an artifact id) of `node` as the best so far; returns whether the host
/// accepted it as the new best.
pub fn report_best(node: &str, submission: &str, metric: f64) -> Result<bool> {
    Ok(wit::report_best(node, submission, metric)?)
}

/// Write a line to the run's log.
pub fn log(level: LogLevel, message: &str) {
    wit::log(level, message)
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
