//! The mock host's state and its answer to each host call.
//!
//! User callbacks (chat, job and validation handlers) run with the state unborrowed, so a
//! callback may itself use the SDK.

use super::handles::{MockJob, MockPending};
use super::local_jobs;
use crate::hcc::{
    AssembledContext, ContextRequest, ContextSection, Event, HccStats, Hit, KnowledgeUnit, Layer,
    StoredEvent, WisdomEntry,
};
use crate::jobs::{JobInventory, JobResult, JobSpec};
use crate::llm::{ChatRequest, Completion, FinishReason, LlmBudget, ModelInfo, Usage};
use crate::run::{LogLevel, NodeReport, RunBudget, RunInfo};
use crate::task::{TaskInfo, Validation};
use crate::{Artifact, Direction, Error, ErrorKind, Result};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

pub(crate) type ChatHandler = Rc<RefCell<dyn FnMut(&ChatRequest) -> Result<String>>>;
pub(crate) type JobHandler = Rc<RefCell<dyn FnMut(&JobSpec) -> JobResult>>;
pub(crate) type ValidateHandler = Rc<RefCell<dyn FnMut(&[u8]) -> Validation>>;

/// How the mock decides a job's result.
pub(crate) enum JobRunner {
    /// No runner configured: submitting fails, naming the builder methods.
    Missing,
    Fake(JobHandler),
    Local {
        task_data: Option<PathBuf>,
    },
}

pub(crate) struct SubmittedJob {
    pub(crate) spec: JobSpec,
}

