//! [`RunHcc`]: the cognitive cache of one run, backed by the shared [`HccStore`].
//!
//! A `RunHcc` is bound to one run and one competition at construction, so whoever holds it
//! reads and writes that run's events (L1), that competition's knowledge (L2) and the
//! store's wisdom (L3, read-only: wisdom is written only by [`RunHcc::finish`] through the
//! promotion policy). Which of these a plugin may use is the runtime's scope check.
//!
//! Promotion never loses data: a policy that fails or returns something oversized leaves the
//! phase ended without knowledge, its raw events in the log, and a `promotion-error` event
//! saying what happened.
//!
//! What a run writes is bounded: each event or plan by [`MAX_EVENT_BYTES`], all of them
//! together by the run's `max-run-mb` (counted across a resume); past it, writes answer
//! `budget-exhausted` and what the run wrote stays.

use super::config::HccConfigError;
use super::config::{EmbedderChoice, HccConfig};
use super::context::{ContextInputs, PhaseContext, WisdomItem, assemble, render_knowledge};
use super::embed::{Embedder, HashedEmbedder, LlmEmbedder, cosine};
use super::promote::{self, Promoter};
use super::quote::{self, MemoryOrigin};
use super::store::{HccStore, KnowledgeScope, PhaseRecord, StoreError};
use super::tokens::{TokenCache, TokenCounter};
use super::wisdom::{WisdomHit, WisdomQuery, WisdomRecord, descriptor_key, descriptor_text};
use super::{CognitiveCache, HccSettings, MAX_EVENT_BYTES, types::*};
use crate::capability::{CapResult, CapabilityError};
use crate::llm::hub::LlmHub;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why a run's HCC could not be opened from `[hcc]` ([`RunHcc::from_config`]).
#[derive(Debug, thiserror::Error)]
pub enum RunHccError {
    /// A setting out of range.
    #[error(transparent)]
    Config(#[from] HccConfigError),
    /// A model embedder without the LLM providers it embeds with.
    #[error("[hcc] embedder = \"llm\" needs the LLM providers configured")]
    NoHub,
    /// The model embedder could not be built.
    #[error("[hcc] embedder: {source}")]
    Embedder { source: CapabilityError },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run could not be registered in the store.
    #[error(transparent)]
    Open(CapabilityError),
}

/// Most raw events of the current phase that context assembly considers (the newest).
pub const MAX_LIVE_EVENTS: u32 = 500;
/// Most event content context assembly reads from the current phase (the newest events), and
/// again from the events before the first phase: bounds the host's memory and counting work
/// per `context` call whatever a run logged.
pub const MAX_LIVE_BYTES: usize = 8 << 20;
/// Most events one `events` call returns.
pub const MAX_EVENTS_PER_CALL: u32 = 1000;
/// Most event content one `events` call returns (at least one event, whatever its size).
pub const MAX_EVENTS_BYTES: usize = 8 << 20;
/// Most hits one `search` call returns.
pub const MAX_SEARCH_HITS: u32 = 100;
/// Longest content a search hit carries; longer contents are cut head+tail.
pub const HIT_CONTENT_BYTES: usize = 8 * 1024;
/// How many entries are embedded per request when vectors are missing.
const EMBED_BATCH: u32 = 128;

/// Who the run is.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub run_id: String,
    pub competition_id: String,
    pub descriptor: TaskDescriptor,
}

/// What [`RunHcc::finish`] stored.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishReport {
    /// Knowledge of the phase that was still open, if the policy produced some.
    pub knowledge: Option<KnowledgeUnit>,
    /// New wisdom entries (entries the store already held are not repeated).
    pub wisdom: Vec<WisdomRecord>,
}

/// The HCC of one run.
pub struct RunHcc {
    store: Arc<HccStore>,
    spec: RunSpec,
    settings: HccSettings,
    embedder: Arc<dyn Embedder>,
    promoter: Option<Arc<dyn Promoter>>,
    default_model: Option<String>,
    token_caches: Mutex<HashMap<&'static str, Arc<TokenCache>>>,
    /// Bytes of events and plans the run has written (see [`HccStore::run_bytes`]).
    written: AtomicU64,
}

