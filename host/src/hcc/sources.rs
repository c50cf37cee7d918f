//! Memory by source run: which strategy and policy a run used, the knowledge (L2) and wisdom
//! (L3) each run left with that provenance, and deleting what one run left (`sophon hcc
//! sources`, `sophon hcc delete --source-run`).
//!
//! Deleting never touches the event log (L1): a run's events stay readable with `sophon hcc
//! show --run`. A deleted wisdom entry disappears from retrieval at once, in this process and
//! in every other one sharing the store.

use super::quote::MemoryOrigin;
use super::store::{HccStore, KnowledgeScope, SqlContext, StoreError, StoreResult};
use super::types::KnowledgeUnit;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A knowledge unit with where it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KnowledgeRecord {
    pub run_id: String,
    pub competition_id: String,
    pub strategy: Option<String>,
    pub policy: Option<String>,
    pub created_ms: u64,
    pub unit: KnowledgeUnit,
}

impl KnowledgeRecord {
    pub fn origin(&self) -> MemoryOrigin {
        MemoryOrigin {
            id: String::new(),
            run_id: self.run_id.clone(),
            competition_id: self.competition_id.clone(),
            strategy: self.strategy.clone(),
            policy: self.policy.clone(),
            created_ms: self.created_ms,
        }
    }
}

/// A run that left knowledge or wisdom in the store.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceRun {
    pub run_id: String,
    pub competition_id: String,
    pub strategy: Option<String>,
    pub policy: Option<String>,
    pub knowledge_units: u64,
    pub wisdom_entries: u64,
    /// When its oldest and newest entry was stored (Unix ms).
    pub first_ms: u64,
    pub last_ms: u64,
    /// Whether the run itself is in this store (imported wisdom's run usually is not).
    pub run_in_store: bool,
}

/// What [`HccStore::delete_source_run`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeletedMemory {
    pub knowledge_units: u64,
    pub wisdom_entries: u64,
}

