//! `sophon job …`: run a command as a sandboxed job, list jobs, read their logs, cancel them.

use super::out;
use crate::artifacts::ArtifactStore;
use crate::config::SophonConfig;
use crate::jobs::backends::Backends;
use crate::jobs::local::{JobContext, LocalExecutor};
use crate::jobs::records::{CANCEL_FILE, list_jobs, state_name};
use crate::jobs::{JobHandle, JobResult, JobSpec, JobState, Mount, MountSource, Resources};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `sophon job run`'s arguments.
#[derive(Args)]
pub struct RunArgs {
    /// `local`, or `slurm` / `ray` where [jobs.slurm] / [jobs.ray] is configured.
    #[arg(long, default_value = "local")]
    backend: String,
    #[arg(long)]
    cpus: Option<u32>,
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// Memory limit, e.g. `512M`, `4G` (default: [jobs.local] default-memory-mb).
    #[arg(long)]
    memory: Option<String>,
    /// Wall-clock limit in seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// A directory mounted read-only at /data.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

#[derive(Subcommand)]
pub enum JobCommand {
    /// Run CMD ARGS... as a sandboxed job, streaming its output; exits non-zero unless it
    /// succeeds.
    Run(RunArgs),
    /// List jobs (newest first).
    Ls,
    /// Print a job's output so far. On a terminal, control characters in it are escaped
    /// (newlines and tabs kept); piped or redirected, it is copied byte for byte.
    Logs {
        id: String,
        /// stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
        /// Copy the output byte for byte even to a terminal (escape sequences and all).
        #[arg(long)]
        raw: bool,
    },
    /// Cancel a job (SIGINT, grace period, SIGKILL), even one run by another sophon process.
    Cancel { id: String },
    /// What local jobs get on this machine: the sandbox, how limits are enforced, the cores,
    /// memory and GPUs (from `nvidia-smi`, or `[jobs.local] gpus`) they are allocated from.
    Resources {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: JobCommand, config: &SophonConfig) -> anyhow::Result<()> {
    match command {
        JobCommand::Run(args) => run_job(args, config).await,
        JobCommand::Resources { json } => resources(config, json),
        JobCommand::Ls => list(config),
        JobCommand::Logs { id, stderr, raw } => logs(config, &id, stderr, raw),
        JobCommand::Cancel { id } => cancel(config, &id),
    }
}

/// `sophon job run`: submit the command, stream its output until it ends, print its status.
/// Exits the process with the job's exit code (or 1) unless it succeeds.
async fn run_job(args: RunArgs, config: &SophonConfig) -> anyhow::Result<()> {
    let memory_mb = args.memory.as_deref().map(parse_size_mb).transpose()?;
    let backends = Backends::new(&config.jobs)?;
    backends.check(&args.backend).await?;
    let context = job_context(backends.local_executor(), args.data.as_deref())?;
    let backend = args.backend.clone();
    let spec = job_spec(args, memory_mb);
    let (job, dir) = submit(&backends, &backend, &context, spec).await?;
    eprintln!("job {}", job.id());
    let result = follow(job.as_ref(), &dir).await;
    eprintln!("{}", status_line(&job.id(), &result));
    if result.state != JobState::Succeeded {
        std::process::exit(match result.exit {
            Some(crate::jobs::ExitStatus::Code(code)) if code != 0 => code,
            _ => 1,
        });
    }
    Ok(())
}

/// The context a CLI job runs in: this process as owner, an artifact store under the jobs
/// directory, and `data` (canonicalized; an error if it does not exist) as the task's public data.
fn job_context(
    executor: &LocalExecutor,
    data: Option<&std::path::Path>,
) -> anyhow::Result<JobContext> {
    let artifacts_dir = executor.jobs_dir().join("cli-artifacts");
    Ok(JobContext {
        owner: format!("cli-{}", std::process::id()),
        artifacts: Arc::new(
            ArtifactStore::open(&artifacts_dir, 1 << 30).context("opening the artifact store")?,
        ),
        task_public: match data {
            Some(dir) => Some(
                dir.canonicalize()
                    .with_context(|| format!("--data {}", dir.display()))?,
            ),
            None => None,
        },
    })
}

/// The job `args` describe; `--data` becomes a read-only mount at /data.
fn job_spec(args: RunArgs, memory_mb: Option<u64>) -> JobSpec {
    JobSpec {
        name: args.command.join(" "),
        files: Vec::new(),
        command: args.command,
        env: Vec::new(),
        resources: Resources {
            cpus: args.cpus,
            gpus: args.gpus,
            gpu_kind: None,
            memory_mb,
            timeout_ms: args.timeout.map(|s| s * 1000),
        },
        mounts: args
            .data
            .map(|_| {
                vec![Mount {
                    source: MountSource::TaskPublic,
                    target: "/data".into(),
                }]
            })
            .unwrap_or_default(),
        outputs: Vec::new(),
        backend: None,
    }
}

/// Submit `spec` to the cluster named `backend`, or else to the local executor; returns the
/// job and the directory its logs are written to.
async fn submit(
    backends: &Backends,
    backend: &str,
    context: &JobContext,
    spec: JobSpec,
) -> anyhow::Result<(Arc<dyn JobHandle>, PathBuf)> {
    Ok(match backends.cluster(backend) {
        Some(cluster) => {
            let job = cluster.submit(context, spec).await?;
            let dir = job.dir().to_path_buf();
            (job, dir)
        }
        None => {
            let job = backends.local_executor().submit(context, spec)?;
            let dir = job.dir().to_path_buf();
            (job, dir)
        }
    })
}

/// Copy the job's stdout and stderr logs (in `dir`) to ours until it ends; Ctrl-C cancels it.
/// The output reaches a terminal escaped, a pipe or file byte for byte.
async fn follow(job: &dyn JobHandle, dir: &std::path::Path) -> JobResult {
    let (mut out_offset, mut err_offset) = (0u64, 0u64);
    let (out_tty, err_tty) = (
        std::io::IsTerminal::is_terminal(&std::io::stdout()),
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    loop {
        let finished = job.result();
        let done = finished.is_some();
        out_offset += forward(
            &dir.join("stdout.log"),
            out_offset,
            &mut std::io::stdout(),
            out_tty,
            done,
        );
        err_offset += forward(
            &dir.join("stderr.log"),
            err_offset,
            &mut std::io::stderr(),
            err_tty,
            done,
        );
        if let Some(result) = finished {
            return result;
        }
        tokio::select! {
            _ = job.wait() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::signal::ctrl_c() => job.cancel().await,
        }
    }
}

/// `job <id> <state> (<exit>): <message> | wall …, cpu …, peak memory …`.
fn status_line(id: &str, result: &JobResult) -> String {
    let mut status = format!("job {id} {}", state_name(result.state));
    if let Some(exit) = result.exit {
        status.push_str(&format!(" ({exit:?})"));
    }
    if !result.message.is_empty() {
        status.push_str(&format!(": {}", crate::term::line(&result.message)));
    }
    status.push_str(&format!(
        " | wall {:.2} s, cpu {:.2} s, peak memory {}",
        result.wall_ms as f64 / 1000.0,
        result.cpu_ms as f64 / 1000.0,
        result
            .peak_memory_bytes
            .map_or("?".into(), |b| format!("{} MB", b >> 20))
    ));
    status
}

/// `sophon job resources`: what local jobs get on this machine, as text or JSON.
fn resources(config: &SophonConfig, json: bool) -> anyhow::Result<()> {
    let executor = LocalExecutor::new(&config.jobs).map_err(anyhow::Error::msg)?;
    let gpu_source = if config.jobs.local.gpus.is_some() {
        "[jobs.local] gpus"
    } else {
        "nvidia-smi"
    };
    if json {
        print_resources_json(&executor, gpu_source)
    } else {
        print_resources(&executor, gpu_source)
    }
}

/// The resources as one pretty-printed JSON object.
fn print_resources_json(executor: &LocalExecutor, gpu_source: &str) -> anyhow::Result<()> {
    let inventory = executor.scheduler().inventory();
    let summary = serde_json::json!({
        "sandbox": executor.isolation().to_string(),
        "user": executor.job_user(),
        "disk": disk_words(&executor.disk_quota()),
        "limits": executor.cgroups().describe(),
        "cores": inventory.cores,
        "memory_mb": inventory.memory_mb,
        "gpus": inventory.gpus,
        "gpu_source": gpu_source,
        "jobs_dir": executor.jobs_dir(),
    });
    out!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

/// The resources as aligned `name  value` lines, one per GPU.
fn print_resources(executor: &LocalExecutor, gpu_source: &str) -> anyhow::Result<()> {
    let inventory = executor.scheduler().inventory();
    out!("sandbox   {}", executor.isolation());
    out!("user      {}", executor.job_user());
    out!("disk      {}", disk_words(&executor.disk_quota()));
    out!("limits    {}", executor.cgroups().describe());
    out!(
        "cores     {} ({} in all)",
        core_ranges(&inventory.cores),
        inventory.cores.len()
    );
    out!("memory    {} MiB", inventory.memory_mb);
    if inventory.gpus.is_empty() {
        out!("gpus      none ({gpu_source} lists none, or is not installed)");
    }
    for gpu in &inventory.gpus {
        let memory = match gpu.memory_mb {
            0 => "memory not given".to_string(),
            mb => format!("{mb} MiB"),
        };
        out!(
            "gpu {:<5} {} ({memory}; from {gpu_source})",
            gpu.index,
            gpu.name
        );
    }
    out!("jobs dir  {}", executor.jobs_dir().display());
    Ok(())
}

/// `sophon job ls`: the jobs of every backend, newest first.
fn list(config: &SophonConfig) -> anyhow::Result<()> {
    out!("{:<40} {:<14} {:<8} command", "id", "state", "pid");
    let mut jobs: Vec<_> = jobs_dirs(config)
        .iter()
        .flat_map(|dir| list_jobs(dir))
        .collect();
    jobs.sort_by_key(|(record, _)| std::cmp::Reverse(record.submitted_unix_ms));
    for (record, state) in jobs {
        // A job's command is whatever its strategy asked to run.
        out!(
            "{:<40} {:<14} {:<8} {}",
            crate::term::line(&record.id),
            crate::term::line(&state),
            record.pid,
            crate::term::line(&record.command.join(" "))
        );
    }
    Ok(())
}

/// `sophon job logs`: the job's stdout (or stderr) so far; escaped on a terminal unless `raw`.
fn logs(config: &SophonConfig, id: &str, stderr: bool, raw: bool) -> anyhow::Result<()> {
    let path = job_dir(config, id)?.join(if stderr { "stderr.log" } else { "stdout.log" });
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    if raw || !std::io::IsTerminal::is_terminal(&out) {
        out.write_all(&bytes)?;
    } else {
        out.write_all(crate::term::stream_bytes(&bytes, true).0.as_bytes())?;
    }
    Ok(())
}

/// `sophon job cancel`: leave the cancel file in the job's directory for its runner to see.
fn cancel(config: &SophonConfig, id: &str) -> anyhow::Result<()> {
    let dir = job_dir(config, id)?;
    std::fs::write(dir.join(CANCEL_FILE), b"").with_context(|| format!("cancelling {id}"))?;
    eprintln!("asked job {id} to stop (the process running it interrupts it within a second)");
    Ok(())
}

/// Copy what the log at `path` holds past `offset` to `out`; returns the bytes consumed. With
/// `escape` (`out` is a terminal) control characters are escaped and a character cut by the
/// read waits for the next call, unless the job is `done` and the log read to its end.
fn forward(
    path: &std::path::Path,
    offset: u64,
    out: &mut dyn Write,
    escape: bool,
    done: bool,
) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(offset)).is_err()
        || file.take(1 << 20).read_to_end(&mut bytes).is_err()
    {
        return 0;
    }
    let used = if escape {
        let at_end = done && bytes.len() < 1 << 20;
        let (text, used) = crate::term::stream_bytes(&bytes, at_end);
        let _ = out.write_all(text.as_bytes());
        used
    } else {
        let _ = out.write_all(&bytes);
        bytes.len()
    };
    let _ = out.flush();
    used as u64
}

/// Where jobs of every configured backend keep their directories.
fn jobs_dirs(config: &SophonConfig) -> Vec<PathBuf> {
    let local = config
        .jobs
        .local
        .jobs_dir
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("sophon").join("jobs")))
        .unwrap_or_else(|| PathBuf::from("sophon-jobs"));
    let clusters = crate::jobs::backends::CLUSTER_KINDS
        .iter()
        .filter_map(|kind| (kind.table)(&config.jobs))
        .filter_map(|c| c.shared_dir.clone());
    std::iter::once(local).chain(clusters).collect()
}

