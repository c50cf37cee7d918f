//! [`PluginError`]: why loading or calling a plugin failed, worded for the operator.

use super::grants::GrantError;
use super::inspect::InspectError;
use super::manifest::ManifestError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin {origin}: {source}")]
    Read {
        origin: String,
        source: std::io::Error,
    },
    #[error("plugin {origin} is not a usable component: {source}")]
    Inspect {
        origin: String,
        source: InspectError,
    },
    #[error(
        "plugin {origin} has no manifest: build it with sophon-sdk's export macro (which embeds plugin.toml) \
         or put a `{sidecar}` beside it"
    )]
    MissingManifest { origin: String, sidecar: String },
    #[error("plugin {origin} has an invalid manifest: {source}")]
    Manifest {
        origin: String,
        source: ManifestError,
    },
    #[error(
        "plugin {origin} has SHA-256 {actual}, but sophon.toml expects {expected}: \
         the file changed; verify it, then update `sha256` in its [plugins.<name>] table"
    )]
    HashMismatch {
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("plugin {origin} refused: {source}")]
    Grant { origin: String, source: GrantError },
    #[error("plugin `{plugin}` cannot be compiled or linked: {message}")]
    Link { plugin: String, message: String },
    #[error("plugin `{plugin}` failed to start: {message}")]
    Instantiate { plugin: String, message: String },
    #[error(
        "plugin `{plugin}` ran past its {} s deadline in `{func}` and was stopped",
        crate::units::seconds(*limit)
    )]
    Deadline {
        plugin: String,
        func: &'static str,
        limit: Duration,
    },
    #[error(
        "plugin `{plugin}` computed for {} s in `{func}` without waiting on the host once \
         (an infinite loop?) and was stopped; the limit is runtime.compute-slice-ms",
        crate::units::seconds(*limit)
    )]
    ComputeSlice {
        plugin: String,
        func: &'static str,
        limit: Duration,
    },
    #[error(
        "plugin `{plugin}` tried to grow its memory to {requested_mib} MiB in `{func}`, over its limit of \
         {limit_mib} MiB, and failed; raise `memory-mb` under [plugins.{plugin}] if it really needs more"
    )]
    MemoryLimit {
        plugin: String,
        func: &'static str,
        requested_mib: u64,
        limit_mib: u64,
    },
    #[error("plugin `{plugin}` overflowed its stack in `{func}` (unbounded recursion?)")]
    StackOverflow { plugin: String, func: &'static str },
    #[error("plugin `{plugin}` panicked in `{func}`: {message}")]
    Panic {
        plugin: String,
        func: &'static str,
        message: String,
    },
    #[error("plugin `{plugin}` trapped in `{func}`: {message}")]
    Trap {
        plugin: String,
        func: &'static str,
        message: String,
    },
    #[error(
        "plugin `{plugin}` returned {size} bytes from `{func}`, over the {limit}-byte limit \
         (runtime.max-return-bytes)"
    )]
    ReturnTooLarge {
        plugin: String,
        func: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("plugin `{plugin}`: `{func}` failed: {message}")]
    Guest {
        plugin: String,
        func: &'static str,
        message: String,
    },
    #[error(
        "plugin `{plugin}` cannot be called again after an earlier failure; create a new instance"
    )]
    Poisoned { plugin: String },
    #[error("plugin `{plugin}` is a {actual} plugin, not a {expected}")]
    WrongWorld {
        plugin: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error(
        "plugin `{plugin}` cannot start another instance: {message} (every pooled slot is \
         held by a live instance; wait for one to end, or raise [runtime] max-instances)"
    )]
    PoolFull { plugin: String, message: String },
    #[error("Sophon's plugin runtime failed to start: {0}")]
    Runtime(String),
}

impl PluginError {
    /// True for failures of one call of a healthy host (as opposed to load-time refusals).
    pub fn is_call_failure(&self) -> bool {
        matches!(
            self,
            PluginError::Deadline { .. }
                | PluginError::ComputeSlice { .. }
                | PluginError::MemoryLimit { .. }
                | PluginError::StackOverflow { .. }
                | PluginError::Panic { .. }
                | PluginError::Trap { .. }
                | PluginError::ReturnTooLarge { .. }
                | PluginError::Guest { .. }
        )
    }
}
