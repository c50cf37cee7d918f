//! The task being solved: the [`TaskService`] the host offers strategies as
//! `sophon:host/task`, answered by the run's task-adapter plugin.

use crate::capability::CapResult;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Maximize,
    Minimize,
}

impl Direction {
    /// Whether `candidate` is strictly better than `incumbent` in this direction.
    pub fn better(self, candidate: f64, incumbent: f64) -> bool {
        match self {
            Direction::Maximize => candidate > incumbent,
            Direction::Minimize => candidate < incumbent,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub direction: Direction,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub competition_id: String,
    pub title: String,
    pub description: String,
    pub metric: Metric,
    pub submission_format: String,
    pub data_preview: String,
    pub public_files: Vec<String>,
    pub sample_submission: Option<String>,
}

/// A submission check; never a score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    pub valid: bool,
    pub message: String,
}

/// The task as one run's strategy sees it.
#[async_trait::async_trait]
pub trait TaskService: Send + Sync {
    async fn describe(&self) -> CapResult<TaskInfo>;
    /// Validate the submission stored as artifact `submission`.
    async fn validate(&self, submission: &str) -> CapResult<Validation>;
}

/// Which task a task adapter is asked about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRequest {
    pub competition_id: String,
    /// Adapter settings as a JSON object (`{}` if none).
    pub options: String,
}

/// A task adapter's grade of one submission.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradeResult {
    /// `None` when invalid.
    pub score: Option<f64>,
    pub valid: bool,
    pub message: String,
    pub direction: Direction,
}
