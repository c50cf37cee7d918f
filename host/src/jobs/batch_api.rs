//! What a cluster backend implements: [`BatchApi`], a scheduler's API (submit, query,
//! interrupt, kill, probe) over [`Submission`]s and [`BatchState`]s. Everything else of
//! running a job on a cluster is the backends' shared [`super::batch::BatchExecutor`].

use super::{ExitStatus, JobState};
use crate::capability::CapResult;
use std::path::PathBuf;
use std::time::Duration;

/// A job as handed to a scheduler.
#[derive(Clone, Debug)]
pub struct Submission {
    /// Sophon's id for the job, unique across processes.
    pub id: String,
    pub name: String,
    /// The job's directory (holds [`super::batch::SCRIPT_FILE`], `work/`, `stdout.log`,
    /// `stderr.log`).
    pub dir: PathBuf,
    pub script: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub timeout: Duration,
    pub gpus: u32,
    pub gpu_kind: Option<String>,
}

/// What the scheduler says of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchState {
    pub state: JobState,
    /// The scheduler's own word for it (e.g. Slurm's `NODE_FAIL`), for messages.
    pub native: String,
    pub exit: Option<ExitStatus>,
    /// Unix milliseconds.
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

/// One scheduler's API.
#[async_trait::async_trait]
pub trait BatchApi: Send + Sync {
    /// `slurm`, `ray`, … for ids and messages.
    fn backend(&self) -> &'static str;
    /// Queue the job; returns the scheduler's id for it.
    async fn submit(&self, job: &Submission) -> CapResult<String>;
    /// `None` when the scheduler no longer knows the job.
    async fn query(&self, id: &str) -> CapResult<Option<BatchState>>;
    /// Ask the job to stop (SIGINT where the scheduler can send it).
    async fn interrupt(&self, id: &str) -> CapResult<()>;
    /// Stop the job now.
    async fn kill(&self, id: &str) -> CapResult<()>;
    /// Check the scheduler answers (and accepts our credentials) without submitting anything;
    /// `Ok` carries a line describing it (for logs).
    async fn probe(&self) -> CapResult<String>;
}
