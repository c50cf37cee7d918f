//! The local executor (the embedded default): runs each job in its own bubblewrap sandbox on
//! this machine, with exclusive CPU cores (pinned) and GPUs (`CUDA_VISIBLE_DEVICES`) from the
//! [`Scheduler`], memory and process limits from a per-job cgroup, a wall-clock timeout (SIGINT,
//! a grace period, then SIGKILL of everything the job started), bounded output capture, and the
//! outputs collected into the run's artifact store.
//!
//! File access on behalf of a job goes through cap-std `Dir` handles on the job's working
//! directory: a job file or output path that is absolute, contains `..` or leads through a
//! symlink out of the directory is refused, never followed.
//!
//! Every job starts in a new Unix session with no controlling terminal, dies with this process
//! (`PR_SET_PDEATHSIG`, and [`super::reaper`] kills what is left when Sophon ends), runs under
//! the seccomp filters of [`super::seccomp`], and gets a disk quota ([`super::disk`]): no single
//! file past it (`RLIMIT_FSIZE`), its working directory watched against it while it runs, and
//! that directory removed once the outputs are collected.
//!
//! Without a sandbox (`sandbox = "none"`, the operator's explicit choice) every job logs a
//! warning; without cgroups the limits fall back to rlimits (address space, processes), which
//! the executor reports once at start. GPU jobs get no address-space limit even then: CUDA
//! reserves far more virtual memory than any sensible limit (on an H200, `torch.zeros(1,
//! device="cuda")` fails under a 4 GiB `RLIMIT_AS`), so without cgroups their memory is unlimited
//! and each such job says so in the log.

use super::cgroup::{CgroupSupport, JobCgroup};
use super::config::{self as jobs_config, JobsConfig, LocalConfig, SandboxKind};
use super::disk::{self, DiskQuota};
use super::output::{CaptureLimits, capture, read_log};
use super::reaper;
use super::records;
use super::sandbox::{self, Isolation, SandboxError, SandboxSpec};
use super::scheduler::{Allocation, Inventory, Request, Scheduler};
use super::seccomp::{self, Filters, SeccompError};
pub use super::workdir::JobContext;
use super::workdir::{collect_outputs, materialise, resolve_mounts, validate};
use super::*;
use crate::capability::{CapResult, CapabilityError};
use cap_std::fs::Dir;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// `PATH` inside the sandbox unless `[jobs.local] path` says otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Why the local executor cannot start (each message includes its cause's text).
#[derive(Debug, thiserror::Error)]
pub enum LocalSetupError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("creating {}: {error}", path.display())]
    CreateJobsDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the jobs directory {}: {error}", path.display())]
    ResolveJobsDir {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Why a job could not be run to its end; its text becomes the failed job's message.
#[derive(Debug, thiserror::Error)]
pub enum LocalRunError {
    /// The scheduler refused the job's allocation.
    #[error(transparent)]
    Allocation(CapabilityError),
    #[error("opening {}: {error}", path.display())]
    OpenWorkDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The job's files or mounts could not be put in place.
    #[error(transparent)]
    Prepare(CapabilityError),
    #[error("handing the working directory to the job's user: {0}")]
    HandOver(std::io::Error),
    #[error("writing the job's seccomp filter: {0}")]
    WriteFilter(std::io::Error),
    #[error("creating the job's cgroup: {0}")]
    Cgroup(std::io::Error),
    #[error("{} contains NUL", .0.display())]
    NulInPath(PathBuf),
    #[error("starting `{program}`: {error}")]
    Spawn {
        program: String,
        error: std::io::Error,
    },
    #[error("waiting for the job: {0}")]
    Wait(std::io::Error),
}

/// Resolved executor settings.
#[derive(Clone, Debug)]
struct Settings {
    jobs_dir: PathBuf,
    default_cpus: usize,
    default_memory_mb: u64,
    default_timeout: Duration,
    grace: Duration,
    max_processes: u64,
    max_timeout: Duration,
    disk: DiskQuota,
    capture: CaptureLimits,
    ro_binds: Vec<PathBuf>,
    path: String,
}

impl Settings {
    /// `[jobs.local]`'s settings, defaults filled in, with jobs under `jobs_dir`.
    fn of(local: &LocalConfig, jobs_dir: PathBuf) -> Settings {
        Settings {
            jobs_dir,
            default_cpus: local.default_cpus.unwrap_or(1) as usize,
            default_memory_mb: local.default_memory_mb.unwrap_or(4096),
            default_timeout: Duration::from_secs(local.default_timeout_secs.unwrap_or(3600)),
            grace: Duration::from_secs(local.grace_secs.unwrap_or(10)),
            max_processes: local.max_processes.unwrap_or(512),
            max_timeout: Duration::from_secs(
                local
                    .max_timeout_secs
                    .unwrap_or(jobs_config::DEFAULT_MAX_TIMEOUT_SECS),
            ),
            disk: DiskQuota {
                max_bytes: local.disk_mb.unwrap_or(jobs_config::DEFAULT_DISK_MB) << 20,
                max_files: local.max_files.unwrap_or(jobs_config::DEFAULT_MAX_FILES),
                min_free_bytes: local
                    .min_free_disk_mb
                    .unwrap_or(jobs_config::DEFAULT_MIN_FREE_DISK_MB)
                    << 20,
            },
            capture: CaptureLimits {
                head_bytes: local.output_head_bytes.unwrap_or(8 << 10),
                tail_bytes: local.output_tail_bytes.unwrap_or(8 << 10),
                log_max_bytes: local.log_max_bytes.unwrap_or(64 << 20),
            },
            ro_binds: local.ro_binds.clone(),
            path: local.path.clone().unwrap_or_else(|| DEFAULT_PATH.into()),
        }
    }
}

/// The isolation `[jobs.local]` asks for; opting out of the sandbox is logged loudly.
fn isolation(local: &LocalConfig) -> Result<Isolation, SandboxError> {
    Ok(match local.sandbox.unwrap_or_default() {
        SandboxKind::Bubblewrap => {
            Isolation::bubblewrap(local.bwrap.as_deref(), local.job_uid, local.job_gid)?
        }
        SandboxKind::None => {
            tracing::warn!(
                "[jobs.local] sandbox = \"none\": jobs will run UNSANDBOXED, with this process's access to the machine"
            );
            Isolation::Unsandboxed
        }
    })
}

/// This machine's cores, GPUs and memory, as `[jobs.local]` overrides them.
fn inventory(local: &LocalConfig) -> Inventory {
    let mut inventory = Inventory::detect();
    if let Some(cores) = &local.cpus {
        inventory.cores = cores.clone();
    }
    if let Some(gpus) = &local.gpus {
        inventory.gpus = gpus.clone();
    }
    if let Some(mb) = local.memory_mb {
        inventory.memory_mb = mb;
    }
    inventory
}

/// The jobs directory (`jobs-dir`, else Sophon's data directory), created and made absolute:
/// the sandbox binds job directories by path, so they must not depend on a cwd.
fn jobs_dir(local: &LocalConfig) -> Result<PathBuf, LocalSetupError> {
    let jobs_dir = local
        .jobs_dir
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("sophon").join("jobs")))
        .unwrap_or_else(|| PathBuf::from("sophon-jobs"));
    std::fs::create_dir_all(&jobs_dir).map_err(|error| LocalSetupError::CreateJobsDir {
        path: jobs_dir.clone(),
        error,
    })?;
    std::path::absolute(&jobs_dir).map_err(|error| LocalSetupError::ResolveJobsDir {
        path: jobs_dir.clone(),
        error,
    })
}

