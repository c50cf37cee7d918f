//! `[jobs]` in `sophon.toml`.
//!
//! ```toml
//! [jobs.local]
//! sandbox = "bubblewrap"          # or "none": jobs run unsandboxed (logged loudly, per job)
//! jobs-dir = "/var/lib/sophon/jobs"
//! default-cpus = 1                # when a job names none
//! default-memory-mb = 4096
//! default-timeout-secs = 3600
//! grace-secs = 10                 # SIGINT, then this long, then SIGKILL
//! max-processes = 512             # per job
//! disk-mb = 20480                 # per job: its working directory's size (files it writes)
//! max-files = 200000              # per job: files and directories in its working directory
//! min-free-disk-mb = 1024         # jobs are stopped before the jobs' disk has less free
//! job-uid = 65534                 # who jobs run as when Sophon runs as root (never 0)
//! job-gid = 65534
//! gpus = [{ index = 0, name = "fake-a100" }]   # instead of nvidia-smi (e.g. for tests)
//! ro-binds = ["/opt/ml-env"]      # more read-only paths inside every sandbox
//!
//! [jobs.datasets]                 # named read-only mounts a job may ask for
//! glove = "/data/glove"
//! ```

use super::scheduler::Gpu;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The longest timeout a job may ask for unless the operator says otherwise (one day).
pub const DEFAULT_MAX_TIMEOUT_SECS: u64 = 24 * 3600;
/// A job's working directory may hold this much unless `disk-mb` says otherwise.
pub const DEFAULT_DISK_MB: u64 = 20 * 1024;
/// … and this many files and directories unless `max-files` says otherwise.
pub const DEFAULT_MAX_FILES: u64 = 200_000;
/// Jobs are stopped before the jobs' filesystem has less free than this (`min-free-disk-mb`).
pub const DEFAULT_MIN_FREE_DISK_MB: u64 = 1024;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobsConfig {
    #[serde(default)]
    pub local: LocalConfig,
    /// The Slurm backend, if this machine submits to a Slurm cluster.
    pub slurm: Option<ClusterConfig>,
    /// The Ray backend, if this machine submits to a Ray cluster.
    pub ray: Option<ClusterConfig>,
    #[serde(default)]
    pub datasets: BTreeMap<String, PathBuf>,
}

/// `[jobs.slurm]` and `[jobs.ray]`: a cluster backend. Job directories live under
/// `shared-dir`, which every node must see.
///
/// ```toml
/// [jobs.slurm]
/// url = "http://slurm-head:6820"   # slurmrestd; omit to use sbatch/scontrol/scancel
/// user = "alice"                   # X-SLURM-USER-NAME (default $USER)
/// token-env = "SLURM_JWT"          # the variable holding the JWT (`scontrol token`)
/// partition = "gpu"
/// shared-dir = "/shared/sophon/jobs"
/// sandbox = "bubblewrap"           # bwrap on the compute nodes, or "none"
/// job-uid = 65534                  # who jobs run as where the batch script runs as root
/// max-timeout-secs = 86400         # the longest time limit a job may ask for
/// node-cpus = 16                   # the largest job a node runs: what strategies see as
/// node-memory-mb = 120000          #   their machine, and a job asking for more is refused
/// node-gpus = 1
/// node-gpu-kind = "H100"
/// ro-binds = ["/shared/python"]    # node paths every job sees read-only at the same path
///
/// [jobs.ray]
/// url = "http://ray-head:8265"     # the Ray dashboard (Jobs REST API)
/// shared-dir = "/shared/sophon/jobs"
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterConfig {
    pub url: Option<String>,
    /// Slurm: the user slurmrestd acts for.
    pub user: Option<String>,
    /// Slurm: the environment variable holding the JWT (default `SLURM_JWT`).
    pub token_env: Option<String>,
    /// Slurm: the partition to submit to.
    pub partition: Option<String>,
    pub shared_dir: Option<PathBuf>,
    pub sandbox: Option<SandboxKind>,
    pub bwrap: Option<PathBuf>,
    /// How often job states are polled.
    pub poll_ms: Option<u64>,
    pub grace_secs: Option<u64>,
    pub default_cpus: Option<u32>,
    pub default_memory_mb: Option<u64>,
    pub default_timeout_secs: Option<u64>,
    pub path: Option<String>,
    pub output_head_bytes: Option<usize>,
    pub output_tail_bytes: Option<usize>,
    /// Where the batch script runs as root: the unprivileged uid/gid jobs switch to.
    pub job_uid: Option<u32>,
    pub job_gid: Option<u32>,
    /// The longest timeout a job may ask for (the cluster's time limit follows it).
    pub max_timeout_secs: Option<u64>,
    /// The largest job one node runs (unset: `default-cpus`, `default-memory-mb`, no GPU, and
    /// nothing is refused for its size).
    pub node_cpus: Option<u32>,
    pub node_memory_mb: Option<u64>,
    pub node_gpus: Option<u32>,
    pub node_gpu_kind: Option<String>,
    /// Paths on the nodes every job sees read-only at the same path (e.g. a Python
    /// environment on the shared filesystem).
    #[serde(default)]
    pub ro_binds: Vec<PathBuf>,
}

