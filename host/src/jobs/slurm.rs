//! The Slurm backend: jobs become batch jobs on a cluster.
//!
//! Submission goes through slurmrestd ([`REST_API`], JWT in `X-SLURM-USER-TOKEN`) or, where no
//! slurmrestd runs, through `sbatch`/`scontrol`/`scancel`. GPUs are requested as GRES
//! (`gpu[:kind]:N`; Slurm then sets `CUDA_VISIBLE_DEVICES`). A job's directory — its files, its
//! working directory, its stdout/stderr — lives under the configured shared directory, which
//! every node must see; outputs are collected from there into the run's artifact store through
//! cap-std, like the local executor's. On the compute node the job runs in the same bubblewrap
//! sandbox as locally (unless the operator set `sandbox = "none"`).
//!
//! States are polled. Sophon enforces the job's timeout itself (SIGINT, grace, SIGKILL through
//! Slurm) as well as asking Slurm for the time limit (rounded up to minutes).

use super::config::{SandboxKind, SlurmConfig};
use super::output::{CaptureLimits, excerpt_of_file, read_log};
use super::sandbox::{self, Isolation, SandboxSpec};
use super::workdir::{JobContext, collect_outputs, materialise, validate};
use super::*;
use crate::capability::{CapResult, CapabilityError};
use cap_std::fs::Dir;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The slurmrestd OpenAPI version spoken (Slurm 22.05 serves only v0.0.38). Every REST path and
/// field name below belongs to it; a newer version is a new [`SlurmApi`] implementation.
pub const REST_API: &str = "v0.0.38";

/// A batch job as submitted.
#[derive(Clone, Debug)]
pub struct BatchJob {
    pub name: String,
    pub script: String,
    pub workdir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub cpus: u32,
    pub memory_mb: u64,
    pub time_limit_minutes: u64,
    pub gpus: u32,
    pub gpu_kind: Option<String>,
    pub partition: Option<String>,
}

impl BatchJob {
    fn gres(&self) -> Option<String> {
        (self.gpus > 0).then(|| match &self.gpu_kind {
            Some(kind) => format!("gpu:{kind}:{}", self.gpus),
            None => format!("gpu:{}", self.gpus),
        })
    }
}

/// What Slurm says of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmState {
    /// e.g. `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `TIMEOUT`, `CANCELLED`, `OUT_OF_MEMORY`.
    pub state: String,
    pub exit: Option<ExitStatus>,
    /// Unix seconds.
    pub start: Option<u64>,
    pub end: Option<u64>,
}

/// One way of talking to Slurm.
#[async_trait::async_trait]
pub trait SlurmApi: Send + Sync {
    async fn submit(&self, job: &BatchJob) -> CapResult<u64>;
    /// `None` when Slurm no longer knows the job.
    async fn query(&self, id: u64) -> CapResult<Option<SlurmState>>;
    /// Send `signal` (`INT`, `KILL`, …) to the job.
    async fn signal(&self, id: u64, signal: &str) -> CapResult<()>;
}

/// slurmrestd, OpenAPI [`REST_API`].
pub struct RestApi {
    http: reqwest::Client,
    base: String,
    user: String,
    token: String,
}

impl RestApi {
    pub fn new(url: &str, user: &str, token: &str) -> RestApi {
        RestApi {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("an HTTP client"),
            base: format!("{}/slurm/{REST_API}", url.trim_end_matches('/')),
            user: user.to_string(),
            token: token.to_string(),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> CapResult<Value> {
        let response = request
            .header("X-SLURM-USER-NAME", &self.user)
            .header("X-SLURM-USER-TOKEN", &self.token)
            .send()
            .await
            .map_err(|e| {
                CapabilityError::Unavailable(format!(
                    "cannot reach slurmrestd at {}: {e}",
                    self.base
                ))
            })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| {
            CapabilityError::MalformedReply(format!(
                "slurmrestd answered HTTP {status} with no JSON: {e}"
            ))
        })?;
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(CapabilityError::Upstream(format!(
                "slurmrestd refused the credentials (HTTP {status}): check the JWT (token-env) and user"
            )));
        }
        Ok(body)
    }
}