pub struct LocalExecutor {
    settings: Settings,
    isolation: Isolation,
    /// The seccomp filters every job runs under.
    filters: Filters,
    cgroups: CgroupSupport,
    scheduler: Scheduler,
    datasets: BTreeMap<String, PathBuf>,
    prefix: String,
    jobs: Mutex<BTreeMap<String, Arc<LocalJob>>>,
}

impl LocalExecutor {
    /// An executor for `config`; fails if the sandbox it asks for is not installed, the
    /// seccomp filters cannot be built or the jobs directory cannot be created. Reports once
    /// when limits fall back to rlimits, and kills what earlier processes left behind.
    pub fn new(config: &JobsConfig) -> Result<LocalExecutor, LocalSetupError> {
        let local = &config.local;
        let isolation = isolation(local)?;
        let inventory = inventory(local);
        let filters = seccomp::for_this_machine()?;
        let cgroups = CgroupSupport::detect();
        if let CgroupSupport::Unavailable(reason) = &cgroups {
            tracing::warn!(
                "job limits fall back to rlimits (address space, process count): {reason}"
            );
        }
        reaper::sweep_stale(&cgroups);
        let jobs_dir = jobs_dir(local)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(LocalExecutor {
            settings: Settings::of(local, jobs_dir),
            isolation,
            filters,
            cgroups,
            scheduler: Scheduler::new(inventory),
            datasets: config.datasets.clone(),
            prefix: format!("{}-{}", now.as_millis(), std::process::id()),
            jobs: Mutex::new(BTreeMap::new()),
        })
    }

