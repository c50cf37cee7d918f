//! Loading plugins and calling them.
//!
//! Loading verifies, in order: the expected SHA-256 (if the operator pinned one), that the file
//! is a component, its manifest, the manifest against the component's real imports/exports and
//! the operator's grants, then compiles (through the cache) and pre-instantiates. Nothing of
//! the plugin runs during loading.
//!
//! Calling: every export call arms the watchdog (call deadline + compute slice) and runs under a
//! wall-clock timeout; a failed call classifies the failure (deadline, loop, memory, stack,
//! panic, trap, oversize return) and poisons the instance, which must then be recreated.

use super::Runtime;
use super::bindings::{promotion_policy, strategy, task_adapter};
use super::deadline::{Elapsed, within};
use super::engine::CoarseClock;
use super::error::PluginError;
use super::grants::{self, EffectiveGrants, Surface};
use super::host::convert::{Conv, record};
use super::inspect::ComponentFacts;
use super::manifest::{Capabilities, Manifest, World};
use super::state::{
    HostServices, MemoryLimiter, OutputCapture, PluginIdentity, PluginState, truncate_marked,
};
use super::watchdog::{Trip, Watchdog};
use super::wire::WireSize;
use crate::hcc::{KnowledgeUnit, PhaseTrace, RunTrace, TaskDescriptor, WisdomEntry};
use crate::run_context::{Outcome, RunInfo};
use crate::task::{GradeResult, TaskInfo, TaskRequest, Validation};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A plugin's bytes and where they came from.
#[derive(Clone, Debug)]
pub struct PluginSource {
    /// For messages: a path, or `builtin:<name>`.
    pub origin: String,
    pub wasm: Arc<[u8]>,
    /// A manifest found beside the file (`<file>.plugin.toml`), used when none is embedded.
    pub sidecar_manifest: Option<Vec<u8>>,
}

impl PluginSource {
    pub fn from_bytes(origin: impl Into<String>, wasm: impl Into<Arc<[u8]>>) -> Self {
        PluginSource {
            origin: origin.into(),
            wasm: wasm.into(),
            sidecar_manifest: None,
        }
    }

    /// Read `path`, and `<path without .wasm>.plugin.toml` if it exists.
    pub fn from_file(path: &Path) -> Result<Self, PluginError> {
        let origin = path.display().to_string();
        let wasm = std::fs::read(path).map_err(|source| PluginError::Read {
            origin: origin.clone(),
            source,
        })?;
        let sidecar = std::fs::read(sidecar_path(path)).ok();
        Ok(PluginSource {
            origin,
            wasm: wasm.into(),
            sidecar_manifest: sidecar,
        })
    }

    /// Lower-case hex SHA-256 of the wasm.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.wasm))
    }
}

fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("plugin.toml")
}

/// What the operator grants one plugin (`[plugins.<name>]` in `sophon.toml`).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginGrants {
    #[serde(default)]
    pub grants: Capabilities,
    /// Memory ceiling for this plugin in MiB (the runtime default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Refuse the plugin unless its wasm has this SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Files a task adapter's instance sees (all read-only).
#[derive(Clone, Debug, Default)]
pub struct AdapterFiles {
    /// Mounted at `/data/public`.
    pub public: Option<PathBuf>,
    /// Mounted at `/data/private`, only if the adapter was granted `task.private-data`.
    pub private: Option<PathBuf>,
    /// Mounted at `/submission`.
    pub submission_dir: Option<PathBuf>,
}

/// A verified, compiled plugin, ready to instantiate.
pub struct LoadedPlugin {
    runtime: Runtime,
    identity: Arc<PluginIdentity>,
    manifest: Manifest,
    facts: ComponentFacts,
    pre: WorldPre,
}

enum WorldPre {
    Strategy(strategy::StrategyPre<PluginState>),
    TaskAdapter(task_adapter::TaskAdapterPre<PluginState>),
    PromotionPolicy(promotion_policy::PromotionPolicyPre<PluginState>),
}

