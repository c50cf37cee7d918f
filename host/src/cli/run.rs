//! `sophon run`: one agent run on a competition, with progress for people (a status line and
//! one line per search node) or, with `--json`, the run's event stream on stdout.

use super::out;
use crate::config::SophonConfig;
use crate::report::{RunView, html};
use crate::run::events::{RunEvent, RunObserver};
use crate::run::execute::{self, RunRequest, RunSummary};
use crate::run_context::NodeReport;
use crate::term;
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sophon_grading::Thresholds;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Args)]
pub struct RunArgs {
    /// The competition id (MLE-bench's, one under [mlebench.competitions], or
    /// `sophon-demo-breast-cancer`, which Sophon prepares itself).
    #[arg(long, required_unless_present = "resume")]
    competition: Option<String>,
    /// Resume the run in this directory after a crash: its journal is replayed into a fresh
    /// strategy (no LLM call or finished job is repeated), then it continues live.
    #[arg(long, conflicts_with_all = ["competition", "data_dir", "strategy", "strategy_config", "policy", "time_limit", "max_steps", "max_tokens", "max_cost", "run_dir", "seed", "jobs_backend"])]
    resume: Option<PathBuf>,
    /// The directory holding `<competition>/prepared/` (default: [mlebench] data-dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The strategy plugin (a [plugins] name; default: [run] routing, else `recipes`).
    #[arg(long)]
    strategy: Option<String>,
    /// The strategy's settings as JSON (replaces [run.strategies.<name>]).
    #[arg(long)]
    strategy_config: Option<String>,
    /// The memory promotion policy (a [plugins] name, e.g. `hcc` or `top-k`, or `none`;
    /// default: [run] routing, else `hcc`).
    #[arg(long)]
    policy: Option<String>,
    /// Wall-clock budget, e.g. `8m`, `90s`, `2h` (default: [run] time-limit-secs, else 8m).
    #[arg(long, value_parser = humantime::parse_duration)]
    time_limit: Option<Duration>,
    /// Most search nodes.
    #[arg(long)]
    max_steps: Option<u32>,
    /// Most LLM tokens (prompt + completion) the run may use.
    #[arg(long)]
    max_tokens: Option<u64>,
    /// Most LLM dollars the run may spend.
    #[arg(long)]
    max_cost: Option<f64>,
    /// Where the run directory goes (default: <runs-dir>/<run-id>).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the strategy's jobs go: `local`, or a cluster configured under [jobs.slurm] or
    /// [jobs.ray] (default: [run] jobs-backend routing, else `local`).
    #[arg(long)]
    jobs_backend: Option<String>,
    /// Print the event stream as JSON lines (and the summary last) instead of progress.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: RunArgs, config: &SophonConfig) -> anyhow::Result<()> {
    let strategy_config = args
        .strategy_config
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--strategy-config is not JSON")?;
    let request = RunRequest {
        competition_id: args.competition.unwrap_or_default(),
        data_dir: args.data_dir,
        strategy: args.strategy,
        strategy_config,
        policy: args.policy,
        time_limit: args.time_limit,
        max_steps: args.max_steps,
        max_tokens: args.max_tokens,
        max_cost_usd: args.max_cost,
        stop: None,
        run_dir: args.run_dir,
        seed: args.seed,
        resume: args.resume,
        jobs_backend: args.jobs_backend,
        backends: None,
    };
    run_and_report(config, request, args.json).await
}

/// Run `request` as `sophon run` does: Ctrl-C stops it gracefully, progress (or JSON lines)
/// as it goes, the HTML report and the summary at the end; an error if the strategy failed.
pub(crate) async fn run_and_report(
    config: &SophonConfig,
    mut request: RunRequest,
    json: bool,
) -> anyhow::Result<()> {
    // Ctrl-C asks the strategy to stop; the best submission is still graded. A second Ctrl-C
    // ends the process (the run can be resumed).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "stopping after the current step (Ctrl-C again to quit; `sophon run --resume` continues)"
            );
            flag.store(true, std::sync::atomic::Ordering::Release);
            if tokio::signal::ctrl_c().await.is_ok() {
                super::end_jobs().await;
                std::process::exit(130);
            }
        }
    });
    request.stop = Some(stop.clone());
    let observer: Arc<dyn RunObserver> = match json {
        true => Arc::new(JsonLines),
        false => Arc::new(Progress::new()),
    };
    let summary = execute::execute(config, request, vec![observer.clone()]).await?;
    // The report is a convenience: a failure to write it is said, and the run still counts.
    let store = config.hcc.store_path();
    match RunView::load(&summary.run_dir, Some(&store)) {
        Ok(view) => {
            let page = summary.run_dir.join("report.html");
            if let Err(e) = std::fs::write(&page, html::render(&view)) {
                tracing::warn!("cannot write {}: {e}", page.display());
            }
        }
        Err(e) => tracing::warn!("cannot make the run report: {e}"),
    }
    if json {
        let line = serde_json::json!({ "event": "summary", "summary": summary });
        out!("{}", term::json(line.to_string()));
    } else {
        print_summary(&summary)?;
    }
    if let Some(error) = &summary.error {
        // main prints the error made safe for the terminal.
        anyhow::bail!(
            "the strategy failed: {error} (what it did is in {})",
            summary.run_dir.display()
        );
    }
    Ok(())
}

