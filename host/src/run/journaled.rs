//! The strategy's services, journaled: each wraps a capability's Rust trait and answers from
//! the [`Journal`] when it holds the answer (a resumed run replaying), else asks the real
//! service and records the answer.
//!
//! What is journaled: LLM replies and budgets, job results (a job that finished before the
//! crash is never run again; one in flight is run again, as it died with the host), task
//! descriptions and validations, HCC answers (replayed events are not written twice), the
//! run's budget and stop answers, node and best-submission reports. Artifacts are not: the
//! store is content-addressed, so re-creating one is idempotent. Plugin log lines are dropped
//! while replaying (they were logged the first time). The timing of concurrent operations —
//! which were ready when the plugin polled or asked — is journaled in the runtime
//! (`runtime::host::poll` and the `get` calls of pending LLM calls and jobs).

use super::{Best, LogLevel, NodeReport, RunBudget, RunContext, RunInfo};
use crate::capability::work::Cancel;
use crate::capability::{CapResult, CapabilityError};
use crate::hcc::{
    AssembledContext, CognitiveCache, ContextRequest, Event, HccStats, Hit, KnowledgeUnit, Layer,
    StoredEvent,
};
use crate::jobs::{JobHandle, JobInventory, JobResult, JobService, JobSpec, JobState, LogStream};
use crate::journal::Journal;
use crate::llm::{ChatRequest, Completion, Embeddings, LanguageModel, LlmBudget, ModelInfo};
use crate::task::{TaskInfo, TaskService, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The run context, journaled.
pub struct JournaledRun {
    pub inner: Arc<dyn RunContext>,
    pub journal: Arc<Journal>,
}

#[async_trait::async_trait]
impl RunContext for JournaledRun {
    fn info(&self) -> RunInfo {
        self.inner.info()
    }

    fn budget(&self) -> RunBudget {
        self.journal
            .answer("run-budget", &(), || self.inner.budget())
    }

    fn should_stop(&self) -> bool {
        self.journal
            .answer("run-should-stop", &(), || self.inner.should_stop())
    }

    async fn report_node(&self, node: NodeReport) -> CapResult<()> {
        let inner = self.inner.clone();
        let request = node.clone();
        self.journal
            .answer_async("run-report-node", &request, async move {
                inner.report_node(node).await
            })
            .await
    }

    async fn report_best(&self, node: String, submission: String, metric: f64) -> CapResult<bool> {
        let request = (node.clone(), submission.clone(), metric);
        self.journal
            .answer_async(
                "run-report-best",
                &request,
                self.inner.report_best(node, submission, metric),
            )
            .await
    }

    fn best(&self) -> Option<Best> {
        self.journal.answer("run-best", &(), || self.inner.best())
    }

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        if !self.journal.replaying() {
            self.inner.log(plugin, level, message);
        }
    }

    fn time_left(&self) -> Option<std::time::Duration> {
        self.inner.time_left()
    }
}

/// The task service, journaled.
pub struct JournaledTask {
    pub inner: Arc<dyn TaskService>,
    pub journal: Arc<Journal>,
}

#[async_trait::async_trait]
impl TaskService for JournaledTask {
    async fn describe(&self) -> CapResult<TaskInfo> {
        self.journal
            .answer_async("task-describe", &(), self.inner.describe())
            .await
    }

    async fn validate(&self, submission: &str) -> CapResult<Validation> {
        self.journal
            .answer_async(
                "task-validate",
                &submission,
                self.inner.validate(submission),
            )
            .await
    }
}

/// The LLM, journaled: a replayed reply costs no call, but its usage counts against the
/// budgets ([`JournaledLlm::new`]).
pub struct JournaledLlm {
    pub inner: Arc<dyn LanguageModel>,
    pub journal: Arc<Journal>,
}

impl JournaledLlm {
    /// Wrap `inner`, first charging it with every LLM call the journal answered (a resumed
    /// run): the replayed usage counts against the plugin's and the run's budgets before the
    /// run goes live, so a resume never starts its budgets from zero.
    pub fn new(inner: Arc<dyn LanguageModel>, journal: Arc<Journal>) -> JournaledLlm {
        let chats = journal.peek::<Result<Completion, CapabilityError>>("llm-chat");
        for completion in chats.into_iter().flatten() {
            inner.replayed("llm-chat", &completion.usage);
        }
        let embeds = journal.peek::<Result<Embeddings, CapabilityError>>("llm-embed");
        for embeddings in embeds.into_iter().flatten() {
            inner.replayed("llm-embed", &embeddings.usage);
        }
        JournaledLlm { inner, journal }
    }
}

#[async_trait::async_trait]
impl LanguageModel for JournaledLlm {
    async fn chat(&self, request: ChatRequest) -> CapResult<Completion> {
        let key = request.clone();
        self.journal
            .answer_async("llm-chat", &key, self.inner.chat(request))
            .await
    }

    fn admit(&self, request: &ChatRequest) -> CapResult<()> {
        self.inner.admit(request)
    }

