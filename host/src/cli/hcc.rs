//! `sophon hcc …`: look into the HCC store, list and delete memory by the run it came from,
//! move wisdom between stores, simulate a run.
//!
//! Everything stored came from plugins (events, plans, knowledge, wisdom): text output escapes
//! it for the terminal ([`term`]), JSON output is JSON-escaped.

use crate::config::SophonConfig;
use crate::hcc::context::render_knowledge;
use crate::hcc::simulate::{SimulationConfig, simulate};
use crate::hcc::store::{KnowledgeScope, kind_to_text};
use crate::hcc::{HccStore, Layer};
use crate::term;
use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum HccCommand {
    /// Runs, or one run's events / knowledge, or the wisdom, or what one run left.
    Show {
        /// The run to show (default: list the runs).
        #[arg(long)]
        run: Option<String>,
        /// experience (default), knowledge or wisdom.
        #[arg(long, value_enum)]
        layer: Option<LayerArg>,
        /// Only this competition's knowledge or wisdom.
        #[arg(long)]
        competition: Option<String>,
        /// What this run left: its knowledge units and wisdom entries (only the one `--layer`
        /// names, if given), with their provenance.
        #[arg(long, conflicts_with_all = ["run", "competition"])]
        source_run: Option<String>,
        /// Print full JSON records instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// The runs that left knowledge or wisdom, with their strategy, policy and counts.
    Sources {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Delete the knowledge units and wisdom entries one run left (its event log stays).
    /// Without --yes, only lists what would go.
    Delete {
        /// The run whose memory goes (see `sophon hcc sources`).
        #[arg(long)]
        source_run: String,
        /// Delete, rather than list what would be deleted.
        #[arg(long)]
        yes: bool,
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
    Simulate(SimulateArgs),
}

/// `sophon hcc simulate`'s arguments.
#[derive(clap::Args)]
pub struct SimulateArgs {
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
            source_run,
            json,
            store,
        } => match source_run {
            Some(source) => show_source(
                &store.open(config)?,
                &source,
                layer.map(Layer::from),
                json,
                &mut out,
            ),
            None => show(
                &store.open(config)?,
                run.as_deref(),
                layer.map_or(Layer::Experience, Layer::from),
                competition.as_deref(),
                json,
                &mut out,
            ),
        },
        HccCommand::Sources { json, store } => sources(&store.open(config)?, json, &mut out),
        HccCommand::Delete {
            source_run,
            yes,
            store,
        } => delete(&store.open(config)?, &source_run, yes, &mut out),
        HccCommand::Stats { json, store } => stats(&store.open(config)?, json, &mut out),
        HccCommand::Export { output, store } => {
            export(&store.open(config)?, output.as_deref(), &mut out)
        }
        HccCommand::Import { file, store } => import(&store.open(config)?, &file, &mut out),
        HccCommand::Simulate(args) => run_simulation(args, &mut out).await,
    }
}

/// `sophon hcc stats`: counts over the whole store, as JSON or aligned lines.
fn stats(store: &HccStore, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let stats = store.stats()?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
        return Ok(());
    }
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
    Ok(())
}

/// `sophon hcc export`: every wisdom entry as JSONL, to `output` or else to `out`; the count
/// goes to stderr.
fn export(store: &HccStore, output: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    let count = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let n = store.export_wisdom(&mut writer)?;
            writer.flush()?;
            n
        }
        None => {
            // To standard output (perhaps a terminal): C1, bidi and format characters
            // JSON-escaped too, the same records.
            let mut buffer = Vec::new();
            let n = store.export_wisdom(&mut buffer)?;
            out.write_all(term::json(String::from_utf8(buffer)?).as_bytes())?;
            n
        }
    };
    eprintln!("exported {count} wisdom entries");
    Ok(())
}

