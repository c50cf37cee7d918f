//! `sophon plugin …`: inspect, scaffold, list and run plugins.

use super::out;
use crate::artifacts::ArtifactStore;
use crate::builtin;
use crate::config::SophonConfig;
use crate::hcc::TaskDescriptor;
use crate::llm::budget::UsageTotals;
use crate::run::RunInfo;
use crate::run::services::{self, BuiltServices, ServiceRequest};
use crate::run::session::SessionRun;
use crate::run_context::{Best, NodeReport, Outcome};
use crate::runtime::inspect::{self, ManifestOrigin};
use crate::runtime::{LoadedPlugin, Manifest, PluginGrants, PluginSource, Runtime, World};
use crate::term;
use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Show a plugin's world, imports, exports, manifest, size and SHA-256 (nothing runs).
    Inspect {
        /// A `.wasm` file or `builtin:<name>`.
        plugin: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Create a new plugin crate that builds and loads.
    New {
        /// strategy, task-adapter or promotion-policy.
        world: World,
        /// Plugin name: lower-case letters, digits and `-`.
        name: String,
        /// Parent directory of the new crate (default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Build against this sophon-sdk checkout (default: a copy of the SDK this sophon
        /// carries, written to the crate's vendor/sophon-sdk).
        #[arg(long)]
        sdk: Option<PathBuf>,
        /// The plugin's language: rust (a crate), python (app.py, componentize-py) or js (app.js,
        /// componentize-js).
        #[arg(long, value_enum, default_value = "rust")]
        lang: super::Lang,
    },
    /// Build the plugin in DIR (Rust crate, Python app.py or JavaScript app.js) into a `.wasm`.
    Build {
        /// The plugin's folder (default: the current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Install a plugin (a `.wasm` file or an http(s) URL) into sophon.toml, pinned by SHA-256.
    Install {
        /// A `.wasm` file, or an `https://` URL (then --sha256 is required).
        source: String,
        /// The SHA-256 the plugin must have (its publisher's).
        #[arg(long)]
        sha256: Option<String>,
        /// Also grant exactly what the plugin's manifest asks for (review it first).
        #[arg(long)]
        grant_requested: bool,
        /// Replace an installed file of the same name and version that has other bytes.
        #[arg(long)]
        force: bool,
    },
    /// List the embedded plugins and those configured in sophon.toml.
    List,
    /// Run a strategy plugin in a sandbox with the host capabilities available so far.
    Run {
        /// A `.wasm` file or `builtin:<name>`.
        plugin: String,
        /// The strategy's own settings (JSON).
        #[arg(long, default_value = "{}")]
        plugin_config: String,
        /// Grant exactly what the plugin's manifest asks for (instead of sophon.toml's grants).
        #[arg(long)]
        grant_requested: bool,
        /// Wall-clock limit for the run.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// Where the run's artifacts go (default: a new directory under ./sophon-runs).
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Run it on this prepared competition as `sophon run` would — task, jobs, grading —
        /// with a scratch HCC store in the run directory (the configured store is not touched).
        #[arg(long)]
        competition: Option<String>,
        /// With --competition: the directory holding `<competition>/prepared/`.
        #[arg(long, requires = "competition")]
        data_dir: Option<PathBuf>,
        /// With --competition: a promotion policy (default `none`).
        #[arg(long, requires = "competition")]
        policy: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Run `command`; `config_file` is the configuration in use (`--config`), if any.
pub async fn run(
    command: PluginCommand,
    config: &SophonConfig,
    config_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    match command {
        PluginCommand::Inspect { plugin, json } => inspect(&plugin, json),
        PluginCommand::New {
            world,
            name,
            dir,
            sdk,
            lang,
        } => new_plugin(world, &name, &dir, sdk.as_deref(), lang),
        PluginCommand::Build { dir } => {
            let wasm = super::build_plugin(&dir)?;
            out!("built {}", wasm.display());
            Ok(())
        }
        PluginCommand::Install {
            source,
            sha256,
            grant_requested,
            force,
        } => {
            let request = super::install::InstallRequest {
                source: &source,
                sha256: sha256.as_deref(),
                grant_requested,
                force,
                config: config_file.unwrap_or(std::path::Path::new("sophon.toml")),
            };
            report_install(&request, &super::install::install(&request).await?)
        }
        PluginCommand::List => list(config),
        PluginCommand::Run {
            plugin,
            plugin_config,
            grant_requested,
            timeout_secs,
            run_dir,
            competition,
            data_dir,
            policy,
            json,
        } => {
            let dev = DevRun {
                reference: plugin,
                strategy_config: plugin_config,
                grant_requested,
                timeout: Duration::from_secs(timeout_secs),
                run_dir,
                json,
            };
            match competition {
                Some(id) => {
                    let on = Competition {
                        id,
                        data_dir,
                        policy,
                    };
                    run_on_competition(config, dev, on).await
                }
                None => run_strategy(config, dev).await,
            }
        }
    }
}

/// `sophon plugin new`: scaffold the plugin, then say how to test, build and inspect it.
fn new_plugin(
    world: World,
    name: &str,
    dir: &std::path::Path,
    sdk: Option<&std::path::Path>,
    lang: super::Lang,
) -> anyhow::Result<()> {
    let (path, wasm) = match lang {
        super::Lang::Rust => {
            let path = super::scaffold_plugin(world, name, dir, sdk)?;
            let wasm = path
                .join("target/wasm32-wasip2/release")
                .join(format!("{}.wasm", name.replace('-', "_")));
            (path, wasm)
        }
        lang => {
            let path = super::scaffold_script_plugin(lang, world, name, dir)?;
            let wasm = path.join(format!("{name}.wasm"));
            (path, wasm)
        }
    };
    out!("created {} plugin `{name}` in {}", world, path.display());
    match lang {
        super::Lang::Rust => out!("test it:   cd {} && cargo test", path.display()),
        super::Lang::Js => out!(
            "set up:    cd {} && npm install   (componentize-js)",
            path.display()
        ),
        super::Lang::Python => out!("set up:    pip install componentize-py"),
    }
    out!("build it:  sophon plugin build {}", path.display());
    out!("inspect:   sophon plugin inspect {}", wasm.display());
    Ok(())
}

fn report_install(
    request: &super::install::InstallRequest<'_>,
    installed: &super::install::Installed,
) -> anyhow::Result<()> {
    let meta = &installed.manifest.plugin;
    let name = term::line(&meta.name);
    out!(
        "installed {name} {} ({}) at {}",
        term::line(&meta.version),
        meta.world,
        installed.path.display()
    );
    out!("sha256    {} (pinned)", installed.sha256);
    out!("config    {} [plugins.{name}]", request.config.display());
    let asks = &installed.manifest.capabilities;
    if asks.list().is_empty() {
        out!("asks      no capability");
        return Ok(());
    }
    if installed.granted {
        out!("grants    in [plugins.{name}.grants]; review them");
        return Ok(());
    }
    out!("grants    none yet: it can load only once granted what it asks; review and add");
    let mut table = toml::map::Map::new();
    table.insert("grants".into(), toml::Value::try_from(asks)?);
    let mut root = toml::map::Map::new();
    let mut plugins = toml::map::Map::new();
    plugins.insert(meta.name.clone(), toml::Value::Table(table));
    root.insert("plugins".into(), toml::Value::Table(plugins));
    for line in toml::to_string(&toml::Value::Table(root))?.lines() {
        out!("          | {}", term::line(line));
    }
    Ok(())
}

fn inspect(reference: &str, as_json: bool) -> anyhow::Result<()> {
    let source = builtin::resolve(reference)?;
    let described = inspect::describe(&source)?;
    let world = described.facts.world();
    let (manifest, manifest_error) = match &described.manifest {
        Some(Ok(m)) => (Some(m), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    if as_json {
        let out = json!({
            "plugin": source.origin,
            "world": world.map(|w| w.as_str()),
            "imports": described.facts.imports,
            "exports": described.facts.exports,
            "sha256": described.sha256,
            "size": described.size,
            "manifest": manifest,
            "manifest_origin": described.manifest_origin,
            "manifest_error": manifest_error,
        });
        out!("{}", term::json(serde_json::to_string_pretty(&out)?));
        return Ok(());
    }
    // Everything read from the file (import and export names, the manifest, its errors) is the
    // plugin author's text: escaped, one name per line.
    out!("plugin    {}", term::line(&source.origin));
    out!("size      {} bytes", described.size);
    out!("sha256    {}", described.sha256);
    out!(
        "world     {}",
        world.map_or(
            "none (exports no Sophon plugin interface)".to_string(),
            |w| format!("sophon:plugin/{w}")
        )
    );
    let names = |names: &[String]| {
        names
            .iter()
            .map(|n| term::line(n))
            .collect::<Vec<_>>()
            .join("\n          ")
    };
    out!("exports   {}", names(&described.facts.exports));
    out!("imports   {}", names(&described.facts.imports));
    match (manifest, manifest_error) {
        (Some(m), _) => {
            let origin = match described.manifest_origin {
                ManifestOrigin::Embedded => "embedded",
                _ => "beside the file",
            };
            // Quoted: a multi-line string of the author's could otherwise pose as a line of ours.
            out!("manifest  ({origin})");
            for line in toml::to_string(m)?.lines() {
                out!("          | {}", term::line(line));
            }
        }
        (None, Some(error)) => out!("manifest  INVALID: {}", term::block(&error)),
        (None, None) => out!("manifest  none (sophon will refuse to load it)"),
    }
    Ok(())
}

fn list(config: &SophonConfig) -> anyhow::Result<()> {
    out!(
        "{:<24} {:<18} {:<9} {:<34} source",
        "name",
        "world",
        "version",
        "capabilities asked"
    );
    let mut rows = Vec::new();
    for name in builtin::names() {
        rows.push(format!("{}{name}", builtin::PREFIX));
    }
    for entry in config.plugins.values() {
        if let Some(source) = &entry.source
            && !rows.contains(source)
        {
            rows.push(source.clone());
        }
    }
    for reference in rows {
        let described = builtin::resolve(&reference).and_then(|s| inspect::describe(&s));
        match described.as_ref().ok().and_then(|d| d.manifest.as_ref()) {
            Some(Ok(m)) => {
                let caps: Vec<&str> = m.capabilities.list().iter().map(|c| c.as_str()).collect();
                out!(
                    "{:<24} {:<18} {:<9} {:<34} {}",
                    term::line(&m.plugin.name),
                    m.plugin.world.as_str(),
                    term::line(&m.plugin.version),
                    if caps.is_empty() {
                        "-".to_string()
                    } else {
                        caps.join(",")
                    },
                    term::line(&reference)
                );
            }
            _ => out!(
                "{:<24} {:<18} {:<9} {:<34} {}",
                "?",
                "?",
                "?",
                "unreadable",
                term::line(&reference)
            ),
        }
    }
    Ok(())
}

/// The strategy `reference` names, its manifest, and what it is granted: the operator's
/// grants, or with `grant_requested` exactly what its manifest asks for.
fn strategy_and_grants(
    config: &SophonConfig,
    reference: &str,
    grant_requested: bool,
) -> anyhow::Result<(PluginSource, Manifest, PluginGrants)> {
    let source = builtin::resolve(reference)?;
    let described = inspect::describe(&source)?;
    let manifest = match described.manifest {
        Some(Ok(m)) => m,
        Some(Err(e)) => bail!("{reference} has an invalid manifest: {e}"),
        None => bail!("{reference} has no manifest; see `sophon plugin inspect {reference}`"),
    };
    if manifest.plugin.world != World::Strategy {
        bail!(
            "{reference} is a {} plugin; `plugin run` runs strategies",
            manifest.plugin.world
        );
    }
    let grants = if grant_requested {
        tracing::warn!(
            plugin = %manifest.plugin.name,
            "--grant-requested: granting everything the plugin's manifest asks for: {:?}",
            manifest.capabilities.list()
        );
        PluginGrants {
            grants: manifest.capabilities.clone(),
            memory_mb: manifest.limits.memory_mb,
            sha256: None,
        }
    } else {
        config.grants_for(&manifest.plugin.name)
    };
    Ok((source, manifest, grants))
}

/// `plugin run`'s common settings.
struct DevRun {
    /// A `.wasm` file or `builtin:<name>`.
    reference: String,
    strategy_config: String,
    grant_requested: bool,
    timeout: Duration,
    run_dir: Option<PathBuf>,
    json: bool,
}

/// The competition a `plugin run` without `--competition` is filed under.
const PLUGIN_RUN_COMPETITION: &str = "plugin-run";

/// `plugin run --competition`.
struct Competition {
    id: String,
    data_dir: Option<PathBuf>,
    policy: Option<String>,
}

/// The strategy on a real competition, through `sophon run`'s machinery: the plugin is
/// registered under its manifest's name with its grants, its HCC store is `hcc.sqlite` in the
/// run directory, and no promotion policy runs unless one is named.
async fn run_on_competition(
    config: &SophonConfig,
    dev: DevRun,
    on: Competition,
) -> anyhow::Result<()> {
    let reference = dev.reference.as_str();
    let (_, manifest, grants) = strategy_and_grants(config, reference, dev.grant_requested)?;
    let strategy_config: serde_json::Value =
        serde_json::from_str(&dev.strategy_config).context("--plugin-config is not JSON")?;
    let name = manifest.plugin.name.clone();
    let mut config = config.clone();
    let entry = config.plugins.entry(name.clone()).or_default();
    entry.source = Some(match reference.starts_with(builtin::PREFIX) {
        true => reference.to_string(),
        false => std::path::absolute(reference)
            .with_context(|| format!("the plugin {reference}"))?
            .display()
            .to_string(),
    });
    entry.grants = grants.grants;
    entry.memory_mb = grants.memory_mb;
    entry.sha256 = grants.sha256;
    let run_dir = dev.run_dir.unwrap_or_else(|| {
        PathBuf::from("sophon-runs").join(format!("{name}-{}-{}", on.id, std::process::id()))
    });
    let run_dir = std::path::absolute(&run_dir)
        .with_context(|| format!("the run directory {}", run_dir.display()))?;
    config.hcc.store = Some(run_dir.join("hcc.sqlite"));
    let request = crate::run::execute::RunRequest {
        competition_id: on.id,
        data_dir: on.data_dir,
        strategy: Some(name),
        strategy_config: Some(strategy_config),
        policy: Some(
            on.policy
                .unwrap_or_else(|| crate::config::run::NO_POLICY.into()),
        ),
        time_limit: Some(dev.timeout),
        run_dir: Some(run_dir),
        ..Default::default()
    };
    super::run::run_and_report(&config, request, dev.json).await
}

/// `plugin run` without `--competition`: the strategy alone in a scratch run (its own
/// artifact store and HCC store under the run directory, the local job backend if it is granted
/// jobs), its jobs cancelled when it returns; then what it did, as text or JSON.
async fn run_strategy(config: &SophonConfig, dev: DevRun) -> anyhow::Result<()> {
    let (source, manifest, grants) =
        strategy_and_grants(config, &dev.reference, dev.grant_requested)?;
    let mut config = config.clone();
    let runtime = Runtime::new(config.runtime_config())?;
    let plugin = runtime.load(&source, &grants)?;

    let run_id = format!("{}-{}", manifest.plugin.name, std::process::id());
    let run_dir = dev
        .run_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("sophon-runs").join(&run_id));
    // A scratch HCC store: a plugin under development never writes the operator's memory.
    config.hcc.store = Some(run_dir.join("hcc.sqlite"));
    let store = Arc::new(
        ArtifactStore::open(&run_dir.join("artifacts"), 1 << 30)
            .with_context(|| format!("creating the artifact store in {}", run_dir.display()))?,
    );
    let session = Arc::new(
        SessionRun::new(RunInfo {
            run_id: run_id.clone(),
            competition_id: PLUGIN_RUN_COMPETITION.into(),
            seed: 0,
            arm: None,
        })
        .with_wall_limit(dev.timeout)
        .with_artifacts(store.clone()),
    );
    let built = scratch_services(
        &config,
        &plugin,
        &run_id,
        store,
        session.clone(),
        dev.timeout,
    )?;
    let hub = built.hub.clone();
    let outcome = run_to_end(&plugin, built, &dev.strategy_config, dev.timeout).await?;
    let done = DevResult {
        run_id,
        run_dir,
        outcome,
        llm_usage: hub.as_ref().map(|h| h.ledger().summary().total),
        nodes: session.nodes(),
        best: session.best(),
    };
    if dev.json {
        print_dev_json(&done)
    } else {
        print_dev_result(&plugin, &done)
    }
}

/// The host services of a scratch run: filed under [`PLUGIN_RUN_COMPETITION`], the local job
/// backend when the plugin is granted jobs, no task, journal or promotion policy, and a run
/// deadline `timeout` from now.
fn scratch_services(
    config: &SophonConfig,
    plugin: &LoadedPlugin,
    run_id: &str,
    artifacts: Arc<ArtifactStore>,
    run: Arc<SessionRun>,
    timeout: Duration,
) -> anyhow::Result<BuiltServices> {
    services::build(
        plugin,
        ServiceRequest {
            config,
            backends: match plugin.grants().jobs {
                Some(_) => Some(Arc::new(crate::jobs::backends::Backends::new(
                    &config.jobs,
                )?)),
                None => None,
            },
            jobs_backend: crate::jobs::service::LOCAL.into(),
            run_id: run_id.to_string(),
            // The HCC files a run under a competition: this run's is its own, never a real one.
            competition_id: PLUGIN_RUN_COMPETITION.into(),
            descriptor: TaskDescriptor::default(),
            artifacts,
            task_public: None,
            run,
            task: None,
            journal: None,
            hub: None,
            promoter: None,
            run_end: crate::jobs::service::RunEnd {
                deadline: Some(std::time::Instant::now() + timeout),
                stop: None,
            },
        },
    )
    .map_err(anyhow::Error::msg)
}

/// Instantiate the strategy with `built`'s services and run it with `strategy_config`; the
/// jobs it left running are cancelled before its result (or error) is returned.
async fn run_to_end(
    plugin: &LoadedPlugin,
    built: BuiltServices,
    strategy_config: &str,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let mut instance = plugin.strategy(built.services).await?;
    let outcome = instance.run(strategy_config, timeout).await;
    if let Some(jobs) = &built.jobs {
        jobs.cancel_all().await;
    }
    Ok(outcome?)
}

/// What a scratch run did.
struct DevResult {
    run_id: String,
    run_dir: PathBuf,
    outcome: Outcome,
    llm_usage: Option<UsageTotals>,
    nodes: Vec<NodeReport>,
    best: Option<Best>,
}

/// The scratch run as one pretty-printed JSON object.
fn print_dev_json(done: &DevResult) -> anyhow::Result<()> {
    let out = json!({
        "run_id": done.run_id,
        "run_dir": done.run_dir,
        "outcome": done.outcome,
        "nodes": done.nodes,
        "best": done.best.as_ref().map(|b| json!({"node": b.node, "submission": b.submission, "metric": b.metric})),
        "llm": done.llm_usage,
    });
    out!("{}", term::json(serde_json::to_string_pretty(&out)?));
    Ok(())
}

/// The scratch run as text: the plugin, the run, a line per node, the best, the LLM usage and
/// the outcome. Node ids, operators, summaries and the outcome are the strategy's text.
fn print_dev_result(plugin: &LoadedPlugin, done: &DevResult) -> anyhow::Result<()> {
    out!(
        "plugin   {} {} (sandboxed, memory cap {} MiB)",
        term::line(plugin.name()),
        term::line(&plugin.identity().version),
        plugin.grants().memory_bytes >> 20
    );
    out!(
        "run      {}  ({})",
        term::line(&done.run_id),
        term::line(&done.run_dir.display().to_string())
    );
    for node in &done.nodes {
        out!(
            "node     {:<10} {:<8} metric {:<8} {}",
            term::line(&node.id),
            term::line(&node.operator),
            node.metric.map_or("-".to_string(), |m| format!("{m:.4}")),
            term::line(&node.summary)
        );
    }
    if let Some(best) = &done.best {
        out!(
            "best     {} (metric {:.4}, submission artifact {})",
            term::line(&best.node),
            best.metric,
            term::line(&best.submission)
        );
    }
    if let Some(usage) = &done.llm_usage {
        out!(
            "llm      {} calls ({} cached, {} failed), {} prompt + {} completion tokens, ${:.4}",
            usage.calls,
            usage.cache_hits,
            usage.errors,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cost_usd
        );
    }
    out!("outcome  {}", term::block(&done.outcome.summary));
    Ok(())
}