impl RunHcc {
    /// Register (or reopen, to resume) the run in `store`. Retrieval uses the offline
    /// [`HashedEmbedder`] and nothing is promoted until [`RunHcc::with_embedder`] and
    /// [`RunHcc::with_promoter`] say otherwise.
    pub fn open(store: Arc<HccStore>, spec: RunSpec, settings: HccSettings) -> CapResult<RunHcc> {
        store.create_run(&spec.run_id, &spec.competition_id, &spec.descriptor)?;
        let written = AtomicU64::new(store.run_bytes(&spec.run_id)?);
        Ok(RunHcc {
            written,
            store,
            spec,
            settings,
            embedder: Arc::new(HashedEmbedder),
            promoter: None,
            default_model: None,
            token_caches: Mutex::default(),
        })
    }

    /// Open the run in the store that `config` names, with its retrieval settings and
    /// embedder (`llm` embedders use `hub`, which must then be given). Errors name the setting
    /// to fix.
    pub fn from_config(
        config: &HccConfig,
        spec: RunSpec,
        hub: Option<Arc<LlmHub>>,
    ) -> Result<RunHcc, RunHccError> {
        let settings = config.settings()?;
        let embedder: Arc<dyn Embedder> = match config.embedder()? {
            EmbedderChoice::Hashed => Arc::new(HashedEmbedder),
            EmbedderChoice::Llm(alias) => {
                let hub = hub.ok_or(RunHccError::NoHub)?;
                Arc::new(
                    LlmEmbedder::new(hub, alias)
                        .map_err(|source| RunHccError::Embedder { source })?,
                )
            }
        };
        let path = config.store_path();
        let store = HccStore::open(&path)?;
        Ok(RunHcc::open(Arc::new(store), spec, settings)
            .map_err(RunHccError::Open)?
            .with_embedder(embedder))
    }

    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = embedder;
        self
    }

    pub fn with_promoter(mut self, promoter: Arc<dyn Promoter>) -> Self {
        self.promoter = Some(promoter);
        self
    }

    /// Record the run's strategy and promotion policy (`None` keeps what is known): the
    /// provenance its knowledge and wisdom carry.
    pub fn record_plugins(&self, strategy: Option<&str>, policy: Option<&str>) -> CapResult<()> {
        Ok(self
            .store
            .set_run_plugins(&self.spec.run_id, strategy, policy)?)
    }

    /// The model whose tokenizer counts when a context request names none.
    pub fn with_default_model(mut self, model: Option<String>) -> Self {
        self.default_model = model;
        self
    }

    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    pub fn store(&self) -> &Arc<HccStore> {
        &self.store
    }

    /// Retrieve the wisdom that matches this run's task (cosine ≥ δ, at most k, of the same
    /// modality where both say which, never from this competition unless allowed) and
    /// remember it as the run's prefetched wisdom, which every later context shows. Safe to
    /// call again (a resumed run): hits count once per run.
    pub async fn prefetch(&self) -> CapResult<Vec<WisdomHit>> {
        let query = descriptor_key(&self.spec.descriptor);
        // Wisdom from a task of another modality (images for a table) is not prefetched:
        // more candidates are retrieved so that k of the right modality can remain.
        let modality = self.spec.descriptor.modality.trim().to_ascii_lowercase();
        let hits: Vec<WisdomHit> = self
            .retrieve(
                &query,
                self.settings.prefetch_k.saturating_mul(4),
                self.settings.min_similarity,
            )
            .await?
            .into_iter()
            .filter(|h| {
                let theirs = h.record.provenance.descriptor.modality.trim();
                modality.is_empty() || theirs.is_empty() || theirs.eq_ignore_ascii_case(&modality)
            })
            .take(self.settings.prefetch_k as usize)
            .collect();
        let uses: Vec<(String, f32)> = hits
            .iter()
            .map(|h| (h.record.id.clone(), h.score))
            .collect();
        self.store.record_wisdom_uses(&self.spec.run_id, &uses)?;
        Ok(hits)
    }

    /// End the run: close the open phase (promoting it), ask the policy for wisdom from the
    /// whole run and store what passes the checks. Without a promoter only the run's end is
    /// recorded.
    pub async fn finish(&self, best_metric: Option<f64>) -> CapResult<FinishReport> {
        let knowledge = match self.store.end_phase(&self.spec.run_id)? {
            Some(phase) => self.promote_or_note(phase).await?,
            None => None,
        };
        let mut wisdom = Vec::new();
        if let Some(promoter) = &self.promoter {
            let last_phase = self.store.run(&self.spec.run_id)?.current_phase;
            let final_events =
                self.store
                    .events(&self.spec.run_id, Some(last_phase), 0, None, u32::MAX)?;
            let trace = RunTrace {
                competition_id: self.spec.competition_id.clone(),
                descriptor: self.spec.descriptor.clone(),
                knowledge: self.run_knowledge()?,
                best_metric: best_metric.filter(|m| m.is_finite()),
                final_events: promote::trace_events(final_events),
            };
            match promoter.on_task_end(trace).await {
                Ok(entries) => match promote::check_wisdom(&entries) {
                    Ok(()) => {
                        wisdom = self.store.add_wisdom(
                            &self.spec.competition_id,
                            &self.spec.run_id,
                            &self.spec.descriptor,
                            &entries,
                        )?;
                    }
                    Err(e) => self.note_promotion_error(&format!(
                        "the promotion policy's wisdom was not stored: {e}"
                    ))?,
                },
                Err(e) => self.note_promotion_error(&format!(
                    "the promotion policy failed at task end, so no wisdom was stored: {e}"
                ))?,
            }
            // Embed now so the next run finds them; if the embedder is down, the next
            // prefetch embeds them instead.
            if let Err(e) = self.embed_missing().await {
                tracing::warn!(run = %self.spec.run_id, "embedding new wisdom failed: {e}");
            }
        }
        self.store.finish_run(&self.spec.run_id, best_metric)?;
        Ok(FinishReport { knowledge, wisdom })
    }

    /// Wisdom most similar to `query`: entries without a vector from this embedder get one
    /// first.
    async fn retrieve(&self, query: &str, k: u32, min_score: f32) -> CapResult<Vec<WisdomHit>> {
        self.embed_missing().await?;
        let vector = self
            .embedder
            .embed(&[query.to_string()])
            .await?
            .pop()
            .unwrap_or_default();
        let embedder = self.embedder.id();
        let exclude =
            (!self.settings.allow_same_competition).then_some(self.spec.competition_id.as_str());
        Ok(self.store.search_wisdom(&WisdomQuery {
            embedder: &embedder,
            vector: &vector,
            k: k as usize,
            min_score,
            exclude_competition: exclude,
        })?)
    }

    async fn embed_missing(&self) -> CapResult<()> {
        let embedder = self.embedder.id();
        loop {
            let missing = self.store.wisdom_without_vectors(&embedder, EMBED_BATCH)?;
            if missing.is_empty() {
                return Ok(());
            }
            let keys: Vec<String> = missing.iter().map(|(_, key)| key.clone()).collect();
            let vectors = self.embedder.embed(&keys).await?;
            let rows: Vec<(i64, Vec<f32>)> = missing
                .into_iter()
                .map(|(seq, _)| seq)
                .zip(vectors)
                .collect();
            self.store.put_wisdom_vectors(&embedder, &rows)?;
        }
    }

    /// The knowledge units of `scope`, without the runs they came from.
    fn units(&self, scope: KnowledgeScope<'_>) -> CapResult<Vec<KnowledgeUnit>> {
        Ok(self
            .store
            .knowledge(scope)?
            .into_iter()
            .map(|(_, unit)| unit)
            .collect())
    }

    fn run_knowledge(&self) -> CapResult<Vec<KnowledgeUnit>> {
        self.units(KnowledgeScope::Run(&self.spec.run_id))
    }

    /// Distil an ended phase; `Err` only when the store fails, never when the policy does.
    async fn promote_or_note(&self, phase: PhaseRecord) -> CapResult<Option<KnowledgeUnit>> {
        match self.promote(&phase).await {
            Ok(unit) => Ok(unit),
            Err(e) => {
                self.note_promotion_error(&e.to_string())?;
                Ok(None)
            }
        }
    }

    async fn promote(&self, phase: &PhaseRecord) -> CapResult<Option<KnowledgeUnit>> {
        let Some(promoter) = &self.promoter else {
            return Ok(None);
        };
        let events = self.store.events(
            &self.spec.run_id,
            Some(phase.phase),
            0,
            phase.ended_after,
            u32::MAX,
        )?;
        let trace = PhaseTrace {
            competition_id: self.spec.competition_id.clone(),
            descriptor: self.spec.descriptor.clone(),
            phase: phase.phase,
            plan: phase.plan.clone(),
            events: promote::trace_events(events),
        };
        // The strategy waits on this: the operator's bound keeps a slow policy (its model)
        // from holding the search up.
        let limit = self.settings.promotion_timeout;
        let unit = tokio::time::timeout(limit, promoter.on_phase_end(trace))
            .await
            .map_err(|_| {
                CapabilityError::Timeout(format!(
                    "the promotion policy took more than {} s at the end of phase {} \
                     ([hcc] promotion-timeout-secs); the phase ended without knowledge (its raw \
                     events stay in the log)",
                    crate::units::seconds(limit),
                    phase.phase
                ))
            })?
            .map_err(|e| {
                CapabilityError::Upstream(format!(
                    "the promotion policy failed at the end of phase {}: {e}; the phase ended \
                     without knowledge (its raw events stay in the log)",
                    phase.phase
                ))
            })?;
        let Some(unit) = unit else {
            return Ok(None);
        };
        let unit = promote::check_knowledge_unit(unit, phase.phase).map_err(|e| {
            CapabilityError::MalformedReply(format!(
                "the promotion policy's knowledge for phase {} was not stored: {e}",
                phase.phase
            ))
        })?;
        self.store.put_knowledge(&self.spec.run_id, &unit)?;
        Ok(Some(unit))
    }

    fn note_promotion_error(&self, message: &str) -> CapResult<()> {
        tracing::warn!(run = %self.spec.run_id, "{message}");
        self.store.append_event(
            &self.spec.run_id,
            &Event {
                kind: EventKind::Other("promotion-error".into()),
                node: None,
                content: message.to_string(),
                metric: None,
            },
        )?;
        Ok(())
    }

    fn token_cache(&self, model: Option<&str>) -> Arc<TokenCache> {
        let counter = TokenCounter::for_model(model.or(self.default_model.as_deref()));
        let mut caches = self.token_caches.lock().unwrap_or_else(|p| p.into_inner());
        caches
            .entry(counter.encoding())
            .or_insert_with(|| Arc::new(TokenCache::new(counter)))
            .clone()
    }

    /// What the context is assembled from, read from the store.
    async fn context_inputs(&self, query: Option<&str>) -> CapResult<ContextInputs> {
        let run = &self.spec.run_id;
        let task = match self.store.task_event(run)? {
            Some(e) => e.event.content,
            None => descriptor_text(&self.spec.descriptor),
        };
        let wisdom = match query {
            Some(q) => {
                self.retrieve(q, self.settings.prefetch_k, self.settings.min_similarity)
                    .await?
            }
            None => self.store.wisdom_used_by(run)?,
        };
        let phases = self.store.phases(run)?;
        let mut views = self.phase_views(&phases, query)?;
        let current = views.pop();
        let (opening, live) = self.raw_events(phases.last())?;
        let not_task = |e: &StoredEvent| e.event.kind != EventKind::Task;
        Ok(ContextInputs {
            task,
            wisdom: wisdom.into_iter().map(wisdom_item).collect(),
            opening: opening.into_iter().filter(not_task).collect(),
            completed: views,
            current,
            live: live.into_iter().filter(not_task).collect(),
        })
    }

    /// Each of `phases` with its plan, its knowledge once it ended, and (with a `query`) how
    /// relevant both are to it.
    fn phase_views(
        &self,
        phases: &[PhaseRecord],
        query: Option<&str>,
    ) -> CapResult<Vec<PhaseContext>> {
        let mut knowledge: HashMap<u32, (KnowledgeUnit, MemoryOrigin)> = self
            .store
            .knowledge_records(KnowledgeScope::Run(&self.spec.run_id))?
            .into_iter()
            .map(|k| {
                let origin = k.origin();
                (k.unit.phase, (k.unit, origin))
            })
            .collect();
        let query_vector = query.map(|q| HashedEmbedder.vector(q));
        Ok(phases
            .iter()
            .map(|p| {
                let (unit, origin) = knowledge.remove(&p.phase).unzip();
                let relevance = query_vector.as_ref().map_or(0.0, |q| {
                    let text = match &unit {
                        Some(u) => format!("{}\n{}", p.plan, render_knowledge(u)),
                        None => p.plan.clone(),
                    };
                    cosine(q, &HashedEmbedder.vector(&text))
                });
                PhaseContext {
                    phase: p.phase,
                    plan: p.plan.clone(),
                    // A still-open phase has no knowledge yet, even if a resumed run left some.
                    knowledge: unit.filter(|_| p.ended_after.is_some()),
                    origin,
                    relevance,
                }
            })
            .collect())
    }

    /// The raw events the context may show: the opening's (before the first phase) and the
    /// newest of the `last` phase since it ended (or began); before any phase, all are live.
    fn raw_events(
        &self,
        last: Option<&PhaseRecord>,
    ) -> CapResult<(Vec<StoredEvent>, Vec<StoredEvent>)> {
        let Some(last) = last else {
            return Ok((Vec::new(), self.newest_events(0, 0)?));
        };
        let opening = self.store.events_within(
            &self.spec.run_id,
            0,
            0,
            MAX_LIVE_EVENTS,
            MAX_LIVE_BYTES,
            false,
        )?;
        let after = last.ended_after.unwrap_or(last.plan_event);
        Ok((opening, self.newest_events(last.phase, after)?))
    }

    /// The newest events of `phase` with id > `after` (at most [`MAX_LIVE_EVENTS`] of them,
    /// [`MAX_LIVE_BYTES`] of content), oldest first.
    fn newest_events(&self, phase: u32, after: u64) -> CapResult<Vec<StoredEvent>> {
        Ok(self.store.events_within(
            &self.spec.run_id,
            phase,
            after,
            MAX_LIVE_EVENTS,
            MAX_LIVE_BYTES,
            true,
        )?)
    }

    fn current_phase(&self) -> CapResult<u32> {
        Ok(self.store.run(&self.spec.run_id)?.current_phase)
    }
}

