//! HCC promotion (ML-Master 2.0): a model distils a phase's raw events into one knowledge unit
//! and a run's knowledge into transferable wisdom, each under a JSON schema.
//!
//! The model supplies language — verdicts, causes, insights, the best approach and why; the
//! numbers come from the log (a verdict's metric is its node's measured metric, the unit's best
//! metric the phase's best). A reply that does not parse, or a failed call, falls back to a unit
//! built from the log alone, and the unit says so.

mod prompts;

use policy_kit::{NodeOutcome, best_approaches, describe, digest, head, lower_is_better};
use serde::Deserialize;
use sophon_sdk::hcc::{IdeaVerdict, Verdict};
use sophon_sdk::llm::{self, ChatRequest};
use sophon_sdk::{
    KnowledgeUnit, PhaseTrace, PromotionPolicy, RunTrace, TaskDescriptor, TaskInfo, WisdomEntry,
};

/// Most nodes shown to the model per phase (the best first).
const NODES_SHOWN: usize = 12;
/// Most list items kept from a reply, per list.
const ITEMS: usize = 8;
/// Longest text kept from a reply field, in bytes.
const FIELD_BYTES: usize = 600;
/// Most wisdom entries per run.
const WISDOM_ENTRIES: usize = 6;

struct Hcc;

#[derive(Deserialize)]
struct ReplyVerdict {
    node: String,
    verdict: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
struct KnowledgeReply {
    summary: String,
    #[serde(default)]
    verdicts: Vec<ReplyVerdict>,
    #[serde(default)]
    failure_causes: Vec<String>,
    #[serde(default)]
    insights: Vec<String>,
    #[serde(default)]
    best_approach: String,
    #[serde(default)]
    why: String,
}

#[derive(Deserialize)]
struct WisdomReply {
    entries: Vec<WisdomItem>,
}

#[derive(Deserialize)]
struct WisdomItem {
    category: String,
    content: String,
    applies_when: String,
}

fn parse_verdict(text: &str) -> Option<Verdict> {
    match text.trim().to_ascii_lowercase().as_str() {
        "worked" => Some(Verdict::Worked),
        "failed" => Some(Verdict::Failed),
        "inconclusive" => Some(Verdict::Inconclusive),
        _ => None,
    }
}

fn clean(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|s| head(s.trim(), FIELD_BYTES))
        .filter(|s| !s.is_empty())
        .take(ITEMS)
        .collect()
}

/// The knowledge unit the log alone supports: verdicts from measured metrics and errors.
fn from_log(trace: &PhaseTrace, nodes: &[NodeOutcome], note: &str) -> KnowledgeUnit {
    let best = nodes.iter().find(|n| n.metric.is_some());
    KnowledgeUnit {
        phase: trace.phase,
        summary: format!(
            "Phase {}: {} nodes, {} with a validation metric{}.",
            trace.phase,
            nodes.len(),
            nodes.iter().filter(|n| n.metric.is_some()).count(),
            best.map_or(String::new(), |n| format!(
                "; best {:.5} by {}",
                n.metric.unwrap(),
                n.idea
            ))
        ),
        verdicts: nodes
            .iter()
            .take(NODES_SHOWN)
            .map(|n| IdeaVerdict {
                idea: n.idea.clone(),
                verdict: if n.metric.is_some() {
                    Verdict::Inconclusive
                } else {
                    Verdict::Failed
                },
                metric: n.metric,
                note: format!("node {}", n.node),
            })
            .collect(),
        failure_causes: nodes
            .iter()
            .filter_map(|n| n.error.clone())
            .take(ITEMS)
            .collect(),
        insights: vec![note.to_string()],
        best_approach: best.map(|n| n.idea.clone()),
        best_metric: best.and_then(|n| n.metric),
    }
}