/// The directory of job `id`, whichever backend ran it.
fn job_dir(config: &SophonConfig, id: &str) -> anyhow::Result<PathBuf> {
    if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
        bail!("{id:?} is not a job id (see `sophon job ls`)");
    }
    // Cluster jobs are listed as `<dir name>@<scheduler id>`.
    let name = id.split('@').next().unwrap_or(id);
    jobs_dirs(config)
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|dir| dir.is_dir())
        .with_context(|| format!("no job {id} (see `sophon job ls`)"))
}

/// `512M`, `4G`, `2048` (MB) → megabytes.
fn parse_size_mb(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .with_context(|| format!("memory size {text:?} is not like 512M or 4G"))?;
    Ok(match unit.to_ascii_uppercase().as_str() {
        "" | "M" | "MB" | "MIB" => value,
        "G" | "GB" | "GIB" => value * 1024,
        other => bail!("memory size {text:?}: unknown unit {other:?} (use M or G)"),
    })
}

/// Core ids as ranges: `[0, 1, 2, 5]` → `0-2,5`.
fn core_ranges(cores: &[usize]) -> String {
    let mut sorted = cores.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for core in sorted {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == core => *end = core,
            _ => ranges.push((core, core)),
        }
    }
    ranges
        .iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A job's disk quota in words.
fn disk_words(quota: &crate::jobs::disk::DiskQuota) -> String {
    format!(
        "{} MiB and {} files per job; jobs stop before the disk has less than {} MiB free",
        quota.max_bytes >> 20,
        quota.max_files,
        quota.min_free_bytes >> 20
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size_mb("512M").unwrap(), 512);
        assert_eq!(super::parse_size_mb("4G").unwrap(), 4096);
        assert_eq!(super::parse_size_mb("100").unwrap(), 100);
        assert!(super::parse_size_mb("4T").is_err());
        assert!(super::parse_size_mb("lots").is_err());
    }

    #[test]
    fn core_ranges_collapse_runs() {
        assert_eq!(super::core_ranges(&[5, 0, 1, 2, 7, 8]), "0-2,5,7-8");
        assert_eq!(super::core_ranges(&[3, 3]), "3");
        assert_eq!(super::core_ranges(&[]), "");
    }
}