    async fn embed(&self, inputs: Vec<String>, model: Option<String>) -> CapResult<Embeddings> {
        let key = (inputs.clone(), model.clone());
        self.journal
            .answer_async("llm-embed", &key, self.inner.embed(inputs, model))
            .await
    }

    fn count_tokens(&self, text: &str, model: Option<&str>, cancel: &Cancel) -> CapResult<u32> {
        self.inner.count_tokens(text, model, cancel)
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.inner.models()
    }

    fn budget(&self) -> LlmBudget {
        self.journal
            .answer("llm-budget", &(), || self.inner.budget())
    }
}

/// A finished job as the journal keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct JobRecord {
    id: String,
    result: JobResult,
}

/// Jobs, journaled: a job whose result was recorded is not run again.
pub struct JournaledJobs {
    pub inner: Arc<dyn JobService>,
    pub journal: Arc<Journal>,
}

#[async_trait::async_trait]
impl JobService for JournaledJobs {
    async fn submit(&self, spec: JobSpec) -> CapResult<Arc<dyn JobHandle>> {
        let key = self.journal.key("job", &spec);
        if let Some(recorded) = self
            .journal
            .recorded::<Result<JobRecord, CapabilityError>>("job", &key)
        {
            return recorded.map(|r| Arc::new(ReplayedJob(r)) as Arc<dyn JobHandle>);
        }
        match self.inner.submit(spec).await {
            Err(e) => {
                self.journal
                    .record("job", &key, &Err::<JobRecord, _>(e.clone()));
                Err(e)
            }
            Ok(job) => {
                let (journal, watched) = (self.journal.clone(), job.clone());
                // Recorded when it ends, whoever is waiting for it.
                tokio::spawn(async move {
                    let result = watched.wait().await;
                    let record = JobRecord {
                        id: watched.id(),
                        result,
                    };
                    journal.record("job", &key, &Ok::<_, CapabilityError>(record));
                });
                Ok(job)
            }
        }
    }

    fn inventory(&self) -> JobInventory {
        self.journal
            .answer("job-inventory", &(), || self.inner.inventory())
    }
}

/// A job that finished before the run was resumed.
struct ReplayedJob(JobRecord);

#[async_trait::async_trait]
impl JobHandle for ReplayedJob {
    fn id(&self) -> String {
        self.0.id.clone()
    }

    fn state(&self) -> JobState {
        self.0.result.state
    }

    async fn wait(&self) -> JobResult {
        self.0.result.clone()
    }

    fn result(&self) -> Option<JobResult> {
        Some(self.0.result.clone())
    }

    async fn cancel(&self) {}

    async fn logs(&self, _stream: LogStream, _offset: u64, _max_bytes: u32) -> CapResult<String> {
        Err(CapabilityError::NotFound(format!(
            "job {} ran before this run was resumed: its output is in its result's excerpts",
            self.0.id
        )))
    }
}

/// The HCC, journaled: replayed events are not recorded a second time.
pub struct JournaledHcc {
    pub inner: Arc<dyn CognitiveCache>,
    pub journal: Arc<Journal>,
}

#[async_trait::async_trait]
impl CognitiveCache for JournaledHcc {
    async fn record_event(&self, event: Event) -> CapResult<u64> {
        let key = event.clone();
        self.journal
            .answer_async("hcc-record", &key, self.inner.record_event(event))
            .await
    }

    async fn begin_phase(&self, plan: String) -> CapResult<u32> {
        let key = plan.clone();
        self.journal
            .answer_async("hcc-begin-phase", &key, self.inner.begin_phase(plan))
            .await
    }

    async fn end_phase(&self) -> CapResult<Option<KnowledgeUnit>> {
        self.journal
            .answer_async("hcc-end-phase", &(), self.inner.end_phase())
            .await
    }

    async fn context(&self, request: ContextRequest) -> CapResult<AssembledContext> {
        let key = request.clone();
        self.journal
            .answer_async("hcc-context", &key, self.inner.context(request))
            .await
    }

    async fn events(
        &self,
        phase: Option<u32>,
        after: u64,
        limit: u32,
    ) -> CapResult<Vec<StoredEvent>> {
        self.journal
            .answer_async(
                "hcc-events",
                &(phase, after, limit),
                self.inner.events(phase, after, limit),
            )
            .await
    }

    async fn knowledge(&self) -> CapResult<Vec<KnowledgeUnit>> {
        self.journal
            .answer_async("hcc-knowledge", &(), self.inner.knowledge())
            .await
    }

    async fn search(&self, layer: Layer, query: String, k: u32) -> CapResult<Vec<Hit>> {
        let key = (layer, query.clone(), k);
        self.journal
            .answer_async("hcc-search", &key, self.inner.search(layer, query, k))
            .await
    }

    async fn stats(&self) -> CapResult<HccStats> {
        self.journal
            .answer_async("hcc-stats", &(), self.inner.stats())
            .await
    }
}
