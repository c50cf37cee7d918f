//! [`PluginJobs`]: one plugin's view of the run's job backends, with the quotas its grant sets
//! — jobs running at once, GPUs per job, GPU-hours in total. It is what the runtime serves as
//! `sophon:host/jobs`.
//!
//! Quota checks happen at submission, so a refused job fails at once with `budget-exhausted`
//! (a spent quota) or `not-granted` (more than the grant allows per job). GPU-hours are charged
//! when a job ends (wall time × GPUs held).
//!
//! Within a run ([`PluginJobs::with_run_end`]) no job outlives the run: a job's timeout is cut
//! to the time the run has left, no job starts once the run is out of time or asked to stop, and
//! at that moment every job still queued or running is cancelled — as it is when the run ends
//! ([`PluginJobs::cancel_all`]), on every backend.

use super::batch::BatchExecutor;
use super::local::{JobContext, LocalExecutor};
use super::*;
use crate::capability::{CapResult, CapabilityError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The backend every job goes to unless it names another.
pub const LOCAL: &str = "local";

/// A plugin's job quotas; `None` is unlimited. The default is finite: the grants' defaults
/// ([`crate::runtime::grants::defaults`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobQuota {
    pub max_concurrent: Option<u64>,
    pub max_gpus: Option<u64>,
    pub gpu_hours: Option<f64>,
}

impl Default for JobQuota {
    fn default() -> Self {
        use crate::runtime::grants::defaults;
        JobQuota {
            max_concurrent: Some(defaults::JOBS_MAX_CONCURRENT),
            max_gpus: Some(defaults::JOBS_MAX_GPUS),
            gpu_hours: Some(defaults::JOBS_GPU_HOURS),
        }
    }
}

#[derive(Default)]
struct Slots {
    active: Vec<Arc<dyn JobHandle>>,
    submitting: u64,
}

impl Slots {
    /// Jobs holding a slot, forgetting those that have finished.
    fn in_use(&mut self) -> u64 {
        self.active.retain(|job| !job.state().is_final());
        self.active.len() as u64 + self.submitting
    }
}

/// When a run's jobs must end: its wall-clock deadline, and a flag that stops it early (Ctrl-C).
#[derive(Clone, Debug, Default)]
pub struct RunEnd {
    pub deadline: Option<Instant>,
    pub stop: Option<Arc<AtomicBool>>,
}

impl RunEnd {
    fn over(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
            || self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Acquire))
    }

    fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

pub struct PluginJobs {
    plugin: String,
    executor: Arc<LocalExecutor>,
    /// Cluster backends by name (`slurm`, `ray`).
    clusters: BTreeMap<String, Arc<BatchExecutor>>,
    context: JobContext,
    quota: JobQuota,
    /// Jobs submitted and not seen final yet, and submissions under way. A job counts until
    /// its own state is final — the moment the plugin can see its result — so a plugin that
    /// waited for one job can always start the next.
    slots: Arc<Mutex<Slots>>,
    run_end: RunEnd,
    gpu_hours_used: Arc<Mutex<f64>>,
}

impl PluginJobs {
    pub fn new(
        plugin: &str,
        executor: Arc<LocalExecutor>,
        context: JobContext,
        quota: JobQuota,
    ) -> PluginJobs {
        PluginJobs {
            plugin: plugin.to_string(),
            executor,
            clusters: BTreeMap::new(),
            context,
            quota,
            slots: Arc::default(),
            run_end: RunEnd::default(),
            gpu_hours_used: Arc::new(Mutex::new(0.0)),
        }
    }

    /// Tie the plugin's jobs to its run's end (see the module docs). Starts a watcher on the
    /// current tokio runtime that cancels every job once the run is over.
    pub fn with_run_end(mut self, end: RunEnd) -> PluginJobs {
        let slots = Arc::downgrade(&self.slots);
        let watched = end.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if slots.strong_count() == 0 {
                    return;
                }
                if watched.over() {
                    cancel_slots(&slots).await;
                    return;
                }
            }
        });
        self.run_end = end;
        self
    }

    /// Cancel every job still queued or running (the run is over); returns how many.
    pub async fn cancel_all(&self) -> usize {
        cancel_slots(&Arc::downgrade(&self.slots)).await
    }

    /// Also offer a cluster backend, under its name (`backend = "slurm"` in a job spec).
    pub fn with_cluster(mut self, cluster: Arc<BatchExecutor>) -> PluginJobs {
        self.clusters.insert(cluster.backend().to_string(), cluster);
        self
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn backends(&self) -> Vec<String> {
        std::iter::once(LOCAL.to_string())
            .chain(self.clusters.keys().cloned())
            .collect()
    }

    fn gpu_hours_left(&self) -> Option<f64> {
        self.quota
            .gpu_hours
            .map(|limit| (limit - *self.gpu_hours_used.lock().unwrap()).max(0.0))
    }
}

