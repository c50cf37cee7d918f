//! A promotion policy that needs no LLM: the knowledge unit keeps the phase's best metric.
//! Its insights report what its read-only HCC access allowed (for the scope tests).

use sophon_sdk::hcc::{self, EventKind, IdeaVerdict, Verdict};
use sophon_sdk::{
    KnowledgeUnit, PhaseTrace, PromotionPolicy, RunTrace, TaskDescriptor, TaskInfo, WisdomEntry,
};

struct TopMetric;

impl PromotionPolicy for TopMetric {
    fn describe_task(task: TaskInfo) -> Result<TaskDescriptor, String> {
        Ok(TaskDescriptor {
            modality: "tabular".into(),
            task_type: "unknown".into(),
            metric: task.metric.name,
            data_size: format!("{} files", task.public_files.len()),
            summary: task.title,
        })
    }

    fn on_phase_end(trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String> {
        let best = trace
            .events
            .iter()
            .filter(|e| matches!(e.event.kind, EventKind::Execution))
            .filter_map(|e| e.event.metric.map(|m| (m, e.event.content.clone())))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let seen = hcc::events(Some(trace.phase), 0, 1000).map_or_else(
            |e| format!("reading refused: {e}"),
            |events| format!("read {} events", events.len()),
        );
        let write = match hcc::record(EventKind::Insight, None, "forged by a policy", None) {
            Ok(_) => "write allowed".to_string(),
            Err(e) => format!("write refused: {e}"),
        };
        Ok(best.map(|(metric, content)| KnowledgeUnit {
            phase: trace.phase,
            summary: format!("phase {} best {metric}", trace.phase),
            verdicts: vec![IdeaVerdict {
                idea: trace.plan.clone(),
                verdict: Verdict::Worked,
                metric: Some(metric),
                note: content,
            }],
            failure_causes: Vec::new(),
            insights: vec![seen, write],
            best_approach: Some(trace.plan),
            best_metric: Some(metric),
        }))
    }

    fn on_task_end(trace: RunTrace) -> Result<Vec<WisdomEntry>, String> {
        Ok(trace
            .knowledge
            .iter()
            .filter_map(|k| k.best_approach.clone())
            .map(|approach| WisdomEntry {
                category: "model-choice".into(),
                content: approach,
                applies_when: trace.descriptor.summary.clone(),
            })
            .collect())
    }
}

sophon_sdk::export_promotion_policy!(TopMetric);
