//! Where a run's jobs go: the operator's `[jobs]` with the jobs' Python environment on every
//! backend, built into the process's [`Backends`] (once, and shared by every run of a
//! `sophon ab`), and the run's `jobs-backend` checked before anything starts.
//!
//! Failure behaviour: a Python environment that cannot be installed, a backend that is
//! unknown, unconfigured or not answering, is a setup error naming the setting; nothing of the
//! run has been written yet.

use crate::config::SophonConfig;
use crate::jobs::backends::{BackendError, Backends};
use crate::jobs::config::JobsConfig;
use crate::jobs::python::{JobPython, JobPythonError};
use std::sync::Arc;

/// Why the jobs' Python environment or the backends could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum JobsSetupError {
    /// The jobs' Python environment could not be installed (the message names what failed).
    #[error(transparent)]
    Python(#[from] JobPythonError),
    /// A backend is unknown, unconfigured or not answering.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The jobs' Python environment, installed first if needed; `None` when `[run]
/// managed-python = false`.
pub async fn python(config: &SophonConfig) -> Result<Option<JobPython>, JobsSetupError> {
    match config.run.managed_python.unwrap_or(true) {
        true => JobPython::ensure(&JobPython::default_root())
            .await
            .map(Some)
            .map_err(JobsSetupError::Python),
        false => Ok(None),
    }
}

/// `config`'s jobs configuration with `python` on the local backend and every cluster.
pub fn with_python(config: &SophonConfig, python: Option<&JobPython>) -> JobsConfig {
    let mut jobs = config.jobs.clone();
    if let Some(python) = python {
        python.apply(&mut jobs.local);
        for cluster in [jobs.slurm.as_mut(), jobs.ray.as_mut()]
            .into_iter()
            .flatten()
        {
            python.apply_cluster(cluster);
        }
    }
    jobs
}

/// The backends every run of this process shares (what `sophon ab` builds once for its cells).
pub async fn shared_backends(config: &SophonConfig) -> Result<Arc<Backends>, JobsSetupError> {
    let python = python(config).await?;
    let jobs = with_python(config, python.as_ref());
    Ok(Arc::new(Backends::new(&jobs)?))
}
