//! `sophon plugin new` makes crates whose own tests pass natively (`cargo test`, against the
//! SDK's mock host) and that build for wasm32-wasip2 and load.

use sophon::runtime::{HostServices, PluginGrants, PluginSource, World, inspect};
use sophon::task::TaskRequest;
use sophon_tests::services::SlowEcho;
use sophon_tests::test_runtime;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Build the scaffolded crate in `dir` as its author would, sharing compiled dependencies with
/// the fixture plugins (same profile settings).
fn build(dir: &Path) -> PluginSource {
    let target_dir = plugins_target_dir();
    let output = cargo(dir, &["build", "--release", "--target", "wasm32-wasip2"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = dir.file_name().unwrap().to_string_lossy().replace('-', "_");
    PluginSource::from_file(
        &target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{name}.wasm")),
    )
    .unwrap()
}

/// The fixture plugins' target directory, shared so dependencies compile once.
fn plugins_target_dir() -> std::path::PathBuf {
    Path::new(env!("SOPHON_FIXTURES"))
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .unwrap()
        .join("plugins")
}

/// `cargo ARGS` in the scaffolded crate `dir`, as its author would run it.
fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args(args)
        .arg("--target-dir")
        .arg(plugins_target_dir())
        .current_dir(dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap()
}

/// The crate's own tests, run natively with plain `cargo test`: they pass, and there are some.
fn author_tests_pass(dir: &Path) {
    let output = cargo(dir, &["test"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 1, "no test ran: {stdout}");
}

/// Load with exactly the grants the manifest asks for.
fn requested_grants(source: &PluginSource) -> PluginGrants {
    let manifest = inspect::describe(source)
        .unwrap()
        .manifest
        .unwrap()
        .unwrap();
    PluginGrants {
        grants: manifest.capabilities,
        memory_mb: manifest.limits.memory_mb,
        sha256: None,
    }
}

#[tokio::test]
async fn scaffolded_plugins_of_every_world_build_and_load() {
    let parent = tempfile::tempdir().unwrap();
    let runtime = test_runtime();

    let dir =
        sophon::cli::scaffold_plugin(World::Strategy, "my-strategy", parent.path(), None).unwrap();
    author_tests_pass(&dir);
    let source = build(&dir);
    let plugin = runtime.load(&source, &requested_grants(&source)).unwrap();
    let services = HostServices {
        llm: Some(SlowEcho::new(Duration::ZERO)),
        ..HostServices::default()
    };
    let outcome = plugin
        .strategy(services)
        .await
        .unwrap()
        .run("{}", T)
        .await
        .unwrap();
    assert_eq!(outcome.summary, "echo: Name one model for tabular data.");

    let dir = sophon::cli::scaffold_plugin(World::TaskAdapter, "my-adapter", parent.path(), None)
        .unwrap();
    author_tests_pass(&dir);
    let source = build(&dir);
    let plugin = runtime.load(&source, &requested_grants(&source)).unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("train.csv"), "a,b\n").unwrap();
    let files = sophon::runtime::AdapterFiles {
        public: Some(data.path().to_path_buf()),
        ..Default::default()
    };
    let mut adapter = plugin
        .task_adapter(HostServices::default(), &files)
        .await
        .unwrap();
    let request = TaskRequest {
        competition_id: "demo".into(),
        options: "{}".into(),
    };
    assert_eq!(
        adapter.describe(&request, T).await.unwrap().public_files,
        vec!["train.csv".to_string()]
    );

    let dir =
        sophon::cli::scaffold_plugin(World::PromotionPolicy, "my-policy", parent.path(), None)
            .unwrap();
    author_tests_pass(&dir);
    let source = build(&dir);
    let plugin = runtime.load(&source, &requested_grants(&source)).unwrap();
    plugin
        .promotion_policy(HostServices::default())
        .await
        .unwrap();

    let err = sophon::cli::scaffold_plugin(World::Strategy, "my-strategy", parent.path(), None)
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err =
        sophon::cli::scaffold_plugin(World::Strategy, "Bad_Name", parent.path(), None).unwrap_err();
    assert!(err.to_string().contains("lower-case"), "{err}");
}
