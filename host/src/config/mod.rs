//! The operator's configuration, `sophon.toml`: runtime limits and, per plugin, where it comes
//! from and what it is granted.
//!
//! ```toml
//! [runtime]
//! cache-dir = "/var/cache/sophon"   # precompiled components (default: ~/.cache/sophon/components)
//! max-memory-mb = 1024              # no plugin gets more linear memory
//! default-memory-mb = 256           # when neither manifest nor grant says
//! compute-slice-ms = 30000          # longest stretch of plugin computation without a host wait
//! host-call-timeout-secs = 600      # longest single awaited host call (LLM reply, job submit)
//! max-return-bytes = 16777216       # largest value one plugin call may return
//!
//! [plugins.ml-master]
//! source = "builtin:ml-master"      # or a path to a .wasm
//! sha256 = "…"                      # optional pin
//! memory-mb = 512
//! [plugins.ml-master.grants]
//! llm = { max-tokens = 2_000_000, max-concurrent = 3 }
//! jobs = { max-concurrent = 3, max-gpus = 1 }
//! hcc = { scopes = ["experience:write", "knowledge:read", "wisdom:read"] }
//! task = {}
//! artifacts = {}
//!
//! [hcc]                              # see crate::hcc::config
//! store = "hcc.sqlite"
//!
//! [mlebench]                         # see crate::grading::config
//! data-dir = "/data/mle-bench"
//!
//! [run]                              # see crate::config::run
//! strategy = "recipes"
//! ```
//!
//! Unknown keys are errors (a typo must not silently drop a limit). The embedded defaults
//! ([`DEFAULT_CONFIG`]) grant the first-party plugins; an operator's file overrides them
//! plugin by plugin and setting by setting.

pub mod run;

use crate::grading::{Grader, GradingAdapter, GradingError, MleBenchConfig};
use crate::hcc::HccConfig;
use crate::jobs::config::JobsConfig;
use crate::llm::config::LlmConfig;
use crate::runtime::{Capabilities, MemoryPolicy, PluginGrants, Runtime, RuntimeConfig};
use run::RunConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration Sophon uses when the operator gives none.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SophonConfig {
    #[serde(default)]
    pub runtime: RuntimeSection,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginEntry>,
    #[serde(default)]
    pub llm: LlmConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub hcc: HccConfig,
    #[serde(default)]
    pub mlebench: MleBenchConfig,
    #[serde(default)]
    pub run: RunConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeSection {
    pub cache_dir: Option<PathBuf>,
    /// `false` compiles every plugin on every start.
    pub cache: Option<bool>,
    pub max_memory_mb: Option<u64>,
    pub default_memory_mb: Option<u64>,
    pub compute_slice_ms: Option<u64>,
    pub host_call_timeout_secs: Option<u64>,
    pub max_return_bytes: Option<usize>,
    pub max_instances: Option<u32>,
}

/// One `[plugins.<name>]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginEntry {
    /// `builtin:<name>` or a path to a `.wasm` (relative to the config file).
    pub source: Option<String>,
    pub sha256: Option<String>,
    pub memory_mb: Option<u64>,
    #[serde(default)]
    pub grants: Capabilities,
}

impl PluginEntry {
    pub fn grants(&self) -> PluginGrants {
        PluginGrants {
            grants: self.grants.clone(),
            memory_mb: self.memory_mb,
            sha256: self.sha256.clone(),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not valid: {message}")]
    Invalid { origin: String, message: String },
}

/// Parse TOML text into `T`, naming `origin` in errors.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    parse_toml_from(text, "the configuration")
}

fn parse_toml_from<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Invalid {
        origin: origin.to_string(),
        message: e.to_string(),
    })
}

impl SophonConfig {
    /// The embedded defaults.
    pub fn defaults() -> SophonConfig {
        parse_toml_from(DEFAULT_CONFIG, "the embedded default configuration")
            .expect("embedded defaults parse")
    }

