//! In-memory capability services for exercising the runtime's host interfaces.

use sophon::capability::{CapResult, CapabilityError};
use sophon::hcc::*;
use sophon::jobs::*;
use sophon::llm::*;
use sophon::task::{Direction, Metric, TaskInfo, TaskService, Validation};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

    async fn embed(&self, inputs: Vec<String>, _model: Option<String>) -> CapResult<Vec<Vec<f32>>> {
        Ok(inputs.iter().map(|s| vec![s.len() as f32]).collect())
    }

    fn count_tokens(&self, text: &str, _model: Option<&str>) -> CapResult<u32> {
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

/// An HCC that keeps events in a list and returns them joined as the context.
#[derive(Default)]
pub struct ListCache {
    pub events: Mutex<Vec<StoredEvent>>,
    phase: AtomicU32,
}

#[async_trait::async_trait]
impl CognitiveCache for ListCache {
    async fn record_event(&self, event: Event) -> CapResult<u64> {
        let mut events = self.events.lock().unwrap();
        let id = events.len() as u64 + 1;
        events.push(StoredEvent {
            id,
            phase: self.phase.load(Ordering::SeqCst),
            time_ms: 0,
            event,
        });
        Ok(id)
    }
    async fn begin_phase(&self, plan: String) -> CapResult<u32> {
        let phase = self.phase.fetch_add(1, Ordering::SeqCst) + 1;
        self.record_event(Event {
            kind: EventKind::Plan,
            node: None,
            content: plan,
            metric: None,
        })
        .await?;
        Ok(phase)
    }
    async fn end_phase(&self) -> CapResult<Option<KnowledgeUnit>> {
        Ok(None)
    }
    async fn context(&self, request: ContextRequest) -> CapResult<AssembledContext> {
        let text: Vec<String> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event.content.clone())
            .collect();
        let text = text.join("\n");
        Ok(AssembledContext {
            tokens: (text.len() as u32).min(request.budget_tokens),
            text,
            sections: Vec::new(),
            evicted_events: 0,
        })
    }
    async fn events(
        &self,
        _phase: Option<u32>,
        after: u64,
        limit: u32,
    ) -> CapResult<Vec<StoredEvent>> {
        Ok(self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.id > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn knowledge(&self) -> CapResult<Vec<KnowledgeUnit>> {
        Ok(Vec::new())
    }
    async fn search(&self, _layer: Layer, _query: String, _k: u32) -> CapResult<Vec<Hit>> {
        Ok(Vec::new())
    }
    async fn stats(&self) -> CapResult<HccStats> {
        Ok(HccStats {
            events: self.events.lock().unwrap().len() as u64,
            ..HccStats::default()
        })
    }
}