impl RunHcc {
    /// Counts `bytes` against the run's `max-run-mb`, or refuses them (counting nothing).
    fn charge(&self, what: &str, bytes: u64) -> CapResult<()> {
        let limit = self.settings.max_run_bytes;
        self.written
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |written| {
                written.checked_add(bytes).filter(|total| *total <= limit)
            })
            .map(drop)
            .map_err(|written| {
                CapabilityError::BudgetExhausted(format!(
                    "{what} ({bytes} bytes) would take this run's HCC log past its {} MiB \
                     ([hcc] max-run-mb; {written} bytes written): record summaries, not raw \
                     output",
                    limit >> 20
                ))
            })
    }
}

fn check_size(what: &str, text: &str) -> CapResult<()> {
    if text.len() > MAX_EVENT_BYTES {
        return Err(CapabilityError::TooLarge(format!(
            "{what} is {} bytes; at most {MAX_EVENT_BYTES} bytes are stored (summarise or truncate it)",
            text.len()
        )));
    }
    Ok(())
}

/// A hit's content: stripped of control text and markers ([`quote::clean`]), cut head+tail.
fn hit_content(text: &str) -> String {
    promote::cut_bytes(&quote::clean(text, usize::MAX), HIT_CONTENT_BYTES)
}

/// The `k` best of `scored` (score, then order of appearance), as hits.
fn top_hits(mut scored: Vec<(f32, Hit)>, k: u32) -> Vec<Hit> {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(k as usize);
    scored.into_iter().map(|(_, h)| h).collect()
}

