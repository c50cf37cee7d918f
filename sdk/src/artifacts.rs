//! The run's artifact store (`sophon:host/artifacts`): immutable files passed by handle.

use crate::Result;
#[cfg(target_arch = "wasm32")]
use crate::bindings::host::sophon::host::artifacts as wit;

pub use crate::bindings::host::sophon::host::types::Artifact;

/// Store `contents` as a new artifact named `name` (a plain file name).
pub fn create(name: &str, contents: &[u8]) -> Result<Artifact> {
    host!(
        wit::create(name, contents).map_err(Into::into),
        crate::testing::with(|h| h.create_artifact(name, contents))
    )
}

/// Up to `max_bytes` bytes of artifact `id` from `offset`; empty at the end.
pub fn read(id: &str, offset: u64, max_bytes: u32) -> Result<Vec<u8>> {
    host!(
        wit::read(id, offset, max_bytes).map_err(Into::into),
        crate::testing::with(|h| h.read_artifact(id, offset, max_bytes))
    )
}

/// The whole artifact, read in 1 MiB chunks, refusing anything over `limit` bytes.
pub fn read_all(id: &str, limit: u64) -> Result<Vec<u8>> {
    let meta = stat(id)?;
    if meta.size > limit {
        return Err(crate::Error::new(
            crate::ErrorKind::TooLarge,
            format!(
                "artifact {id} ({}) is {} bytes, over the {limit}-byte limit",
                meta.name, meta.size
            ),
        ));
    }
    let mut out = Vec::with_capacity(meta.size as usize);
    loop {
        let chunk = read(id, out.len() as u64, 1 << 20)?;
        if chunk.is_empty() {
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
    }
}

/// Metadata of artifact `id`.
pub fn stat(id: &str) -> Result<Artifact> {
    host!(
        wit::stat(id).map_err(Into::into),
        crate::testing::with(|h| h.stat_artifact(id))
    )
}
