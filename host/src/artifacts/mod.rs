//! The run's artifact store: immutable files addressed by handle (`sophon:host/artifacts`).
//!
//! Layout under the store's root directory (opened once as a cap-std [`Dir`], so no id or
//! name a plugin supplies can reach outside it):
//!
//! ```text
//! blobs/<sha256>      contents, deduplicated
//! meta/<id>.json      {id, name, size, sha256}
//! ```
//!
//! An artifact's id is derived from its name and contents, so the same file stored twice gets
//! the same id (deterministic across a resumed run). Writes go to a temporary file first and
//! are renamed into place: a crash never leaves a partial artifact under a valid id.

use crate::capability::{CapResult, CapabilityError};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// An immutable file in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A directory-backed artifact store for one run.
pub struct ArtifactStore {
    root: Dir,
    max_bytes: u64,
    tmp_counter: AtomicU64,
}

const ID_HEX_LEN: usize = 32;

impl ArtifactStore {
    /// Open (creating if needed) the store rooted at `root`. Artifacts over `max_bytes` are
    /// refused with `too-large`.
    pub fn open(root: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = Dir::open_ambient_dir(root, ambient_authority())?;
        root.create_dir_all("blobs")?;
        root.create_dir_all("meta")?;
        root.create_dir_all("tmp")?;
        Ok(ArtifactStore {
            root,
            max_bytes,
            tmp_counter: AtomicU64::new(0),
        })
    }

    /// Store `contents` under the plain file name `name`.
    pub fn create(&self, name: &str, contents: &[u8]) -> CapResult<Artifact> {
        validate_name(name)?;
        if contents.len() as u64 > self.max_bytes {
            return Err(CapabilityError::TooLarge(format!(
                "artifact {name:?} is {} bytes; the store takes at most {} bytes per artifact",
                contents.len(),
                self.max_bytes
            )));
        }
        let sha256 = hex::encode(Sha256::digest(contents));
        let id = artifact_id(name, &sha256);
        let blob = format!("blobs/{sha256}");
        if !self.root.exists(&blob) {
            self.write_atomically(&blob, contents)?;
        }
        let artifact = Artifact {
            id: id.clone(),
            name: name.to_string(),
            size: contents.len() as u64,
            sha256,
        };
        let meta = serde_json::to_vec(&artifact).map_err(internal)?;
        self.write_atomically(&format!("meta/{id}.json"), &meta)?;
        Ok(artifact)
    }

    /// The most bytes one artifact may hold.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Store what `reader` yields under `name`, streamed to disk and hashed on the way (never
    /// held in memory). More than the per-artifact limit is refused with `too-large` after
    /// reading at most one byte past it, and nothing is stored.
    pub fn create_streamed(&self, name: &str, reader: &mut dyn Read) -> CapResult<Artifact> {
        validate_name(name)?;
        let tmp = self.tmp_name();
        let result = (|| {
            let mut file = self.root.create(&tmp).map_err(internal)?;
            let mut hasher = Sha256::new();
            let mut size: u64 = 0;
            let mut buffer = vec![0u8; 256 << 10];
            let mut limited = reader.take(self.max_bytes.saturating_add(1));
            loop {
                let n = limited.read(&mut buffer).map_err(|e| {
                    CapabilityError::Internal(format!("reading {name:?} into the store: {e}"))
                })?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > self.max_bytes {
                    return Err(CapabilityError::TooLarge(format!(
                        "artifact {name:?} is more than {} bytes, the most the store takes per                          artifact",
                        self.max_bytes
                    )));
                }
                hasher.update(&buffer[..n]);
                file.write_all(&buffer[..n]).map_err(internal)?;
            }
            file.sync_all().map_err(internal)?;
            Ok((hex::encode(hasher.finalize()), size))
        })();
        let (sha256, size) = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = self.root.remove_file(&tmp);
                return Err(e);
            }
        };
        let blob = format!("blobs/{sha256}");
        if self.root.exists(&blob) {
            let _ = self.root.remove_file(&tmp);
        } else {
            self.root
                .rename(&tmp, &self.root, &blob)
                .map_err(internal)?;
        }
        let artifact = Artifact {
            id: artifact_id(name, &sha256),
            name: name.to_string(),
            size,
            sha256,
        };
        let meta = serde_json::to_vec(&artifact).map_err(internal)?;
        self.write_atomically(&format!("meta/{}.json", artifact.id), &meta)?;
        Ok(artifact)
    }

    /// Metadata of artifact `id`.
    pub fn stat(&self, id: &str) -> CapResult<Artifact> {
        validate_id(id)?;
        let bytes = self
            .root
            .read(format!("meta/{id}.json"))
            .map_err(|_| not_found(id))?;
        serde_json::from_slice(&bytes).map_err(internal)
    }

    /// Up to `max_bytes` bytes of artifact `id` from `offset`; empty at or past the end.
    pub fn read(&self, id: &str, offset: u64, max_bytes: u32) -> CapResult<Vec<u8>> {
        let artifact = self.stat(id)?;
        if offset >= artifact.size {
            return Ok(Vec::new());
        }
        let mut file = self.open_blob(&artifact)?;
        file.seek(SeekFrom::Start(offset)).map_err(internal)?;
        let len = (artifact.size - offset).min(u64::from(max_bytes));
        let mut out = vec![0; len as usize];
        file.read_exact(&mut out).map_err(internal)?;
        Ok(out)
    }

    /// The artifact's contents as an open read-only file (for copying on the host side).
    pub fn open_file(&self, id: &str) -> CapResult<cap_std::fs::File> {
        let artifact = self.stat(id)?;
        self.open_blob(&artifact)
    }

    fn open_blob(&self, artifact: &Artifact) -> CapResult<cap_std::fs::File> {
        self.root
            .open(format!("blobs/{}", artifact.sha256))
            .map_err(|e| {
                CapabilityError::Internal(format!(
                    "artifact {} lost its contents: {e}",
                    artifact.id
                ))
            })
    }

    fn tmp_name(&self) -> String {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        format!("tmp/{}-{n}", std::process::id())
    }

    fn write_atomically(&self, path: &str, contents: &[u8]) -> CapResult<()> {
        let tmp = self.tmp_name();
        let mut file = self.root.create(&tmp).map_err(internal)?;
        file.write_all(contents).map_err(internal)?;
        file.sync_all().map_err(internal)?;
        self.root.rename(&tmp, &self.root, path).map_err(internal)
    }
}

