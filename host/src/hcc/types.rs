//! Events, knowledge, wisdom and context types (mirror `sophon:host/hcc`).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Experience,
    Knowledge,
    Wisdom,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Task,
    Plan,
    Code,
    Execution,
    Review,
    Submission,
    Insight,
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub node: Option<String>,
    pub content: String,
    pub metric: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: u64,
    pub phase: u32,
    pub time_ms: u64,
    pub event: Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Worked,
    Failed,
    Inconclusive,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdeaVerdict {
    pub idea: String,
    pub verdict: Verdict,
    pub metric: Option<f64>,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeUnit {
    pub phase: u32,
    pub summary: String,
    pub verdicts: Vec<IdeaVerdict>,
    pub failure_causes: Vec<String>,
    pub insights: Vec<String>,
    pub best_approach: Option<String>,
    pub best_metric: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskDescriptor {
    pub modality: String,
    pub task_type: String,
    pub metric: String,
    pub data_size: String,
    pub summary: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WisdomEntry {
    pub category: String,
    pub content: String,
    pub applies_when: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub competition_id: String,
    pub run_id: String,
    pub descriptor: TaskDescriptor,
    pub hits: u32,
    pub mean_score_of_users: Option<f64>,
    /// The strategy plugin of the run that produced it, where known (host-side only: the WIT
    /// record has no such field; older exports have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The promotion policy that wrote it, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub layer: Layer,
    pub id: String,
    pub content: String,
    pub score: f32,
    pub provenance: Option<Provenance>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextRequest {
    pub budget_tokens: u32,
    pub query: Option<String>,
    pub model: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextSection {
    pub kind: String,
    pub phase: Option<u32>,
    pub tokens: u32,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssembledContext {
    pub text: String,
    pub tokens: u32,
    pub sections: Vec<ContextSection>,
    pub evicted_events: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HccStats {
    pub run_id: String,
    pub current_phase: u32,
    pub events: u64,
    pub knowledge_units: u32,
    pub wisdom_entries: u64,
    pub wisdom_prefetched: u32,
}

/// What a promotion policy sees at the end of a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseTrace {
    pub competition_id: String,
    pub descriptor: TaskDescriptor,
    pub phase: u32,
    pub plan: String,
    pub events: Vec<StoredEvent>,
}

/// What a promotion policy sees at the end of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunTrace {
    pub competition_id: String,
    pub descriptor: TaskDescriptor,
    pub knowledge: Vec<KnowledgeUnit>,
    pub best_metric: Option<f64>,
    pub final_events: Vec<StoredEvent>,
}
