//! `sophon:host/hcc`: the cognitive cache, with each call checked against the plugin's HCC
//! scopes, and its texts against their size limits, before it reaches the service (and its
//! journal). Reads and context assembly (SQLite, token counting, scoring) run off the async
//! executor ([`off_executor`]) within the call's deadline.

use super::answer;
use super::convert::{Conv, record, unit_enum};
use crate::capability::work::{Cancel, offload};
use crate::capability::{CapResult, CapabilityError};
use crate::hcc as cap;
use crate::runtime::bindings::host::sophon::host::{hcc, types};
use crate::runtime::manifest::{Capability, HccScope};
use crate::runtime::state::{PluginState, call};
use std::sync::Arc;

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

/// Refuse `text` (the plugin's `what`) if it is over `limit` bytes.
fn check_len(what: &str, text: &str, limit: usize) -> CapResult<()> {
    if text.len() > limit {
        let fix = if limit <= cap::MAX_NAME_BYTES {
            "use a shorter name"
        } else {
            "summarise or truncate it"
        };
        return Err(CapabilityError::TooLarge(format!(
            "{what} is {} bytes; the HCC accepts at most {limit} bytes ({fix})",
            text.len()
        )));
    }
    Ok(())
}

fn check_event(event: &hcc::Event) -> CapResult<()> {
    check_len("the event's content", &event.content, cap::MAX_EVENT_BYTES)?;
    check_len(
        "the event's node",
        event.node.as_deref().unwrap_or_default(),
        cap::MAX_NAME_BYTES,
    )?;
    if let hcc::EventKind::Other(name) = &event.kind {
        check_len("the event kind's name", name, cap::MAX_NAME_BYTES)?;
    }
    Ok(())
}

/// Run an HCC call on the blocking pool (its SQLite and CPU work stay off the executor),
/// dropping it at its next await once the caller has stopped waiting.
async fn off_executor<T, F>(operation: F) -> CapResult<T>
where
    T: Send + 'static,
    F: Future<Output = CapResult<T>> + Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    offload(move |cancel| {
        handle.block_on(async {
            tokio::select! {
                result = operation => result,
                () = until_cancelled(cancel) => Err(CapabilityError::Cancelled(
                    "the caller stopped waiting".into(),
                )),
            }
        })
    })
    .await
}

