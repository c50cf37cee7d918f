//! Running an experiment's cells: every (arm, seed) is a sequence of runs over the
//! competitions in order, with its own HCC store (so an arm's wisdom accumulates across its
//! competitions and never leaks into another arm or seed); sequences run concurrently.
//!
//! All cells share the process's job backends ([`crate::run::jobs::shared_backends`]), so runs
//! going on at once never hold the same core, GPU or megabyte.
//!
//! Resumable like runs: a cell whose run finished is read back, a cell whose run was
//! interrupted is resumed from its journal, the rest start fresh. The experiment file is kept in
//! the output directory; another experiment there is refused.

use super::experiment::{Arm, Experiment};
use super::stats::{Outcome, normalize};
use crate::config::SophonConfig;
use crate::run::execute::{RunRequest, execute};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Told about each cell as it finishes.
pub trait CellObserver: Send + Sync {
    fn on_cell(&self, outcome: &Outcome, reused: bool);

    /// A sequence's cluster job changed: `what` is e.g. `slurm job 42 running`.
    fn on_sequence(&self, _arm: &str, _seed: u64, _what: &str) {}
}

/// The run directory of a cell.
pub fn cell_dir(out: &Path, arm: &str, seed: u64, competition: &str) -> PathBuf {
    out.join("runs")
        .join(arm)
        .join(format!("seed-{seed}"))
        .join(competition)
}

/// The HCC store of an (arm, seed) sequence.
pub fn store_path(out: &Path, arm: &str, seed: u64) -> PathBuf {
    out.join("hcc").join(format!("{arm}-seed-{seed}.sqlite"))
}

/// An outcome from a run's `summary.json`.
pub fn outcome_from_summary(
    arm: &str,
    seed: u64,
    run_dir: &Path,
    summary: &serde_json::Value,
) -> Outcome {
    let g = &summary["grade"];
    let number = |v: &serde_json::Value| v.as_f64();
    let score = number(&g["score"]);
    let normalized = normalize(
        score,
        number(&g["median_threshold"]),
        number(&g["gold_threshold"]),
    );
    Outcome {
        arm: arm.to_string(),
        competition_id: g["competition_id"].as_str().unwrap_or_default().to_string(),
        seed,
        run_dir: run_dir.display().to_string(),
        score,
        valid: g["valid_submission"].as_bool().unwrap_or(false),
        any_medal: g["any_medal"].as_bool().unwrap_or(false),
        above_median: g["above_median"].as_bool().unwrap_or(false),
        normalized,
        elapsed_ms: summary["elapsed_ms"].as_u64().unwrap_or(0),
        error: summary["error"].as_str().map(str::to_string),
    }
}

/// A cell that could not run at all (setup error): it counts as an invalid submission.
pub fn failed_cell(
    arm: &str,
    seed: u64,
    competition: &str,
    run_dir: &Path,
    error: String,
) -> Outcome {
    Outcome {
        arm: arm.to_string(),
        competition_id: competition.to_string(),
        seed,
        run_dir: run_dir.display().to_string(),
        score: None,
        valid: false,
        any_medal: false,
        above_median: false,
        normalized: None,
        elapsed_ms: 0,
        error: Some(error),
    }
}

/// Claim `out` for `experiment` (or check it already holds the same one, however it is run:
/// see [`Experiment::identity`]). `out/experiment.toml` keeps the identity, which is also what
/// a cell's cluster job runs.
pub fn claim_output(out: &Path, experiment: &Experiment) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let kept = out.join("experiment.toml");
    let identity = experiment.identity();
    match std::fs::read_to_string(&kept) {
        Ok(old) => match toml::from_str::<Experiment>(&old) {
            Ok(old) if old.identity() == identity => Ok(()),
            _ => Err(format!(
                "{} holds another experiment (its experiment.toml differs): give this one another \
                 name or output-dir, or delete that directory",
                out.display()
            )),
        },
        Err(_) => {
            let text = toml::to_string(&identity).map_err(|e| e.to_string())?;
            std::fs::write(&kept, text).map_err(|e| format!("writing {}: {e}", kept.display()))
        }
    }
}

/// Every (arm, seed) sequence of `experiment`, in order.
pub fn sequences(experiment: &Experiment) -> Vec<(Arm, u64)> {
    let mut sequences = Vec::new();
    for arm in &experiment.arms {
        for &seed in &experiment.seeds {
            sequences.push((arm.clone(), seed));
        }
    }
    sequences
}

