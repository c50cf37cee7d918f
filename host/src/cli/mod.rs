//! The `sophon` command line.

mod ab;
mod build;
mod carried;
mod grade;
mod hcc;
pub mod install;
mod job;
mod llm;
mod plugin;
mod report;
mod run;
mod scaffold;

use crate::config::SophonConfig;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

pub use build::{Lang, build as build_plugin};
pub use scaffold::{scaffold_plugin, scaffold_script_plugin};

#[derive(Parser)]
#[command(
    name = "sophon",
    version,
    about = "A platform for autonomous ML-engineering agents with sandboxed Wasm plugins"
)]
struct Cli {
    /// Operator configuration (default: ./sophon.toml if it exists, else the embedded defaults).
    #[arg(long, global = true, env = "SOPHON_CONFIG")]
    config: Option<PathBuf>,
    /// More log output (-v debug, -vv trace).
    #[arg(short = 'v', long = "verbosity", global = true, action = clap::ArgAction::Count)]
    verbosity: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent on a competition: search, keep the best submission, grade it.
    Run(run::RunArgs),
    /// Write a run's report: a self-contained HTML page and a JSON summary.
    Report(report::ReportArgs),
    /// Run an A/B experiment of arms (strategy + policy + settings) over competitions and
    /// seeds; resumable; writes a summary and an HTML report.
    Ab(ab::AbArgs),
    /// Inspect, scaffold, list and run plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Talk to the configured language models, or serve the embedded one.
    #[command(subcommand)]
    Llm(llm::LlmCommand),
    /// Run commands as sandboxed jobs; list, read and cancel jobs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Inspect the HCC store, export/import wisdom, simulate context growth.
    #[command(subcommand)]
    Hcc(hcc::HccCommand),
    /// Grade submissions listed in MLE-bench's JSONL; write MLE-bench's grading report.
    Grade(grade::GradeArgs),
    /// Grade one submission CSV and print its report.
    GradeSample(grade::GradeSampleArgs),
    /// The competitions Sophon knows, grades and finds prepared.
    #[command(subcommand)]
    Competitions(grade::CompetitionsCommand),
}

/// Whether the error comes from writing to a pipe whose reader has gone.
/// `println!` that returns the write's error instead of panicking: `sophon … | head` closes the
/// pipe, the command ends quietly ([`is_broken_pipe`]). Use it in functions returning
/// `anyhow::Result`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}
pub(crate) use out;

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbosity);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                tokio::spawn(end_on_signals());
                let result = dispatch(cli).await;
                end_jobs().await;
                result
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `sophon hcc export | head`: the reader left; that is not the command failing.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors carry plugin, job and model text (panic messages, stderr tails, adapter
            // messages): escaped, and continuation lines marked.
            eprintln!("error: {}", crate::term::block(&error_message(&e)));
            ExitCode::FAILURE
        }
    }
}

/// `e` and its causes as one line of text, `outer: cause: cause`, leaving out a cause whose
/// text the message already holds: the host's typed errors name their cause in their own
/// message and also keep it as their `source`, and printing both would say it twice.
fn error_message(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// Stop every job this process started: its cluster jobs (their schedulers get 10 s to
/// answer) and its local jobs, whose cgroups are removed.
pub(crate) async fn end_jobs() {
    crate::jobs::reaper::cancel_cluster_jobs(std::time::Duration::from_secs(10)).await;
    crate::jobs::reaper::kill_all();
}

/// On SIGTERM or SIGHUP: stop every job, then exit (128 + the signal). A run ended this way
/// resumes with `sophon run --resume`.
async fn end_on_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let code = tokio::select! {
        _ = term.recv() => 128 + libc::SIGTERM,
        _ = hangup.recv() => 128 + libc::SIGHUP,
    };
    eprintln!("sophon: ending on a signal; stopping its jobs");
    end_jobs().await;
    std::process::exit(code);
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Run(args) => run::run(args, &config).await,
        Command::Report(args) => report::report(args, &config),
        Command::Ab(args) => ab::ab(args, &config, config_path(cli.config.as_deref())?).await,
        Command::Plugin(command) => plugin::run(command, &config, cli.config.as_deref()).await,
        Command::Llm(command) => llm::run(command, &config).await,
        Command::Job(command) => job::run(command, &config).await,
        Command::Hcc(command) => hcc::run(command, &config).await,
        Command::Grade(args) => grade::grade(args, &config).await,
        Command::GradeSample(args) => grade::grade_sample(args, &config).await,
        Command::Competitions(command) => grade::competitions(command, &config),
    }
}

/// The configuration file in use, absolute (what a cluster job of `sophon ab` loads too).
fn config_path(path: Option<&std::path::Path>) -> anyhow::Result<Option<PathBuf>> {
    let path = match path {
        Some(path) => path,
        None if std::path::Path::new("sophon.toml").exists() => std::path::Path::new("sophon.toml"),
        None => return Ok(None),
    };
    Ok(Some(std::path::absolute(path).with_context(|| {
        format!("the configuration {}", path.display())
    })?))
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<SophonConfig> {
    match path {
        Some(path) => Ok(SophonConfig::load(path)?),
        None => {
            let local = std::path::Path::new("sophon.toml");
            if local.exists() {
                Ok(SophonConfig::load(local)?)
            } else {
                Ok(SophonConfig::defaults())
            }
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,sophon=info",
        1 => "info,sophon=debug",
        _ => "debug,sophon=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SOPHON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::error_message;
    use anyhow::Context;

    #[derive(Debug, thiserror::Error)]
    #[error("creating /x/run: {source}")]
    struct Create {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_names_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied");
        let typed: anyhow::Error = Create { source: io }.into();
        assert_eq!(error_message(&typed), "creating /x/run: Permission denied");
        // A context that does not name its cause still gets it appended.
        let plain: anyhow::Result<()> =
            Err(std::io::Error::other("disk full")).context("writing grade.json");
        assert_eq!(
            error_message(&plain.unwrap_err()),
            "writing grade.json: disk full"
        );
        let layered = Err::<(), _>(Create {
            source: std::io::Error::other("disk full"),
        })
        .context("starting the run")
        .unwrap_err();
        assert_eq!(
            error_message(&layered),
            "starting the run: creating /x/run: disk full"
        );
    }
}
