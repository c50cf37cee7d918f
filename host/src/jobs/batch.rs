//! Cluster backends (Slurm, Ray) share everything but how they talk to their scheduler: a job's
//! directory on a filesystem every node sees, a batch script that runs the job in the same
//! bubblewrap sandbox as locally and writes its stdout/stderr there, polling the scheduler,
//! Sophon's own timeout (interrupt, grace period, kill; never longer than `max-timeout-secs`),
//! and collecting the outputs through cap-std, after which the job's working directory is
//! removed.
//!
//! The script decides on the node who the job is: where it runs as root, the working directory
//! is handed to the unprivileged `job-uid` and the job starts through `setpriv` (see
//! [`sandbox::JobUser`]); otherwise it keeps the node user's uid in a user namespace. It loads
//! the seccomp filters written for the node's architecture (`uname -m`) and refuses to run on
//! one it has none for. [`BatchExecutor`] does all of that over a [`BatchApi`], which is what a backend
//! implements.

pub use super::batch_api::{BatchApi, BatchState, Submission};
use super::config::{ClusterConfig, DEFAULT_MAX_TIMEOUT_SECS, SandboxKind};
use super::output::{CaptureLimits, excerpt_of_file, read_log};
use super::records;
use super::sandbox::{self, Bubblewrap, Isolation, JobUser, SandboxError, SandboxSpec};
use super::seccomp;
use super::workdir::{JobContext, collect_outputs, materialise, resolve_mounts, validate};
use super::*;
use crate::capability::{CapResult, CapabilityError};
use cap_std::fs::Dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// `PATH` of cluster jobs unless `[jobs.<backend>] path` says otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The batch script's name inside a job's directory.
pub const SCRIPT_FILE: &str = "job.sh";

/// Why a cluster backend cannot be built from its `[jobs.<backend>]` table (each message
/// includes its cause's text).
#[derive(Debug, thiserror::Error)]
pub enum BatchSetupError {
    #[error("[jobs.{table}] needs `shared-dir`: a directory every node of the cluster sees")]
    NoSharedDir { table: String },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("creating the shared job directory {}: {error}", path.display())]
    SharedDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "[jobs.slurm] url is set but ${token_env} holds no JWT (get one with `scontrol token`)"
    )]
    NoSlurmToken { token_env: String },
}

/// How a cluster backend runs jobs (from its `[jobs.<backend>]` table).
#[derive(Clone, Debug)]
pub struct BatchSettings {
    pub shared_dir: PathBuf,
    pub isolation: Isolation,
    pub poll: Duration,
    pub grace: Duration,
    pub default_cpus: u32,
    pub default_memory_mb: u64,
    pub default_timeout: Duration,
    /// The longest timeout a job may ask for.
    pub max_timeout: Duration,
    /// The unprivileged uid/gid jobs switch to where the script runs as root.
    pub job_uid: u32,
    pub job_gid: u32,
    pub path: String,
    pub capture: CaptureLimits,
    /// The largest job one node runs, where the operator said.
    pub node: NodeOffer,
    /// Node paths every job sees read-only at the same path.
    pub ro_binds: Vec<PathBuf>,
}

