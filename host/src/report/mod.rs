//! `sophon report`: a run directory as a self-contained HTML page and a JSON summary.
//!
//! - [`RunView`]: everything a report shows, read from the run directory (and the HCC store);
//! - [`html`]: the page (no scripts, no external resources; every text from the run is
//!   escaped, since plans, code and outputs come from untrusted plugins and models);
//! - [`chart`]: the score-over-time chart as inline SVG.
//!
//! A run that crashed has no `summary.json` or `grade.json`: its report shows what was
//! recorded and says the run did not finish.

pub mod chart;
pub mod html;

use crate::hcc::{HccStore, KnowledgeUnit, StoredEvent, store::KnowledgeScope};
use crate::run::NodeReport;
use crate::run::events::WisdomSeen;
use crate::run::execute::RunRecord;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A node with the run time at which it was reported.
#[derive(Clone, Debug, Serialize)]
pub struct TimedNode {
    pub elapsed_ms: u64,
    #[serde(flatten)]
    pub node: NodeReport,
}

/// The HCC layers of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HccView {
    pub events_by_kind: BTreeMap<String, u64>,
    pub events: u64,
    pub phases: Vec<(u32, String)>,
    pub knowledge: Vec<KnowledgeUnit>,
    /// Why the layers are missing, when they are.
    pub note: Option<String>,
}

/// Wisdom (L3) as the run used and left it, from its events.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WisdomView {
    /// Entries from earlier tasks that were prefetched into this run's context.
    pub prefetched: Vec<WisdomSeen>,
    /// Entries the run's promotion policy left for later tasks.
    pub left: Vec<WisdomSeen>,
    /// The policy that promoted, once the run ended.
    pub policy: Option<String>,
}

/// Everything a report shows.
#[derive(Clone, Debug, Serialize)]
pub struct RunView {
    pub record: RunRecord,
    pub nodes: Vec<TimedNode>,
    /// (elapsed ms, node, validation metric) each time the best changed.
    pub best_changes: Vec<(u64, String, f64)>,
    pub summary: Option<Value>,
    /// The first competition report of `grade.json`.
    pub grade: Option<Value>,
    pub thresholds: Option<Value>,
    pub hcc: HccView,
    pub wisdom: WisdomView,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0} is not a run directory (no run.json): pass a directory `sophon run` created")]
    NotARun(PathBuf),
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
}

