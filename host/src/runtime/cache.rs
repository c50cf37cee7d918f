//! A persistent cache of precompiled components.
//!
//! Compiling a component costs ~30 ms in a release host and ~0.5 s in a debug one; the cache
//! keeps the native code keyed by the wasm's SHA-256 and the engine's compatibility hash, so a
//! plugin compiles once per engine configuration and Sophon version.
//!
//! Trust: deserialising precompiled code runs it natively, so the cache directory must be as
//! trusted as the Sophon binary (it is created private to the user). A corrupt or stale entry is
//! discarded and recompiled, never fatal.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where precompiled components live; `None` disables the disk cache.
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Feeds `Hash` output into SHA-256, for a hash that is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap())
    }
}

impl ComponentCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..12]);
        ComponentCache { dir, engine_key }
    }

    /// The default location: `$XDG_CACHE_HOME/sophon/components` (or `~/.cache/...`).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("sophon").join("components"))
    }

    /// The compiled component for `wasm` (whose SHA-256 is `sha256`), from the cache when
    /// possible, else compiled and stored.
    pub fn load(&self, engine: &Engine, wasm: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, wasm);
        };
        let path = dir.join(format!("{sha256}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (it is in the file name) into a directory private to this user;
            // wasmtime re-checks the header and rejects mismatches.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "discarding unusable precompiled component: {e:#}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = store(dir, &path, &component) {
            tracing::warn!(dir = %dir.display(), "cannot cache a precompiled component: {e:#}");
        }
        Ok(component)
    }
}

fn store(dir: &Path, path: &Path, component: &Component) -> wasmtime::Result<()> {
    create_private_dir(dir)?;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let bytes = component.serialize()?;
    // Unique per process and write, so concurrent writers never share a temporary file; the
    // rename makes the entry appear whole or not at all.
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