impl BatchSettings {
    /// The settings of a batch executor for `[jobs.<table>]`.
    pub fn from_config(
        config: &ClusterConfig,
        table: &str,
    ) -> Result<BatchSettings, BatchSetupError> {
        let shared_dir = config
            .shared_dir
            .clone()
            .ok_or_else(|| BatchSetupError::NoSharedDir {
                table: table.to_string(),
            })?;
        let isolation = match config.sandbox.unwrap_or_default() {
            SandboxKind::Bubblewrap => super::sandbox::Isolation::bubblewrap(
                config.bwrap.as_deref(),
                config.job_uid,
                config.job_gid,
            )?,
            SandboxKind::None => {
                tracing::warn!(
                    "[jobs.{table}] sandbox = \"none\": cluster jobs will run UNSANDBOXED"
                );
                super::sandbox::Isolation::Unsandboxed
            }
        };
        Ok(BatchSettings {
            shared_dir,
            isolation,
            poll: std::time::Duration::from_millis(config.poll_ms.unwrap_or(1000)),
            grace: std::time::Duration::from_secs(config.grace_secs.unwrap_or(10)),
            default_cpus: config.default_cpus.unwrap_or(1),
            default_memory_mb: config.default_memory_mb.unwrap_or(4096),
            default_timeout: std::time::Duration::from_secs(
                config.default_timeout_secs.unwrap_or(3600),
            ),
            max_timeout: std::time::Duration::from_secs(
                config.max_timeout_secs.unwrap_or(DEFAULT_MAX_TIMEOUT_SECS),
            ),
            job_uid: config.job_uid.unwrap_or(super::sandbox::DEFAULT_JOB_UID),
            job_gid: config.job_gid.unwrap_or(super::sandbox::DEFAULT_JOB_GID),
            path: config.path.clone().unwrap_or_else(|| DEFAULT_PATH.into()),
            capture: super::output::CaptureLimits {
                head_bytes: config.output_head_bytes.unwrap_or(8 << 10),
                tail_bytes: config.output_tail_bytes.unwrap_or(8 << 10),
                log_max_bytes: u64::MAX,
            },
            node: NodeOffer {
                cpus: config.node_cpus,
                memory_mb: config.node_memory_mb,
                gpus: config.node_gpus,
                gpu_kind: config.node_gpu_kind.clone(),
            },
            ro_binds: config.ro_binds.clone(),
        })
    }
}

/// The largest job one node of a cluster runs (`node-*` in `[jobs.<backend>]`); `None` where
/// the operator did not say, and then no job is refused for that resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeOffer {
    pub cpus: Option<u32>,
    pub memory_mb: Option<u64>,
    pub gpus: Option<u32>,
    pub gpu_kind: Option<String>,
}

impl NodeOffer {
    /// Refuse a job no node can run (it would wait in the queue forever).
    pub fn admit(&self, backend: &str, cpus: u32, memory_mb: u64, gpus: u32) -> CapResult<()> {
        let refuse = |what: &str, asked: u64, most: u64, key: &str| {
            Err(CapabilityError::InvalidArgument(format!(
                "the job asks for {asked} {what}, more than a {backend} node offers ({most}, \
                 [jobs.{backend}] {key})"
            )))
        };
        if let Some(most) = self.cpus
            && cpus > most
        {
            return refuse("cpus", cpus.into(), most.into(), "node-cpus");
        }
        if let Some(most) = self.memory_mb
            && memory_mb > most
        {
            return refuse("MB of memory", memory_mb, most, "node-memory-mb");
        }
        if let Some(most) = self.gpus
            && gpus > most
        {
            return refuse("GPUs", gpus.into(), most.into(), "node-gpus");
        }
        Ok(())
    }
}

/// The most bytes one cluster job's outputs may hold together.
const MAX_OUTPUT_BYTES: u64 = super::config::DEFAULT_DISK_MB << 20;

/// Runs jobs through a scheduler.
pub struct BatchExecutor {
    api: Arc<dyn BatchApi>,
    settings: BatchSettings,
    datasets: BTreeMap<String, PathBuf>,
    prefix: String,
}