/// `--json`: every event as one line on stdout.
struct JsonLines;

impl RunObserver for JsonLines {
    fn on_event(&self, event: &RunEvent) {
        if let Ok(line) = serde_json::to_string(event) {
            // An event stream whose reader left is not the run's failure.
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout().lock(), "{}", term::json(line));
        }
    }
}

/// A status line (nodes, best score against the thresholds, time left) and a line per node.
struct Progress {
    bar: ProgressBar,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    nodes: u32,
    best: Option<f64>,
    thresholds: Option<Thresholds>,
    lower_is_better: bool,
    deadline: Option<std::time::Instant>,
    tokens_used: u64,
    max_tokens: Option<u64>,
}

impl Progress {
    fn new() -> Progress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar,
            state: Mutex::default(),
        }
    }

    fn line(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    fn status(&self, state: &ProgressState) -> String {
        let best = match state.best {
            Some(b) => format!("best {b:.5}"),
            None => "no valid submission yet".to_string(),
        };
        let standing = match (&state.thresholds, state.best) {
            (Some(t), Some(b)) => {
                let reached = |x: f64| match state.lower_is_better {
                    true => b <= x,
                    false => b >= x,
                };
                let level = [
                    (t.gold, "gold"),
                    (t.silver, "silver"),
                    (t.bronze, "bronze"),
                    (t.median, "above median"),
                ]
                .into_iter()
                .find(|(x, _)| reached(*x))
                .map_or("below median", |(_, name)| name);
                format!(
                    " (validation; {level} on the leaderboard's scale: median {:.5}, bronze {:.5}, gold {:.5})",
                    t.median, t.bronze, t.gold
                )
            }
            _ => String::new(),
        };
        let left = state.deadline.map_or(String::new(), |d| {
            let secs = d
                .saturating_duration_since(std::time::Instant::now())
                .as_secs();
            format!(" · {}m{:02}s left", secs / 60, secs % 60)
        });
        let tokens = match state.max_tokens {
            Some(max) => format!(" · {} tokens left", max.saturating_sub(state.tokens_used)),
            None => format!(" · {} tokens used", state.tokens_used),
        };
        format!("nodes {} · {best}{standing}{left}{tokens}", state.nodes)
    }
}

impl RunObserver for Progress {
    fn on_event(&self, event: &RunEvent) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.update(event);
        for line in event_lines(event) {
            self.line(line);
        }
        if let RunEvent::Graded { .. } = event {
            self.bar.finish_and_clear();
        }
        self.bar.set_message(self.status(&state));
    }
}

impl ProgressState {
    /// Take in what `event` changes: the limits, thresholds and direction when the run starts
    /// (the deadline counts the time a resumed run already spent), the node count and tokens
    /// used per node, the best metric.
    fn update(&mut self, event: &RunEvent) {
        match event {
            RunEvent::Started {
                elapsed_ms,
                direction,
                time_limit_secs,
                max_tokens,
                thresholds,
                ..
            } => {
                self.max_tokens = *max_tokens;
                self.thresholds = *thresholds;
                self.lower_is_better = *direction == crate::task::Direction::Minimize;
                self.deadline = time_limit_secs.map(|s| {
                    std::time::Instant::now()
                        + Duration::from_secs(s).saturating_sub(Duration::from_millis(*elapsed_ms))
                });
            }
            RunEvent::Node { tokens_used, .. } => {
                self.nodes += 1;
                self.tokens_used = *tokens_used;
            }
            RunEvent::Best { best, .. } => self.best = Some(best.metric),
            _ => {}
        }
    }
}