    /// The defaults overridden by the file at `path`. Relative plugin paths in the file are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<SophonConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut overrides: SophonConfig = parse_toml_from(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        for provider in overrides.llm.providers.values_mut() {
            if let Some(path) = &provider.model_path
                && path.is_relative()
            {
                provider.model_path = Some(base.join(path));
            }
        }
        if let Some(cassette) = &overrides.llm.cassette
            && cassette.is_relative()
        {
            overrides.llm.cassette = Some(base.join(cassette));
        }
        if let Some(store) = &overrides.hcc.store
            && store.is_relative()
        {
            overrides.hcc.store = Some(base.join(store));
        }
        for dir in [
            &mut overrides.mlebench.data_dir,
            &mut overrides.mlebench.leaderboard_dir,
            &mut overrides.run.runs_dir,
            &mut overrides.jobs.local.jobs_dir,
        ] {
            if let Some(d) = dir
                && d.is_relative()
            {
                *d = base.join(&*d);
            }
        }
        for entry in overrides.plugins.values_mut() {
            if let Some(source) = &entry.source
                && !source.starts_with("builtin:")
                && Path::new(source).is_relative()
            {
                entry.source = Some(base.join(source).display().to_string());
            }
        }
        Ok(SophonConfig::defaults().merged(overrides))
    }

    /// `self` with every setting and plugin table of `other` replacing its own.
    pub fn merged(mut self, other: SophonConfig) -> SophonConfig {
        let r = other.runtime;
        let mine = &mut self.runtime;
        mine.cache_dir = r.cache_dir.or(mine.cache_dir.take());
        mine.cache = r.cache.or(mine.cache);
        mine.max_memory_mb = r.max_memory_mb.or(mine.max_memory_mb);
        mine.default_memory_mb = r.default_memory_mb.or(mine.default_memory_mb);
        mine.compute_slice_ms = r.compute_slice_ms.or(mine.compute_slice_ms);
        mine.host_call_timeout_secs = r.host_call_timeout_secs.or(mine.host_call_timeout_secs);
        mine.max_return_bytes = r.max_return_bytes.or(mine.max_return_bytes);
        mine.max_instances = r.max_instances.or(mine.max_instances);
        self.plugins.extend(other.plugins);
        self.llm = self.llm.merged(other.llm);
        self.jobs = self.jobs.merged(other.jobs);
        self.hcc = self.hcc.merged(other.hcc);
        self.mlebench = self.mlebench.merged(other.mlebench);
        self.run = self.run.merged(other.run);
        self
    }

    /// The runtime configuration these settings describe.
    pub fn runtime_config(&self) -> RuntimeConfig {
        let mut config = RuntimeConfig::default();
        let r = &self.runtime;
        if r.cache == Some(false) {
            config.cache_dir = None;
        } else if let Some(dir) = &r.cache_dir {
            config.cache_dir = Some(dir.clone());
        }
        if let Some(mb) = r.max_memory_mb {
            config.memory.max_mb = mb;
            config.engine.max_memory_bytes = mb << 20;
        }
        if let Some(mb) = r.default_memory_mb {
            config.memory.default_mb = mb;
        }
        config.memory = MemoryPolicy {
            default_mb: config.memory.default_mb.min(config.memory.max_mb),
            max_mb: config.memory.max_mb,
        };
        if let Some(ms) = r.compute_slice_ms {
            config.compute_slice = Duration::from_millis(ms);
        }
        if let Some(secs) = r.host_call_timeout_secs {
            config.host_calls.host_call_timeout = Duration::from_secs(secs);
        }
        if let Some(bytes) = r.max_return_bytes {
            config.max_return_bytes = bytes;
        }
        if let Some(n) = r.max_instances {
            config.engine.max_instances = n;
        }
        config
    }

    /// The grants for plugin `name`: its table, or none at all (deny by default).
    pub fn grants_for(&self, name: &str) -> PluginGrants {
        self.plugins
            .get(name)
            .map(PluginEntry::grants)
            .unwrap_or_default()
    }

    /// The task adapter that grades (`[mlebench] adapter`, by default the embedded
    /// `mlebench`), with its `[plugins]` source and grants.
    pub fn grading_adapter(&self) -> GradingAdapter {
        let name = self.mlebench.adapter();
        GradingAdapter {
            source: self
                .plugins
                .get(name)
                .and_then(|p| p.source.clone())
                .unwrap_or_else(|| format!("{}{name}", crate::builtin::PREFIX)),
            grants: self.grants_for(name),
        }
    }

    /// A [`Grader`] on its own runtime for these settings (data under `data_dir`, default
    /// `[mlebench] data-dir`).
    pub fn grader(&self, data_dir: Option<PathBuf>) -> Result<Grader, GradingError> {
        self.grader_on(&Runtime::new(self.runtime_config())?, data_dir)
    }

    /// [`SophonConfig::grader`] on an existing runtime (one engine per process).
    pub fn grader_on(
        &self,
        runtime: &Runtime,
        data_dir: Option<PathBuf>,
    ) -> Result<Grader, GradingError> {
        Grader::load(runtime, &self.mlebench, &self.grading_adapter(), data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::manifest::HccScope;

    #[test]
    fn defaults_parse_and_files_override_them() {
        let defaults = SophonConfig::defaults();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sophon.toml");
        std::fs::write(
            &path,
            "[runtime]\ncompute-slice-ms = 1500\n[plugins.mine]\nsource = 'mine.wasm'\n[plugins.mine.grants]\nhcc = { scopes = ['wisdom:read'] }\n",
        )
        .unwrap();
        let config = SophonConfig::load(&path).unwrap();
        assert_eq!(
            config.runtime_config().compute_slice,
            Duration::from_millis(1500)
        );
        assert_eq!(config.plugins.len(), defaults.plugins.len() + 1);
        let mine = &config.plugins["mine"];
        assert_eq!(
            mine.source.as_deref(),
            Some(dir.path().join("mine.wasm").to_str().unwrap())
        );
        assert_eq!(
            mine.grants.hcc.as_ref().unwrap().scopes,
            vec![HccScope::WisdomRead]
        );
        assert_eq!(config.grants_for("stranger"), PluginGrants::default());
    }

    #[test]
    fn typos_are_errors_that_name_the_key() {
        let err = parse_toml::<SophonConfig>("[runtime]\ncompute-slice = 5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("compute-slice"), "{err}");
        let err = parse_toml::<SophonConfig>("[plugins.x.grants]\nnetwork = {}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("network"), "{err}");
    }
}