impl RunView {
    /// Read the run in `dir`; `hcc_store` is the HCC store to show its layers from.
    pub fn load(dir: &Path, hcc_store: Option<&Path>) -> Result<RunView, ReportError> {
        let run_json = dir.join("run.json");
        if !run_json.is_file() {
            return Err(ReportError::NotARun(dir.to_path_buf()));
        }
        let record: RunRecord =
            serde_json::from_str(&read(&run_json)?).map_err(|e| ReportError::Unreadable {
                path: run_json.clone(),
                message: e.to_string(),
            })?;
        let mut nodes = Vec::new();
        let mut best_changes = Vec::new();
        let mut thresholds = None;
        let mut wisdom = WisdomView::default();
        let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
        // Lines that do not parse (a torn last line) are skipped.
        for event in events
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            let elapsed_ms = event["elapsed_ms"].as_u64().unwrap_or(0);
            match event["event"].as_str() {
                Some("started") if thresholds.is_none() => {
                    thresholds = Some(event["thresholds"].clone()).filter(|t| !t.is_null());
                }
                Some("node") => {
                    if let Ok(node) = serde_json::from_value(event["node"].clone()) {
                        nodes.push(TimedNode { elapsed_ms, node });
                    }
                }
                Some("wisdom-prefetched") => {
                    if let Ok(entries) = serde_json::from_value(event["entries"].clone()) {
                        // A resumed run prefetches again: the latest list counts.
                        wisdom.prefetched = entries;
                    }
                }
                Some("promoted") => {
                    if let Ok(entries) = serde_json::from_value(event["wisdom"].clone()) {
                        wisdom.left = entries;
                    }
                    wisdom.policy = event["policy"].as_str().map(str::to_string);
                }
                Some("best") => {
                    let best = &event["best"];
                    if let (Some(node), Some(metric)) =
                        (best["node"].as_str(), best["metric"].as_f64())
                    {
                        best_changes.push((elapsed_ms, node.to_string(), metric));
                    }
                }
                _ => {}
            }
        }
        let json = |name: &str| -> Option<Value> {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
        };
        let grade = json("grade.json").map(|g| g["competition_reports"][0].clone());
        let hcc = hcc_store.map_or_else(
            || HccView {
                note: Some("no HCC store configured".into()),
                ..HccView::default()
            },
            |path| hcc_view(path, &record.run_id),
        );
        Ok(RunView {
            record,
            nodes,
            best_changes,
            summary: json("summary.json"),
            grade,
            thresholds,
            hcc,
            wisdom,
        })
    }

    /// The JSON summary: the run's facts without the nodes' code.
    pub fn summary_json(&self) -> Value {
        let valid = self
            .nodes
            .iter()
            .filter(|n| n.node.valid_submission)
            .count();
        let buggy = self.nodes.iter().filter(|n| n.node.buggy).count();
        serde_json::json!({
            "run_id": self.record.run_id,
            "competition_id": self.record.competition_id,
            "strategy": self.record.strategy,
            "finished": self.summary.is_some(),
            "nodes": self.nodes.len(),
            "valid_nodes": valid,
            "buggy_nodes": buggy,
            "best": self.best_changes.last().map(|(ms, node, metric)| serde_json::json!({
                "node": node, "validation": metric, "at_ms": ms,
            })),
            "grade": self.grade,
            "thresholds": self.thresholds,
            "llm": self.summary.as_ref().map(|s| s["llm"].clone()),
            "elapsed_ms": self.summary.as_ref().and_then(|s| s["elapsed_ms"].as_u64())
                .or(self.nodes.last().map(|n| n.elapsed_ms)),
            "hcc": {
                "events": self.hcc.events,
                "events_by_kind": self.hcc.events_by_kind,
                "phases": self.hcc.phases.len(),
                "knowledge_units": self.hcc.knowledge.len(),
            },
            "wisdom": {
                "policy": self.wisdom.policy,
                "prefetched": self.wisdom.prefetched,
                "left": self.wisdom.left,
            },
        })
    }
}

fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|e| ReportError::Unreadable {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The HCC layers of `run_id` in the store at `path` (a note instead when unavailable).
fn hcc_view(path: &Path, run_id: &str) -> HccView {
    let note = |message: String| HccView {
        note: Some(message),
        ..HccView::default()
    };
    if !path.is_file() {
        return note(format!("no HCC store at {}", path.display()));
    }
    let store = match HccStore::open(path) {
        Ok(store) => store,
        Err(e) => {
            return note(format!(
                "the HCC store {} cannot be opened: {e}",
                path.display()
            ));
        }
    };
    let events: Vec<StoredEvent> = match store.events(run_id, None, 0, None, u32::MAX) {
        Ok(events) => events,
        Err(_) => return note(format!("run {run_id} is not in {}", path.display())),
    };
    let mut view = HccView {
        events: events.len() as u64,
        ..HccView::default()
    };
    for event in &events {
        *view
            .events_by_kind
            .entry(crate::hcc::store::kind_to_text(&event.event.kind))
            .or_default() += 1;
    }
    view.phases = store
        .phases(run_id)
        .map(|p| p.into_iter().map(|p| (p.phase, p.plan)).collect())
        .unwrap_or_default();
    view.knowledge = store
        .knowledge(KnowledgeScope::Run(run_id))
        .map(|units| units.into_iter().map(|(_, unit)| unit).collect())
        .unwrap_or_default();
    view
}