impl BatchExecutor {
    pub fn new(
        api: Arc<dyn BatchApi>,
        settings: BatchSettings,
        datasets: BTreeMap<String, PathBuf>,
    ) -> Result<BatchExecutor, BatchSetupError> {
        std::fs::create_dir_all(&settings.shared_dir).map_err(|error| {
            BatchSetupError::SharedDir {
                path: settings.shared_dir.clone(),
                error,
            }
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(BatchExecutor {
            prefix: format!(
                "{}-{}-{}",
                api.backend(),
                now.as_millis(),
                std::process::id()
            ),
            api,
            settings,
            datasets,
        })
    }

    pub fn backend(&self) -> &'static str {
        self.api.backend()
    }

    pub fn settings(&self) -> &BatchSettings {
        &self.settings
    }

    /// The scheduler's API, for work that is not a sandboxed job (an A/B cell runs Sophon).
    pub fn api(&self) -> &Arc<dyn BatchApi> {
        &self.api
    }

    /// Check the scheduler answers; the error names the backend's settings table.
    pub async fn probe(&self) -> CapResult<String> {
        self.api.probe().await
    }

    /// Check, prepare and submit `spec`; the returned job follows it on the cluster.
    ///
    /// A job no node can run is refused before anything is written; the job's directory,
    /// filters and script are all in place before the scheduler sees it.
    pub async fn submit(
        self: &Arc<Self>,
        context: &JobContext,
        spec: JobSpec,
    ) -> CapResult<Arc<ClusterJob>> {
        validate(&spec, &self.datasets, context)?;
        let memory_mb = spec
            .resources
            .memory_mb
            .unwrap_or(self.settings.default_memory_mb);
        let cpus = spec.resources.cpus.unwrap_or(self.settings.default_cpus);
        self.settings
            .node
            .admit(self.api.backend(), cpus, memory_mb, spec.resources.gpus)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = format!("{}-{}", self.prefix, NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = self.settings.shared_dir.join(&id);
        let mounts = self.prepare_dir(&dir, &spec, context)?;
        let timeout = self.timeout(&spec.resources);
        self.write_filters(&dir)?;
        let script = self.script(&spec, &dir, mounts, memory_mb);
        std::fs::write(dir.join(SCRIPT_FILE), &script).map_err(preparing(&dir))?;
        let submission = Submission {
            id: id.clone(),
            name: submission_name(&spec.name),
            dir: dir.clone(),
            script,
            cpus,
            memory_mb,
            timeout,
            gpus: spec.resources.gpus,
            gpu_kind: spec.resources.gpu_kind.clone(),
        };
        let native_id = self.api.submit(&submission).await?;
        Ok(self.start_following(&id, native_id, dir, spec, context, timeout))
    }

    /// Create the job's working directory in `dir`, write its files there and resolve its
    /// mounts.
    fn prepare_dir(
        &self,
        dir: &Path,
        spec: &JobSpec,
        context: &JobContext,
    ) -> CapResult<Vec<(PathBuf, String)>> {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).map_err(preparing(dir))?;
        let work_dir =
            Dir::open_ambient_dir(&work, cap_std::ambient_authority()).map_err(preparing(dir))?;
        materialise(&work_dir, &spec.files, &context.artifacts)?;
        resolve_mounts(dir, spec, context, &self.datasets)
    }

    /// The job's timeout: what it asks for, else the default, never over the maximum.
    fn timeout(&self, resources: &Resources) -> Duration {
        resources
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.settings.default_timeout)
            .min(self.settings.max_timeout)
    }

    /// Write the seccomp filters of every architecture into `dir` (sandboxed jobs only): the
    /// script picks the node's.
    fn write_filters(&self, dir: &Path) -> CapResult<()> {
        if !matches!(self.settings.isolation, Isolation::Bubblewrap(_)) {
            return Ok(());
        }
        for arch in seccomp::ARCHITECTURES {
            let filters =
                seccomp::filters(arch).map_err(|e| CapabilityError::Internal(e.to_string()))?;
            std::fs::write(dir.join(format!("seccomp-{arch}-deny.bpf")), filters.deny)
                .map_err(preparing(dir))?;
            std::fs::write(dir.join(format!("seccomp-{arch}-nosys.bpf")), filters.nosys)
                .map_err(preparing(dir))?;
        }
        Ok(())
    }

    /// Record the submitted job, track it for the reaper and follow it in the background
    /// until it ends.
    fn start_following(
        self: &Arc<Self>,
        id: &str,
        native_id: String,
        dir: PathBuf,
        spec: JobSpec,
        context: &JobContext,
        timeout: Duration,
    ) -> Arc<ClusterJob> {
        let full_id = format!("{id}@{native_id}");
        records::write_record(&dir, &records::new_record(&full_id, &spec, &context.owner));
        let (done, _) = watch::channel(None);
        super::reaper::track_cluster(&full_id, &native_id, &self.api);
        let job = Arc::new(ClusterJob {
            id: full_id,
            native_id,
            dir,
            state: Mutex::new(JobState::Queued),
            done,
            cancel_requested: AtomicBool::new(false),
            api: self.api.clone(),
        });
        let (executor, follower, context) = (self.clone(), job.clone(), context.clone());
        tokio::spawn(async move {
            let result = executor
                .follow(&follower, &context, &spec.outputs, timeout)
                .await;
            follower.finish(result);
        });
        job
    }