/// The outcome of a cell whose run finished (it has a `summary.json`).
pub fn finished_outcome(out: &Path, arm: &str, seed: u64, competition: &str) -> Option<Outcome> {
    let run_dir = cell_dir(out, arm, seed, competition);
    let summary = std::fs::read_to_string(run_dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())?;
    Some(outcome_from_summary(arm, seed, &run_dir, &summary))
}

/// Run every cell not finished yet, in this process; returns every cell's outcome (finished
/// earlier or now), in (arm, seed, competition) order.
pub async fn run_cells(
    config: &SophonConfig,
    experiment: &Experiment,
    observer: Arc<dyn CellObserver>,
) -> Result<Vec<Outcome>, String> {
    run_sequences(config, experiment, sequences(experiment), observer).await
}

/// Run the cells of the sequence (`arm`, `seed`) not finished yet, in this process: what one
/// cluster job of a `backend = "slurm"` experiment does.
pub async fn run_sequence(
    config: &SophonConfig,
    experiment: &Experiment,
    (arm, seed): (&str, u64),
    observer: Arc<dyn CellObserver>,
) -> Result<Vec<Outcome>, String> {
    let sequence = sequences(experiment)
        .into_iter()
        .find(|(a, s)| a.name == arm && *s == seed)
        .ok_or_else(|| {
            format!(
                "the experiment has no sequence of arm `{arm}` and seed {seed}: arms {}, seeds {:?}",
                experiment
                    .arms
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                experiment.seeds
            )
        })?;
    run_sequences(config, experiment, vec![sequence], observer).await
}

async fn run_sequences(
    config: &SophonConfig,
    experiment: &Experiment,
    sequences: Vec<(Arm, u64)>,
    observer: Arc<dyn CellObserver>,
) -> Result<Vec<Outcome>, String> {
    let out = experiment.output_dir();
    claim_output(&out, experiment)?;
    let time_limit = experiment.time_limit()?;
    // One set of job backends for every cell: the local scheduler hands each core, GPU and
    // megabyte to one job at a time across all the runs going on at once.
    let backends = crate::run::jobs::shared_backends(config)
        .await
        .map_err(|e| e.to_string())?;
    let parallel = experiment.max_parallel.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(sequences.len())
    });
    let results: Vec<Vec<Outcome>> =
        futures_util::stream::iter(sequences.into_iter().map(|(arm, seed)| {
            let out = out.clone();
            let observer = observer.clone();
            let backends = backends.clone();
            async move {
                let mut arm_config = config.clone();
                arm_config.hcc.store = Some(store_path(&out, &arm.name, seed));
                let mut outcomes = Vec::new();
                for competition in &experiment.competitions {
                    let run_dir = cell_dir(&out, &arm.name, seed, competition);
                    if let Some(outcome) = finished_outcome(&out, &arm.name, seed, competition) {
                        observer.on_cell(&outcome, true);
                        outcomes.push(outcome);
                        continue;
                    }
                    let request = if run_dir.join("run.json").is_file() {
                        RunRequest {
                            resume: Some(run_dir.clone()),
                            backends: Some(backends.clone()),
                            ..RunRequest::default()
                        }
                    } else {
                        RunRequest {
                            competition_id: competition.clone(),
                            data_dir: experiment.data_dir.clone(),
                            strategy: arm.strategy.clone(),
                            strategy_config: arm
                                .config
                                .as_ref()
                                .map(|c| serde_json::to_value(c).unwrap_or_default()),
                            policy: arm.policy.clone(),
                            time_limit,
                            max_steps: experiment.budget.max_steps,
                            max_tokens: experiment.budget.max_tokens,
                            max_cost_usd: experiment.budget.max_cost_usd,
                            run_dir: Some(run_dir.clone()),
                            seed,
                            backends: Some(backends.clone()),
                            ..RunRequest::default()
                        }
                    };
                    let outcome = match execute(&arm_config, request, vec![]).await {
                        Ok(summary) => {
                            let value = serde_json::to_value(&summary).unwrap_or_default();
                            outcome_from_summary(&arm.name, seed, &run_dir, &value)
                        }
                        Err(e) => {
                            failed_cell(&arm.name, seed, competition, &run_dir, e.to_string())
                        }
                    };
                    observer.on_cell(&outcome, false);
                    outcomes.push(outcome);
                }
                outcomes
            }
        }))
        .buffered(parallel.max(1))
        .collect()
        .await;
    Ok(results.into_iter().flatten().collect())
}
