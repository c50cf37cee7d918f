//! Job specifications and results (mirror `sophon:host/jobs`).

use crate::artifacts::Artifact;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FileContents {
    Text(String),
    Bytes(Vec<u8>),
    /// An artifact id from the run's store.
    Artifact(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobFile {
    /// Relative to the job's working directory; never absolute, never `..`.
    pub path: String,
    pub contents: FileContents,
    pub executable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MountSource {
    TaskPublic,
    Artifact(String),
    Named(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub source: MountSource,
    pub target: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: Option<u32>,
    pub gpus: u32,
    pub gpu_kind: Option<String>,
    pub memory_mb: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub files: Vec<JobFile>,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub resources: Resources,
    pub mounts: Vec<Mount>,
    pub outputs: Vec<String>,
    pub backend: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    OutOfMemory,
    Cancelled,
}

impl JobState {
    /// True for the states a job never leaves.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputExcerpt {
    pub head: String,
    /// Empty when `head` holds everything.
    pub tail: String,
    pub total_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub state: JobState,
    pub exit: Option<ExitStatus>,
    pub stdout: OutputExcerpt,
    pub stderr: OutputExcerpt,
    pub wall_ms: u64,
    pub cpu_ms: u64,
    pub peak_memory_bytes: Option<u64>,
    pub artifacts: Vec<Artifact>,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStream {
    Stdout,
    Stderr,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobInventory {
    pub cpus: u32,
    pub gpus: u32,
    pub gpu_kinds: Vec<String>,
    pub memory_mb: u64,
    pub backends: Vec<String>,
    pub job_slots_free: u32,
    pub gpu_hours_left: Option<f64>,
}

impl JobResult {
    /// A result for a job that ended without running to completion (refused, cancelled while
    /// queued, lost): no exit status, no output.
    pub fn ended(state: JobState, message: &str) -> JobResult {
        JobResult {
            state,
            exit: None,
            stdout: OutputExcerpt::default(),
            stderr: OutputExcerpt::default(),
            wall_ms: 0,
            cpu_ms: 0,
            peak_memory_bytes: None,
            artifacts: Vec::new(),
            message: message.to_string(),
        }
    }

    /// Wait until `done` holds a result; if its sender is dropped first, the job is reported
    /// failed with `gone` as the message.
    pub async fn awaited(
        done: &tokio::sync::watch::Sender<Option<JobResult>>,
        gone: &str,
    ) -> JobResult {
        let mut done = done.subscribe();
        loop {
            if let Some(result) = done.borrow_and_update().clone() {
                return result;
            }
            if done.changed().await.is_err() {
                return JobResult::ended(JobState::Failed, gone);
            }
        }
    }
}