#[async_trait::async_trait]
impl CognitiveCache for RunHcc {
    async fn record_event(&self, event: Event) -> CapResult<u64> {
        check_size("the event's content", &event.content)?;
        self.charge("the event", event.content.len() as u64)?;
        Ok(self.store.append_event(&self.spec.run_id, &event)?.id)
    }

    async fn begin_phase(&self, plan: String) -> CapResult<u32> {
        check_size("the plan", &plan)?;
        if plan.trim().is_empty() {
            return Err(CapabilityError::InvalidArgument(
                "a phase needs a research plan: pass its text to begin-phase".into(),
            ));
        }
        // Stored twice: as the phase's `plan` event and in the phase itself.
        self.charge("the plan", 2 * plan.len() as u64)?;
        if let Some(open) = self.store.end_phase(&self.spec.run_id)? {
            self.promote_or_note(open).await?;
        }
        Ok(self.store.begin_phase(&self.spec.run_id, &plan)?.phase)
    }

    async fn end_phase(&self) -> CapResult<Option<KnowledgeUnit>> {
        let Some(phase) = self.store.end_phase(&self.spec.run_id)? else {
            return Err(CapabilityError::InvalidArgument(
                "no phase is open: begin-phase starts one (and ends the previous one itself)"
                    .into(),
            ));
        };
        // A failing policy is the operator's problem, not the strategy's: like begin-phase,
        // the phase ends without knowledge and the log says why.
        self.promote_or_note(phase).await
    }

