//! [`HccStore`]: one SQLite file per workspace holding every run's event log, phases and
//! knowledge, and the workspace's wisdom.
//!
//! Durability: WAL journal, `synchronous = NORMAL`, one transaction per write. A killed
//! process (even `kill -9`) loses at most the write in flight; a power cut may also lose the
//! last few commits before the next checkpoint, never the file's consistency. Several
//! processes and threads may share one store: SQLite serialises writers (waiting up to
//! [`BUSY_TIMEOUT`]) and readers never block.
//!
//! The log is append-only: nothing here deletes or edits an event.

use super::schema::{self, SchemaError};
use super::types::*;
use crate::capability::CapabilityError;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a write waits for another process's write before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the HCC store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the HCC store {path}: {source}")]
    Schema { path: PathBuf, source: SchemaError },
    #[error("HCC store: {context}: {source}")]
    Sql {
        context: &'static str,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<StoreError> for CapabilityError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => CapabilityError::NotFound(m),
            StoreError::Invalid(m) => CapabilityError::InvalidArgument(m),
            other => CapabilityError::Internal(other.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Adds what was being done to a SQLite error.
pub(super) trait SqlContext<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> SqlContext<T> for Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|source| StoreError::Sql { context, source })
    }
}

/// A run as the store knows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub competition_id: String,
    pub descriptor: TaskDescriptor,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub best_metric: Option<f64>,
    pub score: Option<f64>,
    /// The latest phase begun (0 before the first).
    pub current_phase: u32,
    pub events: u64,
}

/// A phase: its plan and, once ended, the last event it covered.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PhaseRecord {
    pub phase: u32,
    pub plan: String,
    pub plan_event: u64,
    /// Set when the phase ended: events up to this id belong to its knowledge.
    pub ended_after: Option<u64>,
}

/// Counts over the whole store.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StoreStats {
    pub path: String,
    pub schema_version: u32,
    pub runs: u64,
    pub events: u64,
    pub event_bytes: u64,
    pub phases: u64,
    pub knowledge_units: u64,
    pub wisdom_entries: u64,
    pub wisdom_vectors: u64,
    pub competitions_with_wisdom: u64,
}

/// The HCC's persistent state. All methods are synchronous and short; share it in an `Arc`.
pub struct HccStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    pub(super) indexes: Mutex<super::index::Indexes>,
}

impl std::fmt::Debug for HccStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HccStore")
            .field("path", &self.path)
            .finish()
    }
}

