//! `sophon grade`, `sophon grade-sample` and `sophon competitions list`: MLE-bench's grading
//! commands, with the same inputs and report.

use super::out;
use crate::config::SophonConfig;
use crate::grading::{submissions, write_report};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use sophon_grading::{COMPETITIONS, GradingReport, Split};
use std::path::PathBuf;

#[derive(Args)]
pub struct GradeArgs {
    /// MLE-bench's JSONL: one {"competition_id", "submission_path"} per line.
    #[arg(long)]
    submission: PathBuf,
    /// Where `<timestamp>_grading_report.json` is written (created if missing).
    #[arg(long)]
    output_dir: PathBuf,
    /// Prepared competitions (`<dir>/<id>/prepared/{public,private}`); default `[mlebench]
    /// data-dir`, else ~/.cache/mle-bench/data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct GradeSampleArgs {
    /// The submission CSV.
    submission: PathBuf,
    competition_id: String,
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum CompetitionsCommand {
    /// Every MLE-bench competition: split, metric, whether Sophon grades it, whether it is
    /// prepared locally.
    List {
        #[arg(long, value_enum)]
        split: Option<SplitArg>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SplitArg {
    Low,
    Medium,
    High,
    Dev,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Split {
        match s {
            SplitArg::Low => Split::Low,
            SplitArg::Medium => Split::Medium,
            SplitArg::High => Split::High,
            SplitArg::Dev => Split::Dev,
        }
    }
}

pub async fn grade(args: GradeArgs, config: &SophonConfig) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.submission)
        .with_context(|| format!("reading {}", args.submission.display()))?;
    let lines = submissions::parse(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("in {}", args.submission.display()))?;
    let grader = config.grader(args.data_dir)?;
    // As MLE-bench: an unknown or unprepared competition stops the whole run, before any
    // grading, so a report never silently leaves a line out.
    let mut prepared = Vec::with_capacity(lines.len());
    for line in &lines {
        let p = grader
            .prepared(&line.competition_id)
            .with_context(|| format!("line {} of {}", line.line, args.submission.display()))?;
        prepared.push(p);
    }
    let mut reports = Vec::with_capacity(lines.len());
    for (line, prepared) in lines.iter().zip(&prepared) {
        let report = grader
            .grade(
                &line.competition_id,
                prepared,
                std::path::Path::new(&line.submission_path),
                &line.submission_path,
            )
            .await;
        eprintln!(
            "{:<48} {:<10} {}",
            crate::term::line(&line.competition_id),
            report.score.map_or("-".to_string(), |s| format!("{s}")),
            medal_word(&report)
        );
        reports.push(report);
    }
    let report = GradingReport::new(reports);
    let path = write_report(&report, &args.output_dir)
        .with_context(|| format!("writing the report into {}", args.output_dir.display()))?;
    out!(
        "{} graded, {} valid, {} medals ({} gold, {} silver, {} bronze), {} above median",
        report.total_runs,
        report.total_valid_submissions,
        report.total_medals,
        report.total_gold_medals,
        report.total_silver_medals,
        report.total_bronze_medals,
        report.total_above_median
    );
    out!("report: {}", path.display());
    Ok(())
}

fn medal_word(r: &sophon_grading::CompetitionReport) -> String {
    if !r.valid_submission {
        // The message may echo the submission's header: job output.
        return format!("invalid: {}", crate::term::line(&r.message));
    }
    let medal = if r.gold_medal {
        "gold"
    } else if r.silver_medal {
        "silver"
    } else if r.bronze_medal {
        "bronze"
    } else if r.above_median {
        "above median"
    } else {
        "below median"
    };
    medal.to_string()
}

pub async fn grade_sample(args: GradeSampleArgs, config: &SophonConfig) -> anyhow::Result<()> {
    let grader = config.grader(args.data_dir)?;
    let prepared = grader.prepared(&args.competition_id)?;
    let shown = args.submission.display().to_string();
    let report = grader
        .grade(&args.competition_id, &prepared, &args.submission, &shown)
        .await;
    out!(
        "{}",
        crate::term::json(serde_json::to_string_pretty(&report)?)
    );
    Ok(())
}

pub fn competitions(command: CompetitionsCommand, config: &SophonConfig) -> anyhow::Result<()> {
    let CompetitionsCommand::List {
        split,
        data_dir,
        json,
    } = command;
    let data_dir = data_dir.unwrap_or_else(|| config.mlebench.data_dir());
    let split: Option<Split> = split.map(Into::into);
    let rows: Vec<serde_json::Value> = COMPETITIONS
        .iter()
        .filter(|c| split.is_none_or(|s| s == c.split))
        .map(|c| {
            let prepared = data_dir
                .join(c.id)
                .join("prepared")
                .join(c.answers)
                .is_file();
            serde_json::json!({
                "id": c.id,
                "split": c.split.as_str(),
                "metric": c.metric,
                "lower_is_better": c.lower_is_better,
                "prepared": prepared,
            })
        })
        .chain(config.mlebench.competitions.iter().map(|(id, spec)| {
            serde_json::json!({
                "id": id,
                "split": "configured",
                "metric": spec.metric,
                "lower_is_better": spec.lower_is_better,
                "prepared": data_dir.join(id).join("prepared").join(&spec.answers).is_file(),
            })
        }))
        .collect();
    if json {
        out!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    out!(
        "{:<58} {:<10} {:<34} prepared",
        "competition",
        "split",
        "metric"
    );
    for r in &rows {
        out!(
            "{:<58} {:<10} {:<34} {}",
            r["id"].as_str().unwrap_or_default(),
            r["split"].as_str().unwrap_or_default(),
            r["metric"].as_str().unwrap_or_default(),
            if r["prepared"] == true { "yes" } else { "-" }
        );
    }
    let prepared = rows.iter().filter(|r| r["prepared"] == true).count();
    out!(
        "{} competitions, all graded by Sophon, {prepared} prepared in {}",
        rows.len(),
        data_dir.display()
    );
    Ok(())
}