    /// The batch script: the command in the sandbox (unless the operator opted out), its
    /// stdout and stderr into the job's directory.
    fn script(
        &self,
        spec: &JobSpec,
        dir: &Path,
        mounts: Vec<(PathBuf, String)>,
        memory_mb: u64,
    ) -> String {
        let work = dir.join("work");
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), self.settings.path.clone()),
            ("HOME".into(), sandbox::WORKDIR.into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        env.extend(spec.env.iter().cloned());
        let sandbox_spec = SandboxSpec {
            workdir: work.clone(),
            mounts,
            extra_ro: self.settings.ro_binds.clone(),
            env: env.clone(),
            command: spec.command.clone(),
            tmpfs_bytes: Some(memory_mb.saturating_mul(1 << 20)),
            seccomp: true,
            ..SandboxSpec::default()
        };
        let redirect = format!(
            ">{} 2>{}",
            quote_path(&dir.join("stdout.log")),
            quote_path(&dir.join("stderr.log"))
        );
        let mut script = String::from("#!/bin/sh\n# Written by Sophon.\n");
        match &self.settings.isolation {
            Isolation::Bubblewrap(sandbox) => {
                script.push_str(&self.sandboxed_lines(sandbox, &sandbox_spec, dir, &redirect));
            }
            Isolation::Unsandboxed => {
                let argv = sandbox::argv(&self.settings.isolation, &sandbox_spec);
                script.push_str(&format!("cd {}\n", quote_path(&work)));
                for (key, value) in &env {
                    script.push_str(&format!("export {key}={}\n", shell_quote(value)));
                }
                script.push_str(&format!("exec {} {redirect}\n", quote_args(&argv)));
            }
        }
        script
    }

    /// The script's lines that run the job in `sandbox`: the node's GPUs passed in, the
    /// node's seccomp filters opened (or the job refused), then bwrap — as the job's
    /// unprivileged user where the script runs as root, else as the node user.
    fn sandboxed_lines(
        &self,
        sandbox: &Bubblewrap,
        sandbox_spec: &SandboxSpec,
        dir: &Path,
        redirect: &str,
    ) -> String {
        // The scheduler's GPU assignment and the node's GPU devices pass into the sandbox.
        let mut lines =
            String::from("set -- --setenv CUDA_VISIBLE_DEVICES \"${CUDA_VISIBLE_DEVICES:-}\"\n");
        lines.push_str("for d in /dev/nvidia*; do [ -e \"$d\" ] && set -- \"$@\" --dev-bind \"$d\" \"$d\"; done\n");
        lines.push_str(&seccomp_lines(dir));
        // bwrap [options] "$@" -- command: the node's extras go before the separator.
        let exec_as = |user: JobUser| {
            let isolation = Isolation::Bubblewrap(Bubblewrap {
                bwrap: sandbox.bwrap.clone(),
                user,
            });
            let (options, command) = sandbox::argv_parts(&isolation, sandbox_spec);
            format!(
                "exec {} \"$@\" {} {redirect}\n",
                quote_args(&options),
                quote_args(&command)
            )
        };
        let (uid, gid) = (self.settings.job_uid, self.settings.job_gid);
        lines.push_str(&format!(
            "if [ \"$(id -u)\" = 0 ]; then\n  chown -R {uid}:{gid} {work}\n  {dropped}fi\n{invoker}",
            work = quote_path(&sandbox_spec.workdir),
            dropped = exec_as(JobUser::Dropped {
                uid,
                gid,
                setpriv: "setpriv".into(),
            }),
            invoker = exec_as(JobUser::Invoker { uid: 0 }),
        ));
        lines
    }

    /// Poll the job until it ends (enforcing the timeout and honouring cancels), then collect.
    /// A job the scheduler stops answering about is failed as lost, and left as it is.
    async fn follow(
        &self,
        job: &ClusterJob,
        context: &JobContext,
        outputs: &[String],
        timeout: Duration,
    ) -> JobResult {
        let submitted = Instant::now();
        let followed = match self.poll(job, timeout).await {
            Ok(followed) => followed,
            Err(lost) => return lost,
        };
        let mut result = self.result_of(job, &followed, submitted, timeout);
        if let Ok(work_dir) =
            Dir::open_ambient_dir(job.dir.join("work"), cap_std::ambient_authority())
        {
            let (artifacts, problems) =
                collect_outputs(&work_dir, outputs, &context.artifacts, MAX_OUTPUT_BYTES);
            result.artifacts = artifacts;
            if !problems.is_empty() {
                result.message = format!("{}; {}", result.message, problems.join("; "));
            }
        }
        super::disk::remove_tree(&job.dir.join("work"));
        super::disk::remove_tree(&job.dir.join("mounts"));
        super::reaper::untrack_cluster(&job.id);
        result
    }

    /// Query the scheduler every poll interval until the job is final or forgotten, stopping
    /// it when cancelled or over `timeout`. `Err` is the result of a job lost track of (30
    /// failed queries in a row).
    async fn poll(&self, job: &ClusterJob, timeout: Duration) -> Result<Followed, JobResult> {
        let mut followed = Followed::default();
        let mut failures = 0;
        loop {
            match self.api.query(&job.native_id).await {
                Ok(Some(state)) => {
                    failures = 0;
                    if state.state == JobState::Running && followed.started.is_none() {
                        followed.started = Some(Instant::now());
                        job.set_state(JobState::Running);
                    }
                    if state.state.is_final() {
                        followed.last = Some(state);
                        return Ok(followed);
                    }
                }
                Ok(None) => return Ok(followed),
                Err(e) => {
                    failures += 1;
                    if failures >= 30 {
                        return Err(JobResult::ended(
                            JobState::Failed,
                            &format!(
                                "lost track of {} job {}: {e}",
                                self.api.backend(),
                                job.native_id
                            ),
                        ));
                    }
                }
            }
            self.stop_if_due(job, &mut followed, timeout).await;
            tokio::time::sleep(self.settings.poll).await;
        }
    }

    /// Interrupt a job cancelled or over `timeout` (once), then kill it each poll once the
    /// grace period has passed.
    async fn stop_if_due(&self, job: &ClusterJob, followed: &mut Followed, timeout: Duration) {
        let cancel =
            job.cancel_requested.load(Ordering::Acquire) || records::cancel_file_exists(&job.dir);
        let over_time = followed.started.is_some_and(|s| s.elapsed() >= timeout);
        match followed.forced {
            None if cancel || over_time => {
                let why = if cancel {
                    JobState::Cancelled
                } else {
                    JobState::TimedOut
                };
                if let Err(e) = self.api.interrupt(&job.native_id).await {
                    tracing::warn!(job = %job.id, "interrupting: {e}");
                }
                followed.forced = Some((why, Instant::now()));
            }
            Some((_, since)) if since.elapsed() >= self.settings.grace => {
                if let Err(e) = self.api.kill(&job.native_id).await {
                    tracing::warn!(job = %job.id, "killing: {e}");
                }
            }
            _ => {}
        }
    }

    /// The job's result from what polling saw (before its outputs are collected): a job
    /// Sophon stopped ends as cancelled or timed out, whatever the scheduler says.
    fn result_of(
        &self,
        job: &ClusterJob,
        followed: &Followed,
        submitted: Instant,
        timeout: Duration,
    ) -> JobResult {
        let backend = self.api.backend();
        let last = &followed.last;
        let mut result = JobResult {
            state: last.as_ref().map_or(JobState::Failed, |s| s.state),
            exit: last.as_ref().and_then(|s| s.exit),
            stdout: excerpt_of_file(&job.dir.join("stdout.log"), self.settings.capture),
            stderr: excerpt_of_file(&job.dir.join("stderr.log"), self.settings.capture),
            wall_ms: match last.as_ref().and_then(|s| s.start_ms.zip(s.end_ms)) {
                Some((start, end)) => end.saturating_sub(start),
                None => followed.started.unwrap_or(submitted).elapsed().as_millis() as u64,
            },
            cpu_ms: 0,
            peak_memory_bytes: None,
            artifacts: Vec::new(),
            message: match last {
                Some(state) if state.state == JobState::Succeeded => String::new(),
                Some(state) => format!("{backend} job {} ended {}", job.native_id, state.native),
                None => format!(
                    "{backend} forgot job {} before Sophon saw it end",
                    job.native_id
                ),
            },
        };
        if let Some((why, _)) = followed.forced {
            result.state = why;
            if why == JobState::TimedOut {
                result.message = format!(
                    "killed after its {} s timeout",
                    crate::units::seconds(timeout)
                );
            }
        }
        result
    }
}

