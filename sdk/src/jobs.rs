//! Running code as sandboxed jobs (`sophon:host/jobs`).

use crate::bindings::host::sophon::host::jobs as wit;
use crate::{Result, rt};

pub use wit::{
    ExitStatus, FileContents, JobFile, JobInventory, JobResult, JobSpec, JobState, LogStream,
    Mount, MountSource, OutputExcerpt, Resources,
};

#[cfg(target_arch = "wasm32")]
type JobHandle = wit::Job;
#[cfg(not(target_arch = "wasm32"))]
type JobHandle = crate::testing::MockJob;

/// A submitted job; dropping the handle does not cancel it.
pub struct Job(JobHandle);

impl Job {
    /// The host's id for the job (`local-7`, `slurm-123`, ...).
    pub fn id(&self) -> String {
        self.0.id()
    }
    pub fn state(&self) -> JobState {
        self.0.state()
    }
    /// Ready once the job has ended.
    pub fn subscribe(&self) -> rt::Pollable {
        self.0.subscribe()
    }
    /// The result once the job has ended.
    pub fn get(&self) -> Option<JobResult> {
        self.0.get()
    }
    pub fn cancel(&self) {
        self.0.cancel()
    }
    /// Up to `max_bytes` of the job's `stream` from `offset`, while it runs or after.
    // The WIT error converts; the mock host's is already an `Error`.
    #[allow(clippy::useless_conversion)]
    pub fn logs(&self, stream: LogStream, offset: u64, max_bytes: u32) -> Result<String> {
        self.0.logs(stream, offset, max_bytes).map_err(Into::into)
    }
}

impl JobSpec {
    /// A job named `name` running `command` (argv) with backend defaults for everything else.
    pub fn new(name: impl Into<String>, command: &[&str]) -> Self {
        JobSpec {
            name: name.into(),
            files: Vec::new(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            resources: Resources {
                cpus: None,
                gpus: 0,
                gpu_kind: None,
                memory_mb: None,
                timeout_ms: None,
            },
            mounts: Vec::new(),
            outputs: Vec::new(),
            backend: None,
        }
    }
    /// Materialise a text file at `path` (relative to the working directory).
    pub fn file(mut self, path: impl Into<String>, text: impl Into<String>) -> Self {
        self.files.push(JobFile {
            path: path.into(),
            contents: FileContents::Text(text.into()),
            executable: false,
        });
        self
    }
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn cpus(mut self, cpus: u32) -> Self {
        self.resources.cpus = Some(cpus);
        self
    }
    pub fn gpus(mut self, gpus: u32) -> Self {
        self.resources.gpus = gpus;
        self
    }
    pub fn memory_mb(mut self, mb: u64) -> Self {
        self.resources.memory_mb = Some(mb);
        self
    }
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.resources.timeout_ms = Some(ms);
        self
    }
    /// Mount the task's public data read-only at `target`.
    pub fn mount_task_data(mut self, target: impl Into<String>) -> Self {
        self.mounts.push(Mount {
            source: MountSource::TaskPublic,
            target: target.into(),
        });
        self
    }
    /// Collect `path` (relative to the working directory) as an artifact when the job ends.
    pub fn output(mut self, path: impl Into<String>) -> Self {
        self.outputs.push(path.into());
        self
    }
}

impl JobResult {
    /// Why the job failed, for a strategy's node summary or a model's debug prompt: its state,
    /// the host's message and the last `lines` lines of stderr (stdout when stderr is empty).
    pub fn failure(&self, lines: usize) -> String {
        let pick = |o: &OutputExcerpt| {
            if o.tail.is_empty() {
                o.head.clone()
            } else {
                o.tail.clone()
            }
        };
        let stderr = pick(&self.stderr);
        let text = if stderr.trim().is_empty() {
            pick(&self.stdout)
        } else {
            stderr
        };
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        let what = match self.state {
            JobState::TimedOut => "timed out",
            JobState::OutOfMemory => "ran out of memory",
            JobState::Cancelled => "was cancelled",
            JobState::Succeeded => "succeeded",
            _ => "failed",
        };
        format!("the job {what}: {}\n{tail}", self.message)
    }

    /// The collected output `name` (one of the spec's `outputs`), as an artifact id.
    pub fn artifact(&self, name: &str) -> Option<String> {
        self.artifacts
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.id.clone())
    }

    /// Lines of stdout (head, then tail when the output was cut) that start with `prefix`,
    /// with the prefix removed.
    pub fn stdout_lines_with(&self, prefix: &str) -> Vec<String> {
        [&self.stdout.head, &self.stdout.tail]
            .into_iter()
            .flat_map(|text| text.lines())
            .filter_map(|line| line.strip_prefix(prefix))
            .map(|rest| rest.trim().to_string())
            .collect()
    }
}

/// Queue a job.
pub fn submit(spec: &JobSpec) -> Result<Job> {
    host!(
        wit::submit(spec).map(Job).map_err(Into::into),
        crate::testing::with(|h| h.submit(spec)).map(Job)
    )
}

/// Wait for `job` to finish, blocking the plugin.
pub fn wait(job: &Job) -> JobResult {
    loop {
        if let Some(result) = job.get() {
            return result;
        }
        job.subscribe().block();
    }
}

/// Await `job`; several run concurrently under [`rt::block_on`].
pub async fn wait_async(job: &Job) -> JobResult {
    loop {
        if let Some(result) = job.get() {
            return result;
        }
        rt::wait(job.subscribe()).await;
    }
}

/// Submit `spec` and wait for its result.
pub fn run(spec: &JobSpec) -> Result<JobResult> {
    let job = submit(spec)?;
    Ok(wait(&job))
}

/// Resources this plugin may use right now.
pub fn inventory() -> JobInventory {
    host!(wit::inventory(), crate::testing::with(|h| h.inventory()))
}