/// `[jobs.slurm]`.
pub type SlurmConfig = ClusterConfig;

impl JobsConfig {
    pub fn merged(mut self, other: JobsConfig) -> JobsConfig {
        let (mine, theirs) = (&mut self.local, other.local);
        mine.sandbox = theirs.sandbox.or(mine.sandbox);
        mine.bwrap = theirs.bwrap.or(mine.bwrap.take());
        mine.jobs_dir = theirs.jobs_dir.or(mine.jobs_dir.take());
        mine.default_cpus = theirs.default_cpus.or(mine.default_cpus);
        mine.default_memory_mb = theirs.default_memory_mb.or(mine.default_memory_mb);
        mine.default_timeout_secs = theirs.default_timeout_secs.or(mine.default_timeout_secs);
        mine.grace_secs = theirs.grace_secs.or(mine.grace_secs);
        mine.max_processes = theirs.max_processes.or(mine.max_processes);
        mine.max_timeout_secs = theirs.max_timeout_secs.or(mine.max_timeout_secs);
        mine.disk_mb = theirs.disk_mb.or(mine.disk_mb);
        mine.max_files = theirs.max_files.or(mine.max_files);
        mine.min_free_disk_mb = theirs.min_free_disk_mb.or(mine.min_free_disk_mb);
        mine.job_uid = theirs.job_uid.or(mine.job_uid);
        mine.job_gid = theirs.job_gid.or(mine.job_gid);
        mine.output_head_bytes = theirs.output_head_bytes.or(mine.output_head_bytes);
        mine.output_tail_bytes = theirs.output_tail_bytes.or(mine.output_tail_bytes);
        mine.log_max_bytes = theirs.log_max_bytes.or(mine.log_max_bytes);
        mine.memory_mb = theirs.memory_mb.or(mine.memory_mb);
        mine.cpus = theirs.cpus.or(mine.cpus.take());
        mine.gpus = theirs.gpus.or(mine.gpus.take());
        mine.ro_binds.extend(theirs.ro_binds);
        mine.path = theirs.path.or(mine.path.take());
        self.slurm = other.slurm.or(self.slurm);
        self.ray = other.ray.or(self.ray);
        self.datasets.extend(other.datasets);
        self
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxKind {
    #[default]
    Bubblewrap,
    /// No sandbox: the operator's explicit, loudly logged choice.
    None,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LocalConfig {
    pub sandbox: Option<SandboxKind>,
    /// Path of `bwrap` (default: found on `PATH`).
    pub bwrap: Option<PathBuf>,
    /// Where job directories go (default `~/.local/share/sophon/jobs`).
    pub jobs_dir: Option<PathBuf>,
    pub default_cpus: Option<u32>,
    pub default_memory_mb: Option<u64>,
    pub default_timeout_secs: Option<u64>,
    pub grace_secs: Option<u64>,
    pub max_processes: Option<u64>,
    /// The longest timeout a job may ask for (default one day).
    pub max_timeout_secs: Option<u64>,
    /// Per job: the most its working directory may hold, in MB (default 20480).
    pub disk_mb: Option<u64>,
    /// Per job: the most files and directories its working directory may hold (default 200000).
    pub max_files: Option<u64>,
    /// Jobs are stopped before the filesystem of the jobs directory has less free (default
    /// 1024 MB), so no job fills the disk the runs write to.
    pub min_free_disk_mb: Option<u64>,
    /// When Sophon runs as root: the unprivileged uid and gid jobs run as (default 65534).
    pub job_uid: Option<u32>,
    pub job_gid: Option<u32>,
    pub output_head_bytes: Option<usize>,
    pub output_tail_bytes: Option<usize>,
    /// Per stream, kept on disk for `logs`; output beyond it is counted, not kept.
    pub log_max_bytes: Option<u64>,
    /// Memory for all jobs together (default: the machine's).
    pub memory_mb: Option<u64>,
    /// Core ids jobs may use (default: all this process may use).
    pub cpus: Option<Vec<usize>>,
    /// The GPUs, instead of asking `nvidia-smi` (a fake inventory for tests).
    pub gpus: Option<Vec<Gpu>>,
    #[serde(default)]
    pub ro_binds: Vec<PathBuf>,
    /// `PATH` inside the sandbox.
    pub path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_take_kebab_case_memory_and_refuse_unknown_keys() {
        let config: JobsConfig =
            toml::from_str("[local]\ngpus = [{ index = 1, name = \"A100\", memory-mb = 40960 }]\n")
                .unwrap();
        let gpus = config.local.gpus.unwrap();
        assert_eq!((gpus[0].index, gpus[0].memory_mb), (1, 40960));
        let typo =
            toml::from_str::<JobsConfig>("[local]\ngpus = [{ index = 1, nmae = \"A100\" }]\n")
                .unwrap_err();
        assert!(typo.to_string().contains("nmae"), "{typo}");
    }
}
