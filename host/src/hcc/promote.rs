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

/// Turns traces into knowledge and wisdom. Errors are the policy's own message and stay
/// strings: the `promotion-policy` world returns `result<_, string>`, and the host only
/// quotes that text (in a `promotion-error` event or the strategy's `end-phase` error).
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

/// What a policy returned (or a wisdom file holds) that the host refuses to store. The message
/// names the limit; callers quote it in the strategy's `end-phase` error, a `promotion-error`
/// event or an import error.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CheckError {
    #[error(
        "the knowledge unit has {len} {list}; at most {max} are kept",
        max = MAX_KNOWLEDGE_ITEMS
    )]
    TooManyItems { list: &'static str, len: usize },
    #[error("the knowledge unit holds a metric that is not a finite number")]
    NonFiniteMetric,
    #[error(
        "the knowledge unit takes {0} bytes; at most {max} are kept: summarise harder",
        max = MAX_KNOWLEDGE_BYTES
    )]
    KnowledgeTooLarge(usize),
    #[error(
        "the policy returned {0} wisdom entries; at most {max} per run are kept",
        max = MAX_WISDOM_PER_RUN
    )]
    TooMuchWisdom(usize),
    /// The category as given, cut to 80 characters.
    #[error(
        "wisdom category `{0}` must be 1-64 characters of a-z, 0-9 and `-` (e.g. `model-choice`)"
    )]
    BadCategory(String),
    #[error("a wisdom entry has empty content")]
    EmptyContent,
    #[error(
        "a wisdom entry's content takes {0} bytes; at most {max}",
        max = MAX_WISDOM_CONTENT_BYTES
    )]
    ContentTooLong(usize),
    #[error(
        "a wisdom entry's applies-when takes {0} bytes; at most {max}",
        max = MAX_WISDOM_FIELD_BYTES
    )]
    AppliesWhenTooLong(usize),
}

/// Check a knowledge unit a policy returned for `phase`; the host sets `phase` itself.
pub fn check_knowledge_unit(
    mut unit: KnowledgeUnit,
    phase: u32,
) -> Result<KnowledgeUnit, CheckError> {
    unit.phase = phase;
    for (name, len) in [
        ("verdicts", unit.verdicts.len()),
        ("failure-causes", unit.failure_causes.len()),
        ("insights", unit.insights.len()),
    ] {
        if len > MAX_KNOWLEDGE_ITEMS {
            return Err(CheckError::TooManyItems { list: name, len });
        }
    }
    let metrics = unit
        .verdicts
        .iter()
        .map(|v| v.metric)
        .chain([unit.best_metric]);
    if metrics.flatten().any(|m| !m.is_finite()) {
        return Err(CheckError::NonFiniteMetric);
    }
    let size = serde_json::to_vec(&unit).map_or(usize::MAX, |v| v.len());
    if size > MAX_KNOWLEDGE_BYTES {
        return Err(CheckError::KnowledgeTooLarge(size));
    }
    Ok(unit)
}

/// Check the wisdom a policy returned at task end.
pub fn check_wisdom(entries: &[WisdomEntry]) -> Result<(), CheckError> {
    if entries.len() > MAX_WISDOM_PER_RUN {
        return Err(CheckError::TooMuchWisdom(entries.len()));
    }
    entries.iter().try_for_each(check_wisdom_entry)
}

/// Check one wisdom entry (also applied to imports).
pub fn check_wisdom_entry(entry: &WisdomEntry) -> Result<(), CheckError> {
    let category_ok = !entry.category.is_empty()
        && entry.category.len() <= 64
        && entry
            .category
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !category_ok {
        return Err(CheckError::BadCategory(
            entry.category.chars().take(80).collect(),
        ));
    }
    if entry.content.trim().is_empty() {
        return Err(CheckError::EmptyContent);
    }
    if entry.content.len() > MAX_WISDOM_CONTENT_BYTES {
        return Err(CheckError::ContentTooLong(entry.content.len()));
    }
    if entry.applies_when.len() > MAX_WISDOM_FIELD_BYTES {
        return Err(CheckError::AppliesWhenTooLong(entry.applies_when.len()));
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
        let error = check_knowledge_unit(big, 1).unwrap_err().to_string();
        assert!(error.contains("bytes"), "{error}");
        let mut nan = unit();
        nan.best_metric = Some(f64::NAN);
        let error = check_knowledge_unit(nan, 1).unwrap_err().to_string();
        assert!(error.contains("finite"), "{error}");
        let mut many = unit();
        many.insights = vec!["i".into(); MAX_KNOWLEDGE_ITEMS + 1];
        let error = check_knowledge_unit(many, 1).unwrap_err().to_string();
        assert!(error.contains("insights"), "{error}");
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
        let error = check_wisdom_entry(&bad).unwrap_err().to_string();
        assert!(error.contains("a-z"), "{error}");
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
