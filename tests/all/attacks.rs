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

// ---------------------------------------------------------------------------------------------
// A plugin asking for too much (the `greedy` fixture): oversized input to every call that parses
// or counts, floods of nodes and jobs, calls that would outlive the run.

use sophon::hcc::{
    CognitiveCache, HccSettings, HccStore, KnowledgeUnit, PhaseTrace, Promoter, RunHcc, RunSpec,
    RunTrace, TaskDescriptor, WisdomEntry,
};
use sophon::llm::budget::Limits;
use sophon_tests::openai_server::{OpenAiServer, Reply, loopback_hub};

/// Every capability the fixture asks for, with no limits: the host's defaults apply.
const GREEDY: &str = r#"
[grants]
llm = { max-concurrent = 16 }
jobs = {}
hcc = { scopes = ["experience:write", "knowledge:read", "wisdom:read"] }
"#;

/// Run `plugin` as a strategy in `run` with `config`; its outcome's summary.
async fn run_strategy(
    plugin: &LoadedPlugin,
    run: Arc<dyn sophon::run::RunContext>,
    config: &str,
    secs: u64,
) -> String {
    let services = HostServices {
        run: Some(run),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    instance
        .run(config, Duration::from_secs(secs))
        .await
        .unwrap()
        .summary
}

fn session(run_id: &str) -> SessionRun {
    SessionRun::new(RunInfo {
        run_id: run_id.into(),
        competition_id: "c".into(),
        seed: 1,
        arm: None,
    })
}

/// Held by the tests that move hundreds of megabytes, so that one's memory does not show in
/// another's measurement.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The answer a `greedy` attack reported for try `name`.
fn answer<'a>(summary: &'a str, name: &str) -> &'a str {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no try {name} in:\n{summary}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_input_to_every_call_that_parses_or_counts_is_refused_naming_its_limit() {
    use sophon::llm::limits;
    let _heavy = HEAVY.lock().await;
    let server = OpenAiServer::start().await;
    server.always(Reply::text("ok"));
    let hub = loopback_hub(&server, Limits::default());
    let hcc = ScratchHcc::new("greedy", "c");
    let run = Arc::new(session("greedy"));
    let services = HostServices {
        llm: Some(hub.scoped("greedy", Limits::default())),
        hcc: Some(hcc.clone()),
        run: Some(run.clone()),
        ..HostServices::default()
    };
    let runtime = Runtime::new(test_config()).unwrap();
    let plugin = load(&runtime, "greedy", GREEDY);
    let mut instance = plugin.strategy(services).await.unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        instance.run("oversized", Duration::from_secs(100)),
    )
    .await
    .expect("the host answered")
    .unwrap()
    .summary;
    eprintln!("{summary}");

    let event = sophon::hcc::MAX_EVENT_BYTES;
    let name = sophon::hcc::MAX_NAME_BYTES;
    let query = sophon::hcc::MAX_QUERY_BYTES;
    let refusals = [
        ("count-tokens-50mb", limits::MAX_COUNT_BYTES),
        ("count-tokens-model", limits::MAX_NAME_BYTES),
        ("embed-5mb", limits::MAX_EMBED_BYTES),
        ("embed-3000-inputs", limits::MAX_EMBED_INPUTS),
        ("chat-5mb-message", limits::MAX_REQUEST_BYTES),
        ("start-chat-5mb-message", limits::MAX_REQUEST_BYTES),
        ("chat-5000-messages", limits::MAX_MESSAGES),
        ("chat-5mb-tool", limits::MAX_REQUEST_BYTES),
        ("chat-5mb-schema", limits::MAX_REQUEST_BYTES),
        ("chat-long-purpose", limits::MAX_NAME_BYTES),
        ("hcc-record-2mb", event),
        ("hcc-record-node-1kb", name),
        ("hcc-record-kind-1kb", name),
        ("hcc-begin-phase-2mb", event),
        ("hcc-context-query-1mb", query),
        ("hcc-search-query-1mb", query),
        ("node-plan-1mb", sophon::run::MAX_PLAN_BYTES),
        ("node-code-2mb", sophon::run::MAX_CODE_BYTES),
        ("node-summary-100kb", sophon::run::MAX_SUMMARY_BYTES),
        ("node-id-1kb", sophon::run::MAX_NODE_ID_BYTES),
        ("node-parent-1kb", sophon::run::MAX_NODE_ID_BYTES),
        ("node-operator-1kb", sophon::run::MAX_OPERATOR_BYTES),
    ];
    for (try_name, limit) in refusals {
        let got = answer(&summary, try_name);
        assert!(
            got.contains("too-large: ") && got.contains(&format!("at most {limit} ")),
            "{try_name}: {got}"
        );
        // Refused before any work: well inside the 100 s deadline (a 50 MB count took 99 s).
        let ms: u64 = got.split(" ms").next().unwrap().parse().unwrap();
        assert!(ms < 20_000, "{try_name} took {ms} ms");
    }
    for try_name in ["before-record", "before-node", "after-record", "after-node"] {
        assert!(answer(&summary, try_name).contains("GOT"), "{summary}");
    }
    assert!(
        answer(&summary, "after-count").ends_with("GOT 2"),
        "{summary}"
    );

    // Nothing was sent, counted or charged for the refused calls.
    assert!(server.received().is_empty());
    assert!(hub.ledger().calls().is_empty());
    // Nothing the host held was lost; only the accepted records were added.
    let ids: Vec<String> = run.nodes().into_iter().map(|n| n.id).collect();
    assert_eq!(ids, ["n0", "n1"]);
    let events = hcc.events(Some(0), 0, 100).await.unwrap();
    let contents: Vec<&str> = events.iter().map(|e| e.event.content.as_str()).collect();
    assert_eq!(contents, ["keep me", "still here"]);
    // The 50 MB log line was cut to the line limit.
    let (_, _, line) = run.log_lines().pop().unwrap();
    assert!(
        line.len() <= 16 * 1024 + 16 && line.ends_with("[truncated]"),
        "{}",
        line.len()
    );
}

