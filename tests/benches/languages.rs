//! What a plugin's language costs: the same strategy (the `echo` fixture's behaviour) as a Rust
//! component, a Python one (componentize-py) and a JavaScript one (componentize-js), all loaded
//! by Sophon's runtime. Rows: instantiate a plugin ready to call; host→guest no-op; guest→host
//! no-op (per call, loop of 1000 in the guest); a 2 KB string round trip.
//!
//! The Python and JavaScript guests (`benches/guests/`) are built here with `sophon plugin
//! build`, from `$SOPHON_COMPONENTIZE_PY` / `$SOPHON_COMPONENTIZE_JS` or the copies `tests/run`
//! installs under `target/`; a language whose toolchain is missing is left out with a note.
//!
//! `cargo bench -p sophon-tests --bench languages`; see docs/performance.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sophon::runtime::{
    HostServices, LoadedPlugin, PluginGrants, PluginSource, Runtime, StrategyInstance,
};
use sophon_tests::timed;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const HOST_CALLS: u64 = 1000;

/// A guest under test: its row label and its component.
struct Guest {
    label: &'static str,
    wasm: PathBuf,
}

/// The repository root (this crate is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Build the guest in `benches/guests/<name>` with `sophon plugin build` in a scratch copy;
/// `None` (with a note) where its toolchain is not installed.
fn build_guest(
    label: &'static str,
    name: &str,
    variable: &str,
    installed: &str,
    scratch: &Path,
) -> Option<Guest> {
    let tool = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(installed));
    if !tool.is_file() {
        eprintln!(
            "note: {label} rows left out: no {} (set {variable}, or run tests/run once)",
            tool.display()
        );
        return None;
    }
    // SAFETY: set before the benchmark starts any thread that reads the environment.
    unsafe { std::env::set_var(variable, &tool) };
    let dir = scratch.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/guests")
        .join(name);
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let started = Instant::now();
    let wasm = sophon::cli::build_plugin(&dir).unwrap_or_else(|e| panic!("building {name}: {e:#}"));
    eprintln!(
        "{label}: built {} ({} bytes) in {:.1} s",
        wasm.display(),
        std::fs::metadata(&wasm).unwrap().len(),
        started.elapsed().as_secs_f64()
    );
    Some(Guest { label, wasm })
}

/// Load `guest` (no capabilities: the echo guests call only `run`, which every plugin has).
fn load(runtime: &Runtime, guest: &Guest) -> LoadedPlugin {
    let source = PluginSource::from_file(&guest.wasm).unwrap();
    let grants = PluginGrants {
        memory_mb: Some(256),
        ..PluginGrants::default()
    };
    let started = Instant::now();
    let plugin = runtime.load(&source, &grants).unwrap();
    eprintln!(
        "{}: loaded in {:.2} s (compiled, or read from the runtime's cache)",
        guest.label,
        started.elapsed().as_secs_f64()
    );
    plugin
}

async fn instance(plugin: &LoadedPlugin) -> StrategyInstance {
    plugin.strategy(HostServices::default()).await.unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut guests = vec![Guest {
        label: "rust",
        wasm: sophon_tests::fixture("echo"),
    }];
    guests.extend(build_guest(
        "python",
        "echo-py",
        "SOPHON_COMPONENTIZE_PY",
        "target/componentize/bin/componentize-py",
        scratch.path(),
    ));
    guests.extend(build_guest(
        "javascript",
        "echo-js",
        "SOPHON_COMPONENTIZE_JS",
        "target/componentize-js/node_modules/.bin/componentize-js",
        scratch.path(),
    ));
    let mut config = sophon_tests::test_config();
    config.compute_slice = Duration::from_secs(60);
    let runtime = Runtime::new(config).unwrap();
    let plugins: Vec<(&str, LoadedPlugin)> = guests
        .iter()
        .map(|guest| (guest.label, load(&runtime, guest)))
        .collect();

    let mut group = c.benchmark_group("language-instantiate");
    for (label, plugin) in &plugins {
        group.bench_function(*label, |b| {
            b.iter_custom(|n| timed!(rt, n, instance(plugin).await))
        });
    }
    group.finish();

    let mut instances: Vec<(&str, StrategyInstance)> = plugins
        .iter()
        .map(|(label, plugin)| (*label, rt.block_on(instance(plugin))))
        .collect();
    let echo = format!("echo:{}", "x".repeat(2_000));
    let host_calls = format!("host-calls:{HOST_CALLS}");
    for (name, config, elements) in [
        ("language-host-to-guest-noop", "noop", None),
        (
            "language-guest-to-host-noop",
            host_calls.as_str(),
            Some(HOST_CALLS),
        ),
        ("language-string-round-trip-2KB", echo.as_str(), None),
    ] {
        let mut group = c.benchmark_group(name);
        if let Some(elements) = elements {
            group.throughput(Throughput::Elements(elements));
        }
        for (label, instance) in &mut instances {
            // The guest does what the row says (and the same in every language).
            let outcome = rt.block_on(instance.run(config, T)).unwrap();
            assert_eq!(outcome.summary, config.strip_prefix("echo:").unwrap_or(""));
            group.bench_function(*label, |b| {
                b.iter_custom(|n| timed!(rt, n, instance.run(config, T).await.unwrap()))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = languages;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(languages);
