//! What a job directory records besides `work/`, `stdout.log` and `stderr.log`: the job
//! ([`SPEC_FILE`]), its state ([`STATE_FILE`]), its result ([`RESULT_FILE`]), and a request to
//! cancel it ([`CANCEL_FILE`], which any process may create). `sophon job ls/logs/cancel` work
//! from these, for every backend's jobs.

use super::{JobResult, JobState};
use std::path::Path;

/// Files of a job directory besides `work/`, `stdout.log` and `stderr.log`.
pub const SPEC_FILE: &str = "job.json";
pub const STATE_FILE: &str = "state";
pub const RESULT_FILE: &str = "result.json";
pub const CANCEL_FILE: &str = "cancel";

/// `queued`, `running`, `timed-out`, …
pub fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::TimedOut => "timed-out",
        JobState::OutOfMemory => "out-of-memory",
        JobState::Cancelled => "cancelled",
    }
}

/// What `sophon job ls` shows of a job, read from its directory.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub name: String,
    pub command: Vec<String>,
    pub owner: String,
    /// The Sophon process that runs the job.
    pub pid: u32,
    pub submitted_unix_ms: u64,
}

/// The jobs under `jobs_dir` with their state (`lost` when the process that ran an unfinished
/// job is gone), newest first.
pub fn list_jobs(jobs_dir: &Path) -> Vec<(JobRecord, String)> {
    let mut jobs: Vec<(JobRecord, String)> = std::fs::read_dir(jobs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let record: JobRecord =
                serde_json::from_slice(&std::fs::read(entry.path().join(SPEC_FILE)).ok()?).ok()?;
            let mut state = std::fs::read_to_string(entry.path().join(STATE_FILE))
                .unwrap_or_else(|_| "unknown".into());
            let unfinished = state == "queued" || state == "running";
            if unfinished && !Path::new(&format!("/proc/{}", record.pid)).exists() {
                state = "lost".into();
            }
            Some((record, state))
        })
        .collect();
    jobs.sort_by(|a, b| {
        b.0.submitted_unix_ms
            .cmp(&a.0.submitted_unix_ms)
            .then(b.0.id.cmp(&a.0.id))
    });
    jobs
}

/// Record `record` and the queued state in `dir`. Failures are logged: the job runs anyway.
pub fn write_record(dir: &Path, record: &JobRecord) {
    let written = serde_json::to_vec_pretty(record)
        .map_err(std::io::Error::other)
        .and_then(|json| std::fs::write(dir.join(SPEC_FILE), json));
    if let Err(e) = written {
        tracing::warn!(job = %record.id, "cannot record the job in {}: {e}", dir.display());
    }
    write_state(dir, JobState::Queued);
}

pub fn write_state(dir: &Path, state: JobState) {
    let _ = std::fs::write(dir.join(STATE_FILE), state_name(state));
}

pub fn write_result(dir: &Path, result: &JobResult) {
    if let Ok(json) = serde_json::to_vec_pretty(result) {
        let _ = std::fs::write(dir.join(RESULT_FILE), json);
    }
    write_state(dir, result.state);
}

/// Whether some process asked for the job in `dir` to be cancelled.
pub fn cancel_file_exists(dir: &Path) -> bool {
    dir.join(CANCEL_FILE).exists()
}

/// A record for a job submitted now by this process.
pub fn new_record(id: &str, spec: &super::JobSpec, owner: &str) -> JobRecord {
    JobRecord {
        id: id.to_string(),
        name: spec.name.clone(),
        command: spec.command.clone(),
        owner: owner.to_string(),
        pid: std::process::id(),
        submitted_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}
