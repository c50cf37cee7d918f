//! The plugin runtime with real compiled plugins: loading (manifests, grants, hashes, the
//! compiled-component cache) and every host interface reached from inside a plugin.

use sophon::artifacts::ArtifactStore;
use sophon::hcc::CognitiveCache;
use sophon::run::RunInfo;
use sophon::run::session::SessionRun;
use sophon::runtime::{
    AdapterFiles, GrantError, HostServices, PluginError, PluginGrants, PluginSource, Runtime,
};
use sophon::task::TaskRequest;
use sophon_tests::WORKER_GRANTS;
use sophon_tests::services::{FakeJobs, FakeTask, ScratchHcc, SlowEcho, WaitCounter};
use sophon_tests::{fixture, load, test_config, test_runtime};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn session(seed: u64) -> Arc<SessionRun> {
    Arc::new(SessionRun::new(RunInfo {
        run_id: "run-1".into(),
        competition_id: "toy-competition".into(),
        seed,
        arm: None,
    }))
}

#[tokio::test]
async fn a_strategy_round_trips_strings_and_reaches_the_host() {
    let runtime = test_runtime();
    let plugin = load(&runtime, "echo", "");
    let mut instance = plugin.strategy(HostServices::default()).await.unwrap();
    assert_eq!(
        instance.run("echo:héllo", T).await.unwrap().summary,
        "héllo"
    );
    assert_eq!(instance.run("noop", T).await.unwrap().summary, "");
    // should-stop answers false without a run; the plugin counts the `true`s it saw.
    assert_eq!(instance.run("host-calls:100", T).await.unwrap().nodes, 0);
    let run = session(0);
    run.request_stop();
    let mut instance = plugin
        .strategy(HostServices {
            run: Some(run),
            ..HostServices::default()
        })
        .await
        .unwrap();
    assert_eq!(instance.run("host-calls:100", T).await.unwrap().nodes, 100);
    let err = instance.run("bogus", T).await.unwrap_err();
    assert!(matches!(err, PluginError::Guest { .. }), "{err}");
    assert!(
        err.to_string().contains("unknown command \"bogus\""),
        "{err}"
    );
}