/// `sophon hcc import FILE`: add the file's wisdom entries, skipping present ones.
fn import(store: &HccStore, file: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let reader =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
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

/// `sophon hcc simulate`: a synthetic run in `--store` (else a temporary store, removed when
/// done), printed as per-step JSON or a summary.
async fn run_simulation(args: SimulateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.steps == 0 || args.budget_tokens == 0 {
        bail!("--steps and --budget-tokens must be positive");
    }
    let temp;
    let path = match args.store {
        Some(path) => path,
        None => {
            temp = tempfile::tempdir().context("creating a temporary store")?;
            temp.path().join("hcc.sqlite")
        }
    };
    let store = Arc::new(HccStore::open(&path)?);
    let run_id = format!("sim-{}-{}", args.seed, crate::hcc::store::now_ms());
    let config = SimulationConfig {
        steps: args.steps,
        budget_tokens: args.budget_tokens,
        phase_every: args.phase_every,
        seed: args.seed,
        model: args.model,
        ..SimulationConfig::default()
    };
    let report = simulate(store, &run_id, &config).await?;
    if args.json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        print_simulation(&report, &path, out)?;
    }
    Ok(())
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

/// `sophon hcc show` without `--source-run`: the layer `layer`, of one run or competition.
fn show(
    store: &HccStore,
    run: Option<&str>,
    layer: Layer,
    competition: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match (layer, run) {
        (Layer::Wisdom, _) => show_wisdom(store, competition, json, out),
        (Layer::Knowledge, _) => show_knowledge(store, run, competition, json, out),
        (Layer::Experience, Some(run)) => show_events(store, run, json, out),
        (Layer::Experience, None) => show_runs(store, json, out),
    }
}

/// The wisdom entries (of `competition`, if given).
fn show_wisdom(
    store: &HccStore,
    competition: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let records = store.wisdom(competition)?;
    for r in &records {
        print_wisdom(r, json, out)?;
    }
    if records.is_empty() && !json {
        writeln!(out, "no wisdom in {}", store.path().display())?;
    }
    Ok(())
}

/// The knowledge units of `run`, else of `competition`; an error without either.
fn show_knowledge(
    store: &HccStore,
    run: Option<&str>,
    competition: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let units = match (run, competition) {
        (Some(run), _) => store.knowledge(KnowledgeScope::Run(run))?,
        (None, Some(c)) => store.knowledge(KnowledgeScope::Competition(c))?,
        (None, None) => bail!("--layer knowledge needs --run ID or --competition ID"),
    };
    for (run, unit) in &units {
        if json {
            let line = serde_json::json!({"run_id": run, "unit": unit}).to_string();
            writeln!(out, "{}", term::json(line))?;
        } else {
            writeln!(out, "== run {}, phase {}", term::line(run), unit.phase)?;
            print_knowledge(unit, out)?;
        }
    }
    Ok(())
}

/// One run's events: JSON lines, or a header and one summary line per event.
fn show_events(store: &HccStore, run: &str, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let record = store.run(run)?;
    let events = store.events(run, None, 0, None, u32::MAX)?;
    if json {
        for e in &events {
            writeln!(out, "{}", term::json(serde_json::to_string(e)?))?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "run {} on {}: phase {}, {} events",
        term::line(&record.run_id),
        term::line(&record.competition_id),
        record.current_phase,
        record.events
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
            term::line(&kind_to_text(&e.event.kind)),
            term::line(e.event.node.as_deref().unwrap_or("-")),
            e.event.metric.map_or("-".into(), |m| format!("{m:.4}")),
            e.event.content.len(),
            term::line(&first)
        )?;
    }
    Ok(())
}

/// The runs in the store: pretty JSON, or one line each.
fn show_runs(store: &HccStore, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let runs = store.runs()?;
    if json {
        writeln!(out, "{}", term::json(serde_json::to_string_pretty(&runs)?))?;
        return Ok(());
    }
    if runs.is_empty() {
        writeln!(out, "no runs in {}", store.path().display())?;
    }
    for r in runs {
        writeln!(
            out,
            "{}  {}  phase {}  {} events  best {}  score {}{}",
            term::line(&r.run_id),
            term::line(&r.competition_id),
            r.current_phase,
            r.events,
            r.best_metric.map_or("-".into(), |m| format!("{m:.4}")),
            r.score.map_or("-".into(), |m| format!("{m:.3}")),
            if r.ended_ms.is_some() { "" } else { "  (open)" }
        )?;
    }
    Ok(())
}

/// One wisdom entry: JSON, or its text (escaped) with its provenance.
fn print_wisdom(
    r: &crate::hcc::WisdomRecord,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", term::json(serde_json::to_string(r)?))?;
        return Ok(());
    }
    let p = &r.provenance;
    let mean = p
        .mean_score_of_users
        .map_or("-".into(), |m| format!("{m:.3}"));
    writeln!(
        out,
        "{}  [{}] {}\n    applies when: {}\n    from {} (run {}, strategy {}, policy {}, {}), hits {}, mean score of users {}",
        term::line(&r.id),
        term::line(&r.entry.category),
        term::line(&r.entry.content),
        term::line(&r.entry.applies_when),
        term::line(&p.competition_id),
        term::line(&p.run_id),
        term::line(p.strategy.as_deref().unwrap_or("unknown")),
        term::line(p.policy.as_deref().unwrap_or("unknown")),
        when(r.created_ms),
        p.hits,
        mean
    )?;
    Ok(())
}