/// Verify, read, check and link a plugin: its pin, its manifest, the grants for what the
/// component really imports, then the world's bindings. Each failure is the [`PluginError`]
/// naming the plugin and the fix; nothing is instantiated.
pub(super) fn load(
    runtime: Runtime,
    source: &PluginSource,
    granted: &PluginGrants,
) -> Result<LoadedPlugin, PluginError> {
    let sha256 = check_pin(source, granted)?;
    let facts = ComponentFacts::read(&source.wasm).map_err(|e| PluginError::Inspect {
        origin: source.origin.clone(),
        source: e,
    })?;
    let manifest = read_manifest(source, &facts)?;
    let name = manifest.plugin.name.clone();
    let link_error = |e: wasmtime::Error| PluginError::Link {
        plugin: name.clone(),
        message: format!("{e:#}"),
    };
    let component = compile_current(&runtime, &source.wasm, &sha256).map_err(link_error)?;
    let surface = Surface {
        world: facts.world(),
        exports: facts.exports.clone(),
        called_imports: called_imports(&runtime.inner.engine, &component),
    };
    let config = runtime.config();
    let grants = grants::resolve(
        &manifest,
        &surface,
        &granted.grants,
        granted.memory_mb,
        config.memory,
    )
    .map_err(|e| PluginError::Grant {
        origin: source.origin.clone(),
        source: e,
    })?;
    let pre = world_pre(&runtime, manifest.plugin.world, &component).map_err(link_error)?;
    let identity = Arc::new(PluginIdentity {
        name,
        version: manifest.plugin.version.clone(),
        world: manifest.plugin.world,
        sha256,
        grants,
    });
    tracing::debug!(plugin = %identity.name, origin = %source.origin, "plugin loaded");
    Ok(LoadedPlugin {
        runtime,
        identity,
        manifest,
        facts,
        pre,
    })
}

/// The wasm's SHA-256, checked against the operator's pin where there is one.
fn check_pin(source: &PluginSource, granted: &PluginGrants) -> Result<String, PluginError> {
    let sha256 = source.sha256();
    match &granted.sha256 {
        Some(expected) if !expected.eq_ignore_ascii_case(&sha256) => {
            Err(PluginError::HashMismatch {
                origin: source.origin.clone(),
                expected: expected.clone(),
                actual: sha256,
            })
        }
        _ => Ok(sha256),
    }
}

/// The plugin's manifest: embedded in the component, else the sidecar file beside it.
fn read_manifest(source: &PluginSource, facts: &ComponentFacts) -> Result<Manifest, PluginError> {
    let origin = &source.origin;
    let bytes = facts
        .embedded_manifest
        .as_deref()
        .or(source.sidecar_manifest.as_deref())
        .ok_or_else(|| PluginError::MissingManifest {
            origin: origin.clone(),
            sidecar: sidecar_path(Path::new(origin))
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "<name>.plugin.toml".into()),
        })?;
    Manifest::parse(bytes).map_err(|e| PluginError::Manifest {
        origin: origin.clone(),
        source: e,
    })
}

/// Link `component` against the host and check it exports `world`'s interface.
fn world_pre(
    runtime: &Runtime,
    world: World,
    component: &wasmtime::component::Component,
) -> wasmtime::Result<WorldPre> {
    let instance_pre = runtime.inner.linker.instantiate_pre(component)?;
    Ok(match world {
        World::Strategy => WorldPre::Strategy(strategy::StrategyPre::new(instance_pre)?),
        World::TaskAdapter => {
            WorldPre::TaskAdapter(task_adapter::TaskAdapterPre::new(instance_pre)?)
        }
        World::PromotionPolicy => {
            WorldPre::PromotionPolicy(promotion_policy::PromotionPolicyPre::new(instance_pre)?)
        }
    })
}

/// A strategy's randomness comes from its run's seed, so that replaying the journal into a
/// fresh instance reproduces it.
fn seed_randomness(wasi: &mut WasiCtxBuilder, info: &RunInfo) {
    use wasi_rand::SeedableRng;
    let digest = sha2::Sha256::digest(format!("{}#{}", info.run_id, info.seed).as_bytes());
    let seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    wasi.secure_random(wasi_rand::rngs::StdRng::seed_from_u64(seed))
        .insecure_random(wasi_rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed))
        .insecure_random_seed(u128::from(seed));
}