pub(crate) struct State {
    pub(crate) info: RunInfo,
    pub(crate) started: Instant,
    pub(crate) wall_ms: Option<u64>,
    pub(crate) step_limit: Option<u32>,
    pub(crate) denied: BTreeSet<String>,
    pub(crate) task: TaskInfo,
    pub(crate) validator: Option<ValidateHandler>,
    pub(crate) replies: VecDeque<Result<String>>,
    pub(crate) chat_handler: Option<ChatHandler>,
    pub(crate) requests: Vec<ChatRequest>,
    pub(crate) tokens_used: u64,
    pub(crate) jobs_runner: JobRunner,
    pub(crate) jobs: Vec<SubmittedJob>,
    pub(crate) artifacts: Vec<(Artifact, Vec<u8>)>,
    pub(crate) events: Vec<StoredEvent>,
    pub(crate) phase: u32,
    pub(crate) plans: Vec<String>,
    pub(crate) knowledge: Vec<KnowledgeUnit>,
    pub(crate) scripted_knowledge: VecDeque<KnowledgeUnit>,
    pub(crate) wisdom: Vec<WisdomEntry>,
    pub(crate) nodes: Vec<NodeReport>,
    pub(crate) best: Option<super::Best>,
    pub(crate) logs: Vec<(LogLevel, String)>,
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            info: RunInfo {
                run_id: "test-run".into(),
                competition_id: "mock-competition".into(),
                seed: 0,
                arm: None,
            },
            started: Instant::now(),
            wall_ms: None,
            step_limit: None,
            denied: BTreeSet::new(),
            task: super::sample_task(),
            validator: None,
            replies: VecDeque::new(),
            chat_handler: None,
            requests: Vec::new(),
            tokens_used: 0,
            jobs_runner: JobRunner::Missing,
            jobs: Vec::new(),
            artifacts: Vec::new(),
            events: Vec::new(),
            phase: 0,
            plans: Vec::new(),
            knowledge: Vec::new(),
            scripted_knowledge: VecDeque::new(),
            wisdom: Vec::new(),
            nodes: Vec::new(),
            best: None,
            logs: Vec::new(),
        }
    }

    fn check(&self, capability: &str) -> Result<()> {
        if self.denied.contains(capability) {
            return Err(Error::new(
                ErrorKind::NotGranted,
                format!("the mock host denies capability `{capability}` (MockHost::deny)"),
            ));
        }
        Ok(())
    }

    fn wall_ms_left(&self) -> Option<u64> {
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.wall_ms.map(|limit| limit.saturating_sub(elapsed))
    }

    fn steps_left(&self) -> Option<u32> {
        self.step_limit
            .map(|limit| limit.saturating_sub(self.nodes.len() as u32))
    }

    fn artifact(&self, id: &str) -> Result<&(Artifact, Vec<u8>)> {
        self.artifacts
            .iter()
            .find(|(a, _)| a.id == id)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no artifact `{id}` in this run"),
                )
            })
    }

    fn store(&mut self, name: &str, contents: &[u8]) -> Artifact {
        let artifact = Artifact {
            id: format!("artifact-{}", self.artifacts.len() + 1),
            name: name.to_string(),
            size: contents.len() as u64,
            sha256: hex(&Sha256::digest(contents)),
        };
        self.artifacts.push((artifact.clone(), contents.to_vec()));
        artifact
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One token per four characters, rounded up: the mock's token count.
fn tokens(text: &str) -> u32 {
    text.chars().count().div_ceil(4) as u32
}

pub(crate) fn completion(request: &ChatRequest, text: String) -> Completion {
    let prompt: u32 = request.messages.iter().map(|m| tokens(&m.content)).sum();
    Completion {
        usage: Usage {
            model: request.model.clone().unwrap_or_else(|| "mock".into()),
            prompt_tokens: prompt,
            completion_tokens: tokens(&text),
            reasoning_tokens: 0,
            cost_usd: 0.0,
            latency_ms: 0,
            cache_hit: false,
        },
        text,
        reasoning: None,
        tool_calls: Vec::new(),
        finish: FinishReason::Stop,
    }
}

/// The host calls, answered from the mock installed on this thread.
pub(crate) struct Calls(pub(crate) Rc<RefCell<State>>);

impl Calls {
    fn state(&self) -> std::cell::RefMut<'_, State> {
        self.0.borrow_mut()
    }

    // --- llm ---

    pub(crate) fn chat(&self, request: &ChatRequest) -> Result<Completion> {
        let (queued, handler) = {
            let mut s = self.state();
            s.check("llm")?;
            s.requests.push(request.clone());
            (s.replies.pop_front(), s.chat_handler.clone())
        };
        let text = match (queued, handler) {
            (Some(reply), _) => reply?,
            (None, Some(handler)) => (handler.borrow_mut())(request)?,
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the mock host has no LLM reply left: queue replies with MockHost::reply \
                     or answer every request with MockHost::on_chat",
                ));
            }
        };
        let done = completion(request, text);
        let mut s = self.state();
        s.tokens_used += u64::from(done.usage.prompt_tokens + done.usage.completion_tokens);
        Ok(done)
    }

    pub(crate) fn start_chat(&self, request: &ChatRequest) -> Result<MockPending> {
        self.state().check("llm")?;
        Ok(MockPending {
            outcome: RefCell::new(Some(self.chat(request))),
            taken: Cell::new(false),
        })
    }

    /// Deterministic 16-dimensional bag-of-words vectors.
    pub(crate) fn embed(&self, inputs: &[String], _model: Option<&str>) -> Result<Vec<Vec<f32>>> {
        self.state().check("llm")?;
        Ok(inputs
            .iter()
            .map(|text| {
                let mut vector = vec![0f32; 16];
                for word in text.split_whitespace() {
                    let digest = Sha256::digest(word.to_lowercase().as_bytes());
                    vector[usize::from(digest[0]) % 16] += 1.0;
                }
                vector
            })
            .collect())
    }

    pub(crate) fn count_tokens(&self, text: &str, _model: Option<&str>) -> Result<u32> {
        self.state().check("llm")?;
        Ok(tokens(text))
    }

    pub(crate) fn models(&self) -> Vec<ModelInfo> {
        if self.state().check("llm").is_err() {
            return Vec::new();
        }
        vec![ModelInfo {
            alias: "mock".into(),
            name: "sophon-sdk mock model".into(),
            context_window: 128_000,
            supports_prefill: true,
            supports_json_schema: true,
            supports_tools: true,
            reasoning: false,
        }]
    }

    pub(crate) fn llm_budget(&self) -> LlmBudget {
        let s = self.state();
        LlmBudget {
            tokens_used: s.tokens_used,
            tokens_limit: None,
            requests_used: s.requests.len() as u32,
            requests_limit: None,
            cost_used_usd: 0.0,
            cost_limit_usd: None,
        }
    }

    // --- jobs ---

    pub(crate) fn submit(&self, spec: &JobSpec) -> Result<MockJob> {
        let (fake, task_data, id) = {
            let mut s = self.state();
            s.check("jobs")?;
            if spec.command.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "a job needs a command",
                ));
            }
            s.jobs.push(SubmittedJob { spec: spec.clone() });
            let id = format!("mock-{}", s.jobs.len());
            match &s.jobs_runner {
                JobRunner::Missing => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "the mock host runs no jobs: decide results with MockHost::on_job \
                         or run them as local processes with MockHost::local_jobs",
                    ));
                }
                JobRunner::Fake(handler) => (Some(handler.clone()), None, id),
                JobRunner::Local { task_data } => (None, task_data.clone(), id),
            }
        };
        let result = match fake {
            Some(handler) => (handler.borrow_mut())(spec),
            None => {
                let artifacts: Vec<(String, Vec<u8>)> = self
                    .state()
                    .artifacts
                    .iter()
                    .map(|(a, bytes)| (a.id.clone(), bytes.clone()))
                    .collect();
                let (mut result, outputs) = local_jobs::run(spec, task_data.as_deref(), &artifacts);
                let mut s = self.state();
                for (name, bytes) in outputs {
                    let artifact = s.store(&name, &bytes);
                    result.artifacts.push(artifact);
                }
                result
            }
        };
        Ok(MockJob { id, result })
    }

    pub(crate) fn inventory(&self) -> JobInventory {
        if self.state().check("jobs").is_err() {
            return JobInventory {
                cpus: 0,
                gpus: 0,
                gpu_kinds: Vec::new(),
                memory_mb: 0,
                backends: Vec::new(),
                job_slots_free: 0,
                gpu_hours_left: None,
            };
        }
        JobInventory {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            gpus: 0,
            gpu_kinds: Vec::new(),
            memory_mb: 4096,
            backends: vec!["local".into()],
            job_slots_free: 4,
            gpu_hours_left: None,
        }
    }

    // --- hcc ---

    pub(crate) fn record_event(&self, event: Event) -> Result<u64> {
        let mut s = self.state();
        s.check("hcc")?;
        let id = s.events.len() as u64 + 1;
        let time_ms = s.started.elapsed().as_millis() as u64;
        let phase = s.phase;
        s.events.push(StoredEvent {
            id,
            phase,
            time_ms,
            event,
        });
        Ok(id)
    }

    pub(crate) fn begin_phase(&self, plan: &str) -> Result<u32> {
        self.state().check("hcc")?;
        if !self.state().plans.is_empty() {
            self.end_phase()?;
        }
        let mut s = self.state();
        s.phase += 1;
        s.plans.push(plan.to_string());
        Ok(s.phase)
    }

    pub(crate) fn end_phase(&self) -> Result<Option<KnowledgeUnit>> {
        let mut s = self.state();
        s.check("hcc")?;
        let phase = s.phase;
        let unit = s.scripted_knowledge.pop_front().map(|mut unit| {
            unit.phase = phase;
            unit
        });
        if let Some(unit) = &unit {
            s.knowledge.push(unit.clone());
        }
        Ok(unit)
    }

    /// Knowledge summaries, then wisdom, then the current phase's events, newest first, as
    /// far as `budget-tokens` allows.
    pub(crate) fn context(&self, request: &ContextRequest) -> Result<AssembledContext> {
        let s = self.state();
        s.check("hcc")?;
        let mut parts: Vec<(String, Option<u32>, String)> = Vec::new();
        for unit in &s.knowledge {
            parts.push(("knowledge".into(), Some(unit.phase), unit.summary.clone()));
        }
        for entry in &s.wisdom {
            parts.push(("wisdom".into(), None, entry.content.clone()));
        }
        for stored in s.events.iter().rev().filter(|e| e.phase == s.phase) {
            parts.push((
                "experience".into(),
                Some(stored.phase),
                stored.event.content.clone(),
            ));
        }
        let mut text = String::new();
        let mut sections = Vec::new();
        let mut used = 0u32;
        let mut evicted = 0u32;
        for (kind, phase, content) in parts {
            let cost = tokens(&content);
            if used + cost > request.budget_tokens {
                evicted += u32::from(kind == "experience");
                continue;
            }
            used += cost;
            text.push_str(&content);
            text.push('\n');
            sections.push(ContextSection {
                kind,
                phase,
                tokens: cost,
                truncated: false,
            });
        }
        Ok(AssembledContext {
            text,
            tokens: used,
            sections,
            evicted_events: evicted,
        })
    }

    pub(crate) fn events(
        &self,
        phase: Option<u32>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let s = self.state();
        s.check("hcc")?;
        let phase = phase.unwrap_or(s.phase);
        Ok(s.events
            .iter()
            .filter(|e| e.phase == phase && e.id > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    pub(crate) fn knowledge(&self) -> Result<Vec<KnowledgeUnit>> {
        let s = self.state();
        s.check("hcc")?;
        Ok(s.knowledge.clone())
    }

    /// Entries of `layer` sharing the most words with `query`.
    pub(crate) fn search(&self, layer: Layer, query: &str, k: u32) -> Result<Vec<Hit>> {
        let s = self.state();
        s.check("hcc")?;
        let entries: Vec<(String, String)> = match layer {
            Layer::Experience => s
                .events
                .iter()
                .map(|e| (format!("event-{}", e.id), e.event.content.clone()))
                .collect(),
            Layer::Knowledge => s
                .knowledge
                .iter()
                .map(|u| (format!("knowledge-{}", u.phase), u.summary.clone()))
                .collect(),
            Layer::Wisdom => s
                .wisdom
                .iter()
                .enumerate()
                .map(|(i, w)| (format!("wisdom-{}", i + 1), w.content.clone()))
                .collect(),
        };
        let words: BTreeSet<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let mut hits: Vec<Hit> = entries
            .into_iter()
            .map(|(id, content)| {
                let shared = content
                    .split_whitespace()
                    .map(str::to_lowercase)
                    .collect::<BTreeSet<_>>()
                    .intersection(&words)
                    .count();
                Hit {
                    layer,
                    id,
                    score: shared as f32 / words.len().max(1) as f32,
                    content,
                    provenance: None,
                }
            })
            .filter(|hit| hit.score > 0.0)
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(k as usize);
        Ok(hits)
    }

    pub(crate) fn hcc_stats(&self) -> Result<HccStats> {
        let s = self.state();
        s.check("hcc")?;
        Ok(HccStats {
            run_id: s.info.run_id.clone(),
            current_phase: s.phase,
            events: s.events.len() as u64,
            knowledge_units: s.knowledge.len() as u32,
            wisdom_entries: s.wisdom.len() as u64,
            wisdom_prefetched: 0,
        })
    }

    // --- run ---

    pub(crate) fn info(&self) -> RunInfo {
        self.state().info.clone()
    }

    pub(crate) fn run_budget(&self) -> RunBudget {
        let s = self.state();
        RunBudget {
            elapsed_ms: s.started.elapsed().as_millis() as u64,
            wall_ms_left: s.wall_ms_left(),
            steps_used: s.nodes.len() as u32,
            steps_left: s.steps_left(),
            tokens_used: s.tokens_used,
            tokens_left: None,
            cost_used_usd: 0.0,
            cost_left_usd: None,
        }
    }

    pub(crate) fn should_stop(&self) -> bool {
        let s = self.state();
        s.steps_left() == Some(0) || s.wall_ms_left() == Some(0)
    }

    pub(crate) fn report_node(&self, node: &NodeReport) -> Result<()> {
        let mut s = self.state();
        if node.id.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a node needs a non-empty id",
            ));
        }
        if s.steps_left() == Some(0) {
            return Err(Error::new(
                ErrorKind::BudgetExhausted,
                format!(
                    "the run's step budget ({} nodes) is spent",
                    s.step_limit.unwrap_or(0)
                ),
            ));
        }
        s.nodes.push(node.clone());
        Ok(())
    }

    pub(crate) fn best(&self) -> Option<super::Best> {
        self.state().best.clone()
    }

    pub(crate) fn report_best(&self, node: &str, submission: &str, metric: f64) -> Result<bool> {
        if !metric.is_finite() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("metric {metric} is not a finite number"),
            ));
        }
        let validation = self.judge(submission)?;
        if !validation.valid {
            return Ok(false);
        }
        let mut s = self.state();
        let better = match (&s.best, s.task.metric.direction) {
            (None, _) => true,
            (Some(best), Direction::Maximize) => metric > best.metric,
            (Some(best), Direction::Minimize) => metric < best.metric,
        };
        if better {
            s.best = Some(super::Best {
                node: node.to_string(),
                submission: submission.to_string(),
                metric,
            });
        }
        Ok(better)
    }

    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        self.state().logs.push((level, message.to_string()));
    }

    // --- artifacts ---

    pub(crate) fn create_artifact(&self, name: &str, contents: &[u8]) -> Result<Artifact> {
        let mut s = self.state();
        s.check("artifacts")?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("artifact name {name:?} must be a plain file name"),
            ));
        }
        Ok(s.store(name, contents))
    }

    pub(crate) fn read_artifact(&self, id: &str, offset: u64, max_bytes: u32) -> Result<Vec<u8>> {
        let s = self.state();
        s.check("artifacts")?;
        let (_, bytes) = s.artifact(id)?;
        let start = (offset as usize).min(bytes.len());
        let end = start.saturating_add(max_bytes as usize).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }

    pub(crate) fn stat_artifact(&self, id: &str) -> Result<Artifact> {
        let s = self.state();
        s.check("artifacts")?;
        Ok(s.artifact(id)?.0.clone())
    }

    // --- task ---

    pub(crate) fn describe(&self) -> Result<TaskInfo> {
        let s = self.state();
        s.check("task")?;
        Ok(s.task.clone())
    }

    pub(crate) fn validate(&self, submission: &str) -> Result<Validation> {
        self.state().check("task")?;
        self.judge(submission)
    }

    /// The validator's verdict on artifact `submission`.
    fn judge(&self, submission: &str) -> Result<Validation> {
        let (contents, validator) = {
            let s = self.state();
            (s.artifact(submission)?.1.clone(), s.validator.clone())
        };
        Ok(match validator {
            Some(check) => (check.borrow_mut())(&contents),
            None => Validation {
                valid: !contents.is_empty(),
                message: if contents.is_empty() {
                    "the submission is empty".into()
                } else {
                    format!("{} bytes", contents.len())
                },
            },
        })
    }
}
