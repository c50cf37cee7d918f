//! What a run reports as it goes: [`RunEvent`]s, written to `events.jsonl` and handed to
//! [`RunObserver`]s (the progress display, the `--json` stream). Observers must be quick and
//! must not fail: they are called on the run's hot path.

use super::{Best, LogLevel, NodeReport};
use crate::task::Direction;
use serde::Serialize;
use sophon_grading::Thresholds;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    /// A run started, or resumed (`resumed`, with the run time it had used).
    Started {
        elapsed_ms: u64,
        resumed: bool,
        run_id: String,
        competition_id: String,
        strategy: String,
        run_dir: String,
        metric: String,
        direction: Direction,
        time_limit_secs: Option<u64>,
        max_steps: Option<u32>,
        max_tokens: Option<u64>,
        /// The leaderboard's medal thresholds and median, where there is a leaderboard.
        thresholds: Option<Thresholds>,
    },
    Node {
        elapsed_ms: u64,
        nodes_done: u32,
        /// LLM tokens used by the run so far.
        tokens_used: u64,
        node: NodeReport,
    },
    /// A submission was adopted as the run's best (and copied into the run directory).
    Best { elapsed_ms: u64, best: Best },
    /// A strategy claimed a best submission that the task adapter found invalid.
    BestRefused {
        elapsed_ms: u64,
        node: String,
        reason: String,
    },
    Log {
        elapsed_ms: u64,
        plugin: String,
        level: LogLevel,
        message: String,
    },
    /// The strategy returned (or failed, with `error`).
    StrategyDone {
        elapsed_ms: u64,
        summary: String,
        error: Option<String>,
    },
    /// Wisdom from earlier tasks put into this run's context (HCC prefetch).
    WisdomPrefetched {
        elapsed_ms: u64,
        entries: Vec<WisdomSeen>,
    },
    /// The promotion policy's work at the run's end: knowledge units of the run, and the new
    /// wisdom it left for later tasks.
    Promoted {
        elapsed_ms: u64,
        policy: String,
        knowledge_units: u32,
        wisdom: Vec<WisdomSeen>,
    },
    Graded {
        elapsed_ms: u64,
        score: Option<f64>,
        valid: bool,
        medal: Option<String>,
        above_median: bool,
        message: String,
    },
}

/// A wisdom entry as a run saw it (prefetched, with its similarity) or left it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct WisdomSeen {
    pub id: String,
    pub category: String,
    pub content: String,
    pub applies_when: String,
    /// The competition and run that produced it.
    pub from_competition: String,
    pub from_run: String,
    /// Cosine similarity of its task descriptor to this run's, for prefetched entries.
    pub similarity: Option<f32>,
}

/// Receives a run's events as they happen.
pub trait RunObserver: Send + Sync {
    fn on_event(&self, event: &RunEvent);
}