    /// Where job directories are.
    pub fn jobs_dir(&self) -> &Path {
        &self.settings.jobs_dir
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Who jobs run as on the host, in words (for `sophon job resources`).
    pub fn job_user(&self) -> String {
        match &self.isolation {
            Isolation::Bubblewrap(sandbox) => sandbox.user.describe(),
            Isolation::Unsandboxed => {
                let uid = sandbox::effective_uid();
                let root = if uid == 0 { ": ROOT" } else { "" };
                format!("uid {uid}, Sophon's own (unsandboxed{root})")
            }
        }
    }

    /// Each job's disk limits.
    pub fn disk_quota(&self) -> DiskQuota {
        self.settings.disk
    }

    /// Whether memory and process limits are enforced with cgroups (else rlimits).
    pub fn cgroups(&self) -> &CgroupSupport {
        &self.cgroups
    }

    /// A job this executor started, by id.
    pub fn job(&self, id: &str) -> Option<Arc<LocalJob>> {
        self.jobs.lock().unwrap().get(id).cloned()
    }

    /// Check `spec`, then queue it; the job runs in the background.
    pub fn submit(
        self: &Arc<Self>,
        context: &JobContext,
        spec: JobSpec,
    ) -> CapResult<Arc<LocalJob>> {
        validate(&spec, &self.datasets, context)?;
        let request = self.request(&spec)?;
        self.scheduler.check(&request)?;
        // Unique in this process (not just this executor: cgroups are machine-wide), and the
        // prefix makes it unique across processes.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("local-{}-{number}", self.prefix);
        let dir = self.settings.jobs_dir.join(&id);
        std::fs::create_dir_all(dir.join("work")).map_err(|e| {
            CapabilityError::Internal(format!("creating the job directory {}: {e}", dir.display()))
        })?;
        let (done, _) = watch::channel(None);
        let job = Arc::new(LocalJob {
            id: id.clone(),
            name: spec.name.clone(),
            dir,
            state: Mutex::new(JobState::Queued),
            done,
            cancel_requested: AtomicBool::new(false),
            cancel: Notify::new(),
        });
        records::write_record(&job.dir, &records::new_record(&id, &spec, &context.owner));
        self.jobs.lock().unwrap().insert(id, job.clone());
        let (executor, job_task, context) = (self.clone(), job.clone(), context.clone());
        tokio::spawn(async move {
            let result = executor.execute(&job_task, &context, &spec, request).await;
            job_task
                .finish(result.unwrap_or_else(|error| {
                    JobResult::ended(JobState::Failed, &error.to_string())
                }));
        });
        Ok(job)
    }

    fn request(&self, spec: &JobSpec) -> CapResult<Request> {
        let r = &spec.resources;
        if r.cpus == Some(0) {
            return Err(CapabilityError::InvalidArgument(
                "resources.cpus must be at least 1".into(),
            ));
        }
        Ok(Request {
            cpus: r.cpus.map_or(self.settings.default_cpus, |c| c as usize),
            gpus: r.gpus as usize,
            gpu_kind: r.gpu_kind.clone(),
            memory_mb: r.memory_mb.unwrap_or(self.settings.default_memory_mb),
        })
    }

    /// Run `job` from the queue to its result: wait for its allocation (or a cancel), prepare
    /// its working directory, run it under its cgroup, read and remove the cgroup, collect the
    /// outputs, and remove what it left on disk. The allocation is held until the end.
    async fn execute(
        &self,
        job: &Arc<LocalJob>,
        context: &JobContext,
        spec: &JobSpec,
        request: Request,
    ) -> Result<JobResult, LocalRunError> {
        let allocation = tokio::select! {
            allocation = self.scheduler.acquire(&context.owner, request) => allocation.map_err(LocalRunError::Allocation)?,
            _ = job.cancelled() => return Ok(JobResult::ended(JobState::Cancelled, "cancelled while queued")),
        };
        job.set_state(JobState::Running);
        let work = job.dir.join("work");
        let work_dir =
            Dir::open_ambient_dir(&work, cap_std::ambient_authority()).map_err(|error| {
                LocalRunError::OpenWorkDir {
                    path: work.clone(),
                    error,
                }
            })?;
        let mounts = match self.prepare(job, context, spec, &work_dir, &work) {
            Ok(mounts) => mounts,
            Err(e) => {
                self.clean_up(job).await;
                return Err(e);
            }
        };
        let cgroup = match self.cgroup(job, &allocation) {
            Ok(cgroup) => cgroup,
            Err(e) => {
                self.clean_up(job).await;
                return Err(e);
            }
        };
        let outcome = self
            .run_process(job, spec, &allocation, &work, mounts, cgroup.clone())
            .await;
        // Read the group's accounting, then remove it — whether or not the job ever started.
        let accounting = cgroup.as_deref().map(release);
        // A job that failed to start leaves no files behind either.
        let mut result = match outcome {
            Ok(result) => result,
            Err(e) => {
                self.clean_up(job).await;
                return Err(e);
            }
        };
        if let Some(accounting) = accounting {
            accounting.apply(&mut result, allocation.memory_mb);
        }
        let (artifacts, problems) = self.collect(work_dir, spec, context).await;
        self.clean_up(job).await;
        result.artifacts = artifacts;
        if !problems.is_empty() {
            let joined = problems.join("; ");
            result.message = if result.message.is_empty() {
                joined
            } else {
                format!("{}; {joined}", result.message)
            };
        }
        drop(allocation);
        Ok(result)
    }

    /// Put the job's files in its working directory, hand the directory to the job's user and
    /// write its seccomp filters (sandboxed jobs), and resolve its mounts.
    fn prepare(
        &self,
        job: &LocalJob,
        context: &JobContext,
        spec: &JobSpec,
        work_dir: &Dir,
        work: &Path,
    ) -> Result<Vec<(PathBuf, String)>, LocalRunError> {
        materialise(work_dir, &spec.files, &context.artifacts).map_err(LocalRunError::Prepare)?;
        if let Isolation::Bubblewrap(sandbox) = &self.isolation {
            sandbox::hand_over(&sandbox.user, work).map_err(LocalRunError::HandOver)?;
            for (name, filter) in [
                (SECCOMP_DENY, &self.filters.deny),
                (SECCOMP_NOSYS, &self.filters.nosys),
            ] {
                std::fs::write(job.dir.join(name), filter).map_err(LocalRunError::WriteFilter)?;
            }
        }
        resolve_mounts(&job.dir, spec, context, &self.datasets).map_err(LocalRunError::Prepare)
    }

    /// The job's cgroup with its memory and process limits; `None` without cgroup support.
    fn cgroup(
        &self,
        job: &LocalJob,
        allocation: &Allocation,
    ) -> Result<Option<Arc<JobCgroup>>, LocalRunError> {
        let memory_bytes = allocation.memory_mb * 1024 * 1024;
        Ok(match &self.cgroups {
            CgroupSupport::Unavailable(_) => None,
            support => Some(Arc::new(
                JobCgroup::create(
                    support,
                    &job.id,
                    Some(memory_bytes),
                    Some(self.settings.max_processes),
                )
                .map_err(LocalRunError::Cgroup)?,
            )),
        })
    }

    /// The job's outputs stored as artifacts (off the executor), with what went wrong.
    async fn collect(
        &self,
        work_dir: Dir,
        spec: &JobSpec,
        context: &JobContext,
    ) -> (Vec<crate::artifacts::Artifact>, Vec<String>) {
        let (outputs, store, max_total) = (
            spec.outputs.clone(),
            context.artifacts.clone(),
            self.settings.disk.max_bytes,
        );
        tokio::task::spawn_blocking(move || collect_outputs(&work_dir, &outputs, &store, max_total))
            .await
            .unwrap_or_else(|e| (Vec::new(), vec![format!("collecting the outputs: {e}")]))
    }

    /// Remove what the job left on disk but its logs and records: its working directory,
    /// mounted copies and seccomp filters.
    async fn clean_up(&self, job: &LocalJob) {
        let dir = job.dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            disk::remove_tree(&dir.join("work"));
            disk::remove_tree(&dir.join("mounts"));
            for name in [SECCOMP_DENY, SECCOMP_NOSYS] {
                let _ = std::fs::remove_file(dir.join(name));
            }
        })
        .await;
    }

    /// Run the job's process until it exits, times out, is cancelled or outgrows its disk
    /// quota; then stop everything it started and say how it ended. Errors (the process did
    /// not start, or could not be waited for) end the job as failed.
    async fn run_process(
        &self,
        job: &Arc<LocalJob>,
        spec: &JobSpec,
        allocation: &Allocation,
        work: &Path,
        mounts: Vec<(PathBuf, String)>,
        cgroup_handle: Option<Arc<JobCgroup>>,
    ) -> Result<JobResult, LocalRunError> {
        let cgroup = cgroup_handle.as_deref();
        let env = self.job_env(spec, allocation);
        let sandboxed = matches!(self.isolation, Isolation::Bubblewrap(_));
        let sandbox_spec = self.sandbox_spec(spec, allocation, work, mounts, &env, sandboxed);
        if !sandboxed {
            tracing::warn!(job = %job.id, "running job `{}` UNSANDBOXED ([jobs.local] sandbox = \"none\")", spec.name);
        }
        let argv = sandbox::argv(&self.isolation, &sandbox_spec);
        let mut command = process_command(&argv, &job.dir, work, env, sandboxed);
        if cgroup.is_none() && !allocation.gpus.is_empty() {
            tracing::warn!(job = %job.id, "GPU job `{}` runs without a memory limit: there is no writable cgroup, and CUDA cannot start under an address-space rlimit", spec.name);
        }
        let setup = self.child_setup(job, allocation, cgroup, sandboxed)?;
        // SAFETY: the closure only makes async-signal-safe calls (setsid, prctl, open, fcntl,
        // dup2, close, write, sched_setaffinity, setrlimit, seccomp) on data prepared before the
        // fork.
        unsafe { command.pre_exec(move || setup.apply()) };
        let started = Instant::now();
        let mut child = command.spawn().map_err(|error| LocalRunError::Spawn {
            program: argv[0].to_string_lossy().into_owned(),
            error,
        })?;
        let root_pid = child.id().map(|p| p as i32);
        reaper::track(&job.id, root_pid, cgroup_handle.clone());
        let (stdout_task, stderr_task) = self.capture_output(&mut child, job);
        let timeout = self.timeout(spec);
        let end = tokio::select! {
            status = child.wait() => End::Exited(status.map_err(LocalRunError::Wait)?),
            _ = tokio::time::sleep(timeout) => End::TimedOut,
            _ = job.cancelled() => End::Cancelled,
            reason = disk::watch(work.to_path_buf(), self.settings.disk) => End::OverDisk(reason),
        };
        let status = self
            .stop(&end, &mut child, root_pid, sandboxed, cgroup)
            .await?;
        let wall = started.elapsed();
        reaper::untrack(&job.id);
        // Nothing the job started may outlive it (and hold its output pipes open). The child is
        // reaped, so its pid may be reused: only the cgroup is safe to act on now. In the
        // sandbox, bwrap's exit has already ended its pid namespace.
        if let Some(cgroup) = cgroup {
            cgroup.kill_all();
        }
        let (stdout, stderr) = (excerpt(stdout_task).await, excerpt(stderr_task).await);
        let exit = exit_of(status);
        let (state, message) = self.ending(end, exit, status, sandboxed, timeout);
        Ok(JobResult {
            state,
            exit,
            stdout,
            stderr,
            wall_ms: wall.as_millis() as u64,
            cpu_ms: 0,
            peak_memory_bytes: None,
            artifacts: Vec::new(),
            message,
        })
    }

    /// What the job's sandbox contains: its working directory, mounts, the operator's extra
    /// read-only binds, its GPUs' devices, `env`, its command, `/tmp` and `/dev/shm` sized to
    /// its memory, and the seccomp filters when `sandboxed`.
    fn sandbox_spec(
        &self,
        spec: &JobSpec,
        allocation: &Allocation,
        work: &Path,
        mounts: Vec<(PathBuf, String)>,
        env: &[(String, String)],
        sandboxed: bool,
    ) -> SandboxSpec {
        SandboxSpec {
            workdir: work.to_path_buf(),
            mounts,
            extra_ro: self.settings.ro_binds.clone(),
            devices: match allocation.gpus.is_empty() {
                true => Vec::new(),
                false => nvidia_devices(),
            },
            env: env.to_vec(),
            command: spec.command.clone(),
            tmpfs_bytes: Some(allocation.memory_mb.saturating_mul(1 << 20)),
            seccomp: sandboxed,
        }
    }

    /// The job's environment: a fixed `PATH`, `HOME` and locale, thread counts matching its
    /// cores, its GPUs as `CUDA_VISIBLE_DEVICES`, then the spec's own variables.
    fn job_env(&self, spec: &JobSpec, allocation: &Allocation) -> Vec<(String, String)> {
        let cpus = allocation.cores.len().max(1).to_string();
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), self.settings.path.clone()),
            ("HOME".into(), sandbox::WORKDIR.into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("OMP_NUM_THREADS".into(), cpus.clone()),
            ("OPENBLAS_NUM_THREADS".into(), cpus.clone()),
            ("MKL_NUM_THREADS".into(), cpus),
            (
                "CUDA_VISIBLE_DEVICES".into(),
                allocation
                    .gpus
                    .iter()
                    .map(|g| g.index.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ];
        env.extend(spec.env.iter().cloned());
        env
    }

    /// What the forked child does before `exec`: its cgroup or fallback rlimits, its cores,
    /// the file-size limit, and the seccomp filters (files for bwrap, else installed).
    fn child_setup(
        &self,
        job: &LocalJob,
        allocation: &Allocation,
        cgroup: Option<&JobCgroup>,
        sandboxed: bool,
    ) -> Result<ChildSetup, LocalRunError> {
        let filters = match sandboxed {
            // bwrap loads them from the job directory's files, through fds 3 and 4.
            true => ChildFilters::Files([
                cstring(&job.dir.join(SECCOMP_DENY))?,
                cstring(&job.dir.join(SECCOMP_NOSYS))?,
            ]),
            false => ChildFilters::Install([
                seccomp::aligned(&self.filters.deny),
                seccomp::aligned(&self.filters.nosys),
            ]),
        };
        Ok(ChildSetup::new(
            &allocation.cores,
            cgroup,
            fallback_rlimits(
                allocation.memory_mb,
                self.settings.max_processes,
                !allocation.gpus.is_empty(),
            ),
            self.settings.disk.max_bytes,
            filters,
        ))
    }

    /// Capture the child's stdout and stderr into the job's logs, keeping excerpts.
    fn capture_output(
        &self,
        child: &mut tokio::process::Child,
        job: &LocalJob,
    ) -> (
        tokio::task::JoinHandle<OutputExcerpt>,
        tokio::task::JoinHandle<OutputExcerpt>,
    ) {
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let limits = self.settings.capture;
        let (out_log, err_log) = (job.dir.join("stdout.log"), job.dir.join("stderr.log"));
        let stdout_task = tokio::spawn(async move { capture(stdout, limits, &out_log).await });
        let stderr_task = tokio::spawn(async move { capture(stderr, limits, &err_log).await });
        (stdout_task, stderr_task)
    }

    /// The job's timeout: what it asks for, else the default, never over the maximum.
    fn timeout(&self, spec: &JobSpec) -> Duration {
        spec.resources
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.settings.default_timeout)
            .min(self.settings.max_timeout)
    }

    /// Stop a job that has not exited by itself, and reap it: over its disk quota at once;
    /// timed out or cancelled with SIGINT, a grace period, then SIGKILL.
    async fn stop(
        &self,
        end: &End,
        child: &mut tokio::process::Child,
        root_pid: Option<i32>,
        sandboxed: bool,
        cgroup: Option<&JobCgroup>,
    ) -> Result<std::process::ExitStatus, LocalRunError> {
        match end {
            End::Exited(status) => Ok(*status),
            // Writing past its disk quota: stopped at once, no grace.
            End::OverDisk(_) => kill_now(root_pid, cgroup, child).await,
            End::TimedOut | End::Cancelled => {
                // SIGINT to the job's processes (not to bwrap, whose death would end the
                // sandbox at once), a grace period, then SIGKILL of everything.
                signal_job(root_pid, sandboxed, cgroup, libc::SIGINT);
                match tokio::time::timeout(self.settings.grace, child.wait()).await {
                    Ok(status) => status.map_err(LocalRunError::Wait),
                    Err(_) => kill_now(root_pid, cgroup, child).await,
                }
            }
        }
    }

    /// The job's final state and message from how it ended.
    fn ending(
        &self,
        end: End,
        exit: Option<ExitStatus>,
        status: std::process::ExitStatus,
        sandboxed: bool,
        timeout: Duration,
    ) -> (JobState, String) {
        match end {
            End::Cancelled => (JobState::Cancelled, "cancelled".to_string()),
            End::OverDisk(reason) => (JobState::Failed, reason),
            End::Exited(_) if exceeded_file_size(exit, sandboxed) => (
                JobState::Failed,
                format!(
                    "killed by SIGXFSZ: a file reached the job's disk limit of {} MB ([jobs.local] disk-mb)",
                    self.settings.disk.max_bytes >> 20
                ),
            ),
            End::TimedOut => (
                JobState::TimedOut,
                format!(
                    "killed after its {} s timeout",
                    crate::units::seconds(timeout)
                ),
            ),
            End::Exited(_) if status.success() => (JobState::Succeeded, String::new()),
            End::Exited(_) => (JobState::Failed, String::new()),
        }
    }
}

