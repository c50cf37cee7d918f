//! L3 wisdom in the store: entries with provenance, their vectors per embedder, top-k
//! retrieval, use statistics, and JSONL export/import.
//!
//! An entry's vector embeds its *retrieval key*: the descriptor of the task that produced it
//! plus its `applies-when` (HCC stores wisdom under the task descriptor; a query is the new
//! task's descriptor). Entry ids hash (competition, category, content), so the same advice
//! from the same competition is stored once however often it is promoted or imported.

use super::index::{Indexes, LoadedIndex, VectorIndex};
use super::store::{HccStore, SqlContext, StoreError, StoreResult, now_ms};
use super::types::*;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// A stored wisdom entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WisdomRecord {
    pub id: String,
    #[serde(flatten)]
    pub entry: WisdomEntry,
    pub provenance: Provenance,
    pub created_ms: u64,
}

/// A retrieved entry and its exact cosine similarity to the query.
#[derive(Clone, Debug, PartialEq)]
pub struct WisdomHit {
    pub record: WisdomRecord,
    pub score: f32,
}

/// What a retrieval asks for.
#[derive(Clone, Debug)]
pub struct WisdomQuery<'a> {
    pub embedder: &'a str,
    pub vector: &'a [f32],
    pub k: usize,
    /// Entries below this cosine similarity are left out.
    pub min_score: f32,
    /// Leave out entries produced on this competition (the leakage guard).
    pub exclude_competition: Option<&'a str>,
}

/// Counts from an import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub added: u64,
    pub already_present: u64,
}

/// The stable id of an entry from `competition_id`.
pub fn wisdom_id(competition_id: &str, entry: &WisdomEntry) -> String {
    let mut h = Sha256::new();
    for part in [competition_id, &entry.category, &entry.content] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("w-{}", &hex::encode(h.finalize())[..16])
}

/// A descriptor as prompt text.
pub fn descriptor_text(d: &TaskDescriptor) -> String {
    format!(
        "modality: {}\ntask type: {}\nmetric: {}\ndata: {}\n{}",
        d.modality, d.task_type, d.metric, d.data_size, d.summary
    )
}

/// The text a descriptor is embedded as: its values only (labels shared by every descriptor
/// would make all of them look alike to a lexical embedder).
pub fn descriptor_key(d: &TaskDescriptor) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        d.modality, d.task_type, d.metric, d.data_size, d.summary
    )
}

/// The text an entry is retrieved by: the descriptor of the task it came from and when it
/// applies.
pub fn retrieval_key(descriptor: &TaskDescriptor, entry: &WisdomEntry) -> String {
    format!("{}\n{}", descriptor_key(descriptor), entry.applies_when)
}

impl HccStore {
    /// Store `entries` produced by run `run_id` on `competition_id`. Returns the new records
    /// (entries already present are skipped). Their provenance names the run's strategy and
    /// policy where the store knows them ([`HccStore::set_run_plugins`]).
    pub fn add_wisdom(
        &self,
        competition_id: &str,
        run_id: &str,
        descriptor: &TaskDescriptor,
        entries: &[WisdomEntry],
    ) -> StoreResult<Vec<WisdomRecord>> {
        let (strategy, policy) = self.run_plugins(run_id)?;
        let records: Vec<WisdomRecord> = entries
            .iter()
            .map(|entry| WisdomRecord {
                id: wisdom_id(competition_id, entry),
                entry: entry.clone(),
                provenance: Provenance {
                    competition_id: competition_id.to_string(),
                    run_id: run_id.to_string(),
                    descriptor: descriptor.clone(),
                    hits: 0,
                    mean_score_of_users: None,
                    strategy: strategy.clone(),
                    policy: policy.clone(),
                },
                created_ms: now_ms(),
            })
            .collect();
        let (added, _) = self.insert_wisdom(&records, false)?;
        Ok(added)
    }

