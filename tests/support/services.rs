//! In-memory capability services for exercising the runtime's host interfaces.

use sophon::capability::{CapResult, CapabilityError};
use sophon::hcc::*;
use sophon::jobs::*;
use sophon::llm::*;
use sophon::task::{Direction, Metric, TaskInfo, TaskService, Validation};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

/// Answers `echo: <last message>` after `delay`, recording how many calls overlapped.
pub struct SlowEcho {
    pub delay: Duration,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub calls: AtomicUsize,
}

impl SlowEcho {
    pub fn new(delay: Duration) -> Arc<Self> {
        Arc::new(SlowEcho {
            delay,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl LanguageModel for SlowEcho {
    async fn chat(&self, request: ChatRequest) -> CapResult<Completion> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let last = request
            .messages
            .last()
            .map(|m| m.content.clone())
            .unwrap_or_default();
        Ok(Completion {
            text: format!("echo: {last}"),
            reasoning: None,
            tool_calls: Vec::new(),
            finish: FinishReason::Stop,
            usage: Usage {
                model: "slow-echo".into(),
                ..Usage::default()
            },
        })
    }

    async fn embed(&self, inputs: Vec<String>, _model: Option<String>) -> CapResult<Embeddings> {
        Ok(Embeddings {
            vectors: inputs.iter().map(|s| vec![s.len() as f32]).collect(),
            usage: Usage::default(),
        })
    }

    fn count_tokens(
        &self,
        text: &str,
        _model: Option<&str>,
        _cancel: &sophon::capability::work::Cancel,
    ) -> CapResult<u32> {
        Ok(text.split_whitespace().count() as u32)
    }

    fn models(&self) -> Vec<ModelInfo> {
        Vec::new()
    }

    fn budget(&self) -> LlmBudget {
        LlmBudget::default()
    }
}

/// Jobs that "run" for `duration` and print their argv tail.
pub struct FakeJobs {
    pub duration: Duration,
    next: AtomicU32,
}

impl FakeJobs {
    pub fn new(duration: Duration) -> Arc<Self> {
        Arc::new(FakeJobs {
            duration,
            next: AtomicU32::new(0),
        })
    }
}

struct FakeJob {
    id: String,
    done: tokio::sync::watch::Receiver<Option<JobResult>>,
}

#[async_trait::async_trait]
impl JobService for FakeJobs {
    async fn submit(&self, spec: JobSpec) -> CapResult<Arc<dyn JobHandle>> {
        if spec.command.is_empty() {
            return Err(CapabilityError::InvalidArgument("empty command".into()));
        }
        let id = format!("job-{}", self.next.fetch_add(1, Ordering::SeqCst));
        let (tx, rx) = tokio::sync::watch::channel(None);
        let duration = self.duration;
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            let _ = tx.send(Some(JobResult {
                state: JobState::Succeeded,
                exit: Some(ExitStatus::Code(0)),
                stdout: OutputExcerpt {
                    head: spec.command[1..].join(" "),
                    tail: String::new(),
                    total_bytes: 0,
                },
                stderr: OutputExcerpt::default(),
                wall_ms: duration.as_millis() as u64,
                cpu_ms: 0,
                peak_memory_bytes: None,
                artifacts: Vec::new(),
                message: String::new(),
            }));
        });
        Ok(Arc::new(FakeJob { id, done: rx }))
    }

    fn inventory(&self) -> JobInventory {
        JobInventory {
            cpus: 2,
            ..JobInventory::default()
        }
    }
}

#[async_trait::async_trait]
impl JobHandle for FakeJob {
    fn id(&self) -> String {
        self.id.clone()
    }
    fn state(&self) -> JobState {
        self.result().map_or(JobState::Running, |r| r.state)
    }
    async fn wait(&self) -> JobResult {
        let mut rx = self.done.clone();
        loop {
            if let Some(result) = rx.borrow_and_update().clone() {
                return result;
            }
            if rx.changed().await.is_err() {
                return self.result().expect("sender sent before closing");
            }
        }
    }
    fn result(&self) -> Option<JobResult> {
        self.done.borrow().clone()
    }
    async fn cancel(&self) {}
    async fn logs(&self, _stream: LogStream, _offset: u64, _max: u32) -> CapResult<String> {
        Ok(String::new())
    }
}

/// Any job service, counting how many of its jobs' `wait`s are pending at once: the proof
/// that a host waits on jobs concurrently, not one after another.
pub struct WaitCounter {
    inner: Arc<dyn JobService>,
    waits: Arc<Waits>,
}

#[derive(Default)]
struct Waits {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl WaitCounter {
    pub fn new(inner: Arc<dyn JobService>) -> Arc<Self> {
        Arc::new(WaitCounter {
            inner,
            waits: Arc::default(),
        })
    }

