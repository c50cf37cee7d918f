//! Job dispatch: the [`JobService`] the host offers plugins as `sophon:host/jobs`.
//!
//! Backends (the local sandboxed executor, Slurm, Ray) implement this trait; the runtime
//! adapts it to WIT and turns [`JobHandle::wait`] into a pollable.

pub mod backends;
pub mod batch;
pub mod batch_api;
pub mod cgroup;
pub mod config;
pub mod disk;
pub mod local;
pub mod output;
pub mod python;
pub mod ray;
pub mod reaper;
pub mod records;
pub mod sandbox;
pub mod scheduler;
pub mod seccomp;
pub mod service;
pub mod slurm;
mod types;
pub mod workdir;

pub use types::*;

use crate::capability::CapResult;
use std::sync::Arc;

/// A job service scoped to one plugin: its quotas and the run's artifact store.
#[async_trait::async_trait]
pub trait JobService: Send + Sync {
    /// Queue a job. Quota and spec checks happen here, so a refused job fails at once.
    async fn submit(&self, spec: JobSpec) -> CapResult<Arc<dyn JobHandle>>;

    /// What the plugin may use right now.
    fn inventory(&self) -> JobInventory;
}

/// One submitted job.
#[async_trait::async_trait]
pub trait JobHandle: Send + Sync {
    fn id(&self) -> String;

    fn state(&self) -> JobState;

    /// Resolves once the job is in a final state. May be awaited concurrently and repeatedly;
    /// dropping the future does not affect the job.
    async fn wait(&self) -> JobResult;

    /// The result, once final.
    fn result(&self) -> Option<JobResult>;

    /// Stop the job (SIGINT, grace period, SIGKILL). Idempotent.
    async fn cancel(&self);

    /// Live output: up to `max_bytes` of `stream` from byte `offset`.
    async fn logs(&self, stream: LogStream, offset: u64, max_bytes: u32) -> CapResult<String>;
}
