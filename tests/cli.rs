//! The `sophon` binary, end to end: the quick start's main job and `plugin inspect`.
//! (Declared as a test of the `sophon` package so it can run the built binary.)

use std::process::Command;

fn sophon(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sophon"))
        .args(args)
        .current_dir(dir)
        .env("SOPHON_LOG", "warn")
        .output()
        .expect("running sophon");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn inspect_reports_world_imports_exports_manifest_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = sophon(
        &["plugin", "inspect", "--json", "builtin:hello"],
        dir.path(),
    );
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["world"], "strategy");
    assert_eq!(json["manifest"]["plugin"]["name"], "hello");
    assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
    assert!(json["size"].as_u64().unwrap() > 1000);
    let imports: Vec<&str> = json["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        imports.contains(&"sophon:host/artifacts@0.1.0"),
        "{imports:?}"
    );
    assert_eq!(json["exports"][0], "sophon:plugin/strategy-api@0.1.0");

    std::fs::write(dir.path().join("bad.wasm"), b"definitely not wasm").unwrap();
    let (ok, _, stderr) = sophon(&["plugin", "inspect", "bad.wasm"], dir.path());
    assert!(!ok);
    assert!(stderr.contains("not a WebAssembly file"), "{stderr}");
}

#[test]
fn the_quick_start_main_job_runs_the_hello_strategy_in_its_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = sophon(&["plugin", "run", "builtin:hello", "--json"], dir.path());
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(json["best"]["node"], "node-1");
    assert_eq!(json["best"]["metric"], 1.0);
    let run_dir = dir.path().join(json["run_dir"].as_str().unwrap());
    let blobs = std::fs::read_dir(run_dir.join("artifacts/blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 3, "one stored submission per node");

    // Bad plugin settings are the plugin's clear error, and a non-zero exit.
    let (ok, _, stderr) = sophon(
        &[
            "plugin",
            "run",
            "builtin:hello",
            "--plugin-config",
            "{\"nodes\": 0}",
        ],
        dir.path(),
    );
    assert!(!ok);
    assert!(
        stderr.contains("config.nodes must be an integer in 1..=100"),
        "{stderr}"
    );
}

#[test]
fn an_operator_config_can_withhold_a_grant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sophon.toml"),
        "[plugins.hello]\nsource = 'builtin:hello'\n",
    )
    .unwrap();
    let (ok, _, stderr) = sophon(&["plugin", "run", "builtin:hello"], dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("asks for capability `artifacts`")
            && stderr.contains("[plugins.hello.grants.artifacts]"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("sophon.toml"),
        "[runtime]\nno-such-setting = 1\n",
    )
    .unwrap();
    let (ok, _, stderr) = sophon(&["plugin", "list"], dir.path());
    assert!(!ok);
    assert!(stderr.contains("no-such-setting"), "{stderr}");
}
