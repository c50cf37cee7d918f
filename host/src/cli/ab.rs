//! `sophon ab <experiment.toml>`: run an A/B experiment (or finish one that was interrupted)
//! and write its summary and report — in this process, or as cluster jobs (`--backend`), whose
//! progress `--status` shows and which `--cancel` stops.

use super::out;
use crate::ab::{self, CellObserver, Experiment, Outcome};
use crate::config::SophonConfig;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct AbArgs {
    /// The experiment: arms, competitions, seeds, budgets (see `docs/operations.md`).
    experiment: PathBuf,
    /// Cells run at once (overrides the experiment's `max-parallel`).
    #[arg(long)]
    max_parallel: Option<usize>,
    /// Where cells run: `local` (this process) or `slurm` / `ray`, one cluster job per
    /// (arm, seed) (overrides the experiment's `backend`).
    #[arg(long)]
    backend: Option<String>,
    /// Show where each (arm, seed) sequence stands, without running anything.
    #[arg(long, conflicts_with = "cancel")]
    status: bool,
    /// Stop the experiment's cluster jobs (a later `sophon ab` resumes their runs).
    #[arg(long)]
    cancel: bool,
    /// Run only the sequence ARM:SEED, in this process (what each cluster job runs).
    #[arg(long, hide = true, conflicts_with_all = ["status", "cancel", "backend"])]
    sequence: Option<String>,
    /// With --sequence: the cores and memory the cluster gave the sequence's job.
    #[arg(long, hide = true, requires = "sequence")]
    cell_cpus: Option<u32>,
    #[arg(long, hide = true, requires = "sequence")]
    cell_memory_mb: Option<u64>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One line per finished cell, and per change of a sequence's cluster job.
struct Lines;

impl CellObserver for Lines {
    fn on_sequence(&self, arm: &str, seed: u64, what: &str) {
        eprintln!(
            "{:<12} seed {:<3} {}",
            crate::term::line(arm),
            seed,
            crate::term::line(what)
        );
    }

    fn on_cell(&self, o: &Outcome, reused: bool) {
        let score = match (o.score, &o.error) {
            // A run's error carries plugin and adapter text; a failed run may still be graded.
            (Some(s), Some(e)) => format!("{s:.5} (the run failed: {})", crate::term::line(e)),
            (Some(s), None) => format!("{s:.5}"),
            (None, Some(e)) => format!("invalid: {}", crate::term::line(e)),
            (None, None) => "invalid".into(),
        };
        eprintln!(
            "{} {:<12} seed {:<3} {:<40} {score}{}{}",
            if reused { "kept" } else { "done" },
            crate::term::line(&o.arm),
            o.seed,
            crate::term::line(&o.competition_id),
            if o.any_medal { ", medal" } else { "" },
            if o.above_median { ", above median" } else { "" },
        );
    }
}

pub async fn ab(
    args: AbArgs,
    config: &SophonConfig,
    config_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut experiment = load(&args)?;
    if let Some(sequence) = &args.sequence {
        return run_sequence(config, &experiment, sequence, &args).await;
    }
    // Sequences an earlier driver started on a cluster stay there: a plain `sophon ab` (or
    // `--status`, `--cancel`) follows them rather than running them here a second time.
    if args.backend.is_none()
        && experiment.backend() == crate::jobs::service::LOCAL
        && let Some(recorded) = ab::cluster::recorded_backend(&experiment)
    {
        eprintln!(
            "note: this experiment's sequences were started as {recorded} jobs; following them there"
        );
        experiment.backend = Some(recorded);
    }
    if args.status {
        return status(config, &experiment).await;
    }
    if args.cancel {
        return cancel(config, &experiment, &args.experiment).await;
    }
    let result = run_experiment(config, &experiment, &args.experiment, config_path).await?;
    if args.json {
        let summary = std::fs::read_to_string(&result.summary)?;
        out!("{summary}");
        return Ok(());
    }
    print_summary(&experiment, &result)
}

/// The experiment file, with `--max-parallel` and `--backend` applied (and checked).
fn load(args: &AbArgs) -> anyhow::Result<Experiment> {
    let mut experiment = Experiment::load(&args.experiment)?;
    if let Some(n) = args.max_parallel {
        anyhow::ensure!(n > 0, "--max-parallel must be at least 1");
        experiment.max_parallel = Some(n);
    }
    if let Some(backend) = &args.backend {
        experiment.backend = Some(backend.clone());
        experiment.check()?;
    }
    Ok(experiment)
}

/// `--sequence ARM:SEED`: run that one sequence in this process, confined to the cell the
/// cluster gave its job.
async fn run_sequence(
    config: &SophonConfig,
    experiment: &Experiment,
    sequence: &str,
    args: &AbArgs,
) -> anyhow::Result<()> {
    let (arm, seed) = sequence
        .rsplit_once(':')
        .and_then(|(arm, seed)| Some((arm, seed.parse::<u64>().ok()?)))
        .with_context(|| format!("--sequence {sequence:?}: give ARM:SEED"))?;
    let mut config = config.clone();
    ab::cell_job::confine_to_cell(
        &mut config,
        args.cell_cpus.unwrap_or(ab::cell_job::DEFAULT_CELL_CPUS),
        args.cell_memory_mb
            .unwrap_or(ab::cell_job::DEFAULT_CELL_MEMORY_MB),
    );
    ab::run_one_sequence(&config, experiment, (arm, seed), Arc::new(Lines)).await?;
    Ok(())
}

/// `--cancel`: stop the experiment's cluster jobs; an error for a local experiment.
async fn cancel(
    config: &SophonConfig,
    experiment: &Experiment,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    if experiment.backend() == crate::jobs::service::LOCAL {
        anyhow::bail!(
            "this experiment's cells run in the process that runs it (backend = \"local\"): \
             stop that process (Ctrl-C); give --backend if they were started on a cluster"
        );
    }
    let stopped = ab::cluster::cancel(config, experiment).await?;
    for job in &stopped {
        eprintln!("stopped {} job {}", job.backend, job.native_id);
    }
    eprintln!(
        "{} job(s) stopped; `sophon ab {}` resumes their runs",
        stopped.len(),
        file.display()
    );
    Ok(())
}

/// Run (or finish) the experiment in `file`, its cluster jobs starting this binary with
/// `config_path`.
async fn run_experiment(
    config: &SophonConfig,
    experiment: &Experiment,
    file: &std::path::Path,
    config_path: Option<PathBuf>,
) -> anyhow::Result<ab::ExperimentResult> {
    let launch = ab::cell_job::Launch {
        exe: std::env::current_exe().context("finding the sophon binary to run on the nodes")?,
        config: config_path,
    };
    if experiment.backend() != crate::jobs::service::LOCAL {
        eprintln!(
            "cells run as {} jobs; stopping this command leaves them running (`--status`, `--cancel`)",
            experiment.backend()
        );
    }
    ab::run_experiment(config, experiment, Some(&launch), Arc::new(Lines))
        .await
        .with_context(|| format!("experiment {}", file.display()))
}

/// The summary as tables: per arm, then each arm against the baseline over all competitions,
/// then where the files are.
fn print_summary(experiment: &Experiment, result: &ab::ExperimentResult) -> anyhow::Result<()> {
    if let Some(warning) = ab::report::interval_warning(experiment) {
        eprintln!("note: {warning}");
    }
    print_arms(&result.analysis)?;
    print_comparisons(&result.analysis)?;
    out!(
        "files {}, {}",
        result.report.display(),
        result.summary.display()
    );
    Ok(())
}

/// One row per arm: runs, rates and mean normalised score with their intervals.
fn print_arms(analysis: &ab::Analysis) -> anyhow::Result<()> {
    out!(
        "{:<14} {:>5} {:>22} {:>22} {:>26}",
        "arm",
        "runs",
        "any medal",
        "above median",
        "mean normalised score"
    );
    let pct = |e: &Option<ab::stats::Estimate>| {
        e.map_or("–".into(), |e| {
            format!(
                "{:.0}% [{:.0}, {:.0}]",
                100.0 * e.value,
                100.0 * e.low,
                100.0 * e.high
            )
        })
    };
    for a in &analysis.arms {
        out!(
            "{:<14} {:>5} {:>22} {:>22} {:>26}",
            a.arm,
            a.runs,
            pct(&a.any_medal_rate),
            pct(&a.above_median_rate),
            a.mean_normalized_score.map_or("–".into(), |e| format!(
                "{:.3} [{:.3}, {:.3}]",
                e.value, e.low, e.high
            ))
        );
    }
    Ok(())
}

/// One line per arm against the baseline, over all competitions.
fn print_comparisons(analysis: &ab::Analysis) -> anyhow::Result<()> {
    for c in analysis
        .comparisons
        .iter()
        .filter(|c| c.competition_id == "all")
    {
        out!(
            "{} vs {}: {} wins, {} losses, {} ties; difference {}",
            c.arm,
            c.baseline,
            c.wins,
            c.losses,
            c.ties,
            c.difference.map_or("–".into(), |e| format!(
                "{:.3} [{:.3}, {:.3}]",
                e.value, e.low, e.high
            ))
        );
    }
    Ok(())
}

/// `--status`: one line per (arm, seed) sequence.
async fn status(config: &SophonConfig, experiment: &Experiment) -> anyhow::Result<()> {
    let statuses = ab::cluster::status(config, experiment).await?;
    out!("{:<14} {:>5} {:>8}  job", "arm", "seed", "cells");
    for s in statuses {
        let job = s.job.map_or("–".to_string(), |(job, said)| {
            format!("{} job {} {}", job.backend, job.native_id, said)
        });
        out!(
            "{:<14} {:>5} {:>8}  {}",
            crate::term::line(&s.arm),
            s.seed,
            format!("{}/{}", s.finished, s.cells),
            crate::term::line(&job)
        );
    }
    Ok(())
}
