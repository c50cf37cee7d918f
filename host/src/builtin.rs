//! First-party plugins compiled into the `sophon` binary, addressed as `builtin:<name>`.

use crate::runtime::{PluginError, PluginSource};
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// The prefix of embedded plugin references.
pub const PREFIX: &str = "builtin:";

/// Names of the embedded plugins.
pub fn names() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(name, _)| *name).collect()
}

/// The embedded plugin `name`, if there is one.
pub fn get(name: &str) -> Option<PluginSource> {
    EMBEDDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, wasm)| PluginSource::from_bytes(format!("{PREFIX}{n}"), *wasm))
}

/// Resolve a plugin reference: `builtin:<name>` or a path to a `.wasm` file.
pub fn resolve(reference: &str) -> Result<PluginSource, PluginError> {
    match reference.strip_prefix(PREFIX) {
        Some(name) => get(name).ok_or_else(|| PluginError::Read {
            origin: reference.to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no embedded plugin `{name}`; embedded: {}",
                    names().join(", ")
                ),
            ),
        }),
        None => PluginSource::from_file(Path::new(reference)),
    }
}