#[async_trait::async_trait]
impl JobService for PluginJobs {
    async fn submit(&self, mut spec: JobSpec) -> CapResult<Arc<dyn JobHandle>> {
        if self.run_end.over() {
            return Err(CapabilityError::BudgetExhausted(
                "the run is out of time or stopping: no new jobs start".into(),
            ));
        }
        if let Some(left) = self.run_end.time_left() {
            let left_ms = left.as_millis().min(u128::from(u64::MAX)) as u64;
            spec.resources.timeout_ms = Some(
                spec.resources
                    .timeout_ms
                    .map_or(left_ms, |t| t.min(left_ms)),
            );
        }
        let cluster = match spec.backend.as_deref() {
            None | Some(LOCAL) => None,
            Some(name) if self.clusters.contains_key(name) => self.clusters.get(name).cloned(),
            Some(backend) => {
                return Err(CapabilityError::Unavailable(format!(
                    "job backend `{backend}` is not configured for this run (available: {})",
                    self.backends().join(", ")
                )));
            }
        };
        let gpus = u64::from(spec.resources.gpus);
        if let Some(max) = self.quota.max_gpus
            && gpus > max
        {
            return Err(CapabilityError::NotGranted(format!(
                "plugin `{}` may use at most {max} GPUs per job (jobs.max-gpus), the job asks for {gpus}",
                self.plugin
            )));
        }
        if gpus > 0 && self.gpu_hours_left().is_some_and(|left| left <= 0.0) {
            return Err(CapabilityError::BudgetExhausted(format!(
                "plugin `{}` has used its {} GPU-hours (jobs.gpu-hours)",
                self.plugin,
                self.quota.gpu_hours.unwrap_or_default()
            )));
        }
        {
            let mut slots = self.lock_slots();
            if let Some(max) = self.quota.max_concurrent
                && slots.in_use() >= max
            {
                return Err(CapabilityError::BudgetExhausted(format!(
                    "plugin `{}` already has {max} jobs queued or running, its limit (jobs.max-concurrent); wait for one",
                    self.plugin
                )));
            }
            slots.submitting += 1;
        }
        let submitted: CapResult<Arc<dyn JobHandle>> = match cluster {
            Some(cluster) => cluster
                .submit(&self.context, spec)
                .await
                .map(|j| j as Arc<dyn JobHandle>),
            None => self
                .executor
                .submit(&self.context, spec)
                .map(|j| j as Arc<dyn JobHandle>),
        };
        let job = {
            let mut slots = self.lock_slots();
            slots.submitting -= 1;
            let job = submitted?;
            slots.active.push(job.clone());
            job
        };
        if gpus > 0 {
            let (used, watched) = (self.gpu_hours_used.clone(), job.clone());
            tokio::spawn(async move {
                let result = watched.wait().await;
                *used.lock().unwrap() += result.wall_ms as f64 / 3_600_000.0 * gpus as f64;
            });
        }
        Ok(job)
    }

    fn inventory(&self) -> JobInventory {
        let scheduler = self.executor.scheduler();
        let inventory = scheduler.inventory();
        let mut kinds: Vec<String> = inventory.gpus.iter().map(|g| g.name.clone()).collect();
        kinds.sort();
        kinds.dedup();
        let running = self.lock_slots().in_use();
        JobInventory {
            cpus: inventory.cores.len() as u32,
            gpus: inventory.gpus.len() as u32,
            gpu_kinds: kinds,
            memory_mb: inventory.memory_mb,
            backends: self.backends(),
            job_slots_free: self.quota.max_concurrent.map_or(u32::MAX, |max| {
                max.saturating_sub(running).min(u64::from(u32::MAX)) as u32
            }),
            gpu_hours_left: self.gpu_hours_left(),
        }
    }
}

/// Cancel the jobs holding slots in `slots` (if the service still exists); returns how many.
async fn cancel_slots(slots: &Weak<Mutex<Slots>>) -> usize {
    let Some(slots) = slots.upgrade() else {
        return 0;
    };
    let active: Vec<Arc<dyn JobHandle>> = {
        let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.in_use();
        slots.active.clone()
    };
    for job in &active {
        job.cancel().await;
    }
    active.len()
}
