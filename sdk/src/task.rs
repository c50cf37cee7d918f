//! The task being solved (`sophon:host/task`), answered by the run's task adapter.

use crate::Result;
use crate::bindings::host::sophon::host::task as wit;

pub use wit::{Metric, TaskInfo, Validation};

/// The task: description, metric, submission format, data preview.
pub fn describe() -> Result<TaskInfo> {
    host!(
        wit::describe().map_err(Into::into),
        crate::testing::with(|h| h.describe())
    )
}

/// Check a submission (an artifact id) as the grader would, without scoring it.
pub fn validate(submission: &str) -> Result<Validation> {
    host!(
        wit::validate(submission).map_err(Into::into),
        crate::testing::with(|h| h.validate(submission))
    )
}