/// How a job's process ended, before it is reaped.
enum End {
    Exited(std::process::ExitStatus),
    TimedOut,
    Cancelled,
    /// Over its disk quota, and why.
    OverDisk(String),
}

/// The command that runs `argv` with no stdin and piped output, killed if dropped: in the job
/// directory `job_dir` with an empty environment when `sandboxed` (bwrap sets the job's), else
/// in `work` with `env`.
fn process_command(
    argv: &[std::ffi::OsString],
    job_dir: &Path,
    work: &Path,
    env: Vec<(String, String)>,
    sandboxed: bool,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if sandboxed {
        command.current_dir(job_dir).env_clear();
    } else {
        command.current_dir(work).env_clear().envs(env);
    }
    command
}

/// An output excerpt once its capture task is done (at most 10 s more), else empty.
async fn excerpt(task: tokio::task::JoinHandle<OutputExcerpt>) -> OutputExcerpt {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

/// A process's exit as the job reports it: its code, else the signal that ended it.
fn exit_of(status: std::process::ExitStatus) -> Option<ExitStatus> {
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => Some(ExitStatus::Code(code)),
        (None, Some(signal)) => Some(ExitStatus::Signal(signal)),
        _ => None,
    }
}

/// What a job's cgroup accounted, read before the group is removed.
struct Accounting {
    peak_memory: Option<u64>,
    cpu_time: Option<Duration>,
    oom_killed: bool,
}