/// Compile `wasm` (whose hash is `sha256`) for the current `sophon:host`: a plugin built
/// against an earlier served contract has its imports renamed first ([`super::compat`]),
/// and is cached under the hash of the renamed bytes.
fn compile_current(
    runtime: &Runtime,
    wasm: &[u8],
    sha256: &str,
) -> wasmtime::Result<wasmtime::component::Component> {
    match super::compat::serve_current(wasm)? {
        std::borrow::Cow::Borrowed(_) => runtime.compile(wasm, sha256),
        std::borrow::Cow::Owned(renamed) => {
            runtime.compile(&renamed, &hex::encode(Sha256::digest(&renamed)))
        }
    }
}

/// Names of the component's imported instances that export at least one function.
fn called_imports(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Vec<String> {
    use wasmtime::component::types::ComponentItem;
    component
        .component_type()
        .imports(engine)
        .filter(|(_, import)| match &import.ty {
            ComponentItem::ComponentInstance(instance) => instance
                .exports(engine)
                .any(|(_, export)| matches!(export.ty, ComponentItem::ComponentFunc(_))),
            ComponentItem::ComponentFunc(_) => true,
            _ => false,
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    pub fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn grants(&self) -> &EffectiveGrants {
        &self.identity.grants
    }

    /// The component's top-level imports.
    pub fn imports(&self) -> &[String] {
        &self.facts.imports
    }

    /// A store for one instance: WASI without network, the adapter's read-only mounts, the
    /// strategy's seeded randomness, the memory limiter and the watchdog's epoch deadline.
    fn new_store(
        &self,
        services: HostServices,
        files: &AdapterFiles,
    ) -> Result<Store<PluginState>, PluginError> {
        let config = self.runtime.config();
        let stdout = OutputCapture::new(&self.identity.name, "stdout");
        let stderr = OutputCapture::new(&self.identity.name, "stderr");
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        self.mount_adapter_files(&mut wasi, files)?;
        if self.identity.world == World::Strategy
            && let Some(run) = &services.run
        {
            seed_randomness(&mut wasi, &run.info());
        }
        let state = PluginState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                memory_limit: self.identity.grants.memory_bytes as usize,
                exceeded: None,
            },
            watchdog: Watchdog::new(
                self.runtime.inner.clock.clone(),
                config.engine.epoch_tick,
                config.compute_slice,
            ),
            identity: self.identity.clone(),
            services,
            limits: config.host_calls.clone(),
            stderr,
            pending_llm_calls: 0,
        };
        let mut store = Store::new(&self.runtime.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_callback(|mut ctx| match ctx.data_mut().watchdog.on_epoch() {
            Ok(()) => Ok(UpdateDeadline::Yield(1)),
            Err(trip) => Err(wasmtime::Error::msg(format!(
                "stopped by Sophon's watchdog: {trip:?}"
            ))),
        });
        store.set_epoch_deadline(1);
        Ok(store)
    }

    /// Preopen the adapter's directories read-only: public data and the submission always
    /// (where given), the private answers only with the `task.private-data` grant.
    fn mount_adapter_files(
        &self,
        wasi: &mut WasiCtxBuilder,
        files: &AdapterFiles,
    ) -> Result<(), PluginError> {
        let private_granted = (self.identity.grants.task.as_ref()).is_some_and(|t| t.private_data);
        let mounts = [
            (&files.public, "/data/public", true),
            (&files.private, "/data/private", private_granted),
            (&files.submission_dir, "/submission", true),
        ];
        for (host_path, guest_path, allowed) in mounts {
            if let (Some(host_path), true) = (host_path, allowed) {
                wasi.preopened_dir(host_path, guest_path, FsPerms::ReadOnly)
                    .map_err(|e| PluginError::Instantiate {
                        plugin: self.identity.name.clone(),
                        message: format!(
                            "cannot open {} for {guest_path}: {e}",
                            host_path.display()
                        ),
                    })?;
            }
        }
        Ok(())
    }

    fn expect_world(&self, expected: World) -> Result<(), PluginError> {
        if self.identity.world == expected {
            Ok(())
        } else {
            Err(PluginError::WrongWorld {
                plugin: self.identity.name.clone(),
                expected: expected.as_str(),
                actual: self.identity.world.as_str(),
            })
        }
    }

    async fn instantiate<B>(
        &self,
        mut store: Store<PluginState>,
        instantiate: impl AsyncFnOnce(&mut Store<PluginState>) -> wasmtime::Result<B>,
    ) -> Result<Instance<B>, PluginError> {
        let timeout = self.runtime.config().compute_slice;
        let start = store.data_mut().watchdog.start_call(timeout);
        let clock = self.runtime.inner.clock.clone();
        let outcome = within(&clock, start, timeout, instantiate(&mut store)).await;
        let mut instance = Instance {
            clock,
            store,
            bindings: None,
            poisoned: false,
            max_return_bytes: self.runtime.config().max_return_bytes,
        };
        instance.bindings = Some(instance.settle("instantiate", timeout, outcome)?);
        Ok(instance)
    }

    /// A new instance of this strategy, reaching the host through `services`.
    pub async fn strategy(&self, services: HostServices) -> Result<StrategyInstance, PluginError> {
        self.expect_world(World::Strategy)?;
        let WorldPre::Strategy(pre) = &self.pre else {
            unreachable!("world checked")
        };
        let store = self.new_store(services, &AdapterFiles::default())?;
        Ok(StrategyInstance(
            self.instantiate(store, async |s| pre.instantiate_async(s).await)
                .await?,
        ))
    }

    /// A new instance of this task adapter, seeing `files` read-only.
    pub async fn task_adapter(
        &self,
        services: HostServices,
        files: &AdapterFiles,
    ) -> Result<TaskAdapterInstance, PluginError> {
        self.expect_world(World::TaskAdapter)?;
        let WorldPre::TaskAdapter(pre) = &self.pre else {
            unreachable!("world checked")
        };
        let store = self.new_store(services, files)?;
        Ok(TaskAdapterInstance(
            self.instantiate(store, async |s| pre.instantiate_async(s).await)
                .await?,
        ))
    }

    /// A new instance of this promotion policy.
    pub async fn promotion_policy(
        &self,
        services: HostServices,
    ) -> Result<PromotionPolicyInstance, PluginError> {
        self.expect_world(World::PromotionPolicy)?;
        let WorldPre::PromotionPolicy(pre) = &self.pre else {
            unreachable!("world checked")
        };
        let store = self.new_store(services, &AdapterFiles::default())?;
        Ok(PromotionPolicyInstance(
            self.instantiate(store, async |s| pre.instantiate_async(s).await)
                .await?,
        ))
    }
}

/// One live plugin instance: a store and the world's bindings.
struct Instance<B> {
    clock: Arc<CoarseClock>,
    store: Store<PluginState>,
    bindings: Option<B>,
    poisoned: bool,
    max_return_bytes: usize,
}

/// Extra wall-clock time after the watchdog's deadline before the call's future is dropped
/// (the watchdog normally stops a running plugin first, with a better message).
const GRACE: Duration = Duration::from_millis(500);

impl<B> Instance<B> {
    fn plugin(&self) -> String {
        self.store.data().identity.name.clone()
    }

    /// Arm the watchdog for a call of at most `timeout`; returns the call's start on the
    /// runtime's clock.
    fn begin(&mut self, timeout: Duration) -> Result<u64, PluginError> {
        if self.poisoned {
            return Err(PluginError::Poisoned {
                plugin: self.plugin(),
            });
        }
        let state = self.store.data_mut();
        let start = state.watchdog.start_call(timeout);
        state.limiter.exceeded = None;
        state.stderr.clear_tail();
        self.store.set_epoch_deadline(1);
        Ok(start)
    }

    /// Turn a call's outcome into a value or a classified error (poisoning on failure).
    fn settle<T>(
        &mut self,
        func: &'static str,
        timeout: Duration,
        outcome: Result<wasmtime::Result<T>, Elapsed>,
    ) -> Result<T, PluginError> {
        let error = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => Some(error),
            Err(_elapsed) => None,
        };
        self.poisoned = true;
        let plugin = self.plugin();
        let state = self.store.data();
        let Some(error) = error else {
            return Err(PluginError::Deadline {
                plugin,
                func,
                limit: timeout,
            });
        };
        if let Some(trip) = state.watchdog.tripped {
            return Err(match trip {
                Trip::CallDeadline(limit) => PluginError::Deadline {
                    plugin,
                    func,
                    limit,
                },
                Trip::ComputeSlice(limit) => PluginError::ComputeSlice {
                    plugin,
                    func,
                    limit,
                },
            });
        }
        if let Some(requested) = state.limiter.exceeded {
            return Err(PluginError::MemoryLimit {
                plugin,
                func,
                requested_mib: (requested as u64).div_ceil(1 << 20),
                limit_mib: (state.limiter.memory_limit as u64) >> 20,
            });
        }
        if is_stack_overflow(&error) {
            return Err(PluginError::StackOverflow { plugin, func });
        }
        if let Some(full) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return Err(PluginError::PoolFull {
                plugin,
                message: full.to_string(),
            });
        }
        let stderr = state.stderr.tail();
        if let Some(at) = stderr.rfind(sophon_panic_prefix()) {
            let message = stderr[at + sophon_panic_prefix().len()..]
                .trim_end()
                .to_string();
            return Err(PluginError::Panic {
                plugin,
                func,
                message,
            });
        }
        let mut message = format!("{error:#}");
        let stderr = stderr.trim();
        if !stderr.is_empty() {
            let start = stderr.len().saturating_sub(2000);
            let start = (start..stderr.len())
                .find(|&i| stderr.is_char_boundary(i))
                .unwrap_or(0);
            message.push_str(&format!("\nplugin stderr (end):\n{}", &stderr[start..]));
        }
        Err(PluginError::Trap {
            plugin,
            func,
            message,
        })
    }

    /// Map the guest's own `Err(String)` and check the returned size.
    fn guest_result<T: WireSize>(
        &mut self,
        func: &'static str,
        result: Result<T, String>,
    ) -> Result<T, PluginError> {
        match result {
            Ok(value) => {
                let size = value.wire_size();
                if size > self.max_return_bytes {
                    self.poisoned = true;
                    return Err(PluginError::ReturnTooLarge {
                        plugin: self.plugin(),
                        func,
                        size,
                        limit: self.max_return_bytes,
                    });
                }
                Ok(value)
            }
            Err(message) => Err(PluginError::Guest {
                plugin: self.plugin(),
                func,
                message: truncate_marked(message, 64 * 1024),
            }),
        }
    }

    /// Bytes the plugin wrote to stderr so far.
    fn stderr_tail(&self) -> String {
        self.store.data().stderr.tail()
    }
}

