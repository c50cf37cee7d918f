//! One run end to end (`sophon run`): prepare the competition and the jobs' Python, load the
//! strategy under its grants, give it its services, let it search within the budgets, then
//! grade the best submission it left and write the run's summary.
//!
//! A strategy that fails or overruns does not lose the run: what it reported is kept and the
//! best submission adopted so far is graded. Setup problems (unknown competition, data not
//! prepared, a strategy that is not a strategy) stop the run before anything starts, with an
//! error that names the fix.

use super::demo::{self, DemoError};
use super::dir::{RunDir, RunDirError};
use super::events::{RunEvent, RunObserver};
use super::jobs::JobsSetupError;
use super::live::{ClockKeeper, LiveRun, ResumeError, RunLimits};
use super::policy::{self, PolicyRequest, RunPolicy};
use super::services::{self, BuiltServices, LoadError, ServiceRequest, ServicesError};
use super::{Best, Outcome, RunInfo};
use crate::artifacts::ArtifactStore;
use crate::capability::CapabilityError;
use crate::config::SophonConfig;
use crate::grading::task::GradedTask;
use crate::grading::{Grader, GradingError, Prepared};
use crate::hcc::CognitiveCache;
use crate::jobs::backends::{BackendError, Backends};
use crate::jobs::python::JobPython;
use crate::jobs::service::RunEnd;
use crate::journal::{Journal, ReplayStats};
use crate::llm::budget::UsageTotals;
use crate::llm::hub::LlmHub;
use crate::runtime::{LoadedPlugin, PluginError, Runtime, World};
use crate::task::Metric;
use crate::task::TaskInfo;
use serde::{Deserialize, Serialize};
use sophon_grading::{CompetitionReport, GradingReport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A run's wall-clock budget when neither flags nor config give one.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(8 * 60);
/// How long past its budget a strategy may take to return before it is stopped.
pub const STOP_GRACE: Duration = Duration::from_secs(60);
/// The least time the promotion policy gets at the run's end, even past its grace.
const FINISH_MIN: Duration = Duration::from_secs(30);
/// … and the most, in a run without a wall-time limit.
const FINISH_UNLIMITED: Duration = Duration::from_secs(600);
/// Largest artifact a run stores.
const MAX_ARTIFACT_BYTES: u64 = 1 << 30;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    pub competition_id: String,
    /// `<dir>/<id>/prepared/` holds the data (default `[mlebench] data-dir`).
    pub data_dir: Option<PathBuf>,
    /// A `[plugins]` name (default: the routing in `[run]`).
    pub strategy: Option<String>,
    /// The promotion policy, a `[plugins]` name or `none` (default: the routing in `[run]`).
    pub policy: Option<String>,
    /// Replaces the configured strategy settings.
    pub strategy_config: Option<serde_json::Value>,
    pub time_limit: Option<Duration>,
    pub max_steps: Option<u32>,
    /// LLM tokens (prompt + completion) the run may use.
    pub max_tokens: Option<u64>,
    /// LLM dollars the run may spend.
    pub max_cost_usd: Option<f64>,
    /// Set to stop the run early (e.g. on Ctrl-C): the strategy sees `should-stop`, finishes
    /// its step, and the best submission is graded as usual.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Default `<runs-dir>/<run-id>`.
    pub run_dir: Option<PathBuf>,
    pub seed: u64,
    /// Resume the run in this directory instead (everything else comes from its run.json).
    pub resume: Option<PathBuf>,
    /// Where the strategy's jobs go unless a job names another backend (default: the routing
    /// in `[run]`, else `local`).
    pub jobs_backend: Option<String>,
    /// The process's job backends, shared with its other runs (default: built for this run).
    pub backends: Option<Arc<Backends>>,
}

/// `run.json`: what was run, enough to resume it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub competition_id: String,
    pub strategy: String,
    pub strategy_sha256: String,
    pub strategy_config: serde_json::Value,
    /// The promotion policy (`None`: promotion off).
    #[serde(default)]
    pub policy: Option<String>,
    pub seed: u64,
    pub data_dir: PathBuf,
    pub run_dir: PathBuf,
    pub time_limit_secs: Option<u64>,
    pub max_steps: Option<u32>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    pub metric: Option<Metric>,
    pub sophon_version: String,
    pub started_at: String,
    /// The HCC store the run recorded its memory in.
    #[serde(default)]
    pub hcc_store: Option<PathBuf>,
    /// Where the strategy's jobs go (`None` in runs from before backends were chosen: local).
    #[serde(default)]
    pub jobs_backend: Option<String>,
}