/// A count runs on the blocking pool: the executor (a single thread here) keeps serving while
/// it runs, and a count past its deadline answers `timeout` naming the limit.
#[tokio::test(flavor = "current_thread")]
async fn token_counting_runs_off_the_executor_within_its_deadline() {
    let runtime = Runtime::new(test_config()).unwrap();
    let plugin = load(&runtime, "greedy", GREEDY);
    let server = OpenAiServer::start().await;
    let hub = loopback_hub(&server, Limits::default());
    let services = || HostServices {
        llm: Some(hub.scoped("greedy", Limits::default())),
        ..HostServices::default()
    };
    let four_mib = sophon::llm::limits::MAX_COUNT_BYTES;
    let mut instance = plugin.strategy(services()).await.unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (outcome, ticks) = tokio::join!(
        async {
            let outcome = instance
                .run(&format!("count:{four_mib}:words"), Duration::from_secs(60))
                .await;
            done.store(true, std::sync::atomic::Ordering::Release);
            outcome
        },
        async {
            let mut ticks = 0u32;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks += 1;
            }
            ticks
        }
    );
    let took = started.elapsed();
    let summary = outcome.unwrap().summary;
    eprintln!("4 MiB of words counted in {took:?} ({summary}); the executor ticked {ticks} times");
    assert!(answer(&summary, "count").contains("GOT "), "{summary}");
    // The executor was free while the count ran (a count on it would have stalled the timer).
    assert!(
        f64::from(ticks) * 5.0 >= took.as_millis() as f64 / 4.0,
        "{ticks} ticks of 5 ms in {took:?}"
    );

    let mut config = test_config();
    config.host_calls.host_call_timeout = Duration::from_millis(5);
    let runtime = Runtime::new(config).unwrap();
    let plugin = load(&runtime, "greedy", GREEDY);
    let mut instance = plugin.strategy(services()).await.unwrap();
    let summary = instance
        .run(&format!("count:{four_mib}:single"), Duration::from_secs(60))
        .await
        .unwrap()
        .summary;
    let got = answer(&summary, "count");
    assert!(
        got.contains(
            "timeout: counting tokens did not finish within the host-call timeout of 0.005 s"
        ),
        "{got}"
    );
}

#[tokio::test]
async fn nodes_past_the_step_budget_are_refused() {
    let runtime = runtime();
    let plugin = load(&runtime, "greedy", GREEDY);
    let run = Arc::new(session("steps").with_step_limit(3));
    let summary = run_strategy(&plugin, run.clone(), "nodes:40", 30).await;
    assert!(
        summary.starts_with("ok=3 budget-exhausted=37 other=[]")
            && summary.contains("step budget of 3 nodes is spent (--max-steps)"),
        "{summary}"
    );
    assert_eq!(run.nodes().len(), 3);
}