    /// The most jobs that were being waited on at one time.
    pub fn most_waited_at_once(&self) -> usize {
        self.waits.most.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl JobService for WaitCounter {
    async fn submit(&self, spec: JobSpec) -> CapResult<Arc<dyn JobHandle>> {
        let inner = self.inner.submit(spec).await?;
        Ok(Arc::new(CountedJob {
            inner,
            waits: self.waits.clone(),
        }))
    }
    fn inventory(&self) -> JobInventory {
        self.inner.inventory()
    }
}

struct CountedJob {
    inner: Arc<dyn JobHandle>,
    waits: Arc<Waits>,
}

#[async_trait::async_trait]
impl JobHandle for CountedJob {
    fn id(&self) -> String {
        self.inner.id()
    }
    fn state(&self) -> JobState {
        self.inner.state()
    }
    async fn wait(&self) -> JobResult {
        /// Counts one pending wait until dropped: a poll that stops waiting (another job was
        /// ready first) drops its wait unfinished.
        struct Pending<'a>(&'a Waits);
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                self.0.now.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let now = self.waits.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.waits.most.fetch_max(now, Ordering::SeqCst);
        let _pending = Pending(&self.waits);
        self.inner.wait().await
    }
    fn result(&self) -> Option<JobResult> {
        self.inner.result()
    }
    async fn cancel(&self) {
        self.inner.cancel().await
    }
    async fn logs(&self, stream: LogStream, offset: u64, max: u32) -> CapResult<String> {
        self.inner.logs(stream, offset, max).await
    }
}

/// A fixed task whose validation accepts submissions that start with `id,`.
pub struct FakeTask {
    pub artifacts: Arc<sophon::artifacts::ArtifactStore>,
}

#[async_trait::async_trait]
impl TaskService for FakeTask {
    async fn describe(&self) -> CapResult<TaskInfo> {
        Ok(TaskInfo {
            competition_id: "toy-competition".into(),
            title: "Toy".into(),
            description: "Predict the target.".into(),
            metric: Metric {
                name: "accuracy".into(),
                direction: Direction::Maximize,
                description: String::new(),
            },
            submission_format: "id,target".into(),
            data_preview: String::new(),
            public_files: vec!["train.csv".into()],
            sample_submission: None,
        })
    }
    async fn validate(&self, submission: &str) -> CapResult<Validation> {
        let bytes = self.artifacts.read(submission, 0, 1 << 20)?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(Validation {
            valid: text.lines().count() > 1,
            message: format!("{} rows", text.lines().count().saturating_sub(1)),
        })
    }
}

/// A real HCC (SQLite store, context assembly) for one run, in a temporary directory that
/// lives as long as this handle.
pub struct ScratchHcc {
    pub run: RunHcc,
    _dir: tempfile::TempDir,
}

impl ScratchHcc {
    /// Run `run_id` on `competition` in a fresh store, with no promotion policy.
    pub fn new(run_id: &str, competition: &str) -> Arc<ScratchHcc> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(HccStore::open(&dir.path().join("hcc.sqlite")).expect("store"));
        let spec = RunSpec {
            run_id: run_id.into(),
            competition_id: competition.into(),
            descriptor: TaskDescriptor::default(),
        };
        let run = RunHcc::open(store, spec, HccSettings::default()).expect("run");
        Arc::new(ScratchHcc { run, _dir: dir })
    }
}

#[async_trait::async_trait]
impl CognitiveCache for ScratchHcc {
    async fn record_event(&self, event: Event) -> CapResult<u64> {
        self.run.record_event(event).await
    }
    async fn begin_phase(&self, plan: String) -> CapResult<u32> {
        self.run.begin_phase(plan).await
    }
    async fn end_phase(&self) -> CapResult<Option<KnowledgeUnit>> {
        self.run.end_phase().await
    }
    async fn context(&self, request: ContextRequest) -> CapResult<AssembledContext> {
        self.run.context(request).await
    }
    async fn events(
        &self,
        phase: Option<u32>,
        after: u64,
        limit: u32,
    ) -> CapResult<Vec<StoredEvent>> {
        self.run.events(phase, after, limit).await
    }
    async fn knowledge(&self) -> CapResult<Vec<KnowledgeUnit>> {
        self.run.knowledge().await
    }
    async fn search(&self, layer: Layer, query: String, k: u32) -> CapResult<Vec<Hit>> {
        self.run.search(layer, query, k).await
    }
    async fn stats(&self) -> CapResult<HccStats> {
        self.run.stats().await
    }
}