impl RunRecord {
    /// Who the run is, as its live context tells the strategy.
    fn run_info(&self) -> RunInfo {
        RunInfo {
            run_id: self.run_id.clone(),
            competition_id: self.competition_id.clone(),
            seed: self.seed,
            arm: None,
        }
    }

    /// The run's budgets as the live run enforces them.
    fn limits(&self) -> RunLimits {
        RunLimits {
            wall: self.time_limit_secs.map(Duration::from_secs),
            steps: self.max_steps,
            tokens: self.max_tokens,
            cost_usd: self.max_cost_usd,
        }
    }

    /// A new run's record: flags first, then `[run]`, then the defaults.
    fn new(config: &SophonConfig, request: &RunRequest) -> Result<RunRecord, RunError> {
        let id = request.competition_id.clone();
        let data_dir = request
            .data_dir
            .clone()
            .unwrap_or_else(|| config.mlebench.data_dir());
        let strategy = request
            .strategy
            .clone()
            .unwrap_or_else(|| config.run.strategy_for(&id));
        let strategy_config = request
            .strategy_config
            .clone()
            .unwrap_or_else(|| config.run.strategy_config(&strategy, &id));
        let policy = match &request.policy {
            Some(name) if name == crate::config::run::NO_POLICY => None,
            Some(name) => Some(name.clone()),
            None => config.run.policy_for(&id),
        };
        let started_at = chrono::Utc::now();
        let run_id = format!("{id}-{}-{strategy}", started_at.format("%Y%m%d-%H%M%S"));
        let run_dir = request
            .run_dir
            .clone()
            .unwrap_or_else(|| config.run.runs_dir().join(&run_id));
        // Recorded in run.json: a resume from another directory must find the same paths.
        let absolute = |path: &Path, what: &'static str| {
            std::path::absolute(path).map_err(|source| RunError::Absolute {
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        let jobs_backend = request
            .jobs_backend
            .clone()
            .unwrap_or_else(|| config.run.jobs_backend_for(&id));
        Ok(RunRecord {
            jobs_backend: Some(jobs_backend),
            run_id,
            competition_id: id,
            strategy_sha256: String::new(),
            strategy,
            strategy_config,
            policy,
            seed: request.seed,
            data_dir: absolute(&data_dir, "data directory")?,
            run_dir: absolute(&run_dir, "run directory")?,
            time_limit_secs: request
                .time_limit
                .map(|d| d.as_secs())
                .or(config.run.time_limit_secs)
                .or(Some(DEFAULT_TIME_LIMIT.as_secs())),
            max_steps: request.max_steps.or(config.run.max_steps),
            max_tokens: request.max_tokens.or(config.run.max_tokens),
            max_cost_usd: request.max_cost_usd.or(config.run.max_cost_usd),
            metric: None,
            sophon_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: started_at.to_rfc3339(),
            hcc_store: Some(config.hcc.store_path()),
        })
    }
}

/// Why a run could not start (or, for [`RunError::Write`], could not record its end). Each
/// variant names its cause; wrapped errors keep their own message.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A new run's data or run directory has no absolute path (`what` names which).
    #[error("the {what} {}: {source}", path.display())]
    Absolute {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A run file (`run.json`, `grade.json`, `summary.json`) could not be written.
    #[error("writing {name}: {source}")]
    Write {
        name: &'static str,
        source: std::io::Error,
    },
    /// The `run.json` of the run to resume could not be read.
    #[error("reading run.json: {0}")]
    ReadRecord(#[source] std::io::Error),
    /// The `run.json` of the run to resume is not a run record.
    #[error("run.json of {} is malformed: {source}", root.display())]
    MalformedRecord {
        root: PathBuf,
        source: serde_json::Error,
    },
    /// Resume refused: the run has a `summary.json`.
    #[error("the run in {} has finished (it has a summary.json): nothing to resume", .0.display())]
    Finished(PathBuf),
    /// Resume refused: the strategy is not the build the run started with.
    #[error(
        "strategy `{strategy}` is not the build the run started with (sha256 {now} now, {then} \
         then): a run resumes only with the same strategy"
    )]
    StrategyChanged {
        strategy: String,
        now: String,
        then: String,
    },
    /// The run directory could not be created, opened or locked.
    #[error(transparent)]
    Dir(#[from] RunDirError),
    /// The run's recorded state could not be read back to resume it.
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error("opening the artifact store in {}: {source}", root.display())]
    Artifacts {
        root: PathBuf,
        source: std::io::Error,
    },
    #[error("opening the journal in {}: {source}", root.display())]
    Journal {
        root: PathBuf,
        source: std::io::Error,
    },
    /// The grading adapter could not describe the task.
    #[error(transparent)]
    TaskInfo(CapabilityError),
    /// The jobs' Python environment could not be installed.
    #[error(transparent)]
    Jobs(#[from] JobsSetupError),
    /// The run's jobs backend is unknown, unconfigured or not answering.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The demo competition could not be prepared.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// The strategy or the promotion policy could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The strategy's services (or the run's LLM hub) could not be built.
    #[error(transparent)]
    Services(#[from] ServicesError),
    #[error(transparent)]
    Grading(#[from] GradingError),
    #[error("the strategy plugin: {0}")]
    Plugin(#[from] PluginError),
}

/// What a run did: written to `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub competition_id: String,
    pub strategy: String,
    pub run_dir: PathBuf,
    pub seed: u64,
    pub started_at: String,
    pub elapsed_ms: u64,
    pub outcome: Option<Outcome>,
    /// Why the strategy failed, if it did.
    pub error: Option<String>,
    pub nodes: u32,
    pub buggy_nodes: u32,
    pub best: Option<Best>,
    /// Set when the strategy left no valid submission and the host wrote a baseline in the
    /// sample's format ([`super::baseline`]): how it was made.
    pub baseline: Option<String>,
    pub grade: CompetitionReport,
    /// LLM usage of the run; a resumed run's replies replayed from its journal count too (as
    /// `replayed` calls) but were not made again.
    pub llm: Option<UsageTotals>,
    /// Answers the journal held and how many were replayed (0 and 0 for a run never resumed).
    pub replay: ReplayStats,
}

/// Run `request` to the end. Observers see every [`RunEvent`] as it happens.
///
/// The phases: set the run up (or reopen it to resume), start its promotion policy, build the
/// strategy's services, run the strategy, record the run's end in memory, grade the best
/// submission (or a baseline), and write the summary. A setup failure writes nothing of a new
/// run; after that every failure is the run's, recorded, and the run is still graded.
pub async fn execute(
    config: &SophonConfig,
    request: RunRequest,
    observers: Vec<Arc<dyn RunObserver>>,
) -> Result<RunSummary, RunError> {
    let run = set_up(config, &request, observers).await?;
    let promotion = start_promotion(config, &run).await?;
    let built = build_services(config, &request, &run, &promotion)?;
    let (outcome, error) = run_strategy(&run, &built).await;
    finish_memory(&run, &built, promotion.policy.as_ref()).await;
    run.live.emit(RunEvent::StrategyDone {
        elapsed_ms: run.live.elapsed_ms(),
        summary: outcome
            .as_ref()
            .map(|o| o.summary.clone())
            .unwrap_or_default(),
        error: error.clone(),
    });
    let (baseline, grade) = grade_best(&run).await?;
    let (nodes, buggy_nodes) = run.live.node_counts();
    let summary = RunSummary {
        run_id: run.record.run_id.clone(),
        competition_id: run.record.competition_id.clone(),
        strategy: run.record.strategy.clone(),
        run_dir: run.dir.root().to_path_buf(),
        seed: run.record.seed,
        started_at: run.record.started_at.clone(),
        elapsed_ms: run.live.elapsed_ms(),
        outcome,
        error,
        nodes,
        buggy_nodes,
        best: run.live.best(),
        baseline,
        grade,
        llm: built.hub.map(|h| h.ledger().summary().total),
        replay: run.journal.stats(),
    };
    run.dir
        .write_json("summary.json", &summary)
        .map_err(|source| RunError::Write {
            name: "summary.json",
            source,
        })?;
    Ok(summary)
}

/// A run ready for its strategy: what [`set_up`] opened, loaded and checked.
struct RunSetup {
    record: RunRecord,
    runtime: Runtime,
    grader: Arc<Grader>,
    prepared: Prepared,
    plugin: LoadedPlugin,
    backends: Option<Arc<Backends>>,
    jobs_backend: String,
    dir: Arc<RunDir>,
    artifacts: Arc<ArtifactStore>,
    journal: Arc<Journal>,
    task: Arc<GradedTask>,
    info: TaskInfo,
    limits: RunLimits,
    live: Arc<LiveRun>,
    /// One process per run: a second `--resume` of a live run is refused, not interleaved.
    _lock: std::fs::File,
    _clock: ClockKeeper,
}

/// Open (or reopen) the run: [`check_run`], then its directory, stores and live context; the
/// `started` event is its first.
async fn set_up(
    config: &SophonConfig,
    request: &RunRequest,
    observers: Vec<Arc<dyn RunObserver>>,
) -> Result<RunSetup, RunError> {
    let CheckedRun {
        mut record,
        reopened,
        runtime,
        grader,
        prepared,
        plugin,
        backends,
        jobs_backend,
    } = check_run(config, request).await?;
    let resuming = reopened.is_some();
    let dir = Arc::new(match reopened {
        Some(dir) => dir,
        None => RunDir::create(&record.run_dir)?,
    });
    let lock = dir.lock()?;
    let (artifacts, journal) = open_stores(&dir)?;
    let (task, info) = describe_task(&grader, &record, &prepared, &artifacts).await?;
    let limits = record.limits();
    record.strategy_sha256 = plugin.identity().sha256.clone();
    record.metric = Some(info.metric.clone());
    if !resuming {
        dir.write_json("run.json", &record)
            .map_err(|source| RunError::Write {
                name: "run.json",
                source,
            })?;
    }
    let live = LiveRun::new(
        record.run_info(),
        limits.clone(),
        info.metric.direction,
        artifacts.clone(),
        task.clone(),
        dir.clone(),
        observers,
    );
    let live = Arc::new(continue_live(live, request.stop.as_ref(), resuming)?);
    let clock = live.keep_clock();
    let run = RunSetup {
        record,
        runtime,
        grader,
        prepared,
        plugin,
        backends,
        jobs_backend,
        dir,
        artifacts,
        journal,
        task,
        info,
        limits,
        live,
        _lock: lock,
        _clock: clock,
    };
    run.announce(resuming);
    Ok(run)
}

/// The competition as the run's `task` service, and its description by the grading adapter.
async fn describe_task(
    grader: &Arc<Grader>,
    record: &RunRecord,
    prepared: &Prepared,
    artifacts: &Arc<ArtifactStore>,
) -> Result<(Arc<GradedTask>, TaskInfo), RunError> {
    let task = Arc::new(GradedTask::new(
        grader.clone(),
        &record.competition_id,
        prepared.clone(),
        artifacts.clone(),
    ));
    let info = task.info().await.map_err(RunError::TaskInfo)?.clone();
    Ok((task, info))
}

/// `live` with the request's stop flag and, when `resuming`, the nodes, best submission and
/// run time its directory recorded.
fn continue_live(
    live: LiveRun,
    stop: Option<&Arc<std::sync::atomic::AtomicBool>>,
    resuming: bool,
) -> Result<LiveRun, RunError> {
    let live = match stop {
        Some(flag) => live.with_stop(flag.clone()),
        None => live,
    };
    Ok(match resuming {
        true => live.resumed()?,
        false => live,
    })
}

impl RunSetup {
    /// The run's first event: what runs, on what, within which limits.
    fn announce(&self, resumed: bool) {
        let (record, limits, live) = (&self.record, &self.limits, &self.live);
        live.emit(RunEvent::Started {
            elapsed_ms: live.elapsed_ms(),
            resumed,
            run_id: record.run_id.clone(),
            competition_id: record.competition_id.clone(),
            strategy: record.strategy.clone(),
            run_dir: self.dir.root().display().to_string(),
            metric: self.info.metric.name.clone(),
            direction: self.info.metric.direction,
            time_limit_secs: limits.wall.map(|d| d.as_secs()),
            max_steps: limits.steps,
            max_tokens: limits.tokens,
            thresholds: self
                .grader
                .thresholds(&record.competition_id)
                .and_then(Result::ok),
        });
    }
}

/// What [`check_run`] found ready: nothing of a new run is written yet.
struct CheckedRun {
    record: RunRecord,
    /// The run's directory, when resuming.
    reopened: Option<RunDir>,
    runtime: Runtime,
    grader: Arc<Grader>,
    prepared: Prepared,
    plugin: LoadedPlugin,
    backends: Option<Arc<Backends>>,
    jobs_backend: String,
}

/// Check everything a run needs before anything of it is written: its record (or the one it
/// resumes), the competition's data (the demo's prepared on first use), the strategy (the same
/// build on resume) and the jobs backend.
async fn check_run(config: &SophonConfig, request: &RunRequest) -> Result<CheckedRun, RunError> {
    let (record, reopened) = open_record(config, request)?;
    let python = super::jobs::python(config).await?;
    if record.competition_id == demo::DEMO_ID {
        let interpreter = python
            .as_ref()
            .map_or_else(|| PathBuf::from("python3"), JobPython::python);
        demo::ensure_prepared(&record.data_dir, &interpreter)?;
    }
    let runtime = Runtime::new(config.runtime_config())?;
    let grader = Arc::new(config.grader_on(&runtime, Some(record.data_dir.clone()))?);
    let prepared = grader.prepared(&record.competition_id)?;
    let plugin = load_strategy(&runtime, config, &record.strategy)?;
    if reopened.is_some() && plugin.identity().sha256 != record.strategy_sha256 {
        return Err(RunError::StrategyChanged {
            strategy: record.strategy.clone(),
            now: plugin.identity().sha256.clone(),
            then: record.strategy_sha256.clone(),
        });
    }
    let (backends, jobs_backend) =
        job_backends(config, request, &record, &plugin, python.as_ref()).await?;
    Ok(CheckedRun {
        record,
        reopened,
        runtime,
        grader,
        prepared,
        plugin,
        backends,
        jobs_backend,
    })
}

/// A new run's record from `request`, or, to resume, the record in its directory (refused for
/// a run that finished).
fn open_record(
    config: &SophonConfig,
    request: &RunRequest,
) -> Result<(RunRecord, Option<RunDir>), RunError> {
    let Some(root) = &request.resume else {
        return Ok((RunRecord::new(config, request)?, None));
    };
    let dir = RunDir::open(root)?;
    let text = std::fs::read_to_string(dir.path("run.json")).map_err(RunError::ReadRecord)?;
    let record: RunRecord =
        serde_json::from_str(&text).map_err(|source| RunError::MalformedRecord {
            root: root.clone(),
            source,
        })?;
    if dir.path("summary.json").is_file() {
        return Err(RunError::Finished(root.clone()));
    }
    Ok((record, Some(dir)))
}

/// The run's jobs backend (checked to answer) and the backends its strategy's jobs go to;
/// none for a strategy not granted jobs.
async fn job_backends(
    config: &SophonConfig,
    request: &RunRequest,
    record: &RunRecord,
    plugin: &LoadedPlugin,
    python: Option<&JobPython>,
) -> Result<(Option<Arc<Backends>>, String), RunError> {
    let jobs_backend = record
        .jobs_backend
        .clone()
        .unwrap_or_else(|| crate::jobs::service::LOCAL.to_string());
    if !crate::jobs::backends::known().contains(&jobs_backend.as_str()) {
        return Err(BackendError::Unknown(jobs_backend).into());
    }
    let backends = match (&plugin.grants().jobs, request.backends.clone()) {
        (None, _) => None,
        (Some(_), Some(shared)) => Some(shared),
        (Some(_), None) => Some(Arc::new(Backends::new(&super::jobs::with_python(
            config, python,
        ))?)),
    };
    if let Some(backends) = &backends {
        backends.check(&jobs_backend).await?;
    }
    Ok((backends, jobs_backend))
}

/// The run directory's artifact store and journal.
fn open_stores(dir: &RunDir) -> Result<(Arc<ArtifactStore>, Arc<Journal>), RunError> {
    let root = || dir.root().to_path_buf();
    let artifacts =
        ArtifactStore::open(&dir.path("artifacts"), MAX_ARTIFACT_BYTES).map_err(|source| {
            RunError::Artifacts {
                root: root(),
                source,
            }
        })?;
    let journal = Journal::open(dir.root()).map_err(|source| RunError::Journal {
        root: root(),
        source,
    })?;
    Ok((Arc::new(artifacts), Arc::new(journal)))
}

/// The run's LLM hub (shared by strategy and policy, so the policy's calls count against the
/// run's budgets) and its started promotion policy, if any.
struct Promotion {
    hub: Option<Arc<LlmHub>>,
    policy: Option<RunPolicy>,
}

/// Load and start the run's promotion policy. One that cannot be loaded stops the run before
/// it starts (the operator named it); one that fails to start costs the run its promotion,
/// with a warning, not the run.
async fn start_promotion(config: &SophonConfig, run: &RunSetup) -> Result<Promotion, RunError> {
    let policy_plugin = match &run.record.policy {
        Some(name) => Some(policy::load(&run.runtime, config, name)?),
        None => None,
    };
    let mut users = vec![&run.plugin];
    users.extend(policy_plugin.as_ref());
    let hub = services::hub_for(config, &users)?;
    let (Some(plugin), Some(name)) = (&policy_plugin, &run.record.policy) else {
        return Ok(Promotion { hub, policy: None });
    };
    let request = PolicyRequest {
        config,
        hub: hub.clone(),
        run: run.live.clone(),
        run_id: run.record.run_id.clone(),
        competition_id: run.record.competition_id.clone(),
        task: &run.info,
    };
    let policy = match policy::start(plugin, name, request).await {
        Ok(started) => Some(started),
        Err(e) => {
            // On the terminal too, not only in events.jsonl: the operator asked for it.
            let message = format!("{e}; the run goes on without promotion");
            super::LogLevel::Warn.trace(name, &message);
            run.live.emit(RunEvent::Log {
                elapsed_ms: run.live.elapsed_ms(),
                plugin: name.clone(),
                level: super::LogLevel::Warn,
                message,
            });
            None
        }
    };
    Ok(Promotion { hub, policy })
}

/// The strategy's host services, bound to this run (its journal, deadline and stop flag).
fn build_services(
    config: &SophonConfig,
    request: &RunRequest,
    run: &RunSetup,
    promotion: &Promotion,
) -> Result<BuiltServices, RunError> {
    services::build(
        &run.plugin,
        ServiceRequest {
            config,
            backends: run.backends.clone(),
            jobs_backend: run.jobs_backend.clone(),
            run_id: run.record.run_id.clone(),
            competition_id: run.record.competition_id.clone(),
            descriptor: promotion
                .policy
                .as_ref()
                .map(|p| p.descriptor.clone())
                .unwrap_or_default(),
            artifacts: run.artifacts.clone(),
            task_public: Some(run.prepared.public.clone()),
            run: run.live.clone(),
            task: Some(run.task.clone()),
            journal: Some(run.journal.clone()),
            hub: promotion.hub.clone(),
            promoter: promotion.policy.as_ref().map(|p| p.promoter.clone()),
            run_end: RunEnd {
                deadline: run
                    .limits
                    .wall
                    .map(|w| Instant::now() + w.saturating_sub(run.live.elapsed())),
                stop: request.stop.clone(),
            },
        },
    )
    .map_err(RunError::from)
}

/// Prefetch wisdom, run the strategy within the run's time (plus [`STOP_GRACE`]), then cancel
/// whatever jobs it left running. Its outcome, or its error's text.
async fn run_strategy(run: &RunSetup, built: &BuiltServices) -> (Option<Outcome>, Option<String>) {
    if let Some(hcc) = &built.hcc {
        // Wisdom of earlier, similar tasks (not this competition's while the leakage guard is
        // on): every context the strategy assembles shows it.
        match hcc.prefetch().await {
            Ok(hits) if !hits.is_empty() => run.live.emit(RunEvent::WisdomPrefetched {
                elapsed_ms: run.live.elapsed_ms(),
                entries: policy::seen_hits(&hits),
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!("prefetching wisdom: {e}"),
        }
    }
    if let Some(hub) = &built.hub {
        let hub = hub.clone();
        run.live.set_usage(Arc::new(move || {
            let total = hub.ledger().summary().total;
            (
                total.prompt_tokens + total.completion_tokens,
                total.cost_usd,
            )
        }));
    }
    let hard_limit = run
        .limits
        .wall
        .map_or(Duration::from_secs(30 * 24 * 3600), |w| {
            w.saturating_sub(run.live.elapsed()) + STOP_GRACE
        });
    let config = run.record.strategy_config.to_string();
    let result = async {
        let mut instance = run.plugin.strategy(built.services.clone()).await?;
        instance.run(&config, hard_limit).await
    }
    .await;
    // No job outlives the strategy's run.
    if let Some(jobs) = &built.jobs {
        jobs.cancel_all().await;
    }
    match result {
        Ok(outcome) => (Some(outcome), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// The run's end and best metric in the HCC store (and, with a promotion policy, its
/// wisdom). The policy's last promotion gets what is left of the run's grace, and at least
/// [`FINISH_MIN`]: a slow model delays the grade by that much at most. A failure here is
/// logged, never the run's.
async fn finish_memory(run: &RunSetup, built: &BuiltServices, policy: Option<&RunPolicy>) {
    let Some(hcc) = &built.hcc else { return };
    let live = &run.live;
    let best = live.best().map(|b| b.metric);
    let finish_limit = run.limits.wall.map_or(FINISH_UNLIMITED, |w| {
        (w + STOP_GRACE)
            .saturating_sub(live.elapsed())
            .max(FINISH_MIN)
    });
    let finished = tokio::time::timeout(finish_limit, hcc.finish(best))
        .await
        .unwrap_or_else(|_| {
            Err(crate::capability::CapabilityError::Timeout(format!(
                "the promotion at the run's end took more than {} s and was cut short",
                finish_limit.as_secs()
            )))
        });
    match finished {
        Ok(report) => {
            let knowledge_units = CognitiveCache::stats(hcc.as_ref())
                .await
                .map_or(0, |s| s.knowledge_units);
            live.emit(RunEvent::Promoted {
                elapsed_ms: live.elapsed_ms(),
                policy: policy.map_or_else(|| "none".to_string(), |p| p.name.clone()),
                knowledge_units,
                wisdom: report
                    .wisdom
                    .iter()
                    .map(|w| policy::seen(w, None))
                    .collect(),
            });
        }
        Err(e) => tracing::warn!("recording the run's end in the HCC: {e}"),
    }
}

/// Grade the run's submission, written first as a baseline in the sample submission's format
/// where the strategy left no best (no run ends without an answer where one is possible);
/// `grade.json` and the `graded` event record it.
async fn grade_best(run: &RunSetup) -> Result<(Option<String>, CompetitionReport), RunError> {
    let (dir, live) = (&run.dir, &run.live);
    let baseline = match live.best() {
        Some(_) => None,
        None => match super::baseline::write(&run.prepared.public, &dir.submission()) {
            Ok(baseline) => Some(baseline.describe()),
            Err(e) => {
                tracing::warn!("no baseline submission: {e}");
                None
            }
        },
    };
    let shown = dir.submission().display().to_string();
    let mut grade = run
        .grader
        .grade(
            &run.record.competition_id,
            &run.prepared,
            &dir.submission(),
            &shown,
        )
        .await;
    if let Some(baseline) = &baseline {
        grade.message = format!("{baseline}; {}", grade.message);
    }
    dir.write_json("grade.json", &GradingReport::new(vec![grade.clone()]))
        .map_err(|source| RunError::Write {
            name: "grade.json",
            source,
        })?;
    live.emit(RunEvent::Graded {
        elapsed_ms: live.elapsed_ms(),
        score: grade.score,
        valid: grade.valid_submission,
        medal: medal(&grade),
        above_median: grade.above_median,
        message: grade.message.clone(),
    });
    Ok((baseline, grade))
}

/// Load the strategy `name` (its `[plugins]` source, else `builtin:<name>`) under its grants.
fn load_strategy(
    runtime: &Runtime,
    config: &SophonConfig,
    name: &str,
) -> Result<LoadedPlugin, RunError> {
    services::load_named(
        runtime,
        config,
        name,
        World::Strategy,
        ("strategy", "--strategy"),
    )
    .map_err(RunError::from)
}

/// The medal a grade earned, as a word.
pub fn medal(grade: &CompetitionReport) -> Option<String> {
    [
        (grade.gold_medal, "gold"),
        (grade.silver_medal, "silver"),
        (grade.bronze_medal, "bronze"),
    ]
    .into_iter()
    .find(|(won, _)| *won)
    .map(|(_, name)| name.to_string())
}