/// A wasm call-stack overflow, or an overflow of the shadow stack compilers keep in linear
/// memory: an out-of-bounds access (the stack pointer wrapped below zero) with a backtrace
/// whose innermost function recurs.
fn is_stack_overflow(error: &wasmtime::Error) -> bool {
    let trap = error.chain().find_map(|e| e.downcast_ref::<Trap>());
    match trap {
        Some(Trap::StackOverflow) => true,
        Some(Trap::MemoryOutOfBounds) => {
            error
                .downcast_ref::<WasmBacktrace>()
                .is_some_and(|backtrace| {
                    let frames = backtrace.frames();
                    frames.len() >= 8
                        && frames
                            .iter()
                            .filter(|f| f.func_index() == frames[0].func_index())
                            .count()
                            >= 4
                })
        }
        _ => false,
    }
}

fn sophon_panic_prefix() -> &'static str {
    "sophon-plugin-panic: "
}

/// Call an export under the watchdog and a wall-clock timeout.
macro_rules! call_export {
    ($self:ident, $func:literal, $timeout:expr, |$b:ident, $s:ident| $call:expr) => {{
        let timeout: Duration = $timeout;
        let start = $self.0.begin(timeout)?;
        let instance = &mut $self.0;
        let $b = instance.bindings.as_ref().expect("instantiated");
        let $s = &mut instance.store;
        let outcome = within(&instance.clock, start, timeout + GRACE, $call).await;
        let raw = $self.0.settle($func, timeout, outcome)?;
        $self.0.guest_result($func, raw.map(Conv::conv))
    }};
}