impl HccStore {
    /// Record which strategy and promotion policy run `run_id` uses (`None` keeps what is
    /// stored). Its knowledge and the wisdom it leaves carry them as provenance.
    pub fn set_run_plugins(
        &self,
        run_id: &str,
        strategy: Option<&str>,
        policy: Option<&str>,
    ) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute(
                "UPDATE runs SET strategy = COALESCE(?2, strategy), policy = COALESCE(?3, policy)
                 WHERE id = ?1",
                params![run_id, strategy, policy],
            )
            .ctx("recording a run's plugins")?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "no run `{run_id}` in the HCC store"
            )));
        }
        Ok(())
    }

    /// The strategy and policy of run `run_id`, where known (`(None, None)` for a run the
    /// store does not hold).
    pub fn run_plugins(&self, run_id: &str) -> StoreResult<(Option<String>, Option<String>)> {
        Ok(self
            .conn()
            .query_row(
                "SELECT strategy, policy FROM runs WHERE id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("reading a run's plugins")?
            .unwrap_or((None, None)))
    }

    /// Knowledge units of `scope` (as [`HccStore::knowledge`] orders them) with their
    /// provenance.
    pub fn knowledge_records(
        &self,
        scope: KnowledgeScope<'_>,
    ) -> StoreResult<Vec<KnowledgeRecord>> {
        let (filter, key) = match scope {
            KnowledgeScope::Run(run) => ("k.run_id = ?1 ORDER BY k.phase", run),
            KnowledgeScope::Competition(c) => (
                "k.competition_id = ?1 ORDER BY k.created_ms, k.run_id, k.phase",
                c,
            ),
        };
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT k.run_id, k.competition_id, r.strategy, r.policy, k.created_ms, k.unit
                 FROM knowledge k LEFT JOIN runs r ON r.id = k.run_id WHERE {filter}"
            ))
            .ctx("reading knowledge")?;
        let rows = stmt
            .query_map([key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .ctx("reading knowledge")?;
        let mut records = Vec::new();
        for row in rows {
            let (run_id, competition_id, strategy, policy, created, json) =
                row.ctx("reading knowledge")?;
            let unit = serde_json::from_str(&json).map_err(|e| {
                StoreError::Invalid(format!(
                    "a stored knowledge unit of run `{run_id}` is corrupt: {e}"
                ))
            })?;
            records.push(KnowledgeRecord {
                run_id,
                competition_id,
                strategy,
                policy,
                created_ms: created.max(0) as u64,
                unit,
            });
        }
        Ok(records)
    }

    /// Every run that left knowledge or wisdom, newest last entry first.
    pub fn memory_sources(&self) -> StoreResult<Vec<SourceRun>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "WITH m AS (
                     SELECT run_id, competition_id, NULL AS strategy, NULL AS policy,
                            1 AS knowledge, 0 AS wisdom, created_ms FROM knowledge
                     UNION ALL
                     SELECT run_id, competition_id, strategy, policy, 0, 1, created_ms FROM wisdom
                 )
                 SELECT m.run_id, MIN(m.competition_id), COALESCE(r.strategy, MAX(m.strategy)),
                        COALESCE(r.policy, MAX(m.policy)), SUM(m.knowledge), SUM(m.wisdom),
                        MIN(m.created_ms), MAX(m.created_ms), r.id IS NOT NULL
                 FROM m LEFT JOIN runs r ON r.id = m.run_id
                 GROUP BY m.run_id
                 ORDER BY MAX(m.created_ms) DESC, m.run_id",
            )
            .ctx("listing memory by source run")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SourceRun {
                    run_id: r.get(0)?,
                    competition_id: r.get(1)?,
                    strategy: r.get(2)?,
                    policy: r.get(3)?,
                    knowledge_units: r.get::<_, i64>(4)?.max(0) as u64,
                    wisdom_entries: r.get::<_, i64>(5)?.max(0) as u64,
                    first_ms: r.get::<_, i64>(6)?.max(0) as u64,
                    last_ms: r.get::<_, i64>(7)?.max(0) as u64,
                    run_in_store: r.get(8)?,
                })
            })
            .ctx("listing memory by source run")?;
        rows.collect::<Result<_, _>>()
            .ctx("listing memory by source run")
    }

    /// Delete the knowledge units and wisdom entries run `run_id` left (with the wisdom's
    /// vectors and use records), in one transaction. The run's event log stays. Deleting a
    /// run that left nothing deletes nothing.
    pub fn delete_source_run(&self, run_id: &str) -> StoreResult<DeletedMemory> {
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("deleting a run's memory")?;
        let of_run = "SELECT seq FROM wisdom WHERE run_id = ?1";
        tx.execute(
            &format!("DELETE FROM wisdom_uses WHERE wisdom_seq IN ({of_run})"),
            [run_id],
        )
        .ctx("deleting a run's memory")?;
        tx.execute(
            &format!("DELETE FROM wisdom_vectors WHERE wisdom_seq IN ({of_run})"),
            [run_id],
        )
        .ctx("deleting a run's memory")?;
        let wisdom = tx
            .execute("DELETE FROM wisdom WHERE run_id = ?1", [run_id])
            .ctx("deleting a run's memory")?;
        let knowledge = tx
            .execute("DELETE FROM knowledge WHERE run_id = ?1", [run_id])
            .ctx("deleting a run's memory")?;
        tx.commit().ctx("deleting a run's memory")?;
        Ok(DeletedMemory {
            knowledge_units: knowledge as u64,
            wisdom_entries: wisdom as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hcc::types::{TaskDescriptor, WisdomEntry};

    fn entry(content: &str) -> WisdomEntry {
        WisdomEntry {
            category: "model-choice".into(),
            content: content.into(),
            applies_when: "tabular tasks".into(),
        }
    }

    fn unit(phase: u32) -> KnowledgeUnit {
        KnowledgeUnit {
            phase,
            summary: "boosting won".into(),
            verdicts: vec![],
            failure_causes: vec![],
            insights: vec![],
            best_approach: None,
            best_metric: None,
        }
    }

    #[test]
    fn memory_is_listed_and_deleted_by_source_run_with_its_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let store = HccStore::open(&dir.path().join("hcc.sqlite")).unwrap();
        let d = TaskDescriptor::default();
        for (run, competition) in [("r1", "c1"), ("r2", "c2")] {
            store.create_run(run, competition, &d).unwrap();
        }
        store
            .set_run_plugins("r1", Some("noisy"), Some("top-k"))
            .unwrap();
        store.set_run_plugins("r1", None, None).unwrap();
        assert!(store.set_run_plugins("nope", Some("x"), None).is_err());
        store.put_knowledge("r1", &unit(1)).unwrap();
        let added = store
            .add_wisdom("c1", "r1", &d, &[entry("a"), entry("b")])
            .unwrap();
        assert_eq!(added[0].provenance.strategy.as_deref(), Some("noisy"));
        assert_eq!(added[0].provenance.policy.as_deref(), Some("top-k"));
        store.add_wisdom("c2", "r2", &d, &[entry("c")]).unwrap();
        let k = store.knowledge_records(KnowledgeScope::Run("r1")).unwrap();
        assert_eq!(k[0].origin().strategy.as_deref(), Some("noisy"));

        let sources = store.memory_sources().unwrap();
        let r1 = sources.iter().find(|s| s.run_id == "r1").unwrap();
        assert_eq!((r1.knowledge_units, r1.wisdom_entries), (1, 2));
        assert_eq!(r1.strategy.as_deref(), Some("noisy"));
        assert!(r1.run_in_store);
        assert_eq!(sources.len(), 2);

        let deleted = store.delete_source_run("r1").unwrap();
        assert_eq!(
            deleted,
            DeletedMemory {
                knowledge_units: 1,
                wisdom_entries: 2
            }
        );
        assert_eq!(store.wisdom(None).unwrap().len(), 1);
        assert!(
            store
                .knowledge(KnowledgeScope::Run("r1"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.memory_sources().unwrap().len(), 1);
        assert_eq!(
            store.delete_source_run("r1").unwrap(),
            DeletedMemory::default()
        );
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }
}
