//! `sophon:host/task`: the task as a strategy sees it (answered by the run's task adapter).

use super::answer;
use super::convert::record;
use crate::runtime::bindings::host::sophon::host::{task, types};
use crate::runtime::manifest::Capability;
use crate::runtime::state::{PluginState, call};
use crate::task as cap;

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

impl task::Host for PluginState {
    async fn describe(&mut self) -> WitResult<task::TaskInfo> {
        let service = self.service(Capability::Task, &self.services.task);
        let limit = self.deadline();
        answer(
            call(service, limit, "describing the task", |s| async move {
                s.describe().await
            })
            .await,
        )
    }

    async fn validate(&mut self, submission: String) -> WitResult<task::Validation> {
        let service = self.service(Capability::Task, &self.services.task);
        let limit = self.deadline();
        answer(
            call(service, limit, "validating a submission", |s| async move {
                s.validate(&submission).await
            })
            .await,
        )
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