    /// Insert records; returns (inserted, skipped as present). Imported records keep their
    /// use statistics.
    fn insert_wisdom(
        &self,
        records: &[WisdomRecord],
        keep_stats: bool,
    ) -> StoreResult<(Vec<WisdomRecord>, u64)> {
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("storing wisdom")?;
        let mut added = Vec::new();
        let mut skipped = 0;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO wisdom (id, category, content, applies_when, competition_id, run_id,
                         descriptor, created_ms, hits, score_sum, score_count, strategy, policy)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (id) DO NOTHING",
                )
                .ctx("storing wisdom")?;
            for r in records {
                let p = &r.provenance;
                let (hits, sum, count) = match (keep_stats, p.mean_score_of_users) {
                    (true, Some(mean)) if mean.is_finite() => (p.hits, mean, 1),
                    (true, _) => (p.hits, 0.0, 0),
                    (false, _) => (0, 0.0, 0),
                };
                let changed = insert
                    .execute(params![
                        r.id,
                        r.entry.category,
                        r.entry.content,
                        r.entry.applies_when,
                        p.competition_id,
                        p.run_id,
                        serde_json::to_string(&p.descriptor).expect("descriptor serialises"),
                        r.created_ms as i64,
                        hits,
                        sum,
                        count,
                        p.strategy,
                        p.policy
                    ])
                    .ctx("storing wisdom")?;
                if changed == 1 {
                    added.push(r.clone());
                } else {
                    skipped += 1;
                }
            }
        }
        tx.commit().ctx("storing wisdom")?;
        Ok((added, skipped))
    }

    /// Entries with no vector from `embedder` yet: (seq, retrieval key), at most `limit`.
    pub fn wisdom_without_vectors(
        &self,
        embedder: &str,
        limit: u32,
    ) -> StoreResult<Vec<(i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "{WISDOM_SELECT} WHERE NOT EXISTS (SELECT 1 FROM wisdom_vectors v
                     WHERE v.wisdom_seq = w.seq AND v.embedder = ?1)
                 ORDER BY w.seq LIMIT ?2"
            ))
            .ctx("finding entries to embed")?;
        let rows = stmt
            .query_map(params![embedder, limit], |r| {
                Ok((r.get::<_, i64>(0)?, record_from_row(r)?))
            })
            .ctx("finding entries to embed")?;
        rows.map(|row| {
            row.map(|(seq, rec)| (seq, retrieval_key(&rec.provenance.descriptor, &rec.entry)))
        })
        .collect::<Result<_, _>>()
        .ctx("finding entries to embed")
    }

    /// Store the vectors of entries (by seq) under `embedder`.
    pub fn put_wisdom_vectors(
        &self,
        embedder: &str,
        vectors: &[(i64, Vec<f32>)],
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("storing wisdom vectors")?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO wisdom_vectors (wisdom_seq, embedder, vector) VALUES (?1, ?2, ?3)
                     ON CONFLICT (wisdom_seq, embedder) DO NOTHING",
                )
                .ctx("storing wisdom vectors")?;
            for (seq, vector) in vectors {
                insert
                    .execute(params![seq, embedder, to_blob(vector)])
                    .ctx("storing wisdom vectors")?;
            }
        }
        tx.commit().ctx("storing wisdom vectors")
    }

    /// The `k` entries most similar to the query with similarity ≥ `min_score`, best first
    /// (ties: older entry first). Scores are exact cosines of the stored vectors.
    pub fn search_wisdom(&self, query: &WisdomQuery<'_>) -> StoreResult<Vec<WisdomHit>> {
        if query.k == 0 {
            return Ok(Vec::new());
        }
        let candidates = {
            let mut indexes = self.indexes.lock().unwrap_or_else(|p| p.into_inner());
            let loaded = self.refreshed_index(&mut indexes, query.embedder, query.vector.len())?;
            let exclude = query
                .exclude_competition
                .map(|c| loaded.groups.get(c).copied().unwrap_or(u32::MAX));
            loaded
                .index
                .candidates(query.vector, query.k * 4 + 32, exclude)
        };
        let conn = self.conn();
        let mut exact = conn
            .prepare_cached(
                "SELECT vector FROM wisdom_vectors WHERE wisdom_seq = ?1 AND embedder = ?2",
            )
            .ctx("searching wisdom")?;
        let mut scored = Vec::with_capacity(candidates.len());
        for (seq, _) in candidates {
            // An entry deleted since the index was loaded (`sophon hcc delete`) is skipped.
            let Some(blob) = exact
                .query_row(params![seq, query.embedder], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .ctx("searching wisdom")?
            else {
                continue;
            };
            let score = super::embed::cosine(query.vector, &from_blob(&blob));
            if score >= query.min_score {
                scored.push((seq, score));
            }
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(query.k);
        let mut record = conn
            .prepare_cached(&format!("{WISDOM_SELECT} WHERE w.seq = ?1"))
            .ctx("searching wisdom")?;
        let mut hits = Vec::with_capacity(scored.len());
        for (seq, score) in scored {
            if let Some(record) = record
                .query_row([seq], record_from_row)
                .optional()
                .ctx("searching wisdom")?
            {
                hits.push(WisdomHit { record, score });
            }
        }
        Ok(hits)
    }

    /// The index for `embedder`, topped up with vectors stored since it was last loaded.
    fn refreshed_index<'a>(
        &self,
        indexes: &'a mut Indexes,
        embedder: &str,
        dims: usize,
    ) -> StoreResult<&'a LoadedIndex> {
        let loaded = indexes
            .by_embedder
            .entry(embedder.to_string())
            .or_insert_with(|| LoadedIndex {
                index: VectorIndex::new(dims),
                loaded_up_to: 0,
                groups: HashMap::new(),
            });
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT v.seq, v.wisdom_seq, w.competition_id, v.vector
                 FROM wisdom_vectors v JOIN wisdom w ON w.seq = v.wisdom_seq
                 WHERE v.embedder = ?1 AND v.seq > ?2 ORDER BY v.seq",
            )
            .ctx("loading wisdom vectors")?;
        let mut rows = stmt
            .query(params![embedder, loaded.loaded_up_to])
            .ctx("loading wisdom vectors")?;
        while let Some(row) = rows.next().ctx("loading wisdom vectors")? {
            let seq: i64 = row.get(0).ctx("loading wisdom vectors")?;
            let wisdom_seq: i64 = row.get(1).ctx("loading wisdom vectors")?;
            let competition: String = row.get(2).ctx("loading wisdom vectors")?;
            let blob: Vec<u8> = row.get(3).ctx("loading wisdom vectors")?;
            let next_group = loaded.groups.len() as u32;
            let group = *loaded.groups.entry(competition).or_insert(next_group);
            // A vector of another length (the embedder changed under the same id) is skipped.
            loaded.index.push(wisdom_seq, group, &from_blob(&blob));
            loaded.loaded_up_to = seq;
        }
        Ok(loaded)
    }

    /// Note that run `run_id` prefetched these entries (by id, with their similarity): each
    /// entry's hit count rises once per run.
    pub fn record_wisdom_uses(&self, run_id: &str, hits: &[(String, f32)]) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("recording wisdom use")?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO wisdom_uses (run_id, wisdom_seq, score)
                     SELECT ?1, seq, ?3 FROM wisdom WHERE id = ?2
                     ON CONFLICT (run_id, wisdom_seq) DO NOTHING",
                )
                .ctx("recording wisdom use")?;
            let mut hit = tx
                .prepare_cached("UPDATE wisdom SET hits = hits + 1 WHERE id = ?1")
                .ctx("recording wisdom use")?;
            for (id, score) in hits {
                if insert
                    .execute(params![run_id, id, *score as f64])
                    .ctx("recording wisdom use")?
                    == 1
                {
                    hit.execute([id]).ctx("recording wisdom use")?;
                }
            }
        }
        tx.commit().ctx("recording wisdom use")
    }

    /// The entries run `run_id` prefetched, best similarity first.
    pub fn wisdom_used_by(&self, run_id: &str) -> StoreResult<Vec<WisdomHit>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {WISDOM_COLUMNS}, u.score FROM wisdom w
                 JOIN wisdom_uses u ON u.wisdom_seq = w.seq
                 WHERE u.run_id = ?1 ORDER BY u.score DESC, w.seq"
            ))
            .ctx("reading prefetched wisdom")?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(WisdomHit {
                    record: record_from_row(r)?,
                    score: r.get::<_, f64>(14)? as f32,
                })
            })
            .ctx("reading prefetched wisdom")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading prefetched wisdom")
    }

    /// Record the run's normalised grade (in [0, 1], higher is better) once, and fold it
    /// into the statistics of every entry the run used. A second call changes nothing.
    pub fn record_run_score(&self, run_id: &str, score: f64) -> StoreResult<bool> {
        if !score.is_finite() {
            return Err(StoreError::Invalid(format!(
                "run score {score} is not a number"
            )));
        }
        let mut conn = self.conn();
        let tx = conn.transaction().ctx("recording a run's score")?;
        let first = tx
            .execute(
                "UPDATE runs SET score = ?2 WHERE id = ?1 AND score IS NULL",
                params![run_id, score],
            )
            .ctx("recording a run's score")?
            == 1;
        if first {
            tx.execute(
                "UPDATE wisdom SET score_sum = score_sum + ?2, score_count = score_count + 1
                 WHERE seq IN (SELECT wisdom_seq FROM wisdom_uses WHERE run_id = ?1)",
                params![run_id, score],
            )
            .ctx("recording a run's score")?;
        }
        tx.commit().ctx("recording a run's score")?;
        Ok(first)
    }

    /// Every entry, oldest first, optionally only those from one competition.
    pub fn wisdom(&self, competition: Option<&str>) -> StoreResult<Vec<WisdomRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "{WISDOM_SELECT} WHERE ?1 IS NULL OR w.competition_id = ?1 ORDER BY w.seq"
            ))
            .ctx("listing wisdom")?;
        let rows = stmt
            .query_map([competition], record_from_row)
            .ctx("listing wisdom")?;
        rows.collect::<Result<_, _>>().ctx("listing wisdom")
    }

    /// How many entries the store holds.
    pub fn wisdom_count(&self) -> StoreResult<u64> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM wisdom", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .ctx("counting wisdom")
    }

    /// One entry by id.
    pub fn wisdom_entry(&self, id: &str) -> StoreResult<Option<WisdomRecord>> {
        self.conn()
            .query_row(
                &format!("{WISDOM_SELECT} WHERE w.id = ?1"),
                [id],
                record_from_row,
            )
            .optional()
            .ctx("reading wisdom")
    }

    /// Write every entry as one JSON object per line (id, entry, provenance). Returns how many.
    pub fn export_wisdom(&self, out: &mut dyn Write) -> StoreResult<u64> {
        let records = self.wisdom(None)?;
        for record in &records {
            let line = serde_json::to_string(record).expect("wisdom serialises");
            writeln!(out, "{line}").map_err(|e| {
                StoreError::Invalid(format!("writing the wisdom export failed: {e}"))
            })?;
        }
        Ok(records.len() as u64)
    }

    /// Read JSONL written by [`HccStore::export_wisdom`]. Every line is checked before any is
    /// stored, so a bad file adds nothing; the error names the line and what is wrong.
    pub fn import_wisdom(&self, input: &mut dyn BufRead) -> StoreResult<ImportReport> {
        let mut records = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line = line.map_err(|e| {
                StoreError::Invalid(format!("reading the wisdom file at line {}: {e}", i + 1))
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let record: WisdomRecord = serde_json::from_str(&line).map_err(|e| {
                StoreError::Invalid(format!(
                    "line {} is not a wisdom record ({e}); expected what `sophon hcc export` writes",
                    i + 1
                ))
            })?;
            super::promote::check_wisdom_entry(&record.entry)
                .map_err(|e| StoreError::Invalid(format!("line {}: {e}", i + 1)))?;
            if record.provenance.competition_id.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "line {}: provenance.competition-id is empty; wisdom must say where it came from",
                    i + 1
                )));
            }
            let expected = wisdom_id(&record.provenance.competition_id, &record.entry);
            if record.id != expected {
                return Err(StoreError::Invalid(format!(
                    "line {}: id `{}` does not match its content (expected `{expected}`); \
                     the entry was edited after export",
                    i + 1,
                    record.id
                )));
            }
            records.push(record);
        }
        let (added, skipped) = self.insert_wisdom(&records, true)?;
        Ok(ImportReport {
            added: added.len() as u64,
            already_present: skipped,
        })
    }
}

