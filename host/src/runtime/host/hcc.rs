//! `sophon:host/hcc`: the cognitive cache, with each call checked against the plugin's HCC
//! scopes before it reaches the service.

use super::answer;
use super::convert::{Conv, record, unit_enum};
use crate::capability::{CapResult, CapabilityError};
use crate::hcc as cap;
use crate::runtime::bindings::host::sophon::host::{hcc, types};
use crate::runtime::manifest::{Capability, HccScope};
use crate::runtime::state::{PluginState, call};
use std::sync::Arc;

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

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
        let limit = self.limits.host_call_timeout;
        answer(
            call(service, limit, "recording an event", |s| async move {
                s.record_event(event.conv()).await
            })
            .await,
        )
    }

    async fn begin_phase(&mut self, plan: String) -> WitResult<u32> {
        let service = self.hcc_with(HccScope::ExperienceWrite);
        let limit = self.limits.host_call_timeout;
        answer(
            call(service, limit, "beginning a phase", |s| async move {
                s.begin_phase(plan).await
            })
            .await,
        )
    }

    async fn end_phase(&mut self) -> WitResult<Option<hcc::KnowledgeUnit>> {
        let service = self.hcc_with(HccScope::ExperienceWrite);
        let limit = self.limits.host_call_timeout;
        answer(
            call(service, limit, "ending a phase", |s| async move {
                s.end_phase().await
            })
            .await,
        )
    }

    async fn context(&mut self, request: hcc::ContextRequest) -> WitResult<hcc::AssembledContext> {
        let service = self.hcc_with(HccScope::ExperienceRead);
        let limit = self.limits.host_call_timeout;
        answer(
            call(service, limit, "assembling context", |s| async move {
                s.context(request.conv()).await
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
        let limit = self.limits.host_call_timeout;
        answer(
            call(service, limit, "reading events", |s| async move {
                s.events(phase, after, max.min(10_000)).await
            })
            .await,
        )
    }

    async fn knowledge(&mut self) -> WitResult<Vec<hcc::KnowledgeUnit>> {
        let service = self.hcc_with(HccScope::KnowledgeRead);
        let limit = self.limits.host_call_timeout;
        answer(
            call(service, limit, "reading knowledge", |s| async move {
                s.knowledge().await
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
        let limit = self.limits.host_call_timeout;
        answer(
            call(service, limit, "searching the HCC", |s| async move {
                s.search(layer.conv(), query, k.min(1000)).await
            })
            .await,
        )
    }

    async fn stats(&mut self) -> WitResult<hcc::HccStats> {
        let service = self.service(Capability::Hcc, &self.services.hcc);
        let limit = self.limits.host_call_timeout;
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
