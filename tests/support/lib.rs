//! Shared helpers of Sophon's integration tests: the compiled fixture plugins, a runtime
//! configured for tests, and in-memory stand-ins for the capability services (the runtime's
//! adaptation is what these tests exercise; each capability has its own tests).

pub mod clusters;
pub mod jobs;
pub mod mlebench;
pub mod openai_server;
pub mod services;

use sophon::runtime::{LoadedPlugin, PluginGrants, PluginSource, Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::time::Duration;

/// The listing of compiled fixture plugins (`crate=path` lines), written by `tests/build.rs`.
pub const FIXTURE_LISTING: &str = env!("SOPHON_FIXTURES");

/// Where test runtimes cache precompiled components: under the target directory, away from the
/// user's cache.
pub const TEST_CACHE: &str = env!("SOPHON_TEST_CACHE");

/// The grants the `worker` fixture needs: every capability.
pub const WORKER_GRANTS: &str = r#"
[grants]
llm = { max-concurrent = 8 }
jobs = {}
hcc = { scopes = ["experience:write", "knowledge:read", "wisdom:read"] }
task = {}
artifacts = {}
"#;

/// Path of the compiled fixture plugin `name` (its crate name, e.g. `echo`).
pub fn fixture(name: &str) -> PathBuf {
    let listing = std::fs::read_to_string(FIXTURE_LISTING).expect("fixture listing");
    listing
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(crate_name, _)| *crate_name == name.replace('-', "_"))
        .map(|(_, path)| PathBuf::from(path))
        .unwrap_or_else(|| panic!("no fixture plugin named {name}; add it under tests/plugins/"))
}

/// A runtime for tests: components cached under the target directory, short deadlines.
pub fn test_config() -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(PathBuf::from(TEST_CACHE)),
        compute_slice: Duration::from_secs(2),
        ..RuntimeConfig::default()
    }
}

pub fn test_runtime() -> Runtime {
    Runtime::new(test_config()).expect("runtime")
}

/// Load fixture `name` with `grants` (TOML of a `[plugins.<name>]` table).
pub fn load(runtime: &Runtime, name: &str, grants: &str) -> LoadedPlugin {
    let source = PluginSource::from_file(&fixture(name)).expect("fixture");
    let grants: PluginGrants = sophon::config::parse_toml(grants).expect("grants");
    runtime
        .load(&source, &grants)
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// For criterion's `iter_custom`: the time `iters` sequential awaits of `call` take on the
/// tokio runtime `rt` (`timed!(rt, n, instance.run("noop", T).await.unwrap())`).
#[macro_export]
macro_rules! timed {
    ($rt:expr, $iters:expr, $call:expr) => {
        $rt.block_on(async {
            let start = ::std::time::Instant::now();
            for _ in 0..$iters {
                ::std::hint::black_box($call);
            }
            start.elapsed()
        })
    };
}
