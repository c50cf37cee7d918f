//! A run's promotion policy (`[run] policy`, default `hcc`; `none` turns it off): loaded by
//! name like a strategy, asked for the task's descriptor, then wrapped as the [`Promoter`] of
//! the run's HCC, so phase ends become knowledge and the run's end becomes wisdom.
//!
//! The policy gets the run's LLM hub (its calls count against the run's budgets) and a
//! read-only view of the run's memory. A policy that cannot be loaded is a setup error naming
//! the fix; one that fails later only costs the run its promotion (the HCC notes why).

use super::events::WisdomSeen;
use super::services::{self, LoadError};
use crate::config::SophonConfig;
use crate::hcc::{
    CognitiveCache, KnowledgeUnit, PhaseTrace, Promoter, RunHcc, RunHccError, RunSpec, RunTrace,
    TaskDescriptor, WisdomEntry, WisdomHit, WisdomRecord,
};
use crate::llm::hub::LlmHub;
use crate::run::RunContext;
use crate::runtime::{
    HostServices, LoadedPlugin, PluginError, PromotionPolicyInstance, Runtime, World,
};
use crate::task::TaskInfo;
use std::sync::Arc;
use std::time::Duration;

/// How long one policy call may take (it may ask a slow local model).
pub const POLICY_CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The policy of a run, ready to promote.
pub struct RunPolicy {
    pub name: String,
    /// The task's descriptor as the policy states it (wisdom is stored under it).
    pub descriptor: TaskDescriptor,
    pub promoter: Arc<dyn Promoter>,
}

/// Why a loaded policy could not start; the run then goes on without promotion.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy could not be instantiated.
    #[error("promotion policy `{name}`: {source}")]
    Instantiate {
        name: String,
        source: Box<PluginError>,
    },
    /// The policy failed to describe the task.
    #[error("promotion policy `{name}` could not describe the task: {source}")]
    Describe {
        name: String,
        source: Box<PluginError>,
    },
    /// The run's memory, which the policy reads, could not be opened.
    #[error(transparent)]
    Memory(#[from] RunHccError),
}

/// Load the policy `name` (its `[plugins]` source, else `builtin:<name>`) under its grants.
pub fn load(
    runtime: &Runtime,
    config: &SophonConfig,
    name: &str,
) -> Result<LoadedPlugin, LoadError> {
    services::load_named(
        runtime,
        config,
        name,
        World::PromotionPolicy,
        ("promotion policy", "--policy (or \"none\")"),
    )
}

/// What [`start`] needs of the run.
pub struct PolicyRequest<'a> {
    pub config: &'a SophonConfig,
    pub hub: Option<Arc<LlmHub>>,
    pub run: Arc<dyn RunContext>,
    pub run_id: String,
    pub competition_id: String,
    pub task: &'a TaskInfo,
}

/// Ask `plugin` for the task's descriptor (on an instance without memory access), then
/// instantiate it with read access to the run's memory as the run's promoter.
pub async fn start(
    plugin: &LoadedPlugin,
    name: &str,
    request: PolicyRequest<'_>,
) -> Result<RunPolicy, PolicyError> {
    let grants = plugin.grants();
    let llm = services::scoped_llm(request.hub.as_ref(), plugin);
    let services = |hcc: Option<Arc<dyn CognitiveCache>>| HostServices {
        run: Some(request.run.clone()),
        llm: llm.clone(),
        hcc,
        ..HostServices::default()
    };
    let instantiate = |source| PolicyError::Instantiate {
        name: name.to_string(),
        source: Box::new(source),
    };
    let mut describer = plugin
        .promotion_policy(services(None))
        .await
        .map_err(instantiate)?;
    let descriptor = describer
        .describe_task(request.task, POLICY_CALL_TIMEOUT)
        .await
        .map_err(|source| PolicyError::Describe {
            name: name.to_string(),
            source: Box::new(source),
        })?;
    let memory = match &grants.hcc {
        Some(_) => Some(Arc::new(RunHcc::from_config(
            &request.config.hcc,
            RunSpec {
                run_id: request.run_id.clone(),
                competition_id: request.competition_id.clone(),
                descriptor: descriptor.clone(),
            },
            request.hub.clone(),
        )?) as Arc<dyn CognitiveCache>),
        None => None,
    };
    let instance = plugin
        .promotion_policy(services(memory))
        .await
        .map_err(instantiate)?;
    Ok(RunPolicy {
        name: name.to_string(),
        descriptor,
        promoter: Arc::new(PluginPromoter::new(instance, POLICY_CALL_TIMEOUT).named(name)),
    })
}

/// A wisdom record as run events and reports show it.
pub fn seen(record: &WisdomRecord, similarity: Option<f32>) -> WisdomSeen {
    WisdomSeen {
        id: record.id.clone(),
        category: record.entry.category.clone(),
        content: record.entry.content.clone(),
        applies_when: record.entry.applies_when.clone(),
        from_competition: record.provenance.competition_id.clone(),
        from_run: record.provenance.run_id.clone(),
        similarity,
    }
}

/// Prefetched hits as run events show them.
pub fn seen_hits(hits: &[WisdomHit]) -> Vec<WisdomSeen> {
    hits.iter()
        .map(|h| seen(&h.record, Some(h.score)))
        .collect()
}

/// A `promotion-policy` plugin instance as a [`Promoter`]; calls are serialised.
pub struct PluginPromoter {
    instance: tokio::sync::Mutex<PromotionPolicyInstance>,
    timeout: Duration,
    name: Option<String>,
}

impl PluginPromoter {
    /// Each call may take up to `timeout` (the policy may ask an LLM).
    pub fn new(instance: PromotionPolicyInstance, timeout: Duration) -> PluginPromoter {
        PluginPromoter {
            instance: tokio::sync::Mutex::new(instance),
            timeout,
            name: None,
        }
    }

    /// The policy's name (its `[plugins]` name), for provenance.
    pub fn named(mut self, name: &str) -> PluginPromoter {
        self.name = Some(name.to_string());
        self
    }
}

/// The policy's errors reach the HCC as text: the WIT `promotion-policy` world returns
/// `result<_, string>`, which is what [`Promoter`] carries.
#[async_trait::async_trait]
impl Promoter for PluginPromoter {
    async fn describe_task(&self, task: &TaskInfo) -> Result<TaskDescriptor, String> {
        let mut instance = self.instance.lock().await;
        instance
            .describe_task(task, self.timeout)
            .await
            .map_err(|e| e.to_string())
    }

    async fn on_phase_end(&self, trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String> {
        let mut instance = self.instance.lock().await;
        instance
            .on_phase_end(&trace, self.timeout)
            .await
            .map_err(|e| e.to_string())
    }

    async fn on_task_end(&self, trace: RunTrace) -> Result<Vec<WisdomEntry>, String> {
        let mut instance = self.instance.lock().await;
        instance
            .on_task_end(&trace, self.timeout)
            .await
            .map_err(|e| e.to_string())
    }

    fn name(&self) -> Option<String> {
        self.name.clone()
    }
}
