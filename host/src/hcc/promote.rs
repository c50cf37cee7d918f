//! Promotion: the [`Promoter`] that distils a phase into knowledge (L2) and a run into wisdom
//! (L3), and the size checks everything it returns passes before it is stored.
//!
//! The host owns *when* promotion happens (phase end, task end) and *what is stored*; the
//! policy (normally a `promotion-policy` plugin, wrapped by `run::policy::PluginPromoter`)
//! only proposes.

use super::types::*;
use crate::task::TaskInfo;

/// Largest knowledge unit, serialised as JSON.
pub const MAX_KNOWLEDGE_BYTES: usize = 48 * 1024;
/// Most list items (verdicts, failure causes, insights) in a knowledge unit, per list.
pub const MAX_KNOWLEDGE_ITEMS: usize = 64;
/// Most wisdom entries one run may leave.
pub const MAX_WISDOM_PER_RUN: usize = 32;
/// Longest wisdom `content`, in bytes.
pub const MAX_WISDOM_CONTENT_BYTES: usize = 4096;
/// Longest wisdom `applies-when` and `category`, in bytes.
pub const MAX_WISDOM_FIELD_BYTES: usize = 1024;
/// Longest event content a policy sees in a trace; longer contents are cut head+tail.
pub const TRACE_CONTENT_BYTES: usize = 8 * 1024;
/// Most events of one phase a policy sees (the newest are kept).
pub const TRACE_EVENTS: usize = 2000;

/// Turns traces into knowledge and wisdom. Errors are the policy's own message.
#[async_trait::async_trait]
pub trait Promoter: Send + Sync {
    /// The descriptor under which this task's wisdom is stored and retrieved.
    async fn describe_task(&self, task: &TaskInfo) -> Result<TaskDescriptor, String>;
    async fn on_phase_end(&self, trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String>;
    async fn on_task_end(&self, trace: RunTrace) -> Result<Vec<WisdomEntry>, String>;
    /// The policy's name, recorded as the provenance of what it stores (`None`: unknown).
    fn name(&self) -> Option<String> {
        None
    }
}

/// Check a knowledge unit a policy returned for `phase`; the host sets `phase` itself.
pub fn check_knowledge_unit(mut unit: KnowledgeUnit, phase: u32) -> Result<KnowledgeUnit, String> {
    unit.phase = phase;
    for (name, len) in [
        ("verdicts", unit.verdicts.len()),
        ("failure-causes", unit.failure_causes.len()),
        ("insights", unit.insights.len()),
    ] {
        if len > MAX_KNOWLEDGE_ITEMS {
            return Err(format!(
                "the knowledge unit has {len} {name}; at most {MAX_KNOWLEDGE_ITEMS} are kept"
            ));
        }
    }
    let metrics = unit
        .verdicts
        .iter()
        .map(|v| v.metric)
        .chain([unit.best_metric]);
    if metrics.flatten().any(|m| !m.is_finite()) {
        return Err("the knowledge unit holds a metric that is not a finite number".into());
    }
    let size = serde_json::to_vec(&unit).map_or(usize::MAX, |v| v.len());
    if size > MAX_KNOWLEDGE_BYTES {
        return Err(format!(
            "the knowledge unit takes {size} bytes; at most {MAX_KNOWLEDGE_BYTES} are kept: summarise harder"
        ));
    }
    Ok(unit)
}

/// Check the wisdom a policy returned at task end.
pub fn check_wisdom(entries: &[WisdomEntry]) -> Result<(), String> {
    if entries.len() > MAX_WISDOM_PER_RUN {
        return Err(format!(
            "the policy returned {} wisdom entries; at most {MAX_WISDOM_PER_RUN} per run are kept",
            entries.len()
        ));
    }
    entries.iter().try_for_each(check_wisdom_entry)
}

/// Check one wisdom entry (also applied to imports).
pub fn check_wisdom_entry(entry: &WisdomEntry) -> Result<(), String> {
    let category_ok = !entry.category.is_empty()
        && entry.category.len() <= 64
        && entry
            .category
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !category_ok {
        return Err(format!(
            "wisdom category `{}` must be 1-64 characters of a-z, 0-9 and `-` (e.g. `model-choice`)",
            entry.category.chars().take(80).collect::<String>()
        ));
    }
    if entry.content.trim().is_empty() {
        return Err("a wisdom entry has empty content".into());
    }
    if entry.content.len() > MAX_WISDOM_CONTENT_BYTES {
        return Err(format!(
            "a wisdom entry's content takes {} bytes; at most {MAX_WISDOM_CONTENT_BYTES}",
            entry.content.len()
        ));
    }
    if entry.applies_when.len() > MAX_WISDOM_FIELD_BYTES {
        return Err(format!(
            "a wisdom entry's applies-when takes {} bytes; at most {MAX_WISDOM_FIELD_BYTES}",
            entry.applies_when.len()
        ));
    }
    Ok(())
}

/// Events as a policy sees them in a trace: the newest [`TRACE_EVENTS`], each content cut
/// head+tail to [`TRACE_CONTENT_BYTES`].
pub fn trace_events(mut events: Vec<StoredEvent>) -> Vec<StoredEvent> {
    if events.len() > TRACE_EVENTS {
        events.drain(..events.len() - TRACE_EVENTS);
    }
    for e in &mut events {
        e.event.content = cut_bytes(&e.event.content, TRACE_CONTENT_BYTES);
    }
    events
}

/// `text` cut to about `max` bytes, keeping head and tail on character boundaries.
pub fn cut_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let half = max / 2;
    let mut head_end = half;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - half;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    format!(
        "{}\n[… {} bytes elided …]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit() -> KnowledgeUnit {
        KnowledgeUnit {
            phase: 9,
            summary: "s".into(),
            verdicts: vec![],
            failure_causes: vec![],
            insights: vec![],
            best_approach: None,
            best_metric: Some(0.5),
        }
    }

    #[test]
    fn knowledge_checks_fix_the_phase_and_refuse_oversize_or_nan() {
        assert_eq!(check_knowledge_unit(unit(), 2).unwrap().phase, 2);
        let mut big = unit();
        big.summary = "x".repeat(MAX_KNOWLEDGE_BYTES);
        assert!(check_knowledge_unit(big, 1).unwrap_err().contains("bytes"));
        let mut nan = unit();
        nan.best_metric = Some(f64::NAN);
        assert!(check_knowledge_unit(nan, 1).unwrap_err().contains("finite"));
        let mut many = unit();
        many.insights = vec!["i".into(); MAX_KNOWLEDGE_ITEMS + 1];
        assert!(
            check_knowledge_unit(many, 1)
                .unwrap_err()
                .contains("insights")
        );
    }

    #[test]
    fn wisdom_checks_name_the_problem() {
        let ok = WisdomEntry {
            category: "model-choice".into(),
            content: "gradient boosting first".into(),
            applies_when: "small tabular".into(),
        };
        assert!(check_wisdom(std::slice::from_ref(&ok)).is_ok());
        let bad = WisdomEntry {
            category: "Model Choice".into(),
            ..ok.clone()
        };
        assert!(check_wisdom_entry(&bad).unwrap_err().contains("a-z"));
        assert!(check_wisdom(&vec![ok; MAX_WISDOM_PER_RUN + 1]).is_err());
    }

    #[test]
    fn cutting_keeps_both_ends_on_character_boundaries() {
        let text = "é".repeat(10_000);
        let cut = cut_bytes(&text, 101);
        assert!(cut.len() < 200);
        assert!(cut.starts_with('é') && cut.ends_with('é'));
        assert_eq!(cut_bytes("short", 10), "short");
    }
}