impl HccStore {
    /// Open (creating if needed, with its parent directory) the store at `path`, migrating
    /// its schema. Refuses a store from a newer Sophon.
    pub fn open(path: &Path) -> StoreResult<HccStore> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| open_error(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        schema::migrate(&mut conn).map_err(|source| StoreError::Schema {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(HccStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            indexes: Mutex::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection. A panic while it was held leaves SQLite consistent (an open
    /// transaction rolls back when dropped), so a poisoned lock is taken over.
    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register run `run_id` on `competition_id`, or reopen it (resume). Refuses an existing
    /// id that belongs to another competition.
    pub fn create_run(
        &self,
        run_id: &str,
        competition_id: &str,
        descriptor: &TaskDescriptor,
    ) -> StoreResult<RunRecord> {
        if run_id.is_empty() || competition_id.is_empty() {
            return Err(StoreError::Invalid(
                "a run needs a non-empty run id and competition id".into(),
            ));
        }
        {
            let conn = self.conn();
            let descriptor_json = serde_json::to_string(descriptor).expect("descriptor serialises");
            conn.execute(
                "INSERT INTO runs (id, competition_id, descriptor, started_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO NOTHING",
                params![run_id, competition_id, descriptor_json, now_ms() as i64],
            )
            .ctx("registering a run")?;
        }
        let run = self.run(run_id)?;
        if run.competition_id != competition_id {
            return Err(StoreError::Invalid(format!(
                "run `{run_id}` already exists for competition `{}`, not `{competition_id}`: \
                 choose another run id",
                run.competition_id
            )));
        }
        Ok(run)
    }

    /// Run `run_id`, or `NotFound`.
    pub fn run(&self, run_id: &str) -> StoreResult<RunRecord> {
        self.conn()
            .query_row(
                &format!("{RUN_SELECT} WHERE r.id = ?1"),
                [run_id],
                run_from_row,
            )
            .optional()
            .ctx("reading a run")?
            .ok_or_else(|| StoreError::NotFound(format!("no run `{run_id}` in the HCC store")))
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> StoreResult<Vec<RunRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("{RUN_SELECT} ORDER BY r.started_ms, r.id"))
            .ctx("listing runs")?;
        let rows = stmt.query_map([], run_from_row).ctx("listing runs")?;
        rows.collect::<Result<_, _>>().ctx("listing runs")
    }

    /// Bytes the run has written: its events' contents and its phases' plans (each plan is
    /// stored twice: as a `plan` event and in its phase). What [`super::RunHcc`] counts
    /// against `max-run-mb`, so a resumed run goes on from here.
    pub fn run_bytes(&self, run_id: &str) -> StoreResult<u64> {
        self.conn()
            .query_row(
                "SELECT COALESCE((SELECT SUM(length(CAST(content AS BLOB))) FROM events WHERE run_id = ?1), 0)
                      + COALESCE((SELECT SUM(length(CAST(plan AS BLOB))) FROM phases WHERE run_id = ?1), 0)",
                [run_id],
                |row| row.get::<_, i64>(0),
            )
            .map(|bytes| bytes.max(0) as u64)
            .ctx("measuring a run's events")
    }

    /// Append `event` to the run's log, in its current phase. One statement, so atomic.
    pub fn append_event(&self, run_id: &str, event: &Event) -> StoreResult<StoredEvent> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO events (run_id, phase, time_ms, kind, node, content, metric)
                 SELECT r.id,
                        COALESCE((SELECT MAX(phase) FROM phases WHERE run_id = r.id), 0),
                        MAX(?2 - r.started_ms, 0), ?3, ?4, ?5, ?6
                 FROM runs r WHERE r.id = ?1
                 RETURNING id, phase, time_ms",
            )
            .ctx("recording an event")?;
        let stored = stmt
            .query_row(
                params![
                    run_id,
                    now_ms() as i64,
                    kind_to_text(&event.kind),
                    event.node,
                    event.content,
                    finite(event.metric)
                ],
                |row| {
                    Ok(StoredEvent {
                        id: row.get::<_, i64>(0)? as u64,
                        phase: row.get(1)?,
                        time_ms: row.get::<_, i64>(2)? as u64,
                        event: event.clone(),
                    })
                },
            )
            .optional()
            .ctx("recording an event")?;
        stored.ok_or_else(|| StoreError::NotFound(format!("no run `{run_id}` in the HCC store")))
    }

    /// Start the next phase with `plan` (recorded as a `plan` event), ending the current one
    /// if it is still open. Returns the new phase's record.
    pub fn begin_phase(&self, run_id: &str, plan: &str) -> StoreResult<PhaseRecord> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("beginning a phase")?;
        let (started, previous): (i64, u32) = tx
            .query_row(
                "SELECT r.started_ms, COALESCE((SELECT MAX(phase) FROM phases WHERE run_id = r.id), 0)
                 FROM runs r WHERE r.id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("beginning a phase")?
            .ok_or_else(|| StoreError::NotFound(format!("no run `{run_id}` in the HCC store")))?;
        close_phase(&tx, run_id, previous)?;
        let phase = previous + 1;
        let now = now_ms() as i64;
        tx.execute(
            "INSERT INTO events (run_id, phase, time_ms, kind, content) VALUES (?1, ?2, ?3, 'plan', ?4)",
            params![run_id, phase, (now - started).max(0), plan],
        )
        .ctx("beginning a phase")?;
        let plan_event = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO phases (run_id, phase, plan, plan_event, started_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run_id, phase, plan, plan_event, now],
        )
        .ctx("beginning a phase")?;
        tx.commit().ctx("beginning a phase")?;
        Ok(PhaseRecord {
            phase,
            plan: plan.to_string(),
            plan_event: plan_event as u64,
            ended_after: None,
        })
    }

    /// End the current phase. Returns it, or `None` when no phase is open (none begun yet,
    /// or the latest already ended).
    pub fn end_phase(&self, run_id: &str) -> StoreResult<Option<PhaseRecord>> {
        let (current, closed) = {
            let mut conn = self.conn();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .ctx("ending a phase")?;
            let current: u32 = tx
                .query_row(
                    "SELECT COALESCE(MAX(phase), 0) FROM phases WHERE run_id = ?1",
                    [run_id],
                    |r| r.get(0),
                )
                .ctx("ending a phase")?;
            let closed = close_phase(&tx, run_id, current)?;
            tx.commit().ctx("ending a phase")?;
            (current, closed)
        };
        if !closed {
            return Ok(None);
        }
        Ok(self
            .phases(run_id)?
            .into_iter()
            .find(|p| p.phase == current))
    }

    /// The run's phases, in order.
    pub fn phases(&self, run_id: &str) -> StoreResult<Vec<PhaseRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT phase, plan, plan_event, ended_after FROM phases WHERE run_id = ?1 ORDER BY phase",
            )
            .ctx("reading phases")?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(PhaseRecord {
                    phase: r.get(0)?,
                    plan: r.get(1)?,
                    plan_event: r.get::<_, i64>(2)? as u64,
                    ended_after: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                })
            })
            .ctx("reading phases")?;
        rows.collect::<Result<_, _>>().ctx("reading phases")
    }

    /// Events of `run_id` in `phase` (every phase when `None`) with `after < id ≤ until`,
    /// oldest first, at most `limit`.
    pub fn events(
        &self,
        run_id: &str,
        phase: Option<u32>,
        after: u64,
        until: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, phase, time_ms, kind, node, content, metric FROM events
                 WHERE run_id = ?1 AND (?2 IS NULL OR phase = ?2) AND id > ?3 AND id <= ?4
                 ORDER BY id LIMIT ?5",
            )
            .ctx("reading events")?;
        let rows = stmt
            .query_map(
                params![
                    run_id,
                    phase,
                    after.min(i64::MAX as u64) as i64,
                    until.unwrap_or(i64::MAX as u64).min(i64::MAX as u64) as i64,
                    limit
                ],
                event_from_row,
            )
            .ctx("reading events")?;
        rows.collect::<Result<_, _>>().ctx("reading events")
    }

    /// Up to `limit` events of `phase` with id > `after`, oldest first — the oldest such
    /// events, or with `newest` the newest — stopping before their contents pass `max_bytes`
    /// (at least one event, whatever its size). Rows are read one at a time, so the host
    /// never holds more than that.
    pub fn events_within(
        &self,
        run_id: &str,
        phase: u32,
        after: u64,
        limit: u32,
        max_bytes: usize,
        newest: bool,
    ) -> StoreResult<Vec<StoredEvent>> {
        let conn = self.conn();
        let order = if newest { "DESC" } else { "ASC" };
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT id, phase, time_ms, kind, node, content, metric FROM events
                 WHERE run_id = ?1 AND phase = ?2 AND id > ?3
                 ORDER BY id {order} LIMIT ?4"
            ))
            .ctx("reading events")?;
        let rows = stmt
            .query_map(
                params![run_id, phase, after.min(i64::MAX as u64) as i64, limit],
                event_from_row,
            )
            .ctx("reading events")?;
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        for row in rows {
            let event = row.ctx("reading events")?;
            bytes = bytes.saturating_add(event.event.content.len());
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(event);
        }
        if newest {
            out.reverse();
        }
        Ok(out)
    }

    /// The run's first `task` event, if it recorded one.
    pub fn task_event(&self, run_id: &str) -> StoreResult<Option<StoredEvent>> {
        self.conn()
            .query_row(
                "SELECT id, phase, time_ms, kind, node, content, metric FROM events
                 WHERE run_id = ?1 AND kind = 'task' ORDER BY id LIMIT 1",
                [run_id],
                event_from_row,
            )
            .optional()
            .ctx("reading the task event")
    }

    /// Store the knowledge unit that phase `unit.phase` of `run_id` produced (replacing one
    /// stored before for the same phase, e.g. by a resumed run).
    pub fn put_knowledge(&self, run_id: &str, unit: &KnowledgeUnit) -> StoreResult<()> {
        let conn = self.conn();
        let json = serde_json::to_string(unit).expect("knowledge serialises");
        let changed = conn
            .execute(
                "INSERT INTO knowledge (run_id, phase, competition_id, unit, created_ms)
                 SELECT id, ?2, competition_id, ?3, ?4 FROM runs WHERE id = ?1
                 ON CONFLICT (run_id, phase) DO UPDATE SET unit = excluded.unit",
                params![run_id, unit.phase, json, now_ms() as i64],
            )
            .ctx("storing knowledge")?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "no run `{run_id}` in the HCC store"
            )));
        }
        Ok(())
    }

    /// Knowledge units of one run (by phase), or of every run on a competition (oldest
    /// first), each with its run id.
    pub fn knowledge(
        &self,
        scope: KnowledgeScope<'_>,
    ) -> StoreResult<Vec<(String, KnowledgeUnit)>> {
        let conn = self.conn();
        let (sql, key) = match scope {
            KnowledgeScope::Run(run) => (
                "SELECT run_id, unit FROM knowledge WHERE run_id = ?1 ORDER BY phase",
                run,
            ),
            KnowledgeScope::Competition(c) => (
                "SELECT run_id, unit FROM knowledge WHERE competition_id = ?1 ORDER BY created_ms, run_id, phase",
                c,
            ),
        };
        let mut stmt = conn.prepare_cached(sql).ctx("reading knowledge")?;
        let rows = stmt
            .query_map([key], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .ctx("reading knowledge")?;
        let mut units = Vec::new();
        for row in rows {
            let (run, json) = row.ctx("reading knowledge")?;
            let unit = serde_json::from_str(&json).map_err(|e| {
                StoreError::Invalid(format!(
                    "a stored knowledge unit of run `{run}` is corrupt: {e}"
                ))
            })?;
            units.push((run, unit));
        }
        Ok(units)
    }

    /// Mark the run ended with its best validation metric.
    pub fn finish_run(&self, run_id: &str, best_metric: Option<f64>) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute(
                "UPDATE runs SET ended_ms = ?2, best_metric = COALESCE(?3, best_metric) WHERE id = ?1",
                params![run_id, now_ms() as i64, finite(best_metric)],
            )
            .ctx("finishing a run")?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "no run `{run_id}` in the HCC store"
            )));
        }
        Ok(())
    }

    /// Counts over the whole store.
    pub fn stats(&self) -> StoreResult<StoreStats> {
        let conn = self.conn();
        let count = |sql: &str| -> StoreResult<u64> {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .ctx("counting")
        };
        Ok(StoreStats {
            path: self.path.display().to_string(),
            schema_version: schema::SCHEMA_VERSION,
            runs: count("SELECT COUNT(*) FROM runs")?,
            events: count("SELECT COUNT(*) FROM events")?,
            event_bytes: count(
                "SELECT COALESCE(SUM(LENGTH(CAST(content AS BLOB))), 0) FROM events",
            )?,
            phases: count("SELECT COUNT(*) FROM phases")?,
            knowledge_units: count("SELECT COUNT(*) FROM knowledge")?,
            wisdom_entries: count("SELECT COUNT(*) FROM wisdom")?,
            wisdom_vectors: count("SELECT COUNT(*) FROM wisdom_vectors")?,
            competitions_with_wisdom: count("SELECT COUNT(DISTINCT competition_id) FROM wisdom")?,
        })
    }

    /// SQLite's own consistency check: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> StoreResult<String> {
        self.conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .ctx("checking integrity")
    }
}

