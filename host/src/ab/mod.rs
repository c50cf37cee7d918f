//! `sophon ab <experiment.toml>`: A/B tests of agent policies. Arms (strategy + promotion
//! policy + settings) run on the same competitions with the same seeds and budgets; the
//! results are compared per arm (any-medal rate, above-median rate, mean normalised score, with
//! bootstrap intervals) and paired per competition against the baseline arm.
//!
//! - [`experiment`]: the experiment file and its checks;
//! - [`runner`]: the cells, concurrently per (arm, seed), each with its own HCC store;
//!   resumable;
//! - [`stats`]: outcomes, bootstrap estimates, paired comparisons;
//! - [`report`]: `summary.json` and `report.html`.

pub mod experiment;
pub mod report;
pub mod runner;
pub mod stats;

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

/// Run (or finish) `experiment`, analyse it and write `summary.json` and `report.html` into its
/// output directory.
pub async fn run_experiment(
    config: &SophonConfig,
    experiment: &Experiment,
    observer: Arc<dyn CellObserver>,
) -> Result<ExperimentResult, String> {
    let outcomes = run_cells(config, experiment, observer).await?;
    let arms: Vec<String> = experiment.arms.iter().map(|a| a.name.clone()).collect();
    let analysis = analyze(&arms, &experiment.competitions, &outcomes, ANALYSIS_SEED);
    let out = experiment.output_dir();
    let summary = out.join("summary.json");
    let json = report::summary_json(experiment, &outcomes, &analysis);
    std::fs::write(
        &summary,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| format!("writing {}: {e}", summary.display()))?;
    let page = out.join("report.html");
    std::fs::write(&page, report::html(experiment, &outcomes, &analysis))
        .map_err(|e| format!("writing {}: {e}", page.display()))?;
    Ok(ExperimentResult {
        outcomes,
        analysis,
        summary,
        report: page,
    })
}
