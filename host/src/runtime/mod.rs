//! The sandboxed plugin runtime — the only module that names wasmtime.
//!
//! One [`Runtime`] per process holds the engine (pooling allocator, epoch interruption), the
//! linker (built once: WASI without ambient authority plus every `sophon:host` interface) and
//! the compiled-component cache. [`Runtime::load`] verifies a plugin (hash, manifest, grants,
//! imports) and prepares an `InstancePre`; a [`LoadedPlugin`] then creates instances cheaply,
//! each with its own store, memory cap and per-call deadlines.

mod bindings;
pub mod cache;
pub mod compat;
mod deadline;
pub mod engine;
mod error;
pub mod grants;
mod host;
pub mod inspect;
pub mod manifest;
mod plugin;
mod resources;
mod state;
mod watchdog;
mod wire;

pub use bindings::{CURRENT_HOST_VERSION, SERVED_HOST_VERSIONS};
pub use error::PluginError;
pub use grants::{EffectiveGrants, GrantError, MemoryPolicy};
pub use manifest::{Capabilities, Capability, Manifest, World};
pub use plugin::{
    AdapterFiles, LoadedPlugin, PluginGrants, PluginSource, PromotionPolicyInstance,
    StrategyInstance, TaskAdapterInstance,
};
pub use state::{HostCallLimits, HostServices, PluginIdentity};

use cache::ComponentCache;
use engine::{CoarseClock, EngineSettings, EpochTicker};
use state::PluginState;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};

/// How the runtime is sized and limited (`[runtime]` in `sophon.toml`).
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub engine: EngineSettings,
    /// Precompiled-component cache; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    pub memory: MemoryPolicy,
    /// Longest a plugin may compute without waiting on the host.
    pub compute_slice: Duration,
    pub host_calls: HostCallLimits,
    /// Largest value a plugin may return from one call, in bytes.
    pub max_return_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            engine: EngineSettings::default(),
            cache_dir: ComponentCache::default_dir(),
            memory: MemoryPolicy {
                default_mb: 256,
                max_mb: 1024,
            },
            compute_slice: Duration::from_secs(30),
            host_calls: HostCallLimits::default(),
            max_return_bytes: 16 << 20,
        }
    }
}

/// The plugin runtime. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: wasmtime::Engine,
    linker: Linker<PluginState>,
    cache: ComponentCache,
    compiled: Mutex<HashMap<String, Component>>,
    config: RuntimeConfig,
    clock: Arc<CoarseClock>,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(mut config: RuntimeConfig) -> Result<Runtime, PluginError> {
        let runtime_error = |e: wasmtime::Error| PluginError::Runtime(format!("{e:#}"));
        config.memory.max_mb = config
            .memory
            .max_mb
            .min(config.engine.max_memory_bytes >> 20);
        let engine = engine::build_engine(&config.engine).map_err(runtime_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(runtime_error)?;
        // `wasi:io/poll` again, journaled in runs that journal (see host::poll).
        linker.allow_shadowing(true);
        wasmtime_wasi::p2::bindings::io::poll::add_to_linker::<_, host::poll::JournaledPollData>(
            &mut linker,
            |s: &mut PluginState| host::poll::JournaledPoll {
                table: &mut s.table,
                journal: s.services.journal.clone(),
            },
        )
        .map_err(runtime_error)?;
        linker.allow_shadowing(false);
        {
            use bindings::host::sophon::host::{artifacts, hcc, jobs, llm, run, task, types};
            let l = &mut linker;
            types::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s).map_err(runtime_error)?;
            artifacts::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s).map_err(runtime_error)?;
            llm::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s).map_err(runtime_error)?;
            jobs::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s).map_err(runtime_error)?;
            hcc::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s).map_err(runtime_error)?;
            task::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s).map_err(runtime_error)?;
            run::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s).map_err(runtime_error)?;
        }
        let cache = ComponentCache::new(&engine, config.cache_dir.clone());
        let clock = Arc::new(CoarseClock::default());
        let ticker = EpochTicker::start(engine.clone(), config.engine.epoch_tick, clock.clone());
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                compiled: Mutex::new(HashMap::new()),
                config,
                clock,
                _ticker: ticker,
            }),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Verify and prepare a plugin: hash, manifest, grants, imports, compilation (cached).
    /// Nothing of the plugin runs.
    pub fn load(
        &self,
        source: &PluginSource,
        grants: &PluginGrants,
    ) -> Result<LoadedPlugin, PluginError> {
        plugin::load(self.clone(), source, grants)
    }

    fn compile(&self, wasm: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        if let Some(component) = self.inner.compiled.lock().unwrap().get(sha256) {
            return Ok(component.clone());
        }
        let component = self.inner.cache.load(&self.inner.engine, wasm, sha256)?;
        self.inner
            .compiled
            .lock()
            .unwrap()
            .insert(sha256.to_string(), component.clone());
        Ok(component)
    }
}
