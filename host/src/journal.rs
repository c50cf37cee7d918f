//! The run's journal: every answer the host gives a strategy, so that a crashed run can be
//! resumed by replaying the answers into a fresh strategy instance — no LLM call and no job
//! that finished is repeated — and then continue live.
//!
//! `journal.jsonl` holds one line per answer: `{"kind": …, "key": …, "answer": …}`. The key is
//! a fingerprint of the request and its occurrence number (the n-th identical request of that
//! kind), so answers are found by what was asked, whatever order concurrent operations
//! finished in. A strategy is deterministic given its answers (wasm is, and its randomness is
//! seeded from the run), so on resume it asks the same questions in the same order and gets
//! the recorded answers; the first question without a recorded answer (the one in flight at
//! the crash) goes live, and so does everything after it. Timing questions ("which of these
//! operations are ready?") are answered the same way, as sequences (`poll`, `llm-get`,
//! `job-get`), which makes concurrent strategies replay their interleaving too.
//!
//! Lines are appended after the answer is known and before it is returned. A torn last line
//! (a kill mid-write) is ignored on load; at most the operation in flight is lost.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const JOURNAL_FILE: &str = "journal.jsonl";

#[derive(Serialize, serde::Deserialize)]
struct Line {
    kind: String,
    key: String,
    answer: Value,
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    recorded: Mutex<HashMap<(String, String), Value>>,
    /// Occurrences of each (kind, request fingerprint) asked so far in this process.
    asked: Mutex<HashMap<(String, String), u64>>,
    replayed: AtomicU64,
    recorded_total: u64,
    /// Set by the first answer that had to be asked live: replay is over for good.
    went_live: AtomicBool,
}

/// How much of a journal a resumed run replayed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayStats {
    pub recorded: u64,
    pub replayed: u64,
}

impl Journal {
    /// Open (creating if needed) the journal in `dir`, loading what it recorded.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        let path = dir.join(JOURNAL_FILE);
        let mut recorded = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                // A torn last line from a kill mid-write is skipped.
                if let Ok(line) = serde_json::from_str::<Line>(line) {
                    recorded.insert((line.kind, line.key), line.answer);
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        if !text_ends_cleanly(&path) {
            // Start fresh lines after a torn one.
            (&file).write_all(b"\n")?;
        }
        Ok(Journal {
            path,
            file: Mutex::new(file),
            recorded_total: recorded.len() as u64,
            recorded: Mutex::new(recorded),
            asked: Mutex::default(),
            replayed: AtomicU64::new(0),
            went_live: AtomicBool::new(false),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the run is still replaying: recorded answers remain and none had to be asked
    /// live yet.
    pub fn replaying(&self) -> bool {
        !self.went_live.load(Ordering::Acquire)
            && self.replayed.load(Ordering::Acquire) < self.recorded_total
    }

    pub fn stats(&self) -> ReplayStats {
        ReplayStats {
            recorded: self.recorded_total,
            replayed: self.replayed.load(Ordering::Acquire),
        }
    }

    /// The key of the next `request` of `kind`.
    pub fn key(&self, kind: &str, request: &impl Serialize) -> String {
        let bytes = serde_json::to_vec(request).unwrap_or_default();
        let fingerprint = hex::encode(&Sha256::digest(&bytes)[..12]);
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        let n = asked
            .entry((kind.to_string(), fingerprint.clone()))
            .or_insert(0);
        let key = format!("{fingerprint}#{n}");
        *n += 1;
        key
    }

    /// The recorded answer for (`kind`, `key`), if there is one that parses as `T`.
    pub fn recorded<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Option<T> {
        let value = self
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(kind.to_string(), key.to_string()))?;
        let answer = serde_json::from_value(value).ok()?;
        self.replayed.fetch_add(1, Ordering::AcqRel);
        Some(answer)
    }

    /// Every recorded answer of `kind` not replayed yet that parses as `T`, in no particular
    /// order, leaving them to be replayed.
    pub fn peek<T: DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|((k, _), _)| k == kind)
            .filter_map(|(_, value)| serde_json::from_value(value.clone()).ok())
            .collect()
    }

    /// Append an answer. A failed write is logged: the run goes on, less resumable.
    pub fn record(&self, kind: &str, key: &str, answer: &impl Serialize) {
        self.went_live.store(true, Ordering::Release);
        let line = Line {
            kind: kind.to_string(),
            key: key.to_string(),
            answer: serde_json::to_value(answer).unwrap_or(Value::Null),
        };
        let mut bytes = serde_json::to_vec(&line).expect("a journal line serialises");
        bytes.push(b'\n');
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = (&*file).write_all(&bytes) {
            tracing::warn!("cannot append to {}: {e}", self.path.display());
        }
    }

    /// Answer a synchronous question: the recorded answer, else `live()` recorded.
    pub fn answer<T: Serialize + DeserializeOwned>(
        &self,
        kind: &str,
        request: &impl Serialize,
        live: impl FnOnce() -> T,
    ) -> T {
        let key = self.key(kind, request);
        if let Some(answer) = self.recorded(kind, &key) {
            return answer;
        }
        let answer = live();
        self.record(kind, &key, &answer);
        answer
    }

    /// Whether an operation had finished when the plugin looked (the `kind`-th look): the
    /// recorded answer when replaying (the caller then waits for the operation if it is
    /// `true`), else `now`, recorded.
    pub fn answer_timing(&self, kind: &str, now: bool) -> bool {
        self.answer(kind, &(), || now)
    }

    /// Answer an awaited question: the recorded answer, else `live` awaited and recorded.
    pub async fn answer_async<T: Serialize + DeserializeOwned>(
        &self,
        kind: &str,
        request: &impl Serialize,
        live: impl Future<Output = T>,
    ) -> T {
        let key = self.key(kind, request);
        if let Some(answer) = self.recorded(kind, &key) {
            return answer;
        }
        let answer = live.await;
        self.record(kind, &key, &answer);
        answer
    }
}

fn text_ends_cleanly(path: &Path) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.is_empty() || bytes.ends_with(b"\n"),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_replay_by_request_and_occurrence_then_go_live() {
        let dir = tempfile::tempdir().unwrap();
        {
            let journal = Journal::open(dir.path()).unwrap();
            assert_eq!(journal.answer("ask", &"q", || 1), 1);
            assert_eq!(journal.answer("ask", &"q", || 2), 2);
            assert_eq!(journal.answer("ask", &"other", || 3), 3);
        }
        // A torn line, as a kill mid-write leaves it.
        let path = dir.path().join(JOURNAL_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"kind\":\"ask\",\"ke");
        std::fs::write(&path, text).unwrap();

        let journal = Journal::open(dir.path()).unwrap();
        assert!(journal.replaying());
        // Asked in another order: each request still gets its own answer.
        assert_eq!(journal.answer("ask", &"other", || 30), 3);
        assert_eq!(journal.answer("ask", &"q", || 10), 1);
        assert_eq!(journal.answer("ask", &"q", || 20), 2);
        assert!(!journal.replaying());
        // The third identical question was never answered: it goes live, and is recorded.
        assert_eq!(journal.answer("ask", &"q", || 4), 4);
        assert_eq!(
            journal.stats(),
            ReplayStats {
                recorded: 3,
                replayed: 3
            }
        );
        drop(journal);
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.stats().recorded, 4);
    }
}
