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

use super::backends::Backends;
use super::batch::BatchExecutor;
use super::local::JobContext;
use super::*;
use crate::capability::{CapResult, CapabilityError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub use super::backends::LOCAL;

/// A plugin's job quotas; `None` is unlimited. The default is finite: the grants' defaults
/// ([`crate::capability::defaults`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobQuota {
    pub max_concurrent: Option<u64>,
    pub max_gpus: Option<u64>,
    pub gpu_hours: Option<f64>,
}

impl Default for JobQuota {
    fn default() -> Self {
        use crate::capability::defaults;
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

/// A submission's hold on a job slot. Settled, it becomes the job's (a submitted job keeps a
/// slot until it is final); dropped unsettled — the host call's deadline ended the submission
/// while a cluster had not answered — it gives the slot back, so abandoned submissions never
/// eat into the plugin's `max-concurrent`.
struct SlotHold<'a> {
    jobs: &'a PluginJobs,
    held: bool,
}

impl SlotHold<'_> {
    /// Trade the hold for the submitted job's slot, under one lock so no other submission
    /// sees the slot free in between.
    fn settle(mut self, submitted: CapResult<Arc<dyn JobHandle>>) -> CapResult<Arc<dyn JobHandle>> {
        let jobs = self.jobs;
        let mut slots = jobs.lock_slots();
        slots.submitting -= 1;
        self.held = false;
        let job = submitted?;
        slots.active.push(job.clone());
        Ok(job)
    }
}

