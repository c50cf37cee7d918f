//! The Python environment Sophon provides to jobs: a private venv with numpy, pandas,
//! scikit-learn, SciPy and LightGBM at pinned versions, installed once from PyPI and then used
//! offline. Jobs see it read-only inside their sandbox, first on `PATH` as `python`.

use super::config::{ClusterConfig, LocalConfig};
use crate::pyenv::{Package, PyenvError, Venv};
use std::path::{Path, PathBuf};

/// What every job can import.
pub const PACKAGES: &[Package] = &[
    Package::new("numpy==2.0.2"),
    Package::new("pandas==2.2.3"),
    Package::new("scipy==1.17.1"),
    Package::new("scikit-learn==1.5.2"),
    Package::new("lightgbm==4.6.0"),
    Package::new("joblib==1.6.0"),
    Package::new("threadpoolctl==3.8.0"),
];

/// Directories the sandbox already shows read-only; an interpreter under them needs no bind.
const SYSTEM_PREFIXES: &[&str] = &["/usr", "/bin", "/lib", "/lib64"];

/// Why the jobs' Python environment is not there.
#[derive(Debug, thiserror::Error)]
pub enum JobPythonError {
    #[error("the jobs' Python environment: {0}")]
    Install(#[source] PyenvError),
    /// The installed interpreter does not say where its base installation is.
    #[error(transparent)]
    BasePrefix(PyenvError),
    #[error("installing the jobs' Python environment: {0}")]
    Task(tokio::task::JoinError),
}

/// The jobs' Python environment, installed.
#[derive(Clone, Debug)]
pub struct JobPython {
    venv: Venv,
    base_prefix: PathBuf,
}

impl JobPython {
    /// `$SOPHON_JOB_PYTHON`, else `job-python` in Sophon's data directory.
    pub fn default_root() -> PathBuf {
        std::env::var_os("SOPHON_JOB_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| Venv::data_dir().join("job-python"))
    }

    /// The environment at `root`, installing it first if needed (a minute or two, once). It is
    /// made from `$SOPHON_PYTHON`, else `/usr/bin/python3` where it exists (always visible in
    /// the sandbox), else `python3` on `PATH`.
    pub async fn ensure(root: &Path) -> Result<JobPython, JobPythonError> {
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let python = std::env::var("SOPHON_PYTHON").unwrap_or_else(|_| {
                match Path::new("/usr/bin/python3").is_file() {
                    true => "/usr/bin/python3".to_string(),
                    false => "python3".to_string(),
                }
            });
            let venv = Venv::ensure(&root, &python, PACKAGES, "the jobs' Python environment")
                .map_err(JobPythonError::Install)?;
            let base_prefix = venv.base_prefix().map_err(JobPythonError::BasePrefix)?;
            Ok(JobPython { venv, base_prefix })
        })
        .await
        .map_err(JobPythonError::Task)?
    }

    pub fn python(&self) -> PathBuf {
        self.venv.python()
    }

    /// Make local jobs see this environment: its directory and (when outside the system
    /// directories) its base interpreter bound read-only, its `bin` first on `PATH`.
    pub fn apply(&self, local: &mut LocalConfig) {
        local.ro_binds.extend(self.binds());
        let rest = local.path.as_deref().unwrap_or(super::local::DEFAULT_PATH);
        local.path = Some(self.path_before(rest));
    }

    /// The same for a cluster backend's jobs: right where the nodes see this machine's paths
    /// (one node, or the environment on the shared filesystem: `$SOPHON_JOB_PYTHON`).
    pub fn apply_cluster(&self, cluster: &mut ClusterConfig) {
        cluster.ro_binds.extend(self.binds());
        let rest = cluster
            .path
            .as_deref()
            .unwrap_or(super::batch::DEFAULT_PATH);
        cluster.path = Some(self.path_before(rest));
    }

    fn binds(&self) -> Vec<PathBuf> {
        let mut binds = vec![self.venv.root().to_path_buf()];
        if !SYSTEM_PREFIXES
            .iter()
            .any(|p| self.base_prefix.starts_with(p))
        {
            binds.push(self.base_prefix.clone());
        }
        binds
    }

    fn path_before(&self, rest: &str) -> String {
        format!("{}:{rest}", self.venv.root().join("bin").display())
    }
}
