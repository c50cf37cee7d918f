//! `sophon ab <experiment.toml>`: run an A/B experiment (or finish one that was interrupted)
//! and write its summary and report.

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
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One line per finished cell.
struct Lines;

impl CellObserver for Lines {
    fn on_cell(&self, o: &Outcome, reused: bool) {
        let score = match (o.score, &o.error) {
            (Some(s), _) => format!("{s:.5}"),
            // A run's error carries plugin and adapter text.
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

pub async fn ab(args: AbArgs, config: &SophonConfig) -> anyhow::Result<()> {
    let mut experiment = Experiment::load(&args.experiment).map_err(anyhow::Error::msg)?;
    if let Some(n) = args.max_parallel {
        anyhow::ensure!(n > 0, "--max-parallel must be at least 1");
        experiment.max_parallel = Some(n);
    }
    let result = ab::run_experiment(config, &experiment, Arc::new(Lines))
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("experiment {}", args.experiment.display()))?;
    if args.json {
        let summary = std::fs::read_to_string(&result.summary)?;
        println!("{summary}");
        return Ok(());
    }
    println!(
        "{:<14} {:>5} {:>22} {:>22} {:>26}",
        "arm", "runs", "any medal", "above median", "mean normalised score"
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
    for a in &result.analysis.arms {
        println!(
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
    for c in result
        .analysis
        .comparisons
        .iter()
        .filter(|c| c.competition_id == "all")
    {
        println!(
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
    println!(
        "files {}, {}",
        result.report.display(),
        result.summary.display()
    );
    Ok(())
}
