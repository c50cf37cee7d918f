//! `sophon report <run-dir>`: the run as a self-contained HTML page and a JSON summary.

use super::out;
use crate::config::SophonConfig;
use crate::report::{RunView, html};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// A run directory made by `sophon run`.
    run_dir: PathBuf,
    /// Where the page goes (default: <run-dir>/report.html; the summary goes next to it as
    /// report.json).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print the JSON summary on stdout too.
    #[arg(long)]
    json: bool,
}

pub fn report(args: ReportArgs, config: &SophonConfig) -> anyhow::Result<()> {
    let record_store = std::fs::read_to_string(args.run_dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["hcc_store"].as_str().map(PathBuf::from));
    let store = record_store.unwrap_or_else(|| config.hcc.store_path());
    let view = RunView::load(&args.run_dir, Some(&store))?;
    let page = args
        .output
        .unwrap_or_else(|| args.run_dir.join("report.html"));
    std::fs::write(&page, html::render(&view))?;
    let summary = view.summary_json();
    let json_path = page.with_extension("json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&summary)? + "\n")?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        out!("report   {}", page.display());
        out!("summary  {}", json_path.display());
    }
    Ok(())
}