/// What polling a job saw: its final state (`None` if the scheduler forgot it), when it started
/// running, and why and since when Sophon has been stopping it.
#[derive(Default)]
struct Followed {
    last: Option<BatchState>,
    started: Option<Instant>,
    forced: Option<(JobState, Instant)>,
}

/// An internal error for an I/O failure while preparing the job directory `dir`.
fn preparing(dir: &Path) -> impl Fn(std::io::Error) -> CapabilityError + '_ {
    move |e| CapabilityError::Internal(format!("preparing {}: {e}", dir.display()))
}

/// The scheduler's name for a job: the spec's name, printable ASCII only, at most 60 chars.
fn submission_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(60)
        .collect()
}

/// The script's lines that open the node's seccomp filters (for `uname -m`) as fds 3 and 4,
/// or end the script with 126 (and say so in `stderr.log`) when the node has none.
fn seccomp_lines(dir: &Path) -> String {
    let filter = |kind: &str| {
        format!(
            "{}\"$(uname -m)\"{}",
            quote_path(&dir.join("seccomp-")),
            shell_quote(&format!("-{kind}.bpf"))
        )
    };
    format!(
        "if [ ! -r {deny} ] || [ ! -r {nosys} ]; then echo \"sophon: no seccomp filter for $(uname -m); the job does not run\" {redirect_err}; exit 126; fi\nexec 3<{deny} 4<{nosys}\n",
        deny = filter("deny"),
        nosys = filter("nosys"),
        redirect_err = format_args!(">{}", quote_path(&dir.join("stderr.log"))),
    )
}

