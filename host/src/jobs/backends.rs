//! The job backends one process offers: the local sandboxed executor and the cluster backends
//! the operator configured (`[jobs.slurm]`, `[jobs.ray]`). Built once per process and shared by
//! every run in it, so the local executor's [`Scheduler`](super::scheduler::Scheduler) hands
//! each core, GPU and megabyte to one job at a time across all of them.
//!
//! [`CLUSTER_KINDS`] is the registry: a new cluster backend is one
//! [`BatchApi`](super::batch_api::BatchApi) module and one
//! entry there; `sophon run`, `sophon ab` and `sophon job` all find it through [`Backends`].
//!
//! Failure behaviour: a backend named but unknown, not configured, or not answering is an
//! error naming the setting to fix ([`Backends::check`]); a configured cluster that cannot be
//! built (e.g. its token is missing) is logged and left out unless it is the one asked for.

use super::batch::{BatchExecutor, BatchSetupError};
use super::config::{ClusterConfig, JobsConfig};
use super::local::{LocalExecutor, LocalSetupError};
use super::{ray, slurm};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The local backend's name, and where a plugin's jobs go unless its run or the job names
/// another.
pub const LOCAL: &str = "local";

/// One kind of cluster backend: its name (also its `[jobs.<name>]` table and what job specs and
/// `--jobs-backend` call it), where its table lives, and how to build it.
pub struct ClusterKind {
    pub name: &'static str,
    pub table: fn(&JobsConfig) -> Option<&ClusterConfig>,
    pub build:
        fn(&ClusterConfig, BTreeMap<String, PathBuf>) -> Result<BatchExecutor, BatchSetupError>,
}

/// Every cluster backend Sophon knows.
pub const CLUSTER_KINDS: &[ClusterKind] = &[
    ClusterKind {
        name: "slurm",
        table: |jobs| jobs.slurm.as_ref(),
        build: |table, datasets| slurm::executor(table, datasets, &|k| std::env::var(k).ok()),
    },
    ClusterKind {
        name: "ray",
        table: |jobs| jobs.ray.as_ref(),
        build: ray::executor,
    },
];

/// Every backend name Sophon knows, configured or not: `local` first.
pub fn known() -> Vec<&'static str> {
    std::iter::once(LOCAL)
        .chain(CLUSTER_KINDS.iter().map(|k| k.name))
        .collect()
}

/// Why a backend cannot take a run's jobs. Each message includes its cause's text, so the
/// causes are carried but not reported again as [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("unknown job backend `{0}`: use one of {known}", known = known().join(", "))]
    Unknown(String),
    #[error(
        "job backend `{0}` is not configured: add a [jobs.{0}] table to sophon.toml (docs/operations.md, \"Job backends\")"
    )]
    NotConfigured(String),
    #[error("job backend `{name}`: {reason}; fix [jobs.{name}] in sophon.toml")]
    Broken {
        name: String,
        reason: Arc<BatchSetupError>,
    },
    #[error(
        "job backend `{name}` does not answer: {reason}; check `url` (and the credentials) in [jobs.{name}], or that the cluster is up"
    )]
    Unreachable { name: String, reason: String },
    #[error("the local job executor: {0}; fix [jobs.local] in sophon.toml")]
    Local(LocalSetupError),
}

/// The cluster backend `name` of `config` alone (no local executor: the machine driving an
/// A/B experiment on a cluster need not run jobs itself), checked to answer.
pub async fn connect_cluster(
    config: &JobsConfig,
    name: &str,
) -> Result<Arc<BatchExecutor>, BackendError> {
    let kind = CLUSTER_KINDS
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| BackendError::Unknown(name.to_string()))?;
    let table = (kind.table)(config).ok_or_else(|| BackendError::NotConfigured(name.into()))?;
    let cluster =
        (kind.build)(table, config.datasets.clone()).map_err(|reason| BackendError::Broken {
            name: name.into(),
            reason: Arc::new(reason),
        })?;
    cluster
        .probe()
        .await
        .map_err(|e| BackendError::Unreachable {
            name: name.into(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(cluster))
}

/// The backends of one process.
pub struct Backends {
    local: Arc<LocalExecutor>,
    clusters: BTreeMap<&'static str, Arc<BatchExecutor>>,
    /// Configured clusters that could not be built, with why.
    broken: BTreeMap<&'static str, Arc<BatchSetupError>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("clusters", &self.clusters.keys().collect::<Vec<_>>())
            .field(
                "broken",
                &(self.broken.iter())
                    .map(|(name, why)| (name, why.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Backends {
    /// The local executor and every cluster `config` describes. Nothing is contacted yet.
    pub fn new(config: &JobsConfig) -> Result<Backends, BackendError> {
        let local = Arc::new(LocalExecutor::new(config).map_err(BackendError::Local)?);
        let mut backends = Backends::local(local);
        for kind in CLUSTER_KINDS {
            let Some(table) = (kind.table)(config) else {
                continue;
            };
            match (kind.build)(table, config.datasets.clone()) {
                Ok(executor) => {
                    backends.clusters.insert(kind.name, Arc::new(executor));
                }
                Err(reason) => {
                    tracing::warn!("job backend `{}` left out: {reason}", kind.name);
                    backends.broken.insert(kind.name, Arc::new(reason));
                }
            }
        }
        Ok(backends)
    }

    /// Only `local`, on `executor`.
    pub fn local(executor: Arc<LocalExecutor>) -> Backends {
        Backends {
            local: executor,
            clusters: BTreeMap::new(),
            broken: BTreeMap::new(),
        }
    }

    /// Also offer `cluster` (under its backend's name).
    pub fn with_cluster(mut self, cluster: Arc<BatchExecutor>) -> Backends {
        self.clusters.insert(cluster.backend(), cluster);
        self
    }

    pub fn local_executor(&self) -> &Arc<LocalExecutor> {
        &self.local
    }

    /// The cluster backend `name`, if it is configured and built.
    pub fn cluster(&self, name: &str) -> Option<&Arc<BatchExecutor>> {
        self.clusters.get(name)
    }

    /// The backends jobs may go to: `local`, then the clusters.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(LOCAL.to_string())
            .chain(self.clusters.keys().map(|k| k.to_string()))
            .collect()
    }

    /// Check `name` can take jobs now: known, configured, built, and (a cluster) answering.
    /// Returns a line describing it.
    pub async fn check(&self, name: &str) -> Result<String, BackendError> {
        if name == LOCAL {
            return Ok(format!("local ({})", self.local.isolation()));
        }
        if !known().contains(&name) {
            return Err(BackendError::Unknown(name.to_string()));
        }
        if let Some(reason) = self.broken.get(name) {
            return Err(BackendError::Broken {
                name: name.to_string(),
                reason: reason.clone(),
            });
        }
        let cluster = self
            .cluster(name)
            .ok_or_else(|| BackendError::NotConfigured(name.to_string()))?;
        cluster
            .probe()
            .await
            .map_err(|e| BackendError::Unreachable {
                name: name.to_string(),
                reason: e.to_string(),
            })
    }
}