/// A live strategy instance.
pub struct StrategyInstance(Instance<strategy::Strategy>);

impl StrategyInstance {
    /// Call `run(config)`, allowing it `timeout` in total.
    pub async fn run(&mut self, config: &str, timeout: Duration) -> Result<Outcome, PluginError> {
        call_export!(self, "run", timeout, |b, s| b
            .sophon_plugin_strategy_api()
            .call_run(s, config))
    }

    /// What the plugin wrote to stderr recently.
    pub fn stderr_tail(&self) -> String {
        self.0.stderr_tail()
    }
}

/// A live task-adapter instance.
pub struct TaskAdapterInstance(Instance<task_adapter::TaskAdapter>);

impl TaskAdapterInstance {
    pub async fn describe(
        &mut self,
        request: &TaskRequest,
        timeout: Duration,
    ) -> Result<TaskInfo, PluginError> {
        let request = request.clone().conv();
        call_export!(self, "describe", timeout, |b, s| b
            .sophon_plugin_task_adapter_api()
            .call_describe(s, &request))
    }

    /// `submission` is a path inside the adapter (under `/submission`).
    pub async fn validate(
        &mut self,
        request: &TaskRequest,
        submission: &str,
        timeout: Duration,
    ) -> Result<Validation, PluginError> {
        let request = request.clone().conv();
        call_export!(self, "validate", timeout, |b, s| b
            .sophon_plugin_task_adapter_api()
            .call_validate(s, &request, submission))
    }