#[tokio::test]
async fn parallel_llm_calls_overlap_through_pollables() {
    let runtime = test_runtime();
    let plugin = load(&runtime, "worker", WORKER_GRANTS);
    let llm = SlowEcho::new(Duration::from_millis(300));
    let services = HostServices {
        llm: Some(llm.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let outcome = instance.run("parallel-chat:4", T).await.unwrap();
    assert_eq!(
        outcome.summary,
        "echo: worker 0|echo: worker 1|echo: worker 2|echo: worker 3"
    );
    assert_eq!(llm.calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        llm.max_in_flight.load(Ordering::SeqCst),
        4,
        "all four calls were in flight at once"
    );
}

#[tokio::test]
async fn jobs_are_waited_on_concurrently() {
    let runtime = test_runtime();
    let plugin = load(&runtime, "worker", WORKER_GRANTS);
    let jobs = WaitCounter::new(FakeJobs::new(Duration::from_millis(100)));
    let services = HostServices {
        jobs: Some(jobs.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    assert_eq!(instance.run("jobs:3", T).await.unwrap().summary, "0|1|2");
    assert_eq!(
        jobs.most_waited_at_once(),
        3,
        "the guest's three wait-async calls were pending together"
    );
}

/// The pool holds 128 live instances: the 129th is refused with an error naming the setting,
/// the 128 keep working, and a freed slot is reused.
#[tokio::test]
async fn the_instance_past_the_pool_is_refused_and_a_freed_slot_is_reused() {
    let runtime = test_runtime();
    let plugin = load(&runtime, "echo", "");
    let mut live = Vec::new();
    for _ in 0..128 {
        live.push(plugin.strategy(HostServices::default()).await.unwrap());
    }
    let Err(err) = plugin.strategy(HostServices::default()).await else {
        panic!("a 129th instance started");
    };
    assert!(matches!(err, PluginError::PoolFull { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("128") && text.contains("[runtime] max-instances"),
        "{text}"
    );
    for instance in live.iter_mut().step_by(16) {
        assert_eq!(
            instance.run("echo:still here", T).await.unwrap().summary,
            "still here"
        );
    }
    drop(live.pop());
    let mut again = plugin.strategy(HostServices::default()).await.unwrap();
    assert_eq!(again.run("echo:reused", T).await.unwrap().summary, "reused");
}

#[tokio::test]
async fn artifacts_nodes_best_submission_and_logs_reach_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::open(dir.path(), 1 << 20).unwrap());
    let run = Arc::new(
        SessionRun::new(RunInfo {
            run_id: "r".into(),
            competition_id: "c".into(),
            seed: 7,
            arm: None,
        })
        .with_artifacts(store.clone()),
    );
    let runtime = test_runtime();
    let plugin = load(&runtime, "worker", WORKER_GRANTS);
    let services = HostServices {
        run: Some(run.clone()),
        artifacts: Some(store.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let outcome = instance.run("artifacts", T).await.unwrap();
    let parts: Vec<&str> = outcome.summary.split('|').collect();
    assert_eq!(parts[0], "id,target\n1,0.5\n");
    assert_eq!(parts[2], "true", "the first claim becomes the best");
    let best = run.best().unwrap();
    assert_eq!(best.node, "n1");
    assert_eq!(store.stat(&best.submission).unwrap().sha256, parts[1]);
    assert_eq!(run.nodes()[0].plan, "constant baseline");
    let logs = run.log_lines();
    assert!(
        logs.iter()
            .any(|(plugin, _, line)| plugin == "worker" && line.starts_with("stored 16 bytes")),
        "{logs:?}"
    );
    let info = instance.run("info", T).await.unwrap();
    assert_eq!(info.summary, "r|7|false");
}

#[tokio::test]
async fn task_and_hcc_calls_reach_their_services() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ArtifactStore::open(dir.path(), 1 << 20).unwrap());
    let hcc = ScratchHcc::new("run-1", "toy-competition");
    let services = HostServices {
        task: Some(Arc::new(FakeTask {
            artifacts: store.clone(),
        })),
        hcc: Some(hcc.clone()),
        artifacts: Some(store),
        ..HostServices::default()
    };
    let runtime = test_runtime();
    let plugin = load(&runtime, "worker", WORKER_GRANTS);
    let mut instance = plugin.strategy(services).await.unwrap();
    assert_eq!(
        instance.run("task", T).await.unwrap().summary,
        "toy-competition|false|0 rows"
    );
    // The plugin's calls reach the real store: its phase and event come back in the
    // assembled context, in the HCC's sections.
    let context = instance.run("hcc", T).await.unwrap().summary;
    assert!(
        context.contains("# Current plan (phase 1)\ntry a baseline\n"),
        "{context}"
    );
    assert!(
        context.contains("# Live events (phase 1)\n## code · node n1\nprint(1)\n"),
        "{context}"
    );
    let stats = hcc.stats().await.unwrap();
    assert_eq!((stats.current_phase, stats.events), (1, 2));
}

#[tokio::test]
async fn a_missing_service_is_unavailable_not_a_crash() {
    let runtime = test_runtime();
    let plugin = load(&runtime, "worker", WORKER_GRANTS);
    let mut instance = plugin.strategy(HostServices::default()).await.unwrap();
    let err = instance.run("chat:hi", T).await.unwrap_err().to_string();
    assert!(
        err.contains("unavailable") && err.contains("`llm`"),
        "{err}"
    );
    // The instance is still usable: a guest error is not a trap.
    let err = instance.run("jobs:1", T).await.unwrap_err().to_string();
    assert!(
        err.contains("unavailable") && err.contains("`jobs`"),
        "{err}"
    );
}

#[tokio::test]
async fn host_awaits_have_a_wall_clock_timeout() {
    let mut config = test_config();
    config.host_calls.host_call_timeout = Duration::from_millis(200);
    let runtime = Runtime::new(config).unwrap();
    let plugin = load(&runtime, "worker", WORKER_GRANTS);
    let services = HostServices {
        llm: Some(SlowEcho::new(Duration::from_secs(30))),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services.clone()).await.unwrap();
    let err = instance.run("chat:hi", T).await.unwrap_err().to_string();
    assert!(err.contains("timeout") && err.contains("0.2 s"), "{err}");
    // The same limit applies to calls started in the background.
    let mut instance = plugin.strategy(services).await.unwrap();
    let err = instance
        .run("parallel-chat:2", T)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timeout"), "{err}");
}

#[tokio::test]
async fn ungranted_capabilities_are_refused_at_load_with_the_fix() {
    let runtime = test_runtime();
    let source = PluginSource::from_file(&fixture("worker")).unwrap();
    let err = runtime.load(&source, &PluginGrants::default()).unwrap_err();
    let PluginError::Grant {
        source: GrantError::NotGranted {
            plugin, capability, ..
        },
        ..
    } = &err
    else {
        panic!("expected a grant refusal, got {err}");
    };
    assert_eq!(plugin, "worker");
    assert_eq!(capability.as_str(), "llm");
    let text = err.to_string();
    assert!(
        text.contains("[plugins.worker.grants.llm]\nmax-concurrent = 8"),
        "{text}"
    );

    let grants: PluginGrants = sophon::config::parse_toml(
        &WORKER_GRANTS.replace("max-concurrent = 8", "max-concurrent = 2"),
    )
    .unwrap();
    let err = runtime.load(&source, &grants).unwrap_err().to_string();
    assert!(
        err.contains("llm.max-concurrent = 8") && err.contains("at most 2"),
        "{err}"
    );

    let grants: PluginGrants =
        sophon::config::parse_toml(&WORKER_GRANTS.replace("\"wisdom:read\"", "")).unwrap();
    let err = runtime.load(&source, &grants).unwrap_err().to_string();
    assert!(err.contains("HCC scope `wisdom:read`"), "{err}");
}

/// Guest toolchains import every interface of the world; an import the manifest does not ask
/// for loads, and every call to it is refused, even where sophon.toml grants the capability.
#[tokio::test]
async fn a_plugin_calling_an_undeclared_capability_is_refused_the_call() {
    let runtime = test_runtime();
    let source = PluginSource::from_file(&fixture("undeclared")).unwrap();
    let grants: PluginGrants = sophon::config::parse_toml("[grants]\njobs = {}").unwrap();
    let plugin = runtime.load(&source, &grants).unwrap();
    let err = plugin
        .strategy(HostServices::default())
        .await
        .unwrap()
        .run("{}", Duration::from_secs(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not granted capability `jobs`") && err.contains("[capabilities.jobs]"),
        "{err}"
    );
}

#[tokio::test]
async fn sha256_pins_are_enforced() {
    let runtime = test_runtime();
    let source = PluginSource::from_file(&fixture("echo")).unwrap();
    let mut grants = PluginGrants {
        sha256: Some("00".repeat(32)),
        ..PluginGrants::default()
    };
    let err = runtime.load(&source, &grants).unwrap_err();
    assert!(matches!(err, PluginError::HashMismatch { .. }), "{err}");
    grants.sha256 = Some(source.sha256().to_uppercase());
    runtime.load(&source, &grants).unwrap();
}

#[tokio::test]
async fn manifests_come_embedded_or_beside_the_file() {
    let runtime = test_runtime();
    let wasm = std::fs::read(fixture("echo")).unwrap();
    // Rename the embedded section (same length), so the component has no manifest.
    let needle = b"sophon-manifest";
    let at = wasm
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut stripped = wasm.clone();
    stripped[at..at + needle.len()].copy_from_slice(b"sophon-manifesX");
    let mut source = PluginSource::from_bytes("stripped.wasm", stripped);
    let err = runtime
        .load(&source, &PluginGrants::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no manifest") && err.contains("stripped.plugin.toml"),
        "{err}"
    );

    source.sidecar_manifest =
        Some(b"[plugin]\nname='side'\nversion='1.0.0'\nworld='strategy'\n".to_vec());
    let plugin = runtime.load(&source, &PluginGrants::default()).unwrap();
    assert_eq!(plugin.name(), "side");

    source.sidecar_manifest =
        Some(b"[plugin]\nname='side'\nversion='1.0.0'\nworld='task-adapter'\n".to_vec());
    let err = runtime
        .load(&source, &PluginGrants::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("world `task-adapter`") && err.contains("exports the strategy interface"),
        "{err}"
    );
}

#[tokio::test]
async fn non_components_get_a_clear_error() {
    let runtime = test_runtime();
    let core_module = PluginSource::from_bytes("core.wasm", b"\0asm\x01\0\0\0".to_vec());
    let err = runtime
        .load(&core_module, &PluginGrants::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("core WebAssembly module") && err.contains("wasm32-wasip2"),
        "{err}"
    );
    let garbage = PluginSource::from_bytes("garbage.wasm", b"#!/bin/sh\nrm -rf /\n".to_vec());
    let err = runtime
        .load(&garbage, &PluginGrants::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a WebAssembly file"), "{err}");
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_and_bad_entries_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let config = || {
        let mut c = test_config();
        c.cache_dir = Some(cache.path().join("components"));
        c
    };
    let source = PluginSource::from_file(&fixture("echo")).unwrap();
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache.path().join("components"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    Runtime::new(config())
        .unwrap()
        .load(&source, &PluginGrants::default())
        .unwrap();
    let cached = entries();
    assert_eq!(cached.len(), 1);
    let name = cached[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&source.sha256()) && name.ends_with(".cwasm"),
        "{name}"
    );

    // A fresh runtime uses the entry; a corrupt entry is replaced, not fatal.
    Runtime::new(config())
        .unwrap()
        .load(&source, &PluginGrants::default())
        .unwrap();
    std::fs::write(&cached[0], b"not native code").unwrap();
    let plugin = Runtime::new(config())
        .unwrap()
        .load(&source, &PluginGrants::default())
        .unwrap();
    let mut instance = plugin.strategy(HostServices::default()).await.unwrap();
    assert_eq!(instance.run("echo:ok", T).await.unwrap().summary, "ok");
    assert!(
        std::fs::metadata(&cached[0]).unwrap().len() > 1000,
        "the entry was rewritten"
    );
}

#[tokio::test]
async fn a_promotion_policy_distils_phases_and_tasks() {
    use sophon::hcc::*;
    let runtime = test_runtime();
    let plugin = load(
        &runtime,
        "policy",
        "[grants]\nhcc = { scopes = ['experience:read'] }",
    );
    let mut policy = plugin
        .promotion_policy(HostServices::default())
        .await
        .unwrap();
    let descriptor = TaskDescriptor {
        summary: "toy".into(),
        ..TaskDescriptor::default()
    };
    let event = |id, metric: f64| StoredEvent {
        id,
        phase: 1,
        time_ms: 0,
        event: Event {
            kind: EventKind::Execution,
            node: None,
            content: format!("run {id}"),
            metric: Some(metric),
        },
    };
    let trace = PhaseTrace {
        competition_id: "toy".into(),
        descriptor: descriptor.clone(),
        phase: 1,
        plan: "gradient boosting".into(),
        events: vec![event(1, 0.7), event(2, 0.9), event(3, 0.8)],
    };
    let unit = policy.on_phase_end(&trace, T).await.unwrap().unwrap();
    assert_eq!(unit.best_metric, Some(0.9));
    assert_eq!(unit.verdicts[0].note, "run 2");
    let wisdom = policy
        .on_task_end(
            &RunTrace {
                competition_id: "toy".into(),
                descriptor,
                knowledge: vec![unit],
                best_metric: Some(0.9),
                final_events: vec![],
            },
            T,
        )
        .await
        .unwrap();
    assert_eq!(wisdom[0].content, "gradient boosting");
    assert_eq!(wisdom[0].applies_when, "toy");
    // A policy cannot be instantiated as another world.
    let err = plugin
        .strategy(HostServices::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, PluginError::WrongWorld { .. }), "{err}");
}

#[tokio::test]
async fn a_task_adapter_sees_only_its_read_only_mounts() {
    let data = tempfile::tempdir().unwrap();
    let public = data.path().join("public");
    let private = data.path().join("private");
    let submission = data.path().join("submission");
    for dir in [&public, &private, &submission] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(public.join("train.csv"), "id,y\n1,0\n").unwrap();
    std::fs::write(private.join("answers.csv"), "id,y\n1,1\n").unwrap();
    std::fs::write(data.path().join("secret.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(data.path().join("secret.txt"), public.join("link")).unwrap();
    std::fs::write(submission.join("submission.csv"), "id,y\n1,1\n").unwrap();
    let files = AdapterFiles {
        public: Some(public.clone()),
        private: Some(private.clone()),
        submission_dir: Some(submission),
    };

    let runtime = test_runtime();
    let plugin = load(
        &runtime,
        "adapter-probe",
        "[grants]\ntask = { private-data = true }",
    );
    let request = TaskRequest {
        competition_id: "toy".into(),
        options: "{}".into(),
    };
    let mut adapter = plugin
        .task_adapter(HostServices::default(), &files)
        .await
        .unwrap();
    let info = adapter.describe(&request, T).await.unwrap();
    let report = info.description;
    for expected in [
        "read public: GOT",
        "read private: GOT",
        "write public: denied",
        "create in public: denied",
        "escape with ..: denied",
        "follow symlink: denied",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(public.join("train.csv")).unwrap(),
        "id,y\n1,0\n"
    );
    let grade = adapter
        .grade(&request, "/submission/submission.csv", T)
        .await
        .unwrap();
    assert_eq!(grade.score, Some(1.0));

    // Without the private-data grant the adapter is refused outright.
    let source = PluginSource::from_file(&fixture("adapter-probe")).unwrap();
    let grants: PluginGrants = sophon::config::parse_toml("[grants]\ntask = {}").unwrap();
    let err = runtime.load(&source, &grants).unwrap_err().to_string();
    assert!(
        err.contains("private answers") && err.contains("private-data = true"),
        "{err}"
    );
}
