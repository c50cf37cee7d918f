//! Promotion without a model: the phase's top-k nodes become its knowledge, the run's best
//! approaches its wisdom. Deterministic; the baseline the `hcc` policy is A/B-tested against.

use policy_kit::{NodeOutcome, best_approaches, describe, digest, head, lower_is_better};
use sophon_sdk::hcc::{IdeaVerdict, Verdict};
use sophon_sdk::{
    KnowledgeUnit, PhaseTrace, PromotionPolicy, RunTrace, TaskDescriptor, TaskInfo, WisdomEntry,
};

/// Nodes kept per phase.
const TOP_K: usize = 3;
/// Failures kept per phase.
const FAILURES: usize = 3;

struct TopK;

fn verdict(n: &NodeOutcome) -> IdeaVerdict {
    IdeaVerdict {
        idea: n.idea.clone(),
        verdict: if n.metric.is_some() {
            Verdict::Worked
        } else {
            Verdict::Failed
        },
        metric: n.metric,
        note: format!("node {}", n.node),
    }
}

impl PromotionPolicy for TopK {
    fn describe_task(task: TaskInfo) -> Result<TaskDescriptor, String> {
        Ok(describe(&task))
    }

    fn on_phase_end(trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String> {
        let nodes = digest(&trace.events, lower_is_better(&trace.descriptor));
        if nodes.is_empty() {
            return Ok(None);
        }
        let best: Vec<&NodeOutcome> = nodes
            .iter()
            .filter(|n| n.metric.is_some())
            .take(TOP_K)
            .collect();
        let failed: Vec<&NodeOutcome> = nodes
            .iter()
            .filter(|n| n.error.is_some())
            .take(FAILURES)
            .collect();
        Ok(Some(KnowledgeUnit {
            phase: trace.phase,
            summary: format!(
                "Phase {} ({}): {} nodes, {} with a metric; best {}.",
                trace.phase,
                head(trace.plan.lines().next().unwrap_or(""), 160),
                nodes.len(),
                nodes.iter().filter(|n| n.metric.is_some()).count(),
                best.first().map_or("none".to_string(), |n| format!(
                    "{:.5} ({})",
                    n.metric.unwrap(),
                    n.idea
                ))
            ),
            verdicts: best.iter().chain(&failed).map(|n| verdict(n)).collect(),
            failure_causes: failed.iter().filter_map(|n| n.error.clone()).collect(),
            insights: Vec::new(),
            best_approach: best.first().map(|n| n.idea.clone()),
            best_metric: best.first().and_then(|n| n.metric),
        }))
    }

    fn on_task_end(trace: RunTrace) -> Result<Vec<WisdomEntry>, String> {
        Ok(best_approaches(&trace, TOP_K))
    }
}

sophon_sdk::export_promotion_policy!(TopK);
