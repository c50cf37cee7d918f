//! The HCC store's SQLite schema and its migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Migrations only ever append
//! (a released one is never edited), each runs in one transaction, and a store written by a
//! newer Sophon is refused rather than guessed at.

use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, the append-only event log, phases, knowledge (L2), wisdom (L3).
    r#"
    CREATE TABLE runs (
        id              TEXT PRIMARY KEY,
        competition_id  TEXT NOT NULL,
        descriptor      TEXT NOT NULL,           -- JSON task-descriptor
        started_ms      INTEGER NOT NULL,        -- Unix time
        ended_ms        INTEGER,
        best_metric     REAL,
        score           REAL                     -- normalised grade, once graded
    );
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      TEXT NOT NULL REFERENCES runs(id),
        phase       INTEGER NOT NULL,
        time_ms     INTEGER NOT NULL,            -- since the run started
        kind        TEXT NOT NULL,
        node        TEXT,
        content     TEXT NOT NULL,
        metric      REAL
    );
    CREATE INDEX events_by_run_phase ON events (run_id, phase, id);
    CREATE TABLE phases (
        run_id      TEXT NOT NULL REFERENCES runs(id),
        phase       INTEGER NOT NULL,
        plan        TEXT NOT NULL,
        plan_event  INTEGER NOT NULL,
        started_ms  INTEGER NOT NULL,
        ended_after INTEGER,                     -- last event id of the phase when it ended
        PRIMARY KEY (run_id, phase)
    );
    CREATE TABLE knowledge (
        run_id          TEXT NOT NULL REFERENCES runs(id),
        phase           INTEGER NOT NULL,
        competition_id  TEXT NOT NULL,
        unit            TEXT NOT NULL,           -- JSON knowledge-unit
        created_ms      INTEGER NOT NULL,
        PRIMARY KEY (run_id, phase)
    );
    CREATE INDEX knowledge_by_competition ON knowledge (competition_id, created_ms);
    CREATE TABLE wisdom (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        id              TEXT NOT NULL UNIQUE,
        category        TEXT NOT NULL,
        content         TEXT NOT NULL,
        applies_when    TEXT NOT NULL,
        competition_id  TEXT NOT NULL,
        run_id          TEXT NOT NULL,
        descriptor      TEXT NOT NULL,           -- JSON task-descriptor
        created_ms      INTEGER NOT NULL,
        hits            INTEGER NOT NULL DEFAULT 0,
        score_sum       REAL NOT NULL DEFAULT 0,
        score_count     INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE wisdom_vectors (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        wisdom_seq  INTEGER NOT NULL REFERENCES wisdom(seq),
        embedder    TEXT NOT NULL,
        vector      BLOB NOT NULL,               -- little-endian f32, unit length
        UNIQUE (wisdom_seq, embedder)
    );
    CREATE INDEX wisdom_vectors_by_embedder ON wisdom_vectors (embedder, seq);
    CREATE TABLE wisdom_uses (
        run_id      TEXT NOT NULL REFERENCES runs(id),
        wisdom_seq  INTEGER NOT NULL REFERENCES wisdom(seq),
        score       REAL NOT NULL,               -- similarity when prefetched
        PRIMARY KEY (run_id, wisdom_seq)
    );
    "#,
    // 2: provenance: which strategy and promotion policy a run (and so its knowledge and
    // wisdom) came from; wisdom by source run, to list and delete it. Older rows keep NULL
    // (unknown).
    r#"
    ALTER TABLE runs ADD COLUMN strategy TEXT;
    ALTER TABLE runs ADD COLUMN policy TEXT;
    ALTER TABLE wisdom ADD COLUMN strategy TEXT;
    ALTER TABLE wisdom ADD COLUMN policy TEXT;
    CREATE INDEX wisdom_by_run ON wisdom (run_id);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why a store's schema cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the store has schema version {found}, newer than this Sophon's {SCHEMA_VERSION}: \
         upgrade Sophon, or point it at another store"
    )]
    TooNew { found: u32 },
    #[error("migrating the store to schema version {version}: {source}")]
    Migration {
        version: u32,
        source: rusqlite::Error,
    },
}

/// Bring `conn` to [`SCHEMA_VERSION`], one transaction per migration.
pub fn migrate(conn: &mut Connection) -> Result<(), SchemaError> {
    let current = |conn: &Connection| -> Result<u32, rusqlite::Error> {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    };
    let found = current(conn).map_err(|source| SchemaError::Migration { version: 0, source })?;
    if found > SCHEMA_VERSION {
        return Err(SchemaError::TooNew { found });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as u32 + 1;
        let fail = |source| SchemaError::Migration { version, source };
        // IMMEDIATE: two processes opening a fresh store at once migrate one after the other;
        // the second sees the new version and skips.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        if current(&tx).map_err(fail)? >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let first = tables(&conn);
        assert!(first.contains(&"events".to_string()) && first.contains(&"wisdom".to_string()));
        migrate(&mut conn).unwrap();
        assert_eq!(tables(&conn), first);
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_store_migrates_keeping_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (id, competition_id, descriptor, started_ms) VALUES ('r', 'c', '{}', 1);
             INSERT INTO wisdom (id, category, content, applies_when, competition_id, run_id,
                 descriptor, created_ms) VALUES ('w-1', 'k', 'advice', 'always', 'c', 'r', '{}', 2);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (content, strategy): (String, Option<String>) = conn
            .query_row(
                "SELECT content, strategy FROM wisdom WHERE id = 'w-1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((content.as_str(), strategy), ("advice", None));
        let policy: Option<String> = conn
            .query_row("SELECT policy FROM runs WHERE id = 'r'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(policy, None);
    }

    #[test]
    fn a_store_from_a_newer_sophon_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, SchemaError::TooNew { found } if found == SCHEMA_VERSION + 1));
        assert!(err.to_string().contains("upgrade Sophon"), "{err}");
        assert!(tables(&conn).is_empty(), "nothing was created");
    }
}