fn rest_errors(body: &Value) -> Option<String> {
    let errors: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            e.get("error")
                .or_else(|| e.get("description"))
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string()
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

#[async_trait::async_trait]
impl SlurmApi for RestApi {
    async fn submit(&self, job: &BatchJob) -> CapResult<u64> {
        let mut properties = json!({
            "name": job.name,
            "current_working_directory": job.workdir,
            "standard_output": job.stdout,
            "standard_error": job.stderr,
            "environment": { "PATH": "/usr/local/bin:/usr/bin:/bin" },
            "cpus_per_task": job.cpus,
            "memory_per_node": job.memory_mb,
            "time_limit": job.time_limit_minutes,
        });
        if let Some(gres) = job.gres() {
            properties["gres"] = json!(gres);
        }
        if let Some(partition) = &job.partition {
            properties["partition"] = json!(partition);
        }
        let body = json!({ "script": job.script, "job": properties });
        let reply = self
            .call(
                self.http
                    .post(format!("{}/job/submit", self.base))
                    .json(&body),
            )
            .await?;
        if let Some(errors) = rest_errors(&reply) {
            return Err(CapabilityError::Upstream(format!(
                "Slurm refused the job: {errors}"
            )));
        }
        reply.get("job_id").and_then(Value::as_u64).ok_or_else(|| {
            CapabilityError::MalformedReply(format!(
                "slurmrestd's submit reply has no job_id: {reply}"
            ))
        })
    }

    async fn query(&self, id: u64) -> CapResult<Option<SlurmState>> {
        let reply = self
            .call(self.http.get(format!("{}/job/{id}", self.base)))
            .await?;
        let Some(job) = reply.get("jobs").and_then(|j| j.get(0)) else {
            return match rest_errors(&reply) {
                Some(errors)
                    if errors.to_lowercase().contains("invalid job id")
                        || errors.contains("Unable to query") =>
                {
                    Ok(None)
                }
                Some(errors) => Err(CapabilityError::Upstream(format!("Slurm: {errors}"))),
                None => Ok(None),
            };
        };
        // v0.0.38 reports the raw wait status: the exit code is in bits 8-15, a signal in 0-6.
        let raw = job.get("exit_code").and_then(Value::as_i64);
        let exit = raw.map(|raw| {
            let (code, signal) = ((raw >> 8) & 0xff, raw & 0x7f);
            if signal != 0 {
                ExitStatus::Signal(signal as i32)
            } else {
                ExitStatus::Code(code as i32)
            }
        });
        let time = |key: &str| job.get(key).and_then(Value::as_u64).filter(|&t| t > 0);
        Ok(Some(SlurmState {
            state: job
                .get("job_state")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
                .to_string(),
            exit,
            start: time("start_time"),
            end: time("end_time"),
        }))
    }

    async fn signal(&self, id: u64, signal: &str) -> CapResult<()> {
        let url = format!("{}/job/{id}?signal=SIG{signal}", self.base);
        let reply = self.call(self.http.delete(url)).await?;
        match rest_errors(&reply) {
            Some(errors) => Err(CapabilityError::Upstream(format!(
                "Slurm could not signal job {id}: {errors}"
            ))),
            None => Ok(()),
        }
    }
}

/// `sbatch`, `scontrol` and `scancel`, for clusters without slurmrestd.
pub struct CliApi;

async fn command_output(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
) -> CapResult<(bool, String, String)> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            CapabilityError::Unavailable(format!(
                "cannot run `{program}` (is Slurm's client installed?): {e}"
            ))
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| CapabilityError::Internal(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| CapabilityError::Internal(e.to_string()))?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[async_trait::async_trait]
impl SlurmApi for CliApi {
    async fn submit(&self, job: &BatchJob) -> CapResult<u64> {
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", job.name),
            format!("--chdir={}", job.workdir.display()),
            format!("--output={}", job.stdout.display()),
            format!("--error={}", job.stderr.display()),
            format!("--cpus-per-task={}", job.cpus),
            format!("--mem={}M", job.memory_mb),
            format!("--time={}", job.time_limit_minutes),
        ];
        args.extend(job.gres().map(|g| format!("--gres={g}")));
        args.extend(job.partition.as_ref().map(|p| format!("--partition={p}")));
        let (ok, stdout, stderr) = command_output("sbatch", &args, Some(&job.script)).await?;
        if !ok {
            return Err(CapabilityError::Upstream(format!(
                "sbatch refused the job: {}",
                stderr.trim()
            )));
        }
        stdout
            .trim()
            .split(';')
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| {
                CapabilityError::MalformedReply(format!("sbatch printed no job id: {stdout:?}"))
            })
    }

    async fn query(&self, id: u64) -> CapResult<Option<SlurmState>> {
        let (ok, stdout, stderr) = command_output(
            "scontrol",
            &["show".into(), "job".into(), "-o".into(), id.to_string()],
            None,
        )
        .await?;
        if !ok {
            return if stderr.contains("Invalid job id") {
                Ok(None)
            } else {
                Err(CapabilityError::Upstream(format!(
                    "scontrol: {}",
                    stderr.trim()
                )))
            };
        }
        let fields: BTreeMap<&str, &str> = stdout
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let exit = fields
            .get("ExitCode")
            .and_then(|v| v.split_once(':'))
            .map(|(code, signal)| match signal.parse::<i32>() {
                Ok(signal) if signal != 0 => ExitStatus::Signal(signal),
                _ => ExitStatus::Code(code.parse().unwrap_or(0)),
            });
        Ok(Some(SlurmState {
            state: fields
                .get("JobState")
                .copied()
                .unwrap_or("UNKNOWN")
                .to_string(),
            exit,
            start: None,
            end: None,
        }))
    }

    async fn signal(&self, id: u64, signal: &str) -> CapResult<()> {
        let (ok, _, stderr) = command_output(
            "scancel",
            &[
                format!("--signal={signal}"),
                "--full".into(),
                id.to_string(),
            ],
            None,
        )
        .await?;
        if ok || stderr.contains("already completing") || stderr.contains("Invalid job id") {
            Ok(())
        } else {
            Err(CapabilityError::Upstream(format!(
                "scancel: {}",
                stderr.trim()
            )))
        }
    }
}