/// The columns [`record_from_row`] reads, in its order.
macro_rules! wisdom_columns {
    () => {
        "w.seq, w.id, w.category, w.content, w.applies_when, w.competition_id, w.run_id,
         w.descriptor, w.created_ms, w.hits, w.score_sum, w.score_count, w.strategy, w.policy"
    };
}

const WISDOM_COLUMNS: &str = wisdom_columns!();
const WISDOM_SELECT: &str = concat!("SELECT ", wisdom_columns!(), " FROM wisdom w");

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WisdomRecord> {
    let descriptor: String = r.get(7)?;
    let score_sum: f64 = r.get(10)?;
    let score_count: i64 = r.get(11)?;
    Ok(WisdomRecord {
        id: r.get(1)?,
        entry: WisdomEntry {
            category: r.get(2)?,
            content: r.get(3)?,
            applies_when: r.get(4)?,
        },
        provenance: Provenance {
            competition_id: r.get(5)?,
            run_id: r.get(6)?,
            descriptor: serde_json::from_str(&descriptor).unwrap_or_default(),
            hits: r.get::<_, i64>(9)?.clamp(0, u32::MAX as i64) as u32,
            mean_score_of_users: (score_count > 0).then(|| score_sum / score_count as f64),
            strategy: r.get(12)?,
            policy: r.get(13)?,
        },
        created_ms: r.get::<_, i64>(8)? as u64,
    })
}

fn to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
