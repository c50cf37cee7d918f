//! [`GradedTask`]: the `sophon:host/task` service of a run, answered by the grading adapter.
//! Strategies name submissions by artifact id; the adapter sees a private copy of that one
//! file, the public data and (to check ids and row counts as MLE-bench does) the answers —
//! the strategy never sees either of the latter.

use super::{Grader, Prepared};
use crate::artifacts::ArtifactStore;
use crate::capability::{CapResult, CapabilityError};
use crate::task::{TaskInfo, TaskService, Validation};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub struct GradedTask {
    grader: Arc<Grader>,
    competition_id: String,
    prepared: Prepared,
    artifacts: Arc<ArtifactStore>,
    described: OnceCell<TaskInfo>,
}

impl GradedTask {
    pub fn new(
        grader: Arc<Grader>,
        competition_id: &str,
        prepared: Prepared,
        artifacts: Arc<ArtifactStore>,
    ) -> GradedTask {
        GradedTask {
            grader,
            competition_id: competition_id.to_string(),
            prepared,
            artifacts,
            described: OnceCell::new(),
        }
    }

    /// The adapter's description, asked once per run.
    pub async fn info(&self) -> CapResult<&TaskInfo> {
        self.described
            .get_or_try_init(|| async {
                self.grader
                    .describe(&self.competition_id, &self.prepared)
                    .await
                    .map_err(|e| {
                        CapabilityError::Internal(format!(
                            "the task adapter could not describe `{}`: {e}",
                            self.competition_id
                        ))
                    })
            })
            .await
    }
}

#[async_trait::async_trait]
impl TaskService for GradedTask {
    async fn describe(&self) -> CapResult<TaskInfo> {
        self.info().await.cloned()
    }

    async fn validate(&self, submission: &str) -> CapResult<Validation> {
        let artifact = self.artifacts.stat(submission)?;
        let staging = tempfile::tempdir()
            .map_err(|e| CapabilityError::Internal(format!("staging a submission: {e}")))?;
        let path = staging.path().join("submission.csv");
        let mut source = self.artifacts.open_file(&artifact.id)?.into_std();
        let mut target = std::fs::File::create(&path)
            .map_err(|e| CapabilityError::Internal(format!("staging a submission: {e}")))?;
        std::io::copy(&mut source, &mut target)
            .map_err(|e| CapabilityError::Internal(format!("staging a submission: {e}")))?;
        drop(target);
        Ok(self
            .grader
            .validate(&self.competition_id, &self.prepared, &path)
            .await)
    }
}