/// `args`, each quoted for `sh`, space-separated.
fn quote_args(args: &[std::ffi::OsString]) -> String {
    args.iter()
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `path` quoted for `sh`.
fn quote_path(path: &Path) -> String {
    shell_quote(&path.to_string_lossy())
}

/// `'…'` with embedded quotes escaped, for `sh`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A job on a cluster.
pub struct ClusterJob {
    id: String,
    native_id: String,
    dir: PathBuf,
    state: Mutex<JobState>,
    done: watch::Sender<Option<JobResult>>,
    cancel_requested: AtomicBool,
    api: Arc<dyn BatchApi>,
}

impl ClusterJob {
    /// The scheduler's id for the job.
    pub fn native_id(&self) -> &str {
        &self.native_id
    }

    /// The job's directory on the shared filesystem (`work/`, `stdout.log`, `stderr.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn set_state(&self, state: JobState) {
        *self.state.lock().unwrap() = state;
        records::write_state(&self.dir, state);
    }

    fn finish(&self, result: JobResult) {
        records::write_result(&self.dir, &result);
        *self.state.lock().unwrap() = result.state;
        self.done.send_replace(Some(result));
    }
}

#[async_trait::async_trait]
impl JobHandle for ClusterJob {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn state(&self) -> JobState {
        *self.state.lock().unwrap()
    }

    async fn wait(&self) -> JobResult {
        JobResult::awaited(&self.done, "the cluster backend went away").await
    }

    fn result(&self) -> Option<JobResult> {
        self.done.borrow().clone()
    }

    async fn cancel(&self) {
        self.cancel_requested.store(true, Ordering::Release);
        if self.state() == JobState::Queued {
            let _ = self.api.kill(&self.native_id).await;
        }
    }

    async fn logs(&self, stream: LogStream, offset: u64, max_bytes: u32) -> CapResult<String> {
        read_log(&self.dir, stream, offset, max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::shell_quote("it's"), "'it'\\''s'");
        assert_eq!(super::shell_quote("$HOME"), "'$HOME'");
    }
}