    /// `submission` is a path inside the adapter (under `/submission`).
    pub async fn grade(
        &mut self,
        request: &TaskRequest,
        submission: &str,
        timeout: Duration,
    ) -> Result<GradeResult, PluginError> {
        let request = request.clone().conv();
        call_export!(self, "grade", timeout, |b, s| b
            .sophon_plugin_task_adapter_api()
            .call_grade(s, &request, submission))
    }
}

/// A live promotion-policy instance.
pub struct PromotionPolicyInstance(Instance<promotion_policy::PromotionPolicy>);

impl PromotionPolicyInstance {
    pub async fn describe_task(
        &mut self,
        task: &TaskInfo,
        timeout: Duration,
    ) -> Result<TaskDescriptor, PluginError> {
        let task = task.clone().conv();
        call_export!(self, "describe-task", timeout, |b, s| b
            .sophon_plugin_promotion_policy_api()
            .call_describe_task(s, &task))
    }

    pub async fn on_phase_end(
        &mut self,
        trace: &PhaseTrace,
        timeout: Duration,
    ) -> Result<Option<KnowledgeUnit>, PluginError> {
        let trace = trace.clone().conv();
        call_export!(self, "on-phase-end", timeout, |b, s| b
            .sophon_plugin_promotion_policy_api()
            .call_on_phase_end(s, &trace))
    }

    pub async fn on_task_end(
        &mut self,
        trace: &RunTrace,
        timeout: Duration,
    ) -> Result<Vec<WisdomEntry>, PluginError> {
        let trace = trace.clone().conv();
        call_export!(self, "on-task-end", timeout, |b, s| b
            .sophon_plugin_promotion_policy_api()
            .call_on_task_end(s, &trace))
    }
}

use promotion_policy::exports::sophon::plugin::promotion_policy_api as policy_api;
use strategy::exports::sophon::plugin::strategy_api;
use task_adapter::exports::sophon::plugin::task_adapter_api as adapter_api;

record!(strategy_api::Outcome => Outcome { best_node, nodes, summary });
record!(TaskRequest => adapter_api::TaskRequest { competition_id, options });
record!(adapter_api::GradeResult => GradeResult { score, valid, message, direction });
record!(PhaseTrace => policy_api::PhaseTrace { competition_id, descriptor, phase, plan, events });
record!(RunTrace => policy_api::RunTrace {
    competition_id, descriptor, knowledge, best_metric, final_events
});
