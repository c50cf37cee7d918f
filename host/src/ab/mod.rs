//! `sophon ab <experiment.toml>`: A/B tests of agent policies. Arms (strategy + promotion
//! policy + settings) run on the same competitions with the same seeds and budgets; the
//! results are compared per arm (any-medal rate, above-median rate, mean normalised score, with
//! bootstrap intervals) and paired per competition against the baseline arm.
//!
//! - [`experiment`]: the experiment file and its checks;
//! - [`runner`]: the cells, concurrently per (arm, seed), each with its own HCC store;
//!   resumable;
//! - [`cluster`]: the same with each (arm, seed) sequence as one Slurm or Ray job
//!   ([`cell_job`]: its script, environment and record);
//! - [`stats`]: outcomes, bootstrap estimates, paired comparisons;
//! - [`report`]: `summary.json` and `report.html`;
//! - [`error`]: [`AbError`], why any of it failed.

pub mod cell_job;
pub mod cluster;
pub mod error;
pub mod experiment;
pub mod report;
pub mod runner;
pub mod stats;

pub use error::AbError;
pub use experiment::Experiment;
pub use runner::{CellObserver, run_cells};
pub use stats::{Analysis, Outcome, analyze};

use crate::config::SophonConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// Seed of the bootstrap, so a report is reproducible from its results.
pub const ANALYSIS_SEED: u64 = 20_240_901;

/// What [`run_experiment`] leaves.
pub struct ExperimentResult {
    pub outcomes: Vec<Outcome>,
    pub analysis: Analysis,
    pub summary: PathBuf,
    pub report: PathBuf,
}

/// Run (or finish) `experiment` — in this process, or with `backend = "slurm"`/`"ray"` as one
/// cluster job per (arm, seed) started with `launch` — analyse it and write `summary.json` and
/// `report.html` into its output directory.
pub async fn run_experiment(
    config: &SophonConfig,
    experiment: &Experiment,
    launch: Option<&cell_job::Launch>,
    observer: Arc<dyn CellObserver>,
) -> Result<ExperimentResult, AbError> {
    let outcomes = match (experiment.backend(), launch) {
        (crate::jobs::service::LOCAL, _) => {
            if let Some(recorded) = cluster::recorded_backend(experiment) {
                return Err(AbError::StartedElsewhere {
                    recorded,
                    cells: experiment.output_dir().join("cells"),
                });
            }
            run_cells(config, experiment, observer).await?
        }
        (_, Some(launch)) => {
            cluster::run_cells_on_cluster(config, experiment, launch, observer).await?
        }
        (backend, None) => {
            return Err(AbError::NoLaunch(backend.to_string()));
        }
    };
    let arms: Vec<String> = experiment.arms.iter().map(|a| a.name.clone()).collect();
    let analysis = analyze(&arms, &experiment.competitions, &outcomes, ANALYSIS_SEED);
    let out = experiment.output_dir();
    let summary = out.join("summary.json");
    let json = report::summary_json(experiment, &outcomes, &analysis);
    std::fs::write(
        &summary,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(AbError::write(&summary))?;
    let page = out.join("report.html");
    std::fs::write(&page, report::html(experiment, &outcomes, &analysis))
        .map_err(AbError::write(&page))?;
    Ok(ExperimentResult {
        outcomes,
        analysis,
        summary,
        report: page,
    })
}

/// Run the one sequence (`arm`, `seed`) of `experiment` in this process — what its cluster job
/// does — and write every cell's outcome to the sequence's
/// [`cell_job::OUTCOMES_FILE`] for the driver.
pub async fn run_one_sequence(
    config: &SophonConfig,
    experiment: &Experiment,
    (arm, seed): (&str, u64),
    observer: Arc<dyn CellObserver>,
) -> Result<Vec<Outcome>, AbError> {
    let outcomes = runner::run_sequence(config, experiment, (arm, seed), observer).await?;
    let dir = cell_job::sequence_dir(&experiment.output_dir(), arm, seed);
    std::fs::create_dir_all(&dir).map_err(AbError::create(&dir))?;
    let path = dir.join(cell_job::OUTCOMES_FILE);
    let json = serde_json::to_string_pretty(&outcomes).map_err(AbError::EncodeJson)?;
    std::fs::write(&path, json).map_err(AbError::write(&path))?;
    Ok(outcomes)
}
