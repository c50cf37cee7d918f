//! The Hierarchical Cognitive Cache (`sophon:host/hcc`): record what happened, build prompt
//! context within a token budget, and search knowledge and wisdom.

use crate::Result;
use crate::bindings::host::sophon::host::hcc as wit;

pub use wit::{
    AssembledContext, ContextRequest, ContextSection, Event, EventKind, HccStats, Hit, IdeaVerdict,
    KnowledgeUnit, Layer, Provenance, StoredEvent, TaskDescriptor, Verdict, WisdomEntry,
};

/// Append an event of `kind` to the run's log and return its id.
pub fn record(
    kind: EventKind,
    node: Option<&str>,
    content: &str,
    metric: Option<f64>,
) -> Result<u64> {
    let event = Event {
        kind,
        node: node.map(str::to_owned),
        content: content.to_owned(),
        metric,
    };
    host!(
        wit::record_event(&event).map_err(Into::into),
        crate::testing::with(|h| h.record_event(event))
    )
}

/// Start a phase with its research plan; ends (and promotes) the current one first.
pub fn begin_phase(plan: &str) -> Result<u32> {
    host!(
        wit::begin_phase(plan).map_err(Into::into),
        crate::testing::with(|h| h.begin_phase(plan))
    )
}

/// End the current phase, returning the knowledge unit the promotion policy distilled.
pub fn end_phase() -> Result<Option<KnowledgeUnit>> {
    host!(
        wit::end_phase().map_err(Into::into),
        crate::testing::with(|h| h.end_phase())
    )
}

/// The prompt context by the HCC rules within `budget_tokens` tokens.
pub fn context(budget_tokens: u32, query: Option<&str>) -> Result<AssembledContext> {
    let request = ContextRequest {
        budget_tokens,
        query: query.map(str::to_owned),
        model: None,
    };
    host!(
        wit::context(&request).map_err(Into::into),
        crate::testing::with(|h| h.context(&request))
    )
}

/// Raw events of `phase` (the current one when `None`) after event id `after`.
pub fn events(phase: Option<u32>, after: u64, limit: u32) -> Result<Vec<StoredEvent>> {
    host!(
        wit::events(phase, after, limit).map_err(Into::into),
        crate::testing::with(|h| h.events(phase, after, limit))
    )
}

/// This task's knowledge units, oldest first.
pub fn knowledge() -> Result<Vec<KnowledgeUnit>> {
    host!(
        wit::knowledge().map_err(Into::into),
        crate::testing::with(|h| h.knowledge())
    )
}

/// The `k` entries of `layer` most similar to `query`.
pub fn search(layer: Layer, query: &str, k: u32) -> Result<Vec<Hit>> {
    host!(
        wit::search(layer, query, k).map_err(Into::into),
        crate::testing::with(|h| h.search(layer, query, k))
    )
}

pub fn stats() -> Result<HccStats> {
    host!(
        wit::stats().map_err(Into::into),
        crate::testing::with(|h| h.hcc_stats())
    )
}
