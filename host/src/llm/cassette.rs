//! Cassettes: a file of recorded calls, replayed offline.
//!
//! In `record` mode every successful call is appended to the cassette (one JSON object per
//! line: key, then the reply). In `replay` mode calls are answered only from the cassette,
//! each key's replies in recorded order, so a session replays exactly — for tests, for runs
//! without network, and so A/B arms can share identical calls. A call the cassette does not
//! hold is an `unavailable` error naming the cassette.

use super::config::CassetteMode;
use super::types::Completion;
use crate::capability::{CapResult, CapabilityError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One recorded answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recorded {
    Chat(Completion),
    Embeddings(Vec<Vec<f32>>),
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    reply: Recorded,
}

/// Why a cassette cannot be opened (the message includes its cause's text).
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("cannot open the cassette {} for replay: {error}", path.display())]
    OpenForReplay {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("reading the cassette {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cassette {} line {line}: {error}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        error: serde_json::Error,
    },
    #[error("creating {}: {error}", dir.display())]
    CreateDir { dir: PathBuf, error: std::io::Error },
    #[error("cannot open the cassette {} for recording: {error}", path.display())]
    OpenForRecording {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Every reply recorded in the cassette at `path`, by key, in recorded order.
fn read_replies(path: &Path) -> Result<HashMap<String, VecDeque<Recorded>>, CassetteError> {
    let mut replies: HashMap<String, VecDeque<Recorded>> = HashMap::new();
    let file = std::fs::File::open(path).map_err(|error| CassetteError::OpenForReplay {
        path: path.to_path_buf(),
        error,
    })?;
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|error| CassetteError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: Line = serde_json::from_str(&line).map_err(|error| CassetteError::BadLine {
            path: path.to_path_buf(),
            line: number + 1,
            error,
        })?;
        replies.entry(entry.key).or_default().push_back(entry.reply);
    }
    Ok(replies)
}

/// The cassette at `path` opened for appending, created (with its directory) if need be.
fn open_for_recording(path: &Path) -> Result<std::fs::File, CassetteError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| CassetteError::CreateDir {
            dir: parent.to_path_buf(),
            error,
        })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| CassetteError::OpenForRecording {
            path: path.to_path_buf(),
            error,
        })
}

#[derive(Debug)]
pub struct Cassette {
    path: PathBuf,
    mode: CassetteMode,
    replies: Mutex<HashMap<String, VecDeque<Recorded>>>,
    writer: Mutex<Option<std::fs::File>>,
}

impl Cassette {
    /// Open `path` for `mode`. Replay needs the file (and reads it all now); record appends
    /// to it (creating it and its directory).
    pub fn open(path: &Path, mode: CassetteMode) -> Result<Cassette, CassetteError> {
        let (replies, writer) = match mode {
            CassetteMode::Replay => (read_replies(path)?, None),
            CassetteMode::Record => (HashMap::new(), Some(open_for_recording(path)?)),
        };
        Ok(Cassette {
            path: path.to_path_buf(),
            mode,
            replies: Mutex::new(replies),
            writer: Mutex::new(writer),
        })
    }

    pub fn mode(&self) -> CassetteMode {
        self.mode
    }

    /// The next recorded reply for `key` (replay mode).
    pub fn replay(&self, key: &str) -> CapResult<Recorded> {
        self.replies
            .lock()
            .unwrap()
            .get_mut(key)
            .and_then(VecDeque::pop_front)
            .ok_or_else(|| {
                CapabilityError::Unavailable(format!(
                    "the cassette {} holds no (more) replies for this request (key {}); record it first",
                    self.path.display(),
                    &key[..12.min(key.len())]
                ))
            })
    }

    /// Append a reply (record mode); a write failure is logged, not fatal.
    pub fn record(&self, key: &str, reply: Recorded) {
        let mut writer = self.writer.lock().unwrap();
        let Some(file) = writer.as_mut() else { return };
        let mut line = serde_json::to_vec(&Line {
            key: key.to_string(),
            reply,
        })
        .expect("serialisable");
        line.push(b'\n');
        if let Err(e) = file.write_all(&line).and_then(|()| file.flush()) {
            tracing::warn!(cassette = %self.path.display(), "cannot record a call: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::types::{FinishReason, Usage};

    fn reply(text: &str) -> Recorded {
        Recorded::Chat(Completion {
            text: text.into(),
            reasoning: None,
            tool_calls: vec![],
            finish: FinishReason::Stop,
            usage: Usage::default(),
        })
    }

    #[test]
    fn records_then_replays_in_order_and_refuses_unknown_calls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.jsonl");
        let recorder = Cassette::open(&path, CassetteMode::Record).unwrap();
        recorder.record("k1", reply("first"));
        recorder.record("k1", reply("second"));
        recorder.record("k2", Recorded::Embeddings(vec![vec![1.0, 2.0]]));
        drop(recorder);
        let player = Cassette::open(&path, CassetteMode::Replay).unwrap();
        assert_eq!(player.replay("k1").unwrap(), reply("first"));
        assert_eq!(
            player.replay("k2").unwrap(),
            Recorded::Embeddings(vec![vec![1.0, 2.0]])
        );
        assert_eq!(player.replay("k1").unwrap(), reply("second"));
        let err = player.replay("k1").unwrap_err().to_string();
        assert!(err.contains("no (more) replies"), "{err}");
        assert!(Cassette::open(&dir.path().join("missing"), CassetteMode::Replay).is_err());
        std::fs::write(&path, "{broken\n").unwrap();
        assert!(
            Cassette::open(&path, CassetteMode::Replay)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