/// Resolved settings.
struct Settings {
    shared_dir: PathBuf,
    partition: Option<String>,
    poll: Duration,
    grace: Duration,
    default_cpus: u32,
    default_memory_mb: u64,
    default_timeout: Duration,
    path: String,
    capture: CaptureLimits,
}

/// Submits jobs to Slurm.
pub struct SlurmExecutor {
    api: Arc<dyn SlurmApi>,
    settings: Settings,
    isolation: Isolation,
    datasets: BTreeMap<String, PathBuf>,
    prefix: String,
}

impl SlurmExecutor {
    /// The backend `config` describes; `env` reads the JWT's environment variable.
    pub fn new(
        config: &SlurmConfig,
        datasets: BTreeMap<String, PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SlurmExecutor, String> {
        let shared_dir = config
            .shared_dir
            .clone()
            .ok_or("[jobs.slurm] needs `shared-dir`: a directory every node of the cluster sees")?;
        std::fs::create_dir_all(&shared_dir)
            .map_err(|e| format!("creating {}: {e}", shared_dir.display()))?;
        let api: Arc<dyn SlurmApi> = match &config.url {
            Some(url) => {
                let token_env = config.token_env.as_deref().unwrap_or("SLURM_JWT");
                let token = env(token_env).filter(|t| !t.is_empty()).ok_or_else(|| {
                    format!("[jobs.slurm] url is set but ${token_env} holds no JWT (get one with `scontrol token`)")
                })?;
                let user = config
                    .user
                    .clone()
                    .or_else(|| env("USER"))
                    .unwrap_or_else(|| "root".into());
                Arc::new(RestApi::new(url, &user, &token))
            }
            None => Arc::new(CliApi),
        };
        let isolation = match config.sandbox.unwrap_or_default() {
            SandboxKind::Bubblewrap => Isolation::bubblewrap(config.bwrap.as_deref())?,
            SandboxKind::None => {
                tracing::warn!(
                    "[jobs.slurm] sandbox = \"none\": cluster jobs will run UNSANDBOXED"
                );
                Isolation::Unsandboxed
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(SlurmExecutor {
            api,
            settings: Settings {
                shared_dir,
                partition: config.partition.clone(),
                poll: Duration::from_millis(config.poll_ms.unwrap_or(1000)),
                grace: Duration::from_secs(config.grace_secs.unwrap_or(10)),
                default_cpus: config.default_cpus.unwrap_or(1),
                default_memory_mb: config.default_memory_mb.unwrap_or(4096),
                default_timeout: Duration::from_secs(config.default_timeout_secs.unwrap_or(3600)),
                path: config
                    .path
                    .clone()
                    .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
                capture: CaptureLimits {
                    head_bytes: config.output_head_bytes.unwrap_or(8 << 10),
                    tail_bytes: config.output_tail_bytes.unwrap_or(8 << 10),
                    log_max_bytes: u64::MAX,
                },
            },
            isolation,
            datasets,
            prefix: format!("{}-{}", now.as_millis(), std::process::id()),
        })
    }

    /// Check, prepare and submit `spec`; the returned job follows it on the cluster.
    pub async fn submit(
        self: &Arc<Self>,
        context: &JobContext,
        spec: JobSpec,
    ) -> CapResult<Arc<SlurmJob>> {
        validate(&spec, &self.datasets, context)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "slurm-{}-{}",
            self.prefix,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = self.settings.shared_dir.join(&id);
        let work = dir.join("work");
        let internal = |e: std::io::Error| {
            CapabilityError::Internal(format!("preparing {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(&work).map_err(internal)?;
        let work_dir =
            Dir::open_ambient_dir(&work, cap_std::ambient_authority()).map_err(internal)?;
        materialise(&work_dir, &spec.files, &context.artifacts)?;
        let mut mounts = Vec::new();
        for mount in &spec.mounts {
            let host = match &mount.source {
                MountSource::TaskPublic => context.task_public.clone(),
                MountSource::Named(name) => self.datasets.get(name).cloned(),
                MountSource::Artifact(artifact) => {
                    let meta = context.artifacts.stat(artifact)?;
                    let copy = dir.join("mounts").join(&meta.id).join(&meta.name);
                    std::fs::create_dir_all(copy.parent().expect("has a parent"))
                        .map_err(internal)?;
                    let mut source = context.artifacts.open_file(artifact)?;
                    let mut file = std::fs::File::create(&copy).map_err(internal)?;
                    std::io::copy(&mut source, &mut file).map_err(internal)?;
                    Some(copy)
                }
            }
            .ok_or_else(|| {
                CapabilityError::NotFound("a mount's source is not available to this run".into())
            })?;
            mounts.push((host, sandbox::mount_target(&mount.target)?));
        }
        let resources = &spec.resources;
        let timeout = resources
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.settings.default_timeout);
        let batch = BatchJob {
            name: spec
                .name
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(60)
                .collect::<String>(),
            script: self.script(&spec, &work, mounts),
            workdir: dir.clone(),
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
            cpus: resources.cpus.unwrap_or(self.settings.default_cpus),
            memory_mb: resources
                .memory_mb
                .unwrap_or(self.settings.default_memory_mb),
            time_limit_minutes: timeout.as_secs().div_ceil(60).max(1) + 1,
            gpus: resources.gpus,
            gpu_kind: resources.gpu_kind.clone(),
            partition: self.settings.partition.clone(),
        };
        let slurm_id = self.api.submit(&batch).await?;
        let (done, _) = watch::channel(None);
        let job = Arc::new(SlurmJob {
            id: format!("{id}-{slurm_id}"),
            slurm_id,
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
        Ok(job)
    }

    /// The batch script: the command, in the sandbox unless the operator opted out.
    fn script(&self, spec: &JobSpec, work: &Path, mounts: Vec<(PathBuf, String)>) -> String {
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), self.settings.path.clone()),
            ("HOME".into(), sandbox::WORKDIR.into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        env.extend(spec.env.iter().cloned());
        let sandbox_spec = SandboxSpec {
            workdir: work.to_path_buf(),
            mounts,
            env: env.clone(),
            command: spec.command.clone(),
            ..SandboxSpec::default()
        };
        let argv = sandbox::argv(&self.isolation, &sandbox_spec);
        let quote = |args: &[std::ffi::OsString]| -> Vec<String> {
            args.iter()
                .map(|a| shell_quote(&a.to_string_lossy()))
                .collect()
        };
        let mut script = String::from("#!/bin/sh\n# Written by Sophon.\n");
        match self.isolation {
            Isolation::Bubblewrap(_) => {
                // Slurm's GPU assignment and the node's GPU devices pass into the sandbox.
                script.push_str(
                    "set -- --setenv CUDA_VISIBLE_DEVICES \"${CUDA_VISIBLE_DEVICES:-}\"\n",
                );
                script.push_str("for d in /dev/nvidia*; do [ -e \"$d\" ] && set -- \"$@\" --dev-bind \"$d\" \"$d\"; done\n");
                // bwrap [options] "$@" -- command: the node's extras go before the separator.
                let separator = argv
                    .iter()
                    .position(|a| a == "--")
                    .expect("bwrap's argv has `--`");
                let (options, command) = argv.split_at(separator);
                script.push_str(&format!(
                    "exec {} \"$@\" {}\n",
                    quote(options).join(" "),
                    quote(command).join(" ")
                ));
            }
            Isolation::Unsandboxed => {
                script.push_str(&format!("cd {}\n", shell_quote(&work.to_string_lossy())));
                for (key, value) in &env {
                    script.push_str(&format!("export {key}={}\n", shell_quote(value)));
                }
                script.push_str(&format!("exec {}\n", quote(&argv).join(" ")));
            }
        }
        script
    }

    /// Poll the job until it ends (enforcing the timeout and honouring cancels), then collect.
    async fn follow(
        &self,
        job: &SlurmJob,
        context: &JobContext,
        outputs: &[String],
        timeout: Duration,
    ) -> JobResult {
        let submitted = Instant::now();
        let mut started: Option<Instant> = None;
        let mut forced: Option<(JobState, Instant)> = None;
        let mut failures = 0;
        let last = loop {
            match self.api.query(job.slurm_id).await {
                Ok(Some(state)) => {
                    failures = 0;
                    let mapped = map_state(&state.state);
                    if mapped == JobState::Running && started.is_none() {
                        started = Some(Instant::now());
                        job.set_state(JobState::Running);
                    }
                    if mapped.is_final() {
                        break Some(state);
                    }
                }
                Ok(None) => break None,
                Err(e) => {
                    failures += 1;
                    if failures >= 30 {
                        return JobResult::ended(
                            JobState::Failed,
                            &format!("lost track of Slurm job {}: {e}", job.slurm_id),
                        );
                    }
                }
            }
            let cancel = job.cancel_requested.load(Ordering::Acquire);
            let over_time = started.is_some_and(|s| s.elapsed() >= timeout);
            match forced {
                None if cancel || over_time => {
                    let why = if cancel {
                        JobState::Cancelled
                    } else {
                        JobState::TimedOut
                    };
                    let _ = self.api.signal(job.slurm_id, "INT").await;
                    forced = Some((why, Instant::now()));
                }
                Some((_, since)) if since.elapsed() >= self.settings.grace => {
                    let _ = self.api.signal(job.slurm_id, "KILL").await;
                }
                _ => {}
            }
            tokio::time::sleep(self.settings.poll).await;
        };
        let work = job.dir.join("work");
        let mut result = JobResult {
            state: last
                .as_ref()
                .map_or(JobState::Failed, |s| map_state(&s.state)),
            exit: last.as_ref().and_then(|s| s.exit),
            stdout: excerpt_of_file(&job.dir.join("stdout.log"), self.settings.capture),
            stderr: excerpt_of_file(&job.dir.join("stderr.log"), self.settings.capture),
            wall_ms: match last.as_ref().and_then(|s| s.start.zip(s.end)) {
                Some((start, end)) => end.saturating_sub(start) * 1000,
                None => started.unwrap_or(submitted).elapsed().as_millis() as u64,
            },
            cpu_ms: 0,
            peak_memory_bytes: None,
            artifacts: Vec::new(),
            message: match &last {
                Some(state) => format!("Slurm job {} ended {}", job.slurm_id, state.state),
                None => format!("Slurm forgot job {} before Sophon saw it end", job.slurm_id),
            },
        };
        if let Some((why, _)) = forced {
            result.state = why;
            if why == JobState::TimedOut {
                result.message = format!("killed after its {} s timeout", timeout.as_secs_f64());
            }
        }
        if let Ok(work_dir) = Dir::open_ambient_dir(&work, cap_std::ambient_authority()) {
            let (artifacts, problems) = collect_outputs(&work_dir, outputs, &context.artifacts);
            result.artifacts = artifacts;
            if !problems.is_empty() {
                result.message = format!("{}; {}", result.message, problems.join("; "));
            }
        }
        result
    }
}

/// Slurm's job states as Sophon's.
pub fn map_state(state: &str) -> JobState {
    match state {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "RESIZING" | "SUSPENDED" => JobState::Queued,
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" => JobState::Running,
        "COMPLETED" => JobState::Succeeded,
        "TIMEOUT" | "DEADLINE" => JobState::TimedOut,
        "OUT_OF_MEMORY" => JobState::OutOfMemory,
        "CANCELLED" => JobState::Cancelled,
        _ => JobState::Failed,
    }
}

/// `'…'` with embedded quotes escaped.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A job on the cluster.
pub struct SlurmJob {
    id: String,
    slurm_id: u64,
    dir: PathBuf,
    state: Mutex<JobState>,
    done: watch::Sender<Option<JobResult>>,
    cancel_requested: AtomicBool,
    api: Arc<dyn SlurmApi>,
}

impl SlurmJob {
    pub fn slurm_id(&self) -> u64 {
        self.slurm_id
    }

    /// The job's directory on the shared filesystem (`work/`, `stdout.log`, `stderr.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn set_state(&self, state: JobState) {
        *self.state.lock().unwrap() = state;
    }

    fn finish(&self, result: JobResult) {
        self.set_state(result.state);
        self.done.send_replace(Some(result));
    }
}

#[async_trait::async_trait]
impl JobHandle for SlurmJob {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn state(&self) -> JobState {
        *self.state.lock().unwrap()
    }

    async fn wait(&self) -> JobResult {
        let mut done = self.done.subscribe();
        loop {
            if let Some(result) = done.borrow_and_update().clone() {
                return result;
            }
            if done.changed().await.is_err() {
                return JobResult::ended(JobState::Failed, "the Slurm backend went away");
            }
        }
    }

    fn result(&self) -> Option<JobResult> {
        self.done.borrow().clone()
    }

    async fn cancel(&self) {
        self.cancel_requested.store(true, Ordering::Release);
        if self.state() == JobState::Queued {
            let _ = self.api.signal(self.slurm_id, "KILL").await;
        }
    }

    async fn logs(&self, stream: LogStream, offset: u64, max_bytes: u32) -> CapResult<String> {
        read_log(&self.dir, stream, offset, max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_quoting() {
        assert_eq!(map_state("PENDING"), JobState::Queued);
        assert_eq!(map_state("COMPLETED"), JobState::Succeeded);
        assert_eq!(map_state("TIMEOUT"), JobState::TimedOut);
        assert_eq!(map_state("OUT_OF_MEMORY"), JobState::OutOfMemory);
        assert_eq!(map_state("NODE_FAIL"), JobState::Failed);
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
