//! `sophon hcc …`: look into the HCC store, move wisdom between stores, simulate a run.

use crate::config::SophonConfig;
use crate::hcc::context::render_knowledge;
use crate::hcc::simulate::{SimulationConfig, simulate};
use crate::hcc::store::{KnowledgeScope, kind_to_text};
use crate::hcc::{HccStore, Layer};
use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum HccCommand {
    /// Runs, or one run's events / knowledge, or the wisdom.
    Show {
        /// The run to show (default: list the runs).
        #[arg(long)]
        run: Option<String>,
        #[arg(long, value_enum, default_value_t = LayerArg::Experience)]
        layer: LayerArg,
        /// Only this competition's knowledge or wisdom.
        #[arg(long)]
        competition: Option<String>,
        /// Print full JSON records instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Counts over the whole store.
    Stats {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Write every wisdom entry, with provenance, as JSONL.
    Export {
        /// Output file (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Add the wisdom entries of a JSONL file written by `export` (present ones are skipped).
    Import {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Drive the real store and context assembly with a synthetic run and print, at every
    /// step, the assembled context's tokens against the naive full history's.
    Simulate {
        #[arg(long, default_value_t = 500)]
        steps: u32,
        #[arg(long, default_value_t = 32_000)]
        budget_tokens: u32,
        /// A new phase every this many steps.
        #[arg(long, default_value_t = 25)]
        phase_every: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Count tokens with this model's tokenizer (default o200k_base).
        #[arg(long)]
        model: Option<String>,
        /// Print the per-step JSON (default: a summary).
        #[arg(long)]
        json: bool,
        /// The store to simulate in (default: a temporary one, removed afterwards).
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LayerArg {
    Experience,
    Knowledge,
    Wisdom,
}

impl From<LayerArg> for Layer {
    fn from(l: LayerArg) -> Layer {
        match l {
            LayerArg::Experience => Layer::Experience,
            LayerArg::Knowledge => Layer::Knowledge,
            LayerArg::Wisdom => Layer::Wisdom,
        }
    }
}

#[derive(clap::Args)]
pub struct StoreArg {
    /// The HCC store (default: [hcc] store in sophon.toml, else ~/.local/share/sophon/hcc.sqlite).
    #[arg(long)]
    store: Option<PathBuf>,
}

impl StoreArg {
    fn open(&self, config: &SophonConfig) -> anyhow::Result<HccStore> {
        let path = self
            .store
            .clone()
            .unwrap_or_else(|| config.hcc.store_path());
        Ok(HccStore::open(&path)?)
    }
}

pub async fn run(command: HccCommand, config: &SophonConfig) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        HccCommand::Show {
            run,
            layer,
            competition,
            json,
            store,
        } => show(
            &store.open(config)?,
            run.as_deref(),
            layer.into(),
            competition.as_deref(),
            json,
            &mut out,
        ),
        HccCommand::Stats { json, store } => {
            let stats = store.open(config)?.stats()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
            } else {
                writeln!(out, "store            {}", stats.path)?;
                writeln!(out, "schema version   {}", stats.schema_version)?;
                writeln!(out, "runs             {}", stats.runs)?;
                writeln!(
                    out,
                    "events           {} ({} bytes of content)",
                    stats.events, stats.event_bytes
                )?;
                writeln!(out, "phases           {}", stats.phases)?;
                writeln!(out, "knowledge units  {}", stats.knowledge_units)?;
                writeln!(
                    out,
                    "wisdom entries   {} from {} competitions ({} vectors)",
                    stats.wisdom_entries, stats.competitions_with_wisdom, stats.wisdom_vectors
                )?;
            }
            Ok(())
        }
        HccCommand::Export { output, store } => {
            let store = store.open(config)?;
            let count = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    let n = store.export_wisdom(&mut writer)?;
                    writer.flush()?;
                    n
                }
                None => store.export_wisdom(&mut out)?,
            };
            eprintln!("exported {count} wisdom entries");
            Ok(())
        }
        HccCommand::Import { file, store } => {
            let store = store.open(config)?;
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let report = store
                .import_wisdom(&mut BufReader::new(reader))
                .with_context(|| format!("importing {}", file.display()))?;
            writeln!(
                out,
                "imported {} wisdom entries ({} already present) into {}",
                report.added,
                report.already_present,
                store.path().display()
            )?;
            Ok(())
        }
        HccCommand::Simulate {
            steps,
            budget_tokens,
            phase_every,
            seed,
            model,
            json,
            store,
        } => {
            if steps == 0 || budget_tokens == 0 {
                bail!("--steps and --budget-tokens must be positive");
            }
            let temp;
            let path = match store {
                Some(path) => path,
                None => {
                    temp = tempfile::tempdir().context("creating a temporary store")?;
                    temp.path().join("hcc.sqlite")
                }
            };
            let store = Arc::new(HccStore::open(&path)?);
            let run_id = format!("sim-{}-{}", seed, crate::hcc::store::now_ms());
            let config = SimulationConfig {
                steps,
                budget_tokens,
                phase_every,
                seed,
                model,
                ..SimulationConfig::default()
            };
            let report = simulate(store, &run_id, &config).await?;
            if json {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            } else {
                print_simulation(&report, &path, &mut out)?;
            }
            Ok(())
        }
    }
}

fn print_simulation(
    report: &crate::hcc::simulate::SimulationReport,
    path: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(out, "run {} in {}", report.run_id, path.display())?;
    writeln!(
        out,
        "{} steps, {} phases, {} knowledge units, {} wisdom prefetched, {} stored",
        report.steps.len(),
        report.phases,
        report.knowledge_units,
        report.wisdom_prefetched,
        report.wisdom_stored
    )?;
    writeln!(
        out,
        "{:>6}  {:>14}  {:>14}",
        "step", "hcc tokens", "naive tokens"
    )?;
    let every = (report.steps.len() / 20).max(1);
    for p in report
        .steps
        .iter()
        .filter(|p| (p.step as usize).is_multiple_of(every))
    {
        writeln!(
            out,
            "{:>6}  {:>14}  {:>14}",
            p.step, p.context_tokens, p.naive_tokens
        )?;
    }
    writeln!(
        out,
        "peak: hcc {} tokens (budget {}), naive {} tokens",
        report.max_context_tokens, report.budget_tokens, report.max_naive_tokens
    )?;
    Ok(())
}

fn show(
    store: &HccStore,
    run: Option<&str>,
    layer: Layer,
    competition: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match (layer, run) {
        (Layer::Wisdom, _) => {
            let records = store.wisdom(competition)?;
            for r in &records {
                if json {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                } else {
                    let mean = r
                        .provenance
                        .mean_score_of_users
                        .map_or("-".into(), |m| format!("{m:.3}"));
                    writeln!(
                        out,
                        "{}  [{}] {}\n    applies when: {}\n    from {} (run {}), hits {}, mean score of users {}",
                        r.id,
                        r.entry.category,
                        r.entry.content,
                        r.entry.applies_when,
                        r.provenance.competition_id,
                        r.provenance.run_id,
                        r.provenance.hits,
                        mean
                    )?;
                }
            }
            if records.is_empty() && !json {
                writeln!(out, "no wisdom in {}", store.path().display())?;
            }
        }
        (Layer::Knowledge, _) => {
            let units = match (run, competition) {
                (Some(run), _) => store.knowledge(KnowledgeScope::Run(run))?,
                (None, Some(c)) => store.knowledge(KnowledgeScope::Competition(c))?,
                (None, None) => bail!("--layer knowledge needs --run ID or --competition ID"),
            };
            for (run, unit) in &units {
                if json {
                    writeln!(out, "{}", serde_json::json!({"run_id": run, "unit": unit}))?;
                } else {
                    writeln!(out, "== run {run}, phase {}", unit.phase)?;
                    write!(out, "{}", render_knowledge(unit))?;
                }
            }
        }
        (Layer::Experience, Some(run)) => {
            let record = store.run(run)?;
            let events = store.events(run, None, 0, None, u32::MAX)?;
            if json {
                for e in &events {
                    writeln!(out, "{}", serde_json::to_string(e)?)?;
                }
                return Ok(());
            }
            writeln!(
                out,
                "run {} on {}: phase {}, {} events",
                record.run_id, record.competition_id, record.current_phase, record.events
            )?;
            for e in &events {
                let first = e.event.content.lines().next().unwrap_or_default();
                let first: String = first.chars().take(80).collect();
                writeln!(
                    out,
                    "{:>6}  p{:<3} {:>9.1}s  {:<12} {:<8} {:>10}  {:>7}B  {}",
                    e.id,
                    e.phase,
                    e.time_ms as f64 / 1000.0,
                    kind_to_text(&e.event.kind),
                    e.event.node.as_deref().unwrap_or("-"),
                    e.event.metric.map_or("-".into(), |m| format!("{m:.4}")),
                    e.event.content.len(),
                    first
                )?;
            }
        }
        (Layer::Experience, None) => {
            let runs = store.runs()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&runs)?)?;
                return Ok(());
            }
            if runs.is_empty() {
                writeln!(out, "no runs in {}", store.path().display())?;
            }
            for r in runs {
                writeln!(
                    out,
                    "{}  {}  phase {}  {} events  best {}  score {}{}",
                    r.run_id,
                    r.competition_id,
                    r.current_phase,
                    r.events,
                    r.best_metric.map_or("-".into(), |m| format!("{m:.4}")),
                    r.score.map_or("-".into(), |m| format!("{m:.3}")),
                    if r.ended_ms.is_some() { "" } else { "  (open)" }
                )?;
            }
        }
    }
    Ok(())
}