fn artifact_id(name: &str, sha256: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(sha256.as_bytes());
    let mut id = hex::encode(hasher.finalize());
    id.truncate(ID_HEX_LEN);
    id
}

fn validate_name(name: &str) -> CapResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(CapabilityError::InvalidArgument(format!(
            "artifact name {name:?} must be a plain file name (1-255 bytes, no `/`, `\\`, NUL, `.` or `..`)"
        )))
    }
}

fn validate_id(id: &str) -> CapResult<()> {
    if id.len() == ID_HEX_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(not_found(id))
    }
}

fn not_found(id: &str) -> CapabilityError {
    CapabilityError::NotFound(format!("no artifact with id {id:?} in this run"))
}

fn internal(e: impl std::fmt::Display) -> CapabilityError {
    CapabilityError::Internal(format!("artifact store: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ArtifactStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path(), 1024).unwrap();
        (dir, store)
    }

    #[test]
    fn round_trip_and_stable_ids() {
        let (_dir, store) = store();
        let a = store.create("sub.csv", b"id,y\n1,0\n").unwrap();
        assert_eq!(a.size, 9);
        assert_eq!(store.stat(&a.id).unwrap(), a);
        assert_eq!(store.read(&a.id, 0, 100).unwrap(), b"id,y\n1,0\n");
        assert_eq!(store.read(&a.id, 5, 3).unwrap(), b"1,0");
        assert!(store.read(&a.id, 9, 3).unwrap().is_empty());
        let again = store.create("sub.csv", b"id,y\n1,0\n").unwrap();
        assert_eq!(again.id, a.id);
        let renamed = store.create("other.csv", b"id,y\n1,0\n").unwrap();
        assert_ne!(renamed.id, a.id);
        assert_eq!(renamed.sha256, a.sha256);
    }

    #[test]
    fn refuses_bad_names_ids_and_oversize() {
        let (_dir, store) = store();
        for name in ["", "..", "a/b", "../x", "/etc/passwd", "a\0b"] {
            assert!(
                matches!(
                    store.create(name, b"x"),
                    Err(CapabilityError::InvalidArgument(_))
                ),
                "{name:?}"
            );
        }
        for id in ["../../etc/passwd", "0123", "zz".repeat(16).as_str()] {
            assert!(
                matches!(store.stat(id), Err(CapabilityError::NotFound(_))),
                "{id:?}"
            );
        }
        assert!(matches!(
            store.create("big", &[0; 2048]),
            Err(CapabilityError::TooLarge(_))
        ));
    }

    #[test]
    fn streamed_artifacts_match_stored_ones_and_stop_at_the_limit() {
        let (dir, store) = store();
        let a = store
            .create_streamed("sub.csv", &mut &b"id,y\n1,0\n"[..])
            .unwrap();
        assert_eq!(a, store.create("sub.csv", b"id,y\n1,0\n").unwrap());
        assert_eq!(store.read(&a.id, 0, 100).unwrap(), b"id,y\n1,0\n");
        // An endless reader is refused after one byte past the limit, leaving nothing behind.
        let mut endless = std::io::repeat(7);
        let err = store.create_streamed("zeros", &mut endless).unwrap_err();
        assert!(
            matches!(err, CapabilityError::TooLarge(ref m) if m.contains("1024")),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            1
        );
    }
}