    async fn context(&self, request: ContextRequest) -> CapResult<AssembledContext> {
        let tokens = self.token_cache(request.model.as_deref());
        let inputs = self.context_inputs(request.query.as_deref()).await?;
        assemble(&inputs, request.budget_tokens, &tokens)
    }

    async fn events(
        &self,
        phase: Option<u32>,
        after: u64,
        limit: u32,
    ) -> CapResult<Vec<StoredEvent>> {
        let phase = match phase {
            Some(p) => p,
            None => self.current_phase()?,
        };
        // Read in pages and stop once the contents pass MAX_EVENTS_BYTES: the caller pages
        // on with `after`, and the host never holds a thousand megabyte events at once.
        let mut out: Vec<StoredEvent> = Vec::new();
        let (mut bytes, mut after, mut left) = (0usize, after, limit.min(MAX_EVENTS_PER_CALL));
        while left > 0 && bytes < MAX_EVENTS_BYTES {
            let page =
                self.store
                    .events(&self.spec.run_id, Some(phase), after, None, left.min(16))?;
            let Some(last) = page.last() else { break };
            after = last.id;
            left -= page.len() as u32;
            for event in page {
                if !out.is_empty() && bytes + event.event.content.len() > MAX_EVENTS_BYTES {
                    return Ok(out);
                }
                bytes += event.event.content.len();
                out.push(event);
            }
        }
        Ok(out)
    }

