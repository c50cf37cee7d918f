//! The capability services one plugin gets in a run, built from the configuration and the
//! plugin's grants: only what it was granted is built (an ungranted capability has no service
//! at all), and the LLM hub starts nothing until the first call.

use crate::artifacts::ArtifactStore;
use crate::builtin;
use crate::capability::CapabilityError;
use crate::config::SophonConfig;
use crate::hcc::{
    CognitiveCache, EmbedderChoice, HccConfigError, Promoter, RunHcc, RunHccError, RunSpec,
    TaskDescriptor,
};
use crate::jobs::JobService;
use crate::jobs::backends::Backends;
use crate::jobs::local::JobContext;
use crate::jobs::service::{JobQuota, PluginJobs, RunEnd};
use crate::journal::Journal;
use crate::llm::LanguageModel;
use crate::llm::budget::Limits;
use crate::llm::hub::{LlmHub, LlmSetupError};
use crate::run::RunContext;
use crate::run::journaled::{
    JournaledHcc, JournaledJobs, JournaledLlm, JournaledRun, JournaledTask,
};
use crate::runtime::manifest::JobLimits;
use crate::runtime::{HostServices, LoadedPlugin, PluginError, Runtime, World};
use crate::task::TaskService;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a plugin's services could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    /// `[hcc] embedder` is not known (it decides whether a hub is needed).
    #[error(transparent)]
    Embedder(#[from] HccConfigError),
    /// The LLM hub could not be built from `[llm]`.
    #[error(transparent)]
    Hub(#[from] LlmSetupError),
    /// The run's HCC could not be opened.
    #[error(transparent)]
    Hcc(#[from] RunHccError),
    /// The run's strategy and policy could not be recorded in the HCC store.
    #[error(transparent)]
    Provenance(CapabilityError),
    /// The plugin is granted jobs, but no backends were given.
    #[error("plugin `{0}` is granted jobs but this session has no job backends")]
    NoBackends(String),
}

/// Why a plugin named in the configuration could not be loaded as the plugin it must be;
/// `role` and `flag` name it ("strategy", "--strategy").
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Neither `[plugins]` nor the embedded plugins know the name.
    #[error("{role} `{name}`: {source}; name a {role} under [plugins.{name}] in sophon.toml")]
    Unresolved {
        role: &'static str,
        name: String,
        source: Box<PluginError>,
    },
    /// The plugin's component could not be loaded under its grants.
    #[error("{role} `{name}`: {source}")]
    Load {
        role: &'static str,
        name: String,
        source: Box<PluginError>,
    },
    /// The plugin targets another world.
    #[error("`{name}` is a {world} plugin, not a {role}: pass a {role} with {flag}")]
    WrongWorld {
        name: String,
        world: World,
        role: &'static str,
        flag: &'static str,
    },
}

/// What the services are for.
pub struct ServiceRequest<'a> {
    pub config: &'a SophonConfig,
    /// The process's job backends (shared by its runs); needed when the plugin is granted
    /// jobs.
    pub backends: Option<Arc<Backends>>,
    /// Where the plugin's jobs go unless a job names another backend (checked by the caller).
    pub jobs_backend: String,
    pub run_id: String,
    pub competition_id: String,
    pub descriptor: TaskDescriptor,
    pub artifacts: Arc<ArtifactStore>,
    /// The task's public data, for jobs that mount it.
    pub task_public: Option<PathBuf>,
    pub run: Arc<dyn RunContext>,
    pub task: Option<Arc<dyn TaskService>>,
    /// Journal every answer (and replay those it holds).
    pub journal: Option<Arc<Journal>>,
    /// The hub to account LLM calls in, shared with the run's policy (else one is made here
    /// when the plugin needs it).
    pub hub: Option<Arc<LlmHub>>,
    /// The promotion policy of the run's HCC.
    pub promoter: Option<Arc<dyn Promoter>>,
    /// When the run's jobs must end (its deadline, its stop flag).
    pub run_end: RunEnd,
}

/// The services, and the hub whose ledger accounts for every LLM call.
pub struct BuiltServices {
    pub services: HostServices,
    pub hub: Option<Arc<LlmHub>>,
    /// The run's HCC, to record the run's end ([`RunHcc::finish`]).
    pub hcc: Option<Arc<RunHcc>>,
    /// The plugin's jobs, to cancel those still running when the run ends.
    pub jobs: Option<Arc<PluginJobs>>,
}

/// Build `plugin`'s services for `request`.
pub fn build(
    plugin: &LoadedPlugin,
    request: ServiceRequest<'_>,
) -> Result<BuiltServices, ServicesError> {
    let config = request.config;
    let grants = plugin.grants();
    let hub = match request.hub {
        Some(hub) => Some(hub),
        None => hub_for(config, &[plugin])?,
    };
    let run_hcc: Option<Arc<RunHcc>> = match &grants.hcc {
        Some(_) => {
            let spec = RunSpec {
                run_id: request.run_id.clone(),
                competition_id: request.competition_id.clone(),
                descriptor: request.descriptor,
            };
            Some(open_hcc(
                plugin,
                config,
                spec,
                hub.clone(),
                request.promoter,
            )?)
        }
        None => None,
    };
    let hcc = run_hcc.clone().map(|h| h as Arc<dyn CognitiveCache>);
    let llm = scoped_llm(hub.as_ref(), plugin);
    let plugin_jobs: Option<Arc<PluginJobs>> = match (&grants.jobs, request.backends) {
        (Some(_), None) => {
            return Err(ServicesError::NoBackends(plugin.name().to_string()));
        }
        (Some(limits), Some(backends)) => {
            let context = JobContext {
                owner: request.run_id.clone(),
                artifacts: request.artifacts.clone(),
                task_public: request.task_public.clone(),
            };
            let jobs = PluginJobs::new(plugin.name(), backends, context, quota(limits));
            Some(Arc::new(
                jobs.with_default_backend(&request.jobs_backend)
                    .with_run_end(request.run_end.clone()),
            ))
        }
        (None, _) => None,
    };
    let jobs = plugin_jobs.clone().map(|j| j as Arc<dyn JobService>);
    let mut services = HostServices {
        run: Some(request.run),
        artifacts: Some(request.artifacts),
        task: request.task,
        llm,
        jobs,
        hcc,
        journal: None,
    };
    if let Some(journal) = request.journal {
        services = journaled(services, journal);
    }
    Ok(BuiltServices {
        services,
        hub,
        hcc: run_hcc,
        jobs: plugin_jobs,
    })
}

