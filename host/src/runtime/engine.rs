//! The one wasmtime [`Engine`] of a Sophon process and the epoch ticker that drives every
//! plugin's deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Sizing of the engine; see `[runtime]` in `sophon.toml`.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// The largest linear memory any plugin may have, in bytes (pooled slots are this big).
    pub max_memory_bytes: u64,
    /// Plugin instances alive at once (pool size).
    pub max_instances: u32,
    /// Wasm stack per call, in bytes.
    pub max_wasm_stack: usize,
    /// How often the epoch advances.
    pub epoch_tick: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_memory_bytes: 1 << 30,
            max_instances: 128,
            max_wasm_stack: 1 << 20,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// The pooling allocator's sizing for `settings`.
pub fn pooling_config(settings: &EngineSettings) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    let instances = settings.max_instances;
    pool.total_component_instances(instances)
        // Rust guests have ~4 core instances; Python guests (componentize-py) a few dozen.
        .max_core_instances_per_component(64)
        .total_core_instances(instances * 16)
        .max_memories_per_component(16)
        .total_memories(instances * 4)
        .max_tables_per_component(16)
        .total_tables(instances * 8)
        .total_stacks(instances)
        .max_memory_size(settings.max_memory_bytes as usize)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .table_elements(100_000)
        // Pages a freed slot keeps resident, so re-instantiation touches less memory.
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(64 << 10);
    pool
}

/// Build the engine: component model, async, epoch interruption, pooling allocator.
pub fn build_engine(settings: &EngineSettings) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(settings.max_wasm_stack)
        .async_stack_size(settings.max_wasm_stack + (1 << 20))
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
            settings,
        )));
    Engine::new(&config)
}

/// Milliseconds since the runtime started, advanced by the epoch thread: a clock that is as
/// cheap to read as an atomic load, at the resolution of one tick.
#[derive(Debug, Default)]
pub struct CoarseClock(AtomicU64);

impl CoarseClock {
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn set_for_test(&self, ms: u64) {
        self.0.store(ms, Ordering::Relaxed);
    }
}

/// Increments the engine's epoch and advances the [`CoarseClock`] every tick on a background
/// thread until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration, clock: Arc<CoarseClock>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let started = Instant::now();
            std::thread::Builder::new()
                .name("sophon-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::sleep(tick);
                        clock
                            .0
                            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                        engine.increment_epoch();
                    }
                })
                .expect("spawning the epoch thread")
        };
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
