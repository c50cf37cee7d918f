//! A run directory: everything needed to understand and reproduce one run.
//!
//! ```text
//! run.json                  what was run: competition, strategy, seed, limits, versions
//! events.jsonl              the run's event stream (also `sophon run --json`), appended
//! nodes.jsonl               every search node the strategy reported, appended
//! best.json                 the best valid submission so far (node, metric, artifact)
//! submission/submission.csv that submission, replaced atomically the moment it is adopted
//! artifacts/                code, outputs and submissions of every node (content-addressed)
//! grade.json                the final grade, in `sophon grade`'s report format
//! summary.json              outcome, counts, best, grade, tokens and cost, times
//! ```
//!
//! Whole-file writes go to a temporary file and are renamed into place, so a killed run never
//! leaves a torn `best.json` or submission; JSONL files are appended one line per write.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a run directory could not be created, opened or locked.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A new run's directory already holds a run.
    #[error("the run directory {} already holds a run: choose another --run-dir, or delete it", .0.display())]
    Occupied(PathBuf),
    #[error("creating the run directory {}: {source}", root.display())]
    Create {
        root: PathBuf,
        source: std::io::Error,
    },
    /// The directory to resume has no `run.json`.
    #[error("{} is not a run directory (no run.json): pass the directory `sophon run` created", .0.display())]
    NotARun(PathBuf),
    /// The directory to resume has no absolute path.
    #[error("{}: {source}", root.display())]
    Absolute {
        root: PathBuf,
        source: std::io::Error,
    },
    /// A torn JSONL file could not be ended.
    #[error("repairing {}: {source}", path.display())]
    Repair {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating {}: {source}", path.display())]
    CreateLock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process holds the run's lock.
    #[error("the run in {} is running in another process", .0.display())]
    Busy(PathBuf),
    #[error("locking {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct RunDir {
    root: PathBuf,
    append_lock: Mutex<()>,
}

impl RunDir {
    /// Create `root` for a new run. An existing, non-empty directory is refused: a run never
    /// overwrites another.
    pub fn create(root: &Path) -> Result<RunDir, RunDirError> {
        if root.is_dir()
            && std::fs::read_dir(root)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        {
            return Err(RunDirError::Occupied(root.to_path_buf()));
        }
        let created = std::fs::create_dir_all(root.join("submission"))
            .and_then(|()| std::fs::write(root.join("nodes.jsonl"), ""));
        created.map_err(|source| RunDirError::Create {
            root: root.to_path_buf(),
            source,
        })?;
        Ok(RunDir {
            root: root.to_path_buf(),
            append_lock: Mutex::new(()),
        })
    }

    /// The run in `root`, to resume it.
    pub fn open(root: &Path) -> Result<RunDir, RunDirError> {
        if !root.join("run.json").is_file() {
            return Err(RunDirError::NotARun(root.to_path_buf()));
        }
        let dir = RunDir {
            root: std::path::absolute(root).map_err(|source| RunDirError::Absolute {
                root: root.to_path_buf(),
                source,
            })?,
            append_lock: Mutex::new(()),
        };
        // A kill mid-append leaves a torn last line: end it, so new lines start clean (readers
        // skip the torn one).
        for name in ["nodes.jsonl", "events.jsonl"] {
            let path = dir.path(name);
            if std::fs::read(&path).is_ok_and(|b| !b.is_empty() && !b.ends_with(b"\n")) {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .and_then(|mut file| file.write_all(b"\n"))
                    .map_err(|source| RunDirError::Repair { path, source })?;
            }
        }
        Ok(dir)
    }

    /// Hold the run's lock file (`run.lock`) while the returned file lives. Refused when
    /// another process holds it.
    pub fn lock(&self) -> Result<std::fs::File, RunDirError> {
        let path = self.path("run.lock");
        let file = match std::fs::File::create(&path) {
            Ok(file) => file,
            Err(source) => return Err(RunDirError::CreateLock { path, source }),
        };
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(RunDirError::Busy(self.root.clone())),
            Err(std::fs::TryLockError::Error(source)) => Err(RunDirError::Lock { path, source }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where the best submission is kept.
    pub fn submission(&self) -> PathBuf {
        self.root.join("submission").join("submission.csv")
    }

    /// Write `value` as pretty JSON to `name`, atomically.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
        self.write_atomically(&self.path(name), (text + "\n").as_bytes())
    }

    /// Append `value` as one JSON line to `name`.
    pub fn append_jsonl(&self, name: &str, value: &impl Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))?;
        file.write_all(&line)
    }

    /// Replace `target` with `contents` so that readers see the old or the new file, never a
    /// mix (temporary file, fsync, rename).
    pub fn write_atomically(&self, target: &Path, contents: &[u8]) -> std::io::Result<()> {
        copy_atomically(&mut &contents[..], target)
    }
}

/// Copy `source` to `target` through a temporary file in the same directory and a rename.
pub fn copy_atomically(source: &mut impl std::io::Read, target: &Path) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::copy(source, &mut tmp)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_holding_a_run_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        let run = RunDir::create(&root).unwrap();
        run.write_json("run.json", &serde_json::json!({"a": 1}))
            .unwrap();
        let error = RunDir::create(&root).err().unwrap().to_string();
        assert!(error.contains("already holds a run"), "{error}");
    }

    #[test]
    fn json_lines_append_and_files_replace() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(&dir.path().join("r")).unwrap();
        for i in 0..3 {
            run.append_jsonl("nodes.jsonl", &serde_json::json!({ "i": i }))
                .unwrap();
            run.write_json("best.json", &serde_json::json!({ "i": i }))
                .unwrap();
        }
        let lines = std::fs::read_to_string(run.path("nodes.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 3);
        let best: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.path("best.json")).unwrap()).unwrap();
        assert_eq!(best["i"], 2);
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(run.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        // One process at a time.
        let held = run.lock().unwrap();
        let again = RunDir::open(run.root());
        assert!(again.is_err(), "no run.json yet");
        std::fs::write(run.path("run.json"), "{}").unwrap();
        let error = RunDir::open(run.root())
            .unwrap()
            .lock()
            .unwrap_err()
            .to_string();
        assert!(error.contains("running in another process"), "{error}");
        drop(held);
        assert!(RunDir::open(run.root()).unwrap().lock().is_ok());

        // A torn last line (a kill mid-append) is ended on open; new lines stay whole.
        let mut torn = std::fs::read_to_string(run.path("nodes.jsonl")).unwrap();
        torn.push_str("{\"i\": ");
        std::fs::write(run.path("nodes.jsonl"), torn).unwrap();
        let reopened = RunDir::open(run.root()).unwrap();
        reopened
            .append_jsonl("nodes.jsonl", &serde_json::json!({ "i": 3 }))
            .unwrap();
        let text = std::fs::read_to_string(run.path("nodes.jsonl")).unwrap();
        let parsed = text
            .lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            .count();
        assert_eq!(parsed, 4, "{text}");
    }
}