impl Drop for SlotHold<'_> {
    fn drop(&mut self) {
        if self.held {
            self.jobs.lock_slots().submitting -= 1;
        }
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
    /// The process's backends, shared with every other run in it.
    backends: Arc<Backends>,
    /// Where a job that names no backend goes (the run's `jobs-backend`).
    default_backend: String,
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
    /// `plugin`'s jobs on `backends`, going to `local` unless
    /// [`with_default_backend`](Self::with_default_backend) says otherwise.
    pub fn new(
        plugin: &str,
        backends: Arc<Backends>,
        context: JobContext,
        quota: JobQuota,
    ) -> PluginJobs {
        PluginJobs {
            plugin: plugin.to_string(),
            backends,
            default_backend: LOCAL.to_string(),
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

    /// Send jobs that name no backend to `backend` (one of `backends`' names; the caller has
    /// checked it with [`Backends::check`]). The inventory then describes that backend.
    pub fn with_default_backend(mut self, backend: &str) -> PluginJobs {
        self.default_backend = backend.to_string();
        self
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gpu_hours_left(&self) -> Option<f64> {
        self.quota
            .gpu_hours
            .map(|limit| (limit - *self.gpu_hours_used.lock().unwrap()).max(0.0))
    }
}

impl PluginJobs {
    /// Cut the job's timeout to the time the run has left (if it has a deadline).
    fn fit_to_run(&self, spec: &mut JobSpec) {
        if let Some(left) = self.run_end.time_left() {
            let left_ms = left.as_millis().min(u128::from(u64::MAX)) as u64;
            spec.resources.timeout_ms = Some(
                spec.resources
                    .timeout_ms
                    .map_or(left_ms, |t| t.min(left_ms)),
            );
        }
    }

    /// The cluster the job goes to (`None`: local). A backend not configured is
    /// `unavailable`; an unsandboxed cluster other than the run's own is `not-granted`.
    fn route(&self, spec: &JobSpec) -> CapResult<Option<Arc<BatchExecutor>>> {
        let backend = spec.backend.as_deref().unwrap_or(&self.default_backend);
        match backend {
            LOCAL => Ok(None),
            name => match self.backends.cluster(name) {
                // A cluster the operator left unsandboxed (for `sophon job`) takes a plugin's
                // jobs only where it is the run's own backend, chosen for the run.
                Some(cluster)
                    if name != self.default_backend
                        && matches!(
                            cluster.settings().isolation,
                            super::sandbox::Isolation::Unsandboxed
                        ) =>
                {
                    Err(CapabilityError::NotGranted(format!(
                        "job backend `{name}` runs jobs unsandboxed ([jobs.{name}] sandbox = \"none\"): \
                         only a run whose jobs-backend it is sends jobs there"
                    )))
                }
                Some(cluster) => Ok(Some(cluster.clone())),
                None => Err(CapabilityError::Unavailable(format!(
                    "job backend `{backend}` is not configured for this run (available: {})",
                    self.backends.names().join(", ")
                ))),
            },
        }
    }

    /// Refuse a job of `gpus` GPUs over the per-job limit (`not-granted`) or, once the
    /// GPU-hours are spent, any GPU job (`budget-exhausted`).
    fn check_gpus(&self, gpus: u64) -> CapResult<()> {
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
        Ok(())
    }

    /// Take a job slot for a submission under way, or refuse (`budget-exhausted`) when
    /// every slot is held. [`Self::settle_slot`] gives it back.
    fn reserve_slot(&self) -> CapResult<SlotHold<'_>> {
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
        Ok(SlotHold {
            jobs: self,
            held: true,
        })
    }

    /// Submit to `cluster`, or to the local executor.
    async fn submit_to(
        &self,
        cluster: Option<Arc<BatchExecutor>>,
        spec: JobSpec,
    ) -> CapResult<Arc<dyn JobHandle>> {
        match cluster {
            Some(cluster) => cluster
                .submit(&self.context, spec)
                .await
                .map(|j| j as Arc<dyn JobHandle>),
            None => self
                .backends
                .local_executor()
                .submit(&self.context, spec)
                .map(|j| j as Arc<dyn JobHandle>),
        }
    }

    /// Charge the job's GPU-hours (wall time × `gpus`) once it ends.
    fn charge_gpu_hours(&self, job: &Arc<dyn JobHandle>, gpus: u64) {
        let (used, watched) = (self.gpu_hours_used.clone(), job.clone());
        tokio::spawn(async move {
            let result = watched.wait().await;
            *used.lock().unwrap() += result.wall_ms as f64 / 3_600_000.0 * gpus as f64;
        });
    }
}

#[async_trait::async_trait]
impl JobService for PluginJobs {
    /// Checks in order: the run still going, the backend, the GPU quotas, a free slot; only
    /// then is the job submitted.
    async fn submit(&self, mut spec: JobSpec) -> CapResult<Arc<dyn JobHandle>> {
        if self.run_end.over() {
            return Err(CapabilityError::BudgetExhausted(
                "the run is out of time or stopping: no new jobs start".into(),
            ));
        }
        self.fit_to_run(&mut spec);
        let cluster = self.route(&spec)?;
        let gpus = u64::from(spec.resources.gpus);
        self.check_gpus(gpus)?;
        let hold = self.reserve_slot()?;
        let submitted = self.submit_to(cluster, spec).await;
        let job = hold.settle(submitted)?;
        if gpus > 0 {
            self.charge_gpu_hours(&job, gpus);
        }
        Ok(job)
    }

    fn inventory(&self) -> JobInventory {
        let machine = match self.backends.cluster(&self.default_backend) {
            Some(cluster) => node_machine(&cluster.settings().node, cluster.settings()),
            None => local_machine(self.backends.local_executor().scheduler().inventory()),
        };
        let running = self.lock_slots().in_use();
        JobInventory {
            cpus: machine.cpus,
            gpus: machine.gpus,
            gpu_kinds: machine.gpu_kinds,
            memory_mb: machine.memory_mb,
            backends: self.backends.names(),
            job_slots_free: self.quota.max_concurrent.map_or(u32::MAX, |max| {
                max.saturating_sub(running).min(u64::from(u32::MAX)) as u32
            }),
            gpu_hours_left: self.gpu_hours_left(),
        }
    }
}

/// What a plugin sees as its machine: the local inventory, or one node of its run's cluster.
struct Machine {
    cpus: u32,
    gpus: u32,
    gpu_kinds: Vec<String>,
    memory_mb: u64,
}

fn local_machine(inventory: &super::scheduler::Inventory) -> Machine {
    let mut kinds: Vec<String> = inventory.gpus.iter().map(|g| g.name.clone()).collect();
    kinds.sort();
    kinds.dedup();
    Machine {
        cpus: inventory.cores.len() as u32,
        gpus: inventory.gpus.len() as u32,
        gpu_kinds: kinds,
        memory_mb: inventory.memory_mb,
    }
}

/// A cluster node as the operator described it (`node-*`), else what a job gets by default.
fn node_machine(node: &super::batch::NodeOffer, settings: &super::batch::BatchSettings) -> Machine {
    Machine {
        cpus: node.cpus.unwrap_or(settings.default_cpus),
        gpus: node.gpus.unwrap_or(0),
        gpu_kinds: node.gpu_kind.iter().cloned().collect(),
        memory_mb: node.memory_mb.unwrap_or(settings.default_memory_mb),
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