/// The job quota of a `jobs` grant.
fn quota(limits: &JobLimits) -> JobQuota {
    JobQuota {
        max_concurrent: limits.max_concurrent,
        max_gpus: limits.max_gpus,
        gpu_hours: limits.gpu_hours,
    }
}

/// The run's HCC for `plugin` (granted `hcc`), with the run's strategy and policy recorded as
/// the provenance of its knowledge and wisdom, and `promoter` promoting its phases.
fn open_hcc(
    plugin: &LoadedPlugin,
    config: &SophonConfig,
    spec: RunSpec,
    hub: Option<Arc<LlmHub>>,
    promoter: Option<Arc<dyn Promoter>>,
) -> Result<Arc<RunHcc>, ServicesError> {
    let run_hcc = RunHcc::from_config(&config.hcc, spec, hub)?;
    let strategy = (plugin.identity().world == World::Strategy).then(|| plugin.name());
    let policy = promoter.as_ref().and_then(|p| p.name());
    run_hcc
        .record_plugins(strategy, policy.as_deref())
        .map_err(ServicesError::Provenance)?;
    Ok(Arc::new(match promoter {
        Some(promoter) => run_hcc.with_promoter(promoter),
        None => run_hcc,
    }))
}

/// `plugin`'s view of `hub` under its `llm` grant's limits (`None` without either).
pub fn scoped_llm(
    hub: Option<&Arc<LlmHub>>,
    plugin: &LoadedPlugin,
) -> Option<Arc<dyn LanguageModel>> {
    match (hub, &plugin.grants().llm) {
        (Some(hub), Some(limits)) => Some(hub.scoped(
            plugin.name(),
            Limits {
                tokens: limits.max_tokens,
                requests: limits.max_requests,
                cost_usd: limits.max_cost_usd,
            },
        )),
        _ => None,
    }
}

/// Load the plugin `name` (its `[plugins]` source, else `builtin:<name>`) under its grants and
/// check it is a `world` plugin; `role` and `flag` name it in errors ("strategy",
/// "--strategy").
pub fn load_named(
    runtime: &Runtime,
    config: &SophonConfig,
    name: &str,
    world: World,
    (role, flag): (&'static str, &'static str),
) -> Result<LoadedPlugin, LoadError> {
    let reference = config
        .plugins
        .get(name)
        .and_then(|p| p.source.clone())
        .unwrap_or_else(|| format!("{}{name}", builtin::PREFIX));
    let source = builtin::resolve(&reference).map_err(|source| LoadError::Unresolved {
        role,
        name: name.to_string(),
        source: Box::new(source),
    })?;
    let plugin = runtime
        .load(&source, &config.grants_for(name))
        .map_err(|source| LoadError::Load {
            role,
            name: name.to_string(),
            source: Box::new(source),
        })?;
    if plugin.identity().world != world {
        return Err(LoadError::WrongWorld {
            name: name.to_string(),
            world: plugin.identity().world,
            role,
            flag,
        });
    }
    Ok(plugin)
}

/// One LLM hub for `plugins`, if any of them needs one (an LLM grant, or an HCC grant with a
/// model embedder); its ledger accounts for all their calls.
pub fn hub_for(
    config: &SophonConfig,
    plugins: &[&LoadedPlugin],
) -> Result<Option<Arc<LlmHub>>, ServicesError> {
    let mut needs = false;
    for plugin in plugins {
        let grants = plugin.grants();
        needs |= grants.llm.is_some()
            || (grants.hcc.is_some() && config.hcc.embedder()? != EmbedderChoice::Hashed);
    }
    if !needs {
        return Ok(None);
    }
    Ok(Some(Arc::new(
        LlmHub::from_config(
            &config.llm,
            crate::llm::budget::Limits::of_run(&config.llm),
            &|k| std::env::var(k).ok(),
        )
        .map_err(ServicesError::Hub)?,
    )))
}

/// `services` with every answer journaled.
pub fn journaled(services: HostServices, journal: Arc<Journal>) -> HostServices {
    let j = || journal.clone();
    HostServices {
        run: services.run.map(|inner| {
            Arc::new(JournaledRun {
                inner,
                journal: j(),
            }) as Arc<dyn RunContext>
        }),
        task: services.task.map(|inner| {
            Arc::new(JournaledTask {
                inner,
                journal: j(),
            }) as Arc<dyn TaskService>
        }),
        llm: services
            .llm
            .map(|inner| Arc::new(JournaledLlm::new(inner, j())) as Arc<dyn LanguageModel>),
        jobs: services.jobs.map(|inner| {
            Arc::new(JournaledJobs {
                inner,
                journal: j(),
            }) as Arc<dyn JobService>
        }),
        hcc: services.hcc.map(|inner| {
            Arc::new(JournaledHcc {
                inner,
                journal: j(),
            }) as Arc<dyn CognitiveCache>
        }),
        artifacts: services.artifacts,
        journal: Some(journal),
    }
}