/// The lines `event` prints above the status line, in order. The strategy's and the adapter's
/// texts in them (node ids, operators, summaries, reasons, errors) are escaped.
fn event_lines(event: &RunEvent) -> Vec<String> {
    match event {
        RunEvent::Started {
            resumed,
            run_id,
            competition_id,
            strategy,
            run_dir,
            metric,
            direction,
            ..
        } => {
            let verb = if *resumed { "resuming" } else { "run" };
            vec![format!(
                "{verb} {run_id}: {} with `{}`, metric {} ({direction:?}); run directory {}",
                term::line(competition_id),
                term::line(strategy),
                term::line(metric),
                term::line(run_dir)
            )]
        }
        RunEvent::Node { node, .. } => vec![node_line(node)],
        RunEvent::Best { best, .. } => vec![format!(
            "  best  {} ({:.5}) copied to submission/submission.csv",
            term::line(&best.node),
            best.metric
        )],
        // The adapter's reason may echo the submission (job output).
        RunEvent::BestRefused { node, reason, .. } => vec![format!(
            "  {} refused as best: {}",
            term::line(node),
            term::line(reason)
        )],
        RunEvent::StrategyDone { error, .. } => error
            .iter()
            .map(|error| format!("strategy failed: {}", term::block(error)))
            .chain(["grading the best submission…".to_string()])
            .collect(),
        RunEvent::WisdomPrefetched { entries, .. } => vec![format!(
            "  memory: {} wisdom entries from earlier tasks in context",
            entries.len()
        )],
        RunEvent::Promoted {
            policy,
            knowledge_units,
            wisdom,
            ..
        } => vec![format!(
            "  memory: policy `{}` kept {knowledge_units} knowledge units and left {} wisdom entries for later tasks",
            term::line(policy),
            wisdom.len()
        )],
        RunEvent::Log { .. } | RunEvent::Graded { .. } => Vec::new(),
    }
}

/// A node's line: id, operator, verdict (buggy, ok or invalid), metric and summary.
fn node_line(node: &NodeReport) -> String {
    let metric = node.metric.map_or("-".to_string(), |m| format!("{m:.5}"));
    let verdict = if node.buggy {
        "buggy"
    } else if node.valid_submission {
        "ok"
    } else {
        "invalid"
    };
    format!(
        "  node {:<8} {:<7} {verdict:<7} metric {metric:<9} {}",
        term::line(&node.id),
        term::line(&node.operator),
        term::line(&node.summary)
    )
}

fn print_summary(summary: &RunSummary) -> anyhow::Result<()> {
    let g = &summary.grade;
    out!("run       {}", term::line(&summary.run_id));
    out!(
        "directory {}",
        term::line(&summary.run_dir.display().to_string())
    );
    out!(
        "nodes     {} ({} buggy) in {:.1} s",
        summary.nodes,
        summary.buggy_nodes,
        summary.elapsed_ms as f64 / 1000.0
    );
    if let Some(best) = &summary.best {
        out!(
            "best      {} (validation {:.5})",
            term::line(&best.node),
            best.metric
        );
    }
    if let Some(error) = &summary.error {
        out!("strategy  failed: {}", term::block(error));
    }
    let score = g.score.map_or("none".to_string(), |s| format!("{s}"));
    let medal = execute::medal(g).unwrap_or_else(|| "no medal".to_string());
    match g.median_threshold {
        Some(median) => out!(
            "grade     {score} on the test set: {medal}, {} median {median} (gold {}, silver {}, bronze {})",
            if g.above_median { "above" } else { "not above" },
            g.gold_threshold.unwrap_or(f64::NAN),
            g.silver_threshold.unwrap_or(f64::NAN),
            g.bronze_threshold.unwrap_or(f64::NAN),
        ),
        None => out!(
            "grade     {score} on the test set ({})",
            term::line(&g.message)
        ),
    }
    if summary.replay.recorded > 0 {
        out!(
            "resumed   {} of {} journaled answers replayed",
            summary.replay.replayed,
            summary.replay.recorded
        );
    }
    if let Some(llm) = &summary.llm {
        out!(
            "llm       {} calls, {} prompt + {} completion tokens, ${:.4}",
            llm.calls,
            llm.prompt_tokens,
            llm.completion_tokens,
            llm.cost_usd
        );
    }
    let submission = match summary.run_dir.join("submission/submission.csv").is_file() {
        true => ", submission/submission.csv",
        false => "",
    };
    out!(
        "files     {}/report.html, grade.json, summary.json{submission}",
        term::line(&summary.run_dir.display().to_string())
    );
    Ok(())
}