/// Kill what is left in `cgroup`, read its accounting, then remove it.
fn release(cgroup: &JobCgroup) -> Accounting {
    cgroup.kill_all();
    let accounting = Accounting {
        peak_memory: cgroup.peak_memory(),
        cpu_time: cgroup.cpu_time(),
        oom_killed: cgroup.oom_killed(),
    };
    cgroup.remove();
    accounting
}

impl Accounting {
    /// Put the accounting in `result`; a failed job the kernel OOM-killed is out of memory.
    fn apply(self, result: &mut JobResult, memory_mb: u64) {
        result.peak_memory_bytes = self.peak_memory;
        if let Some(cpu) = self.cpu_time {
            result.cpu_ms = cpu.as_millis() as u64;
        }
        if result.state == JobState::Failed && self.oom_killed {
            result.state = JobState::OutOfMemory;
            result.message = format!("killed for using more than its {memory_mb} MB of memory");
        }
    }
}

/// The job directory's files holding the seccomp filters.
const SECCOMP_DENY: &str = "seccomp-deny.bpf";
const SECCOMP_NOSYS: &str = "seccomp-nosys.bpf";

/// How the child gets its seccomp filters.
enum ChildFilters {
    /// Opened as fds 3 and 4 for bwrap's `--add-seccomp-fd` (see [`sandbox::SECCOMP_FDS`]).
    Files([CString; 2]),
    /// Installed on the child itself (an unsandboxed job).
    Install([Vec<seccomp::sock_filter>; 2]),
}