/// Merge the model's reply with the log: ideas and metrics from the log, judgement from the
/// model; verdicts for nodes the log does not know are dropped.
fn merge(trace: &PhaseTrace, nodes: &[NodeOutcome], reply: KnowledgeReply) -> KnowledgeUnit {
    let verdicts = reply
        .verdicts
        .into_iter()
        .filter_map(|v| {
            let node = nodes.iter().find(|n| n.node == v.node.trim())?;
            Some(IdeaVerdict {
                idea: node.idea.clone(),
                verdict: parse_verdict(&v.verdict)?,
                metric: node.metric,
                note: head(v.note.trim(), FIELD_BYTES),
            })
        })
        .take(NODES_SHOWN)
        .collect();
    let best = nodes.iter().find(|n| n.metric.is_some());
    let approach = reply.best_approach.trim();
    let why = reply.why.trim();
    KnowledgeUnit {
        phase: trace.phase,
        summary: head(reply.summary.trim(), FIELD_BYTES * 2),
        verdicts,
        failure_causes: clean(reply.failure_causes),
        insights: clean(reply.insights),
        best_approach: match (approach.is_empty(), why.is_empty()) {
            (true, _) => best.map(|n| n.idea.clone()),
            (false, true) => Some(head(approach, FIELD_BYTES)),
            (false, false) => Some(head(&format!("{approach} — {why}"), FIELD_BYTES)),
        },
        best_metric: best.and_then(|n| n.metric),
    }
}

impl PromotionPolicy for Hcc {
    fn describe_task(task: TaskInfo) -> Result<TaskDescriptor, String> {
        Ok(describe(&task))
    }

    fn on_phase_end(trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String> {
        let nodes = digest(&trace.events, lower_is_better(&trace.descriptor));
        if nodes.is_empty() {
            return Ok(None);
        }
        let request = ChatRequest::system_user(
            prompts::KNOWLEDGE_SYSTEM,
            prompts::knowledge(&trace, &nodes[..nodes.len().min(NODES_SHOWN)]),
        )
        .json_schema("knowledge_unit", prompts::KNOWLEDGE_SCHEMA)
        .temperature(0.0)
        .max_tokens(700)
        .purpose("hcc: distil a phase into knowledge");
        let unit = match llm::chat(&request) {
            Ok(reply) => {
                match sophon_sdk::json::from_str::<KnowledgeReply>(prompts::json_part(&reply.text))
                {
                    Ok(parsed) if !parsed.summary.trim().is_empty() => {
                        merge(&trace, &nodes, parsed)
                    }
                    Ok(_) => from_log(
                        &trace,
                        &nodes,
                        "distilled from the log: the model's summary was empty",
                    ),
                    Err(e) => from_log(
                        &trace,
                        &nodes,
                        &format!(
                            "distilled from the log: the model's reply was not the schema ({e})"
                        ),
                    ),
                }
            }
            Err(e) => from_log(
                &trace,
                &nodes,
                &format!("distilled from the log: the model call failed ({e})"),
            ),
        };
        Ok(Some(unit))
    }

    fn on_task_end(trace: RunTrace) -> Result<Vec<WisdomEntry>, String> {
        let lower = lower_is_better(&trace.descriptor);
        let final_nodes = digest(&trace.final_events, lower);
        if trace.knowledge.is_empty() && final_nodes.is_empty() {
            return Ok(Vec::new());
        }
        let request = ChatRequest::system_user(
            prompts::WISDOM_SYSTEM,
            prompts::wisdom(&trace, &final_nodes[..final_nodes.len().min(NODES_SHOWN)]),
        )
        .json_schema("wisdom", prompts::WISDOM_SCHEMA)
        .temperature(0.0)
        .max_tokens(700)
        .purpose("hcc: distil a run into wisdom");
        let from_model = llm::chat(&request)
            .ok()
            .and_then(|reply| {
                sophon_sdk::json::from_str::<WisdomReply>(prompts::json_part(&reply.text)).ok()
            })
            .map(|w| {
                w.entries
                    .into_iter()
                    .filter(|e| {
                        // A small model may echo the schema: advice is a sentence, not a label.
                        prompts::CATEGORIES.contains(&e.category.trim())
                            && e.content.split_whitespace().count() >= 4
                    })
                    .take(WISDOM_ENTRIES)
                    .map(|e| WisdomEntry {
                        category: e.category.trim().to_string(),
                        content: head(e.content.trim(), 1000),
                        applies_when: head(e.applies_when.trim(), 300),
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if !from_model.is_empty() {
            return Ok(from_model);
        }
        // The log's best approaches, stated with their measured numbers.
        Ok(best_approaches(&trace, 3))
    }
}

sophon_sdk::export_promotion_policy!(Hcc);
