//! Attacks by real compiled plugins. Each must end with a clear error within its deadline, and
//! the host must keep serving other plugins in the same process while it happens.

use sophon::run::RunInfo;
use sophon::run::session::SessionRun;
use sophon::runtime::{HostServices, LoadedPlugin, PluginError, Runtime};
use sophon_tests::services::{ScratchHcc, SlowEcho};
use sophon_tests::{load, test_config};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSTILE: &str = r#"
[grants]
llm = { max-concurrent = 2 }
hcc = { scopes = ["experience:read"] }
"#;

/// A runtime with tight limits: 500 ms compute slice, 1 MiB returns.
fn runtime() -> Runtime {
    let mut config = test_config();
    config.compute_slice = Duration::from_millis(500);
    config.max_return_bytes = 1 << 20;
    Runtime::new(config).unwrap()
}

fn hostile(runtime: &Runtime) -> LoadedPlugin {
    load(runtime, "hostile", HOSTILE)
}

fn services() -> HostServices {
    HostServices {
        llm: Some(SlowEcho::new(Duration::from_millis(50))),
        hcc: Some(ScratchHcc::new("attack", "c")),
        run: Some(Arc::new(SessionRun::new(RunInfo {
            run_id: "attack".into(),
            competition_id: "c".into(),
            seed: 1,
            arm: None,
        }))),
        ..HostServices::default()
    }
}

