//! `sophon:host/task`: the task as a strategy sees it (answered by the run's task adapter).

use super::answer;
use super::convert::record;
use crate::runtime::bindings::host::sophon::host::{task, types};
use crate::runtime::manifest::Capability;
use crate::runtime::state::{PluginState, bounded};
use crate::task as cap;

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

impl task::Host for PluginState {
    async fn describe(&mut self) -> WitResult<task::TaskInfo> {
        let result = match self.service(Capability::Task, &self.services.task) {
            Ok(s) => {
                bounded(
                    self.limits.host_call_timeout,
                    "describing the task",
                    s.describe(),
                )
                .await
            }
            Err(e) => Err(e),
        };
        answer(result)
    }

    async fn validate(&mut self, submission: String) -> WitResult<task::Validation> {
        let result = match self.service(Capability::Task, &self.services.task) {
            Ok(s) => {
                bounded(
                    self.limits.host_call_timeout,
                    "validating a submission",
                    async move { s.validate(&submission).await },
                )
                .await
            }
            Err(e) => Err(e),
        };
        answer(result)
    }
}

record!(
    task::Metric,
    cap::Metric {
        name,
        direction,
        description
    }
);
record!(
    task::TaskInfo,
    cap::TaskInfo {
        competition_id,
        title,
        description,
        metric,
        submission_format,
        data_preview,
        public_files,
        sample_submission
    }
);
record!(task::Validation, cap::Validation { valid, message });