    /// Every run's knowledge on this competition, stripped of control text and markers and
    /// capped (other runs' strategies wrote it; see [`quote`]).
    async fn knowledge(&self) -> CapResult<Vec<KnowledgeUnit>> {
        Ok(self
            .units(KnowledgeScope::Competition(&self.spec.competition_id))?
            .into_iter()
            .map(quote::clean_knowledge)
            .collect())
    }

    async fn search(&self, layer: Layer, query: String, k: u32) -> CapResult<Vec<Hit>> {
        let k = k.min(MAX_SEARCH_HITS);
        if k == 0 {
            return Ok(Vec::new());
        }
        match layer {
            Layer::Wisdom => Ok(self
                .retrieve(&query, k, -1.0)
                .await?
                .into_iter()
                .map(|h| Hit {
                    layer: Layer::Wisdom,
                    id: h.record.id,
                    content: hit_content(&h.record.entry.content),
                    score: h.score,
                    provenance: Some(h.record.provenance),
                })
                .collect()),
            Layer::Knowledge => {
                let q = HashedEmbedder.vector(&query);
                let records = self
                    .store
                    .knowledge_records(KnowledgeScope::Competition(&self.spec.competition_id))?;
                let scored = records
                    .into_iter()
                    .map(|k| {
                        let text = render_knowledge(&k.unit);
                        let score = cosine(&q, &HashedEmbedder.vector(&text));
                        let hit = Hit {
                            layer: Layer::Knowledge,
                            id: format!("{}/phase-{}", k.run_id, k.unit.phase),
                            content: hit_content(&text),
                            score,
                            provenance: Some(Provenance {
                                competition_id: k.competition_id,
                                run_id: k.run_id,
                                descriptor: self.spec.descriptor.clone(),
                                hits: 0,
                                mean_score_of_users: None,
                                strategy: k.strategy,
                                policy: k.policy,
                            }),
                        };
                        (score, hit)
                    })
                    .collect();
                Ok(top_hits(scored, k))
            }
            Layer::Experience => {
                let q = HashedEmbedder.vector(&query);
                let events = self
                    .store
                    .events(&self.spec.run_id, None, 0, None, u32::MAX)?;
                let scored = events
                    .into_iter()
                    .map(|e| {
                        let score = cosine(&q, &HashedEmbedder.vector(&e.event.content));
                        let hit = Hit {
                            layer: Layer::Experience,
                            id: e.id.to_string(),
                            content: hit_content(&e.event.content),
                            score,
                            provenance: None,
                        };
                        (score, hit)
                    })
                    .collect();
                Ok(top_hits(scored, k))
            }
        }
    }

    async fn stats(&self) -> CapResult<HccStats> {
        let run = self.store.run(&self.spec.run_id)?;
        Ok(HccStats {
            run_id: run.run_id,
            current_phase: run.current_phase,
            events: run.events,
            knowledge_units: self.run_knowledge()?.len() as u32,
            wisdom_entries: self.store.wisdom_count()?,
            wisdom_prefetched: self.store.wisdom_used_by(&self.spec.run_id)?.len() as u32,
        })
    }
}

/// A wisdom hit as the context shows it, with where it came from.
fn wisdom_item(hit: WisdomHit) -> WisdomItem {
    let p = hit.record.provenance;
    WisdomItem {
        entry: hit.record.entry,
        score: hit.score,
        origin: MemoryOrigin {
            id: hit.record.id,
            run_id: p.run_id,
            competition_id: p.competition_id,
            strategy: p.strategy,
            policy: p.policy,
            created_ms: hit.record.created_ms,
        },
    }
}
