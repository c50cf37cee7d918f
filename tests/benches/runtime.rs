//! Sophon's plugin runtime against the floor: a bare wasmtime host calling the same guest
//! (the `echo` fixture), and a native Rust trait call. Rows: instantiate a plugin ready to
//! call; host→guest no-op; guest→host no-op (per call, from a loop of 1000 in the guest);
//! string round trips of 20 B, 2 KB and 20 KB.
//!
//! `cargo bench -p sophon-tests --bench runtime`; see docs/performance.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sophon::runtime::{HostServices, LoadedPlugin, Runtime, StrategyInstance};
use sophon_tests::timed;
use std::hint::black_box;
use std::time::Duration;
use tokio::runtime::Runtime as Tokio;

const T: Duration = Duration::from_secs(60);
const HOST_CALLS: u64 = 1000;

/// The bare host: wasmtime with the same pooling allocator sizing and async calls, WASI, and
/// the one Sophon interface the guest calls, implemented as trivially as possible. No epoch
/// interruption, grants, watchdog or limits: the floor.
mod bare {
    use wasmtime::component::{HasSelf, Linker, ResourceTable};
    use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/strategy",
        imports: { default: trappable },
        exports: { default: async },
    });

    pub struct State {
        wasi: WasiCtx,
        table: ResourceTable,
    }

    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    impl sophon::host::types::Host for State {}

    impl sophon::host::run::Host for State {
        fn info(&mut self) -> wasmtime::Result<sophon::host::run::RunInfo> {
            unimplemented!("not called by the echo guest")
        }
        fn budget(&mut self) -> wasmtime::Result<sophon::host::run::RunBudget> {
            unimplemented!("not called by the echo guest")
        }
        fn should_stop(&mut self) -> wasmtime::Result<bool> {
            Ok(false)
        }
        fn report_node(
            &mut self,
            _: sophon::host::run::NodeReport,
        ) -> wasmtime::Result<Result<(), sophon::host::types::Error>> {
            unimplemented!("not called by the echo guest")
        }
        fn report_best(
            &mut self,
            _: String,
            _: String,
            _: f64,
        ) -> wasmtime::Result<Result<bool, sophon::host::types::Error>> {
            unimplemented!("not called by the echo guest")
        }
        fn best(&mut self) -> wasmtime::Result<Option<sophon::host::run::BestSubmission>> {
            Ok(None)
        }
        fn log(&mut self, _: sophon::host::types::LogLevel, _: String) -> wasmtime::Result<()> {
            Ok(())
        }
    }

    pub struct Host {
        engine: Engine,
        pre: StrategyPre<State>,
    }

    impl Host {
        pub fn new(wasm: &[u8]) -> Host {
            let mut config = Config::new();
            let pool = ::sophon::runtime::engine::pooling_config(&Default::default());
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            let engine = Engine::new(&config).unwrap();
            let mut linker = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
            sophon::host::types::add_to_linker::<_, HasSelf<State>>(&mut linker, |s| s).unwrap();
            sophon::host::run::add_to_linker::<_, HasSelf<State>>(&mut linker, |s| s).unwrap();
            let component = wasmtime::component::Component::new(&engine, wasm).unwrap();
            let pre = StrategyPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
            Host { engine, pre }
        }

        pub async fn instantiate(&self) -> (Store<State>, Strategy) {
            let state = State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            };
            let mut store = Store::new(&self.engine, state);
            let bindings = self.pre.instantiate_async(&mut store).await.unwrap();
            (store, bindings)
        }
    }

    pub async fn run(store: &mut Store<State>, bindings: &Strategy, config: &str) -> String {
        let outcome = bindings
            .sophon_plugin_strategy_api()
            .call_run(store, config)
            .await
            .unwrap()
            .unwrap();
        outcome.summary
    }
}

/// The native baseline: the same behaviour as the guest, behind a trait object.
trait NativeStrategy {
    fn run(&self, config: &str) -> Result<String, String>;
}

struct NativeEcho;

impl NativeStrategy for NativeEcho {
    fn run(&self, config: &str) -> Result<String, String> {
        if config == "noop" {
            return Ok(String::new());
        }
        config
            .strip_prefix("echo:")
            .map(str::to_string)
            .ok_or_else(|| "unknown".to_string())
    }
}

fn sophon_plugin(rt: &Tokio) -> (Runtime, LoadedPlugin) {
    let mut config = sophon_tests::test_config();
    config.compute_slice = Duration::from_secs(60);
    let runtime = Runtime::new(config).unwrap();
    let plugin = rt.block_on(async { sophon_tests::load(&runtime, "echo", "") });
    (runtime, plugin)
}

async fn sophon_instance(plugin: &LoadedPlugin) -> StrategyInstance {
    plugin.strategy(HostServices::default()).await.unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wasm = std::fs::read(sophon_tests::fixture("echo")).unwrap();
    let bare = bare::Host::new(&wasm);
    let (_runtime, plugin) = sophon_plugin(&rt);
    let native: Box<dyn NativeStrategy> = Box::new(NativeEcho);

    let mut group = c.benchmark_group("instantiate");
    group.bench_function("sophon", |b| {
        b.iter_custom(|n| timed!(rt, n, sophon_instance(&plugin).await))
    });
    group.bench_function("bare-wasmtime", |b| {
        b.iter_custom(|n| timed!(rt, n, bare.instantiate().await))
    });
    group.finish();

    let mut sophon = rt.block_on(sophon_instance(&plugin));
    let (mut store, bindings) = rt.block_on(bare.instantiate());

    let mut group = c.benchmark_group("host-to-guest-noop");
    group.bench_function("sophon", |b| {
        b.iter_custom(|n| timed!(rt, n, sophon.run("noop", T).await.unwrap()))
    });
    group.bench_function("bare-wasmtime", |b| {
        b.iter_custom(|n| timed!(rt, n, bare::run(&mut store, &bindings, "noop").await))
    });
    group.bench_function("native", |b| {
        b.iter(|| black_box(native.run(black_box("noop")).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group("guest-to-host-noop");
    group.throughput(Throughput::Elements(HOST_CALLS));
    let config = format!("host-calls:{HOST_CALLS}");
    group.bench_function("sophon", |b| {
        b.iter_custom(|n| timed!(rt, n, sophon.run(&config, T).await.unwrap()))
    });
    group.bench_function("bare-wasmtime", |b| {
        b.iter_custom(|n| timed!(rt, n, bare::run(&mut store, &bindings, &config).await))
    });
    group.finish();

    let mut group = c.benchmark_group("string-round-trip");
    for size in [20usize, 2_000, 20_000] {
        let config = format!("echo:{}", "x".repeat(size));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("sophon", size), &config, |b, config| {
            b.iter_custom(|n| timed!(rt, n, sophon.run(config, T).await.unwrap()))
        });
        group.bench_with_input(
            BenchmarkId::new("bare-wasmtime", size),
            &config,
            |b, config| {
                b.iter_custom(|n| timed!(rt, n, bare::run(&mut store, &bindings, config).await))
            },
        );
        group.bench_with_input(BenchmarkId::new("native", size), &config, |b, config| {
            b.iter(|| black_box(native.run(black_box(config)).unwrap()))
        });
    }
    group.finish();
}

criterion_group! {
    name = runtime;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(runtime);