/// Run attack `name` with a call deadline of `deadline`; return the error and how long it took.
async fn attack(plugin: &LoadedPlugin, name: &str, deadline: Duration) -> (PluginError, Duration) {
    let mut instance = plugin.strategy(services()).await.unwrap();
    let start = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), instance.run(name, deadline))
        .await
        .expect("the host stopped the attack");
    let elapsed = start.elapsed();
    let err = result.expect_err("the attack must fail");
    // A failed instance stays failed.
    let again = instance.run("ok", deadline).await.unwrap_err();
    assert!(matches!(again, PluginError::Poisoned { .. }), "{again}");
    (err, elapsed)
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_the_compute_slice() {
    let runtime = runtime();
    let plugin = hostile(&runtime);
    let (err, elapsed) = attack(&plugin, "infinite-loop", Duration::from_secs(3600)).await;
    assert!(
        matches!(err, PluginError::ComputeSlice { func: "run", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("infinite loop"), "{err}");
    assert!(
        elapsed < Duration::from_secs(20),
        "stopped after {elapsed:?}, slice is 0.5 s"
    );
}

#[tokio::test]
async fn a_long_call_is_stopped_at_its_deadline() {
    let mut config = test_config();
    config.compute_slice = Duration::from_secs(3600);
    let runtime = Runtime::new(config).unwrap();
    let plugin = hostile(&runtime);
    let (err, elapsed) = attack(&plugin, "infinite-loop", Duration::from_millis(300)).await;
    assert!(
        matches!(err, PluginError::Deadline { limit, .. } if limit == Duration::from_millis(300)),
        "{err}"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "stopped after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_cap() {
    let runtime = runtime();
    let plugin = hostile(&runtime);
    assert_eq!(plugin.grants().memory_bytes, 32 << 20);
    let (err, _) = attack(&plugin, "memory-bomb", Duration::from_secs(30)).await;
    assert!(
        matches!(err, PluginError::MemoryLimit { limit_mib: 32, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("memory-mb"), "{err}");
}

#[tokio::test]
async fn unbounded_recursion_overflows_its_own_stack() {
    let runtime = runtime();
    let (err, _) = attack(&hostile(&runtime), "recursion", Duration::from_secs(30)).await;
    assert!(matches!(err, PluginError::StackOverflow { .. }), "{err}");
}

#[tokio::test]
async fn a_huge_return_value_is_refused() {
    let runtime = runtime();
    let (err, _) = attack(&hostile(&runtime), "huge-return", Duration::from_secs(30)).await;
    assert!(
        matches!(err, PluginError::ReturnTooLarge { size, limit, .. } if size == 8 << 20 && limit == 1 << 20),
        "{err}"
    );
}

#[tokio::test]
async fn a_panic_message_reaches_the_host_error() {
    let runtime = runtime();
    let (err, _) = attack(&hostile(&runtime), "panic", Duration::from_secs(30)).await;
    let PluginError::Panic { message, .. } = &err else {
        panic!("expected a panic, got {err}")
    };
    assert!(
        message.starts_with("the plan has no metric: 42 (at "),
        "{message}"
    );
    assert!(message.contains("hostile/src/lib.rs"), "{message}");
}

#[tokio::test]
async fn the_host_filesystem_network_and_environment_are_out_of_reach() {
    let runtime = runtime();
    let plugin = hostile(&runtime);
    let mut instance = plugin.strategy(services()).await.unwrap();
    let report = instance
        .run("probe-host", Duration::from_secs(30))
        .await
        .unwrap()
        .summary;
    assert!(!report.contains("GOT"), "the sandbox leaked:\n{report}");
    assert!(
        report.contains("env: 0 vars") && report.contains("args: 0 args"),
        "{report}"
    );
    assert_eq!(
        report.lines().filter(|l| l.contains(": denied (")).count(),
        7,
        "{report}"
    );
    assert!(!std::path::Path::new("/tmp/sophon-escape").exists());
}

#[tokio::test]
async fn calls_outside_the_granted_scope_fail_with_not_granted() {
    let runtime = runtime();
    let plugin = hostile(&runtime);
    let mut instance = plugin.strategy(services()).await.unwrap();
    let err = instance
        .run("hcc-write", Duration::from_secs(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not-granted") && err.contains("experience:write"),
        "{err}"
    );
    let err = instance
        .run("too-many-chats", Duration::from_secs(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("budget-exhausted") && err.contains("llm.max-concurrent"),
        "{err}"
    );
    // Both were refused answers, not traps: the instance still works.
    assert_eq!(
        instance
            .run("ok", Duration::from_secs(30))
            .await
            .unwrap()
            .summary,
        "fine"
    );
}

#[tokio::test]
async fn a_flood_of_output_is_discarded_not_buffered() {
    let runtime = Runtime::new(test_config()).unwrap();
    let plugin = hostile(&runtime);
    let mut instance = plugin.strategy(services()).await.unwrap();
    let outcome = instance
        .run("huge-log", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(outcome.summary, "logged");
    let tail = instance.stderr_tail();
    assert!(
        tail.len() <= 16 * 1024 && tail.ends_with("yyy\n"),
        "kept {} bytes",
        tail.len()
    );
}

/// On a single-threaded executor, a looping plugin yields at every epoch tick, so another
/// plugin keeps answering while the attack runs, and is unharmed after it.
#[tokio::test(flavor = "current_thread")]
async fn the_host_keeps_serving_other_plugins_during_attacks() {
    let runtime = runtime();
    let attacker = hostile(&runtime);
    let echo = load(&runtime, "echo", "");
    let mut bystander = echo.strategy(HostServices::default()).await.unwrap();
    let attacks = async {
        let mut errors = Vec::new();
        for name in [
            "infinite-loop",
            "memory-bomb",
            "recursion",
            "panic",
            "huge-return",
        ] {
            errors.push(attack(&attacker, name, Duration::from_secs(30)).await.0);
        }
        errors
    };
    let served = async {
        let mut served = 0u32;
        let start = Instant::now();
        // Serve until the attacks are over (the loop alone takes 0.5 s).
        while start.elapsed() < Duration::from_millis(1500) {
            let reply = bystander
                .run(&format!("echo:{served}"), Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(reply.summary, served.to_string());
            served += 1;
            tokio::task::yield_now().await;
        }
        served
    };
    let (errors, served) = tokio::join!(attacks, served);
    assert_eq!(errors.len(), 5);
    assert!(
        errors.iter().all(PluginError::is_call_failure),
        "{errors:?}"
    );
    assert!(
        served > 10,
        "the bystander answered only {served} calls during the attacks"
    );
    assert_eq!(
        bystander
            .run("echo:after", Duration::from_secs(5))
            .await
            .unwrap()
            .summary,
        "after"
    );
}