/// Whose knowledge to read.
#[derive(Clone, Copy, Debug)]
pub enum KnowledgeScope<'a> {
    Run(&'a str),
    Competition(&'a str),
}

/// Mark `phase` ended after its latest event, if it is open. Returns whether it was.
fn close_phase(tx: &rusqlite::Transaction<'_>, run_id: &str, phase: u32) -> StoreResult<bool> {
    if phase == 0 {
        return Ok(false);
    }
    let changed = tx
        .execute(
            "UPDATE phases SET ended_after =
                 (SELECT COALESCE(MAX(id), 0) FROM events WHERE run_id = ?1)
             WHERE run_id = ?1 AND phase = ?2 AND ended_after IS NULL",
            params![run_id, phase],
        )
        .ctx("ending a phase")?;
    Ok(changed > 0)
}

const RUN_SELECT: &str = "SELECT r.id, r.competition_id, r.descriptor, r.started_ms, r.ended_ms,
        r.best_metric, r.score,
        COALESCE((SELECT MAX(phase) FROM phases WHERE run_id = r.id), 0),
        (SELECT COUNT(*) FROM events WHERE run_id = r.id)
     FROM runs r";

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let descriptor: String = row.get(2)?;
    Ok(RunRecord {
        run_id: row.get(0)?,
        competition_id: row.get(1)?,
        descriptor: serde_json::from_str(&descriptor).unwrap_or_default(),
        started_ms: row.get::<_, i64>(3)? as u64,
        ended_ms: row.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        best_metric: row.get(5)?,
        score: row.get(6)?,
        current_phase: row.get(7)?,
        events: row.get::<_, i64>(8)? as u64,
    })
}