/// What the child does between `fork` and `exec`, prepared beforehand.
struct ChildSetup {
    cores: libc::cpu_set_t,
    cgroup_procs: Vec<CString>,
    /// (resource, value): RLIMIT_CORE and RLIMIT_FSIZE always, the fallback ones where there
    /// are no cgroups.
    rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    filters: ChildFilters,
}

// SAFETY: cpu_set_t is plain data; CString is Send + Sync.
unsafe impl Send for ChildSetup {}
unsafe impl Sync for ChildSetup {}

impl ChildSetup {
    /// `fallback` applies only when there is no `cgroup`.
    fn new(
        cores: &[usize],
        cgroup: Option<&JobCgroup>,
        fallback: Vec<(libc::__rlimit_resource_t, u64)>,
        max_file_bytes: u64,
        filters: ChildFilters,
    ) -> ChildSetup {
        // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET only sets bits within it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &core in cores {
            unsafe { libc::CPU_SET(core, &mut set) };
        }
        let mut rlimits = vec![(libc::RLIMIT_CORE, 0), (libc::RLIMIT_FSIZE, max_file_bytes)];
        let cgroup_procs = match cgroup {
            Some(group) => group
                .join_paths()
                .into_iter()
                .filter_map(|p| CString::new(p.into_os_string().into_encoded_bytes()).ok())
                .collect(),
            None => {
                rlimits.extend(fallback);
                Vec::new()
            }
        };
        ChildSetup {
            cores: set,
            cgroup_procs,
            rlimits,
            filters,
        }
    }

    /// Runs in the forked child: leave the operator's session (no controlling terminal), die
    /// with this process, join the cgroups, pin the cores, set the rlimits, then pass on or
    /// install the seccomp filters.
    fn apply(&self) -> std::io::Result<()> {
        // SAFETY: async-signal-safe libc calls on data owned by self.
        unsafe {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for path in &self.cgroup_procs {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::CPU_COUNT(&self.cores) > 0
                && libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.cores)
                    != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for &(resource, value) in &self.rlimits {
                let limit = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            match &self.filters {
                ChildFilters::Files(paths) => {
                    // Open both above the low fds, then place them at 3 and 4 (dup2 clears
                    // close-on-exec there).
                    let mut high = [-1; 2];
                    for (slot, path) in high.iter_mut().zip(paths) {
                        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                        if fd < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64);
                        libc::close(fd);
                        if *slot < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    for (fd, target) in high.iter().zip(sandbox::SECCOMP_FDS) {
                        if libc::dup2(*fd, target) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        libc::close(*fd);
                    }
                }
                ChildFilters::Install(programs) => {
                    for program in programs {
                        seccomp::install(program)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether the job ended by SIGXFSZ (a file past `RLIMIT_FSIZE`); bwrap reports its child's
/// signal as exit code 128 + signal.
fn exceeded_file_size(exit: Option<ExitStatus>, sandboxed: bool) -> bool {
    match exit {
        Some(ExitStatus::Signal(signal)) => signal == libc::SIGXFSZ,
        Some(ExitStatus::Code(code)) => sandboxed && code == 128 + libc::SIGXFSZ,
        None => false,
    }
}

fn cstring(path: &Path) -> Result<CString, LocalRunError> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| LocalRunError::NulInPath(path.to_path_buf()))
}

/// The rlimits that stand in for a job's cgroup: its memory as an address-space limit (not for
/// GPU jobs, as CUDA cannot start under one) and its process count.
fn fallback_rlimits(
    memory_mb: u64,
    max_processes: u64,
    uses_gpus: bool,
) -> Vec<(libc::__rlimit_resource_t, u64)> {
    let mut limits = vec![(libc::RLIMIT_NPROC, max_processes)];
    if !uses_gpus {
        limits.push((libc::RLIMIT_AS, memory_mb.saturating_mul(1024 * 1024)));
    }
    limits
}

/// SIGKILL to everything the job started (bwrap included), then reap it.
async fn kill_now(
    root: Option<i32>,
    cgroup: Option<&JobCgroup>,
    child: &mut tokio::process::Child,
) -> Result<std::process::ExitStatus, LocalRunError> {
    signal_job(root, false, cgroup, libc::SIGKILL);
    if let Some(cgroup) = cgroup {
        cgroup.kill_all();
    }
    child.wait().await.map_err(LocalRunError::Wait)
}

/// Send `signal` to the job's processes: through its cgroup when there is one, else to its
/// process group and every descendant of `root`. With `spare_root`, the root (bwrap) is spared.
fn signal_job(root: Option<i32>, spare_root: bool, cgroup: Option<&JobCgroup>, signal: i32) {
    let Some(root) = root else { return };
    let mut pids: Vec<i32> = match cgroup {
        Some(group) => group.pids(),
        None => descendants(root),
    };
    if !spare_root {
        pids.push(root);
        // SAFETY: kill(2) on the job's own process group (negative pid).
        unsafe { libc::kill(-root, signal) };
    }
    for pid in pids {
        if spare_root && pid == root {
            continue;
        }
        // SAFETY: kill(2) on a process of the job.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Every process whose ancestry leads to `root`, from /proc.
fn descendants(root: i32) -> Vec<i32> {
    let mut parents: BTreeMap<i32, i32> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The parent pid is the second field after the parenthesised command name.
            if let Some(ppid) = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok())
            {
                parents.insert(pid, ppid);
            }
        }
    }
    parents
        .keys()
        .copied()
        .filter(|&pid| {
            let mut current = pid;
            for _ in 0..64 {
                match parents.get(&current) {
                    Some(&parent) if parent == root => return true,
                    Some(&parent) if parent > 1 => current = parent,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// The NVIDIA device nodes to bind for GPU jobs.
fn nvidia_devices() -> Vec<PathBuf> {
    std::fs::read_dir("/dev")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("nvidia"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One job of the local executor.
pub struct LocalJob {
    id: String,
    name: String,
    dir: PathBuf,
    state: Mutex<JobState>,
    done: watch::Sender<Option<JobResult>>,
    cancel_requested: AtomicBool,
    cancel: Notify,
}

impl LocalJob {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job's directory on the host (working directory `work/`, `stdout.log`, `stderr.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Record the state, in memory and in the job directory (for `sophon job ls`).
    fn set_state(&self, state: JobState) {
        *self.state.lock().unwrap() = state;
        records::write_state(&self.dir, state);
    }

    fn finish(&self, result: JobResult) {
        records::write_result(&self.dir, &result);
        *self.state.lock().unwrap() = result.state;
        self.done.send_replace(Some(result));
    }

    /// Resolves once a cancel was asked for: through [`JobHandle::cancel`], or by another
    /// process creating the job directory's `cancel` file (`sophon job cancel`).
    async fn cancelled(&self) {
        loop {
            let notified = self.cancel.notified();
            if self.cancel_requested.load(Ordering::Acquire)
                || records::cancel_file_exists(&self.dir)
            {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}

#[async_trait::async_trait]
impl JobHandle for LocalJob {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn state(&self) -> JobState {
        *self.state.lock().unwrap()
    }

    async fn wait(&self) -> JobResult {
        JobResult::awaited(&self.done, "the executor went away").await
    }

    fn result(&self) -> Option<JobResult> {
        self.done.borrow().clone()
    }

    async fn cancel(&self) {
        self.cancel_requested.store(true, Ordering::Release);
        self.cancel.notify_waiters();
    }

    async fn logs(&self, stream: LogStream, offset: u64, max_bytes: u32) -> CapResult<String> {
        read_log(&self.dir, stream, offset, max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_cgroups_cpu_jobs_get_an_address_space_limit_and_gpu_jobs_do_not() {
        let cpu = fallback_rlimits(512, 64, false);
        assert!(
            cpu.contains(&(libc::RLIMIT_AS, 512 * 1024 * 1024)),
            "{cpu:?}"
        );
        assert!(cpu.contains(&(libc::RLIMIT_NPROC, 64)), "{cpu:?}");
        let gpu = fallback_rlimits(512, 64, true);
        assert!(gpu.iter().all(|&(r, _)| r != libc::RLIMIT_AS), "{gpu:?}");
        assert!(gpu.contains(&(libc::RLIMIT_NPROC, 64)), "{gpu:?}");
    }
}