/// The run of `sophon run`: past `--max-steps` a report is refused (a resumed run counts the
/// nodes it had), and node data goes to disk, not to the host's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_refuses_nodes_past_its_steps_and_does_not_hold_them_in_memory() {
    use sophon::run::dir::RunDir;
    use sophon::run::live::{LiveRun, RunLimits};
    use sophon_tests::services::FakeTask;
    let dir = tempfile::tempdir().unwrap();
    let live = |steps: Option<u32>, resumed: bool| {
        let artifacts = Arc::new(
            sophon::artifacts::ArtifactStore::open(&dir.path().join("artifacts"), 1 << 30).unwrap(),
        );
        let run_dir = match resumed {
            true => RunDir::open(&dir.path().join("run")).unwrap(),
            false => {
                let created = RunDir::create(&dir.path().join("run")).unwrap();
                std::fs::write(created.path("run.json"), "{}").unwrap();
                created
            }
        };
        let run = LiveRun::new(
            RunInfo {
                run_id: "live".into(),
                competition_id: "c".into(),
                seed: 1,
                arm: None,
            },
            RunLimits {
                steps,
                ..RunLimits::default()
            },
            sophon::task::Direction::Maximize,
            artifacts.clone(),
            Arc::new(FakeTask { artifacts }),
            Arc::new(run_dir),
            Vec::new(),
        );
        Arc::new(if resumed { run.resumed().unwrap() } else { run })
    };
    let runtime = runtime();
    let plugin = load(&runtime, "greedy", GREEDY);
    let run = live(Some(3), false);
    let summary = run_strategy(&plugin, run.clone(), "nodes:40", 30).await;
    assert!(summary.starts_with("ok=3 budget-exhausted=37"), "{summary}");
    assert_eq!(run.node_counts(), (3, 0));
    // A refused node's submission cannot become the best; a recorded node's claim goes on to
    // the submission (which does not exist here).
    let claims = run_strategy(&plugin, run.clone(), "claim:n39:n0", 30).await;
    let (refused, recorded) = claims.split_once('\n').unwrap();
    assert!(
        refused.starts_with("n39:") && refused.contains("node n39 was not recorded by this run"),
        "{claims}"
    );
    assert!(
        recorded.starts_with("n0:")
            && !recorded.contains("not recorded")
            && !recorded.contains("GOT"),
        "{claims}"
    );
    // Resumed, the run still counts the three nodes it recorded.
    let run = live(Some(3), true);
    assert_eq!(run.node_counts(), (3, 0));
    let summary = run_strategy(&plugin, run.clone(), "nodes:5", 30).await;
    // n0..n2 were recorded before: accepted again without counting; n3, n4 are past the budget.
    assert!(summary.starts_with("ok=3 budget-exhausted=2"), "{summary}");
    let lines = std::fs::read_to_string(dir.path().join("run/nodes.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);

    // 250 nodes of 1 MB each (within the limits, no step budget): all on disk, none in memory.
    let _heavy = HEAVY.lock().await;
    let run = live(None, true);
    let services = HostServices {
        run: Some(run.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let before = resident_bytes();
    let summary = instance
        .run("big-nodes:250:1000", Duration::from_secs(120))
        .await
        .unwrap()
        .summary;
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        summary.starts_with("ok=250 budget-exhausted=0"),
        "{summary}"
    );
    assert_eq!(run.node_counts(), (253, 0));
    let on_disk = std::fs::metadata(dir.path().join("run/nodes.jsonl"))
        .unwrap()
        .len();
    eprintln!("{on_disk} bytes of nodes on disk; the host grew by {grown} bytes");
    assert!(on_disk > 250 << 20);
    // Keeping the nodes would have cost at least their 250 MB.
    assert!(grown < 100 << 20, "the host grew by {grown} bytes");
}

/// Resident memory of this process (Linux).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A promotion policy that never finishes.
struct StuckPolicy;

#[async_trait::async_trait]
impl Promoter for StuckPolicy {
    async fn describe_task(
        &self,
        _task: &sophon::task::TaskInfo,
    ) -> Result<TaskDescriptor, String> {
        Ok(TaskDescriptor::default())
    }
    async fn on_phase_end(&self, _trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(None)
    }
    async fn on_task_end(&self, _trace: RunTrace) -> Result<Vec<WisdomEntry>, String> {
        Ok(Vec::new())
    }
}

/// Nothing a strategy waits on outlives its run: with an hour of host-call timeout and 1.5 s
/// left in the run, a model that takes 30 s and a promotion that never ends answer `timeout`
/// when the run's time is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_calls_end_when_the_run_does() {
    let mut config = test_config();
    config.host_calls.host_call_timeout = Duration::from_secs(3600);
    let runtime = Runtime::new(config).unwrap();
    let plugin = load(&runtime, "greedy", GREEDY);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(HccStore::open(&dir.path().join("hcc.sqlite")).unwrap());
    for attack in ["chat", "start-chat", "end-phase"] {
        let hcc = RunHcc::open(
            store.clone(),
            RunSpec {
                run_id: format!("run-{attack}"),
                competition_id: "c".into(),
                descriptor: TaskDescriptor::default(),
            },
            HccSettings::default(),
        )
        .unwrap()
        .with_promoter(Arc::new(StuckPolicy));
        let services = HostServices {
            llm: Some(SlowEcho::new(Duration::from_secs(30))),
            hcc: Some(Arc::new(hcc) as Arc<dyn CognitiveCache>),
            run: Some(Arc::new(
                session("ending").with_wall_limit(Duration::from_millis(1500)),
            )),
            ..HostServices::default()
        };
        let mut instance = plugin.strategy(services).await.unwrap();
        let start = Instant::now();
        let summary = tokio::time::timeout(
            Duration::from_secs(60),
            instance.run(attack, Duration::from_secs(600)),
        )
        .await
        .expect("the call ended")
        .unwrap()
        .summary;
        let took = start.elapsed();
        let got = answer(&summary, attack);
        assert!(
            got.contains("timeout: ") && got.contains("left in the run"),
            "{attack}: {summary}"
        );
        assert!(took < Duration::from_secs(20), "{attack} took {took:?}");
        eprintln!("{attack}: ended after {took:?}: {got}");
    }
}

/// `--grant-requested` grants what a manifest asks for; the greedy manifest sets no limits, and
/// still gets finite ones: a flood of jobs stops at the default concurrency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_granted_without_limits_have_finite_defaults() {
    use sophon::jobs::backends::Backends;
    use sophon::jobs::service::{JobQuota, PluginJobs};
    use sophon::runtime::grants::defaults;
    use sophon::runtime::{PluginGrants, PluginSource};
    let runtime = runtime();
    let source = PluginSource::from_file(&sophon_tests::fixture("greedy")).unwrap();
    let manifest = sophon::runtime::inspect::describe(&source)
        .unwrap()
        .manifest
        .unwrap()
        .unwrap();
    // What `sophon plugin run --grant-requested` grants.
    let grants = PluginGrants {
        grants: manifest.capabilities.clone(),
        memory_mb: manifest.limits.memory_mb,
        sha256: None,
    };
    let plugin = runtime.load(&source, &grants).unwrap();
    let effective = plugin.grants();
    let llm = effective.llm.clone().unwrap();
    let jobs = effective.jobs.clone().unwrap();
    assert_eq!(llm.max_concurrent, Some(defaults::LLM_MAX_CONCURRENT));
    assert_eq!(llm.max_tokens, Some(defaults::LLM_MAX_TOKENS));
    assert_eq!(llm.max_requests, Some(defaults::LLM_MAX_REQUESTS));
    assert_eq!(jobs.max_concurrent, Some(defaults::JOBS_MAX_CONCURRENT));
    assert_eq!(jobs.max_gpus, Some(defaults::JOBS_MAX_GPUS));

    let dir = tempfile::tempdir().unwrap();
    let e = sophon_tests::jobs::executor(dir.path(), |_| {});
    // The quota as `sophon run` builds it from the effective grants.
    let quota = JobQuota {
        max_concurrent: jobs.max_concurrent,
        max_gpus: jobs.max_gpus,
        gpu_hours: jobs.gpu_hours,
    };
    let services = HostServices {
        jobs: Some(Arc::new(PluginJobs::new(
            "greedy",
            Arc::new(Backends::local(e.executor.clone())),
            e.context.clone(),
            quota,
        ))),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let summary = instance
        .run("jobs:3000", Duration::from_secs(120))
        .await
        .unwrap()
        .summary;
    let expected = format!(
        "ok={} budget-exhausted={} other=[]",
        defaults::JOBS_MAX_CONCURRENT,
        3000 - defaults::JOBS_MAX_CONCURRENT
    );
    assert!(
        summary.starts_with(&expected) && summary.contains("jobs.max-concurrent"),
        "{summary}"
    );
    assert_eq!(JobQuota::default().max_concurrent, jobs.max_concurrent);
}