pub(super) fn event_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.get::<_, i64>(0)? as u64,
        phase: row.get(1)?,
        time_ms: row.get::<_, i64>(2)? as u64,
        event: Event {
            kind: kind_from_text(&row.get::<_, String>(3)?),
            node: row.get(4)?,
            content: row.get(5)?,
            metric: row.get(6)?,
        },
    })
}

/// The stored spelling of an event kind: its WIT name, or `other:<name>`.
pub fn kind_to_text(kind: &EventKind) -> String {
    match kind {
        EventKind::Task => "task".into(),
        EventKind::Plan => "plan".into(),
        EventKind::Code => "code".into(),
        EventKind::Execution => "execution".into(),
        EventKind::Review => "review".into(),
        EventKind::Submission => "submission".into(),
        EventKind::Insight => "insight".into(),
        EventKind::Other(name) => format!("other:{name}"),
    }
}

pub fn kind_from_text(text: &str) -> EventKind {
    match text {
        "task" => EventKind::Task,
        "plan" => EventKind::Plan,
        "code" => EventKind::Code,
        "execution" => EventKind::Execution,
        "review" => EventKind::Review,
        "submission" => EventKind::Submission,
        "insight" => EventKind::Insight,
        other => EventKind::Other(other.strip_prefix("other:").unwrap_or(other).to_string()),
    }
}

/// SQLite stores NaN as NULL anyway; say so explicitly.
fn finite(metric: Option<f64>) -> Option<f64> {
    metric.filter(|m| m.is_finite())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