/// A knowledge unit's text, each line escaped and marked as a continuation.
fn print_knowledge(unit: &crate::hcc::KnowledgeUnit, out: &mut dyn Write) -> anyhow::Result<()> {
    for line in render_knowledge(unit).lines() {
        writeln!(out, "{}{}", term::CONTINUATION, term::line(line))?;
    }
    Ok(())
}

/// Unix milliseconds as UTC time, or `unknown time`.
fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .filter(|_| ms > 0)
        .map_or("unknown time".into(), |t| {
            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        })
}

/// `sophon hcc sources`: the runs that left memory.
fn sources(store: &HccStore, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let sources = store.memory_sources()?;
    if json {
        writeln!(
            out,
            "{}",
            term::json(serde_json::to_string_pretty(&sources)?)
        )?;
        return Ok(());
    }
    if sources.is_empty() {
        writeln!(out, "no knowledge or wisdom in {}", store.path().display())?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32} {:<28} {:<16} {:<10} {:>9} {:>6}  last stored",
        "source run", "competition", "strategy", "policy", "knowledge", "wisdom"
    )?;
    for s in &sources {
        writeln!(
            out,
            "{:<32} {:<28} {:<16} {:<10} {:>9} {:>6}  {}{}",
            term::line(&s.run_id),
            term::line(&s.competition_id),
            term::line(s.strategy.as_deref().unwrap_or("?")),
            term::line(s.policy.as_deref().unwrap_or("?")),
            s.knowledge_units,
            s.wisdom_entries,
            when(s.last_ms),
            if s.run_in_store { "" } else { " (imported)" }
        )?;
    }
    Ok(())
}

/// `sophon hcc show --source-run ID`: the knowledge and wisdom run ID left.
fn show_source(
    store: &HccStore,
    run: &str,
    layer: Option<Layer>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let knowledge = match layer {
        None | Some(Layer::Knowledge) => store.knowledge_records(KnowledgeScope::Run(run))?,
        _ => Vec::new(),
    };
    let wisdom: Vec<_> = match layer {
        None | Some(Layer::Wisdom) => store
            .wisdom(None)?
            .into_iter()
            .filter(|w| w.provenance.run_id == run)
            .collect(),
        _ => Vec::new(),
    };
    if json {
        for k in &knowledge {
            let line = serde_json::json!({"layer": "knowledge", "record": k}).to_string();
            writeln!(out, "{}", term::json(line))?;
        }
        for w in &wisdom {
            let line = serde_json::json!({"layer": "wisdom", "record": w}).to_string();
            writeln!(out, "{}", term::json(line))?;
        }
        return Ok(());
    }
    if knowledge.is_empty() && wisdom.is_empty() {
        writeln!(
            out,
            "run {} left no {} in {} (see `sophon hcc sources`)",
            term::line(run),
            match layer {
                Some(Layer::Knowledge) => "knowledge",
                Some(Layer::Wisdom) => "wisdom",
                _ => "knowledge or wisdom",
            },
            store.path().display()
        )?;
        return Ok(());
    }
    for k in &knowledge {
        writeln!(
            out,
            "== knowledge of run {} on {}, phase {} (strategy {}, policy {}, {})",
            term::line(&k.run_id),
            term::line(&k.competition_id),
            k.unit.phase,
            term::line(k.strategy.as_deref().unwrap_or("unknown")),
            term::line(k.policy.as_deref().unwrap_or("unknown")),
            when(k.created_ms)
        )?;
        print_knowledge(&k.unit, out)?;
    }
    if !wisdom.is_empty() {
        writeln!(out, "== wisdom left by run {}", term::line(run))?;
    }
    for w in &wisdom {
        print_wisdom(w, false, out)?;
    }
    Ok(())
}

/// `sophon hcc delete --source-run ID [--yes]`.
fn delete(store: &HccStore, run: &str, yes: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let source = store
        .memory_sources()?
        .into_iter()
        .find(|s| s.run_id == run);
    let Some(source) = source else {
        bail!(
            "run `{}` left no knowledge or wisdom in {} (see `sophon hcc sources`)",
            term::line(run),
            store.path().display()
        );
    };
    if !yes {
        show_source(store, run, None, false, out)?;
        bail!(
            "nothing deleted: add --yes to delete the {} knowledge units and {} wisdom entries \
             run `{}` left",
            source.knowledge_units,
            source.wisdom_entries,
            term::line(run)
        );
    }
    let deleted = store.delete_source_run(run)?;
    writeln!(
        out,
        "deleted {} knowledge units and {} wisdom entries left by run {} from {} \
         (its event log stays: sophon hcc show --run {})",
        deleted.knowledge_units,
        deleted.wisdom_entries,
        term::line(run),
        store.path().display(),
        term::line(run)
    )?;
    Ok(())
}
