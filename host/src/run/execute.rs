//! One run end to end (`sophon run`): prepare the competition and the jobs' Python, load the
//! strategy under its grants, give it its services, let it search within the budgets, then
//! grade the best submission it left and write the run's summary.
//!
//! A strategy that fails or overruns does not lose the run: what it reported is kept and the
//! best submission adopted so far is graded. Setup problems (unknown competition, data not
//! prepared, a strategy that is not a strategy) stop the run before anything starts, with an
//! error that names the fix.

use super::demo;
use super::dir::RunDir;
use super::events::{RunEvent, RunObserver};
use super::live::{LiveRun, RunLimits};
use super::policy::{self, PolicyRequest};
use super::services::{self, ServiceRequest};
use super::{Best, Outcome, RunInfo};
use crate::artifacts::ArtifactStore;
use crate::config::SophonConfig;
use crate::grading::GradingError;
use crate::grading::task::GradedTask;
use crate::hcc::{CognitiveCache, TaskDescriptor};
use crate::jobs::backends::Backends;
use crate::jobs::python::JobPython;
use crate::jobs::service::RunEnd;
use crate::journal::{Journal, ReplayStats};
use crate::llm::budget::UsageTotals;
use crate::runtime::{PluginError, Runtime, World};
use crate::task::Metric;
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
        let absolute = |path: &Path, what: &str| {
            std::path::absolute(path)
                .map_err(|e| RunError::Setup(format!("the {what} {}: {e}", path.display())))
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

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
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
pub async fn execute(
    config: &SophonConfig,
    request: RunRequest,
    observers: Vec<Arc<dyn RunObserver>>,
) -> Result<RunSummary, RunError> {
    let resuming = request.resume.is_some();
    let (record, dir) = match &request.resume {
        Some(root) => {
            let dir = RunDir::open(root).map_err(RunError::Setup)?;
            let record: RunRecord = serde_json::from_str(
                &std::fs::read_to_string(dir.path("run.json"))
                    .map_err(|e| RunError::Setup(format!("reading run.json: {e}")))?,
            )
            .map_err(|e| {
                RunError::Setup(format!("run.json of {} is malformed: {e}", root.display()))
            })?;
            if dir.path("summary.json").is_file() {
                return Err(RunError::Setup(format!(
                    "the run in {} has finished (it has a summary.json): nothing to resume",
                    root.display()
                )));
            }
            (record, Some(dir))
        }
        None => (RunRecord::new(config, &request)?, None),
    };
    let id = record.competition_id.clone();
    let data_dir = record.data_dir.clone();
    let python = super::jobs::python(config).await.map_err(RunError::Setup)?;
    if id == demo::DEMO_ID {
        let interpreter = python
            .as_ref()
            .map_or_else(|| PathBuf::from("python3"), JobPython::python);
        demo::ensure_prepared(&data_dir, &interpreter).map_err(RunError::Setup)?;
    }
    let runtime = Runtime::new(config.runtime_config())?;
    let grader = Arc::new(config.grader_on(&runtime, Some(data_dir.clone()))?);
    let prepared = grader.prepared(&id)?;
    let strategy = record.strategy.clone();
    let plugin = load_strategy(&runtime, config, &strategy)?;
    if resuming && plugin.identity().sha256 != record.strategy_sha256 {
        return Err(RunError::Setup(format!(
            "strategy `{strategy}` is not the build the run started with (sha256 {} now, {} then): \
             a run resumes only with the same strategy",
            plugin.identity().sha256,
            record.strategy_sha256
        )));
    }
    let jobs_backend = record
        .jobs_backend
        .clone()
        .unwrap_or_else(|| crate::jobs::service::LOCAL.to_string());
    if !crate::jobs::backends::known().contains(&jobs_backend.as_str()) {
        return Err(RunError::Setup(
            crate::jobs::backends::BackendError::Unknown(jobs_backend).to_string(),
        ));
    }
    let backends = match (&plugin.grants().jobs, request.backends.clone()) {
        (None, _) => None,
        (Some(_), Some(shared)) => Some(shared),
        (Some(_), None) => Some(Arc::new(
            Backends::new(&super::jobs::with_python(config, python.as_ref()))
                .map_err(|e| RunError::Setup(e.to_string()))?,
        )),
    };
    if let Some(backends) = &backends {
        backends
            .check(&jobs_backend)
            .await
            .map_err(|e| RunError::Setup(e.to_string()))?;
    }
    let strategy_config = record.strategy_config.clone();
    let run_id = record.run_id.clone();
    let dir = match dir {
        Some(dir) => Arc::new(dir),
        None => Arc::new(RunDir::create(&record.run_dir).map_err(RunError::Setup)?),
    };
    let run_root = dir.root().to_path_buf();
    // One process per run: a second `--resume` of a live run is refused, not interleaved.
    let _lock = dir.lock().map_err(RunError::Setup)?;
    let artifacts = Arc::new(
        ArtifactStore::open(&dir.path("artifacts"), MAX_ARTIFACT_BYTES).map_err(|e| {
            RunError::Setup(format!(
                "opening the artifact store in {}: {e}",
                run_root.display()
            ))
        })?,
    );
    let journal = Arc::new(Journal::open(dir.root()).map_err(|e| {
        RunError::Setup(format!(
            "opening the journal in {}: {e}",
            run_root.display()
        ))
    })?);
    let task = Arc::new(GradedTask::new(
        grader.clone(),
        &id,
        prepared.clone(),
        artifacts.clone(),
    ));
    let info = task
        .info()
        .await
        .map_err(|e| RunError::Setup(e.to_string()))?
        .clone();
    let limits = RunLimits {
        wall: record.time_limit_secs.map(Duration::from_secs),
        steps: record.max_steps,
        tokens: record.max_tokens,
        cost_usd: record.max_cost_usd,
    };
    let thresholds = grader.thresholds(&id).and_then(Result::ok);
    let mut record = record;
    record.strategy_sha256 = plugin.identity().sha256.clone();
    record.metric = Some(info.metric.clone());
    if !resuming {
        dir.write_json("run.json", &record)
            .map_err(|e| RunError::Setup(format!("writing run.json: {e}")))?;
    }

    let live = LiveRun::new(
        RunInfo {
            run_id: run_id.clone(),
            competition_id: id.clone(),
            seed: record.seed,
            arm: None,
        },
        limits.clone(),
        info.metric.direction,
        artifacts.clone(),
        task.clone(),
        dir.clone(),
        observers,
    );
    let live = match &request.stop {
        Some(flag) => live.with_stop(flag.clone()),
        None => live,
    };
    let live = Arc::new(match resuming {
        true => live.resumed().map_err(RunError::Setup)?,
        false => live,
    });
    let _clock = live.keep_clock();
    live.emit(RunEvent::Started {
        elapsed_ms: live.elapsed_ms(),
        resumed: resuming,
        run_id: run_id.clone(),
        competition_id: id.clone(),
        strategy: strategy.clone(),
        run_dir: run_root.display().to_string(),
        metric: info.metric.name.clone(),
        direction: info.metric.direction,
        time_limit_secs: limits.wall.map(|d| d.as_secs()),
        max_steps: limits.steps,
        max_tokens: limits.tokens,
        thresholds,
    });

    // The promotion policy shares the strategy's LLM hub, so its calls count against the run's
    // budgets; one that fails to start costs the run its promotion, not the run.
    let policy_plugin = match &record.policy {
        Some(name) => Some(policy::load(&runtime, config, name).map_err(RunError::Setup)?),
        None => None,
    };
    let mut users = vec![&plugin];
    users.extend(policy_plugin.as_ref());
    let hub = services::hub_for(config, &users).map_err(RunError::Setup)?;
    let run_policy = match (&policy_plugin, &record.policy) {
        (Some(p), Some(name)) => {
            let request = PolicyRequest {
                config,
                hub: hub.clone(),
                run: live.clone(),
                run_id: run_id.clone(),
                competition_id: id.clone(),
                task: &info,
            };
            match policy::start(p, name, request).await {
                Ok(started) => Some(started),
                Err(e) => {
                    // On the terminal too, not only in events.jsonl: the operator asked for it.
                    let message = format!("{e}; the run goes on without promotion");
                    super::LogLevel::Warn.trace(name, &message);
                    live.emit(RunEvent::Log {
                        elapsed_ms: live.elapsed_ms(),
                        plugin: name.clone(),
                        level: super::LogLevel::Warn,
                        message,
                    });
                    None
                }
            }
        }
        _ => None,
    };
    let built = services::build(
        &plugin,
        ServiceRequest {
            config,
            backends,
            jobs_backend,
            run_id: run_id.clone(),
            competition_id: id.clone(),
            descriptor: run_policy
                .as_ref()
                .map(|p| p.descriptor.clone())
                .unwrap_or_else(TaskDescriptor::default),
            artifacts: artifacts.clone(),
            task_public: Some(prepared.public.clone()),
            run: live.clone(),
            task: Some(task.clone()),
            journal: Some(journal.clone()),
            hub,
            promoter: run_policy.as_ref().map(|p| p.promoter.clone()),
            run_end: RunEnd {
                deadline: limits
                    .wall
                    .map(|w| Instant::now() + w.saturating_sub(live.elapsed())),
                stop: request.stop.clone(),
            },
        },
    )
    .map_err(RunError::Setup)?;
    if let Some(hcc) = &built.hcc {
        // Wisdom of earlier, similar tasks (not this competition's while the leakage guard is
        // on): every context the strategy assembles shows it.
        match hcc.prefetch().await {
            Ok(hits) if !hits.is_empty() => live.emit(RunEvent::WisdomPrefetched {
                elapsed_ms: live.elapsed_ms(),
                entries: policy::seen_hits(&hits),
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!("prefetching wisdom: {e}"),
        }
    }
    if let Some(hub) = &built.hub {
        let hub = hub.clone();
        live.set_usage(Arc::new(move || {
            let total = hub.ledger().summary().total;
            (
                total.prompt_tokens + total.completion_tokens,
                total.cost_usd,
            )
        }));
    }
    let hard_limit = limits
        .wall
        .map_or(Duration::from_secs(30 * 24 * 3600), |w| {
            w.saturating_sub(live.elapsed()) + STOP_GRACE
        });
    let result = async {
        let mut instance = plugin.strategy(built.services).await?;
        instance.run(&strategy_config.to_string(), hard_limit).await
    }
    .await;
    // No job outlives the strategy's run.
    if let Some(jobs) = &built.jobs {
        jobs.cancel_all().await;
    }
    let (outcome, error) = match result {
        Ok(outcome) => (Some(outcome), None),
        Err(e) => (None, Some(e.to_string())),
    };
    if let Some(hcc) = &built.hcc {
        // The run's end and best metric in the HCC store (and, with a promotion policy, its
        // wisdom); a failure here is logged, never the run's.
        let best = live.best().map(|b| b.metric);
        // The policy's last promotion gets what is left of the run's grace, and at least
        // FINISH_MIN: a slow model delays the grade by that much at most.
        let finish_limit = limits.wall.map_or(FINISH_UNLIMITED, |w| {
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
                    policy: run_policy
                        .as_ref()
                        .map_or_else(|| "none".to_string(), |p| p.name.clone()),
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
    live.emit(RunEvent::StrategyDone {
        elapsed_ms: live.elapsed_ms(),
        summary: outcome
            .as_ref()
            .map(|o| o.summary.clone())
            .unwrap_or_default(),
        error: error.clone(),
    });

    // No run ends without an answer where the competition ships a sample submission.
    let baseline = match live.best() {
        Some(_) => None,
        None => match super::baseline::write(&prepared.public, &dir.submission()) {
            Ok(baseline) => Some(baseline.describe()),
            Err(e) => {
                tracing::warn!("no baseline submission: {e}");
                None
            }
        },
    };
    let shown = dir.submission().display().to_string();
    let mut grade = grader
        .grade(&id, &prepared, &dir.submission(), &shown)
        .await;
    if let Some(baseline) = &baseline {
        grade.message = format!("{baseline}; {}", grade.message);
    }
    dir.write_json("grade.json", &GradingReport::new(vec![grade.clone()]))
        .map_err(|e| RunError::Setup(format!("writing grade.json: {e}")))?;
    live.emit(RunEvent::Graded {
        elapsed_ms: live.elapsed_ms(),
        score: grade.score,
        valid: grade.valid_submission,
        medal: medal(&grade),
        above_median: grade.above_median,
        message: grade.message.clone(),
    });

    let (nodes, buggy_nodes) = live.node_counts();
    let summary = RunSummary {
        run_id,
        competition_id: id,
        strategy,
        run_dir: run_root,
        seed: record.seed,
        started_at: record.started_at.clone(),
        elapsed_ms: live.elapsed_ms(),
        outcome,
        error,
        nodes,
        buggy_nodes,
        best: live.best(),
        baseline,
        grade,
        llm: built.hub.map(|h| h.ledger().summary().total),
        replay: journal.stats(),
    };
    dir.write_json("summary.json", &summary)
        .map_err(|e| RunError::Setup(format!("writing summary.json: {e}")))?;
    Ok(summary)
}

/// Load the strategy `name` (its `[plugins]` source, else `builtin:<name>`) under its grants.
fn load_strategy(
    runtime: &Runtime,
    config: &SophonConfig,
    name: &str,
) -> Result<crate::runtime::LoadedPlugin, RunError> {
    services::load_named(
        runtime,
        config,
        name,
        World::Strategy,
        ("strategy", "--strategy"),
    )
    .map_err(RunError::Setup)
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