async fn until_cancelled(cancel: &Cancel) {
    while !cancel.is_set() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

impl PluginState {
    /// The HCC service, if the plugin holds `scope`.
    fn hcc_with(&self, scope: HccScope) -> CapResult<Arc<dyn cap::CognitiveCache>> {
        let service = self.service(Capability::Hcc, &self.services.hcc)?;
        if !self.identity.grants.hcc_allows(scope) {
            return Err(CapabilityError::NotGranted(format!(
                "plugin `{}` lacks HCC scope `{}`: declare it in [capabilities.hcc] scopes in its plugin.toml \
                 and grant it under [plugins.{}.grants.hcc] in sophon.toml",
                self.identity.name,
                scope.as_str(),
                self.identity.name
            )));
        }
        Ok(service)
    }
}

impl hcc::Host for PluginState {
    async fn record_event(&mut self, event: hcc::Event) -> WitResult<u64> {
        let service = self.hcc_with(HccScope::ExperienceWrite);
        let limit = self.deadline();
        answer(
            call(service, limit, "recording an event", |s| async move {
                check_event(&event)?;
                s.record_event(event.conv()).await
            })
            .await,
        )
    }

    async fn begin_phase(&mut self, plan: String) -> WitResult<u32> {
        let service = self.hcc_with(HccScope::ExperienceWrite);
        let limit = self.deadline();
        answer(
            call(service, limit, "beginning a phase", |s| async move {
                check_len("the plan", &plan, cap::MAX_EVENT_BYTES)?;
                s.begin_phase(plan).await
            })
            .await,
        )
    }

    async fn end_phase(&mut self) -> WitResult<Option<hcc::KnowledgeUnit>> {
        let service = self.hcc_with(HccScope::ExperienceWrite);
        let limit = self.deadline();
        answer(
            call(service, limit, "ending a phase", |s| async move {
                s.end_phase().await
            })
            .await,
        )
    }

    async fn context(&mut self, request: hcc::ContextRequest) -> WitResult<hcc::AssembledContext> {
        let service = self.hcc_with(HccScope::ExperienceRead);
        let limit = self.deadline();
        answer(
            call(service, limit, "assembling context", |s| async move {
                check_len(
                    "the context query",
                    request.query.as_deref().unwrap_or_default(),
                    cap::MAX_QUERY_BYTES,
                )?;
                check_len(
                    "the context model",
                    request.model.as_deref().unwrap_or_default(),
                    cap::MAX_NAME_BYTES,
                )?;
                off_executor(async move { s.context(request.conv()).await }).await
            })
            .await,
        )
    }

    async fn events(
        &mut self,
        phase: Option<u32>,
        after: u64,
        max: u32,
    ) -> WitResult<Vec<hcc::StoredEvent>> {
        let service = self.hcc_with(HccScope::ExperienceRead);
        let limit = self.deadline();
        answer(
            call(service, limit, "reading events", |s| async move {
                off_executor(async move { s.events(phase, after, max.min(10_000)).await }).await
            })
            .await,
        )
    }

    async fn knowledge(&mut self) -> WitResult<Vec<hcc::KnowledgeUnit>> {
        let service = self.hcc_with(HccScope::KnowledgeRead);
        let limit = self.deadline();
        answer(
            call(service, limit, "reading knowledge", |s| async move {
                off_executor(async move { s.knowledge().await }).await
            })
            .await,
        )
    }

    async fn search(
        &mut self,
        layer: hcc::Layer,
        query: String,
        k: u32,
    ) -> WitResult<Vec<hcc::Hit>> {
        let scope = match layer {
            hcc::Layer::Experience => HccScope::ExperienceRead,
            hcc::Layer::Knowledge => HccScope::KnowledgeRead,
            hcc::Layer::Wisdom => HccScope::WisdomRead,
        };
        let service = self.hcc_with(scope);
        let limit = self.deadline();
        answer(
            call(service, limit, "searching the HCC", |s| async move {
                check_len("the search query", &query, cap::MAX_QUERY_BYTES)?;
                off_executor(async move { s.search(layer.conv(), query, k.min(1000)).await }).await
            })
            .await,
        )
    }

    async fn stats(&mut self) -> WitResult<hcc::HccStats> {
        let service = self.service(Capability::Hcc, &self.services.hcc);
        let limit = self.deadline();
        answer(
            call(service, limit, "reading HCC stats", |s| async move {
                s.stats().await
            })
            .await,
        )
    }
}

unit_enum!(
    hcc::Layer,
    cap::Layer {
        Experience,
        Knowledge,
        Wisdom
    }
);
unit_enum!(
    hcc::Verdict,
    cap::Verdict {
        Worked,
        Failed,
        Inconclusive
    }
);
record!(
    hcc::Event,
    cap::Event {
        kind,
        node,
        content,
        metric
    }
);
record!(
    hcc::StoredEvent,
    cap::StoredEvent {
        id,
        phase,
        time_ms,
        event
    }
);
record!(
    hcc::IdeaVerdict,
    cap::IdeaVerdict {
        idea,
        verdict,
        metric,
        note
    }
);
record!(
    hcc::KnowledgeUnit,
    cap::KnowledgeUnit {
        phase,
        summary,
        verdicts,
        failure_causes,
        insights,
        best_approach,
        best_metric
    }
);
record!(
    hcc::TaskDescriptor,
    cap::TaskDescriptor {
        modality,
        task_type,
        metric,
        data_size,
        summary
    }
);
record!(
    hcc::WisdomEntry,
    cap::WisdomEntry {
        category,
        content,
        applies_when
    }
);
record!(cap::Provenance => hcc::Provenance {
    competition_id, run_id, descriptor, hits, mean_score_of_users
});
record!(cap::Hit => hcc::Hit { layer, id, content, score, provenance });
record!(hcc::ContextRequest => cap::ContextRequest { budget_tokens, query, model });
record!(cap::ContextSection => hcc::ContextSection { kind, phase, tokens, truncated });
record!(cap::AssembledContext => hcc::AssembledContext { text, tokens, sections, evicted_events });
record!(cap::HccStats => hcc::HccStats {
    run_id, current_phase, events, knowledge_units, wisdom_entries, wisdom_prefetched
});

impl Conv<cap::EventKind> for hcc::EventKind {
    fn conv(self) -> cap::EventKind {
        match self {
            hcc::EventKind::Task => cap::EventKind::Task,
            hcc::EventKind::Plan => cap::EventKind::Plan,
            hcc::EventKind::Code => cap::EventKind::Code,
            hcc::EventKind::Execution => cap::EventKind::Execution,
            hcc::EventKind::Review => cap::EventKind::Review,
            hcc::EventKind::Submission => cap::EventKind::Submission,
            hcc::EventKind::Insight => cap::EventKind::Insight,
            hcc::EventKind::Other(name) => cap::EventKind::Other(name),
        }
    }
}

impl Conv<hcc::EventKind> for cap::EventKind {
    fn conv(self) -> hcc::EventKind {
        match self {
            cap::EventKind::Task => hcc::EventKind::Task,
            cap::EventKind::Plan => hcc::EventKind::Plan,
            cap::EventKind::Code => hcc::EventKind::Code,
            cap::EventKind::Execution => hcc::EventKind::Execution,
            cap::EventKind::Review => hcc::EventKind::Review,
            cap::EventKind::Submission => hcc::EventKind::Submission,
            cap::EventKind::Insight => hcc::EventKind::Insight,
            cap::EventKind::Other(name) => hcc::EventKind::Other(name),
        }
    }
}
