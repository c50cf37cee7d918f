//! Host overhead per agent step. One step = ask the model (the loopback OpenAI-protocol server
//! answers at once), run a job (an instant fake backend), store a submission, validate it,
//! record an HCC event (real SQLite store), report the node and claim it as best.
//!
//! - `native`: the same calls made from Rust straight on the capability traits — the floor;
//! - `plugin`: a wasm strategy (the `worker` fixture, `steps:<n>`) making them through the
//!   sandboxed runtime;
//! - `plugin+journal`: the same with every answer journaled, as `sophon run` does.
//!
//! `cargo bench -p sophon-tests --bench run`; see docs/performance.md.

use criterion::{Criterion, criterion_group, criterion_main};
use sophon::artifacts::ArtifactStore;
use sophon::capability::CapResult;
use sophon::hcc::{CognitiveCache, Event, EventKind};
use sophon::jobs::{JobService, JobSpec, Resources};
use sophon::journal::Journal;
use sophon::llm::budget::Limits;
use sophon::llm::{ChatRequest, LanguageModel, Message, Role};
use sophon::run::services::journaled;
use sophon::run::session::SessionRun;
use sophon::run::{NodeReport, RunContext, RunInfo};
use sophon::runtime::{HostServices, LoadedPlugin, Runtime};
use sophon::task::TaskService;
use sophon_tests::openai_server::{OpenAiServer, Reply, loopback_hub, serve_on_own_thread};
use sophon_tests::services::{FakeJobs, FakeTask, ScratchHcc};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Setup {
    rt: tokio::runtime::Runtime,
    _server_rt: tokio::runtime::Runtime,
    _server: OpenAiServer,
    llm: Arc<dyn LanguageModel>,
    plugin: LoadedPlugin,
    _runtime: Runtime,
}

fn setup() -> Setup {
    let (server_rt, server) = serve_on_own_thread(Reply::text("ok"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hub = loopback_hub(&server, Limits::default());
    let llm: Arc<dyn LanguageModel> = hub.scoped("worker", Limits::default());
    let runtime = sophon_tests::test_runtime();
    let plugin = sophon_tests::load(&runtime, "worker", sophon_tests::WORKER_GRANTS);
    Setup {
        rt,
        _server_rt: server_rt,
        _server: server,
        llm,
        plugin,
        _runtime: runtime,
    }
}

/// Fresh services for one measurement (a run's worth of state).
struct Services {
    run: Arc<SessionRun>,
    artifacts: Arc<ArtifactStore>,
    jobs: Arc<FakeJobs>,
    task: Arc<FakeTask>,
    hcc: Arc<ScratchHcc>,
    _dir: tempfile::TempDir,
}

fn services() -> Services {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = Arc::new(ArtifactStore::open(&dir.path().join("artifacts"), 1 << 30).unwrap());
    let run = Arc::new(
        SessionRun::new(RunInfo {
            run_id: "bench".into(),
            competition_id: "toy".into(),
            seed: 0,
            arm: None,
        })
        .with_artifacts(artifacts.clone()),
    );
    Services {
        run,
        jobs: FakeJobs::new(Duration::ZERO),
        task: Arc::new(FakeTask {
            artifacts: artifacts.clone(),
        }),
        hcc: ScratchHcc::new("bench", "toy"),
        artifacts,
        _dir: dir,
    }
}

fn host_services(s: &Setup, x: &Services, journal: Option<&Arc<Journal>>) -> HostServices {
    let services = HostServices {
        llm: Some(s.llm.clone()),
        jobs: Some(x.jobs.clone()),
        task: Some(x.task.clone()),
        hcc: Some(x.hcc.clone()),
        run: Some(x.run.clone()),
        artifacts: Some(x.artifacts.clone()),
        journal: None,
    };
    match journal {
        Some(journal) => journaled(services, journal.clone()),
        None => services,
    }
}

/// One step from Rust, on the same services.
async fn native_step(s: &Setup, x: &Services, i: u64) -> CapResult<()> {
    let id = format!("node-{i}");
    if x.run.should_stop() {
        return Ok(());
    }
    let reply = s
        .llm
        .chat(ChatRequest::new(vec![Message::new(
            Role::User,
            format!("step {i}"),
        )]))
        .await?;
    let spec = JobSpec {
        name: id.clone(),
        files: Vec::new(),
        command: vec!["python".into(), "main.py".into(), reply.text.clone()],
        env: Vec::new(),
        resources: Resources::default(),
        mounts: Vec::new(),
        outputs: Vec::new(),
        backend: None,
    };
    let result = x.jobs.submit(spec).await?.wait().await;
    let submission = x
        .artifacts
        .create("submission.csv", format!("id,target\n1,{i}\n").as_bytes())?;
    let check = x.task.validate(&submission.id).await?;
    x.hcc
        .record_event(Event {
            kind: EventKind::Execution,
            node: Some(id.clone()),
            content: result.stdout.head,
            metric: Some(i as f64),
        })
        .await?;
    x.run
        .report_node(NodeReport {
            id: id.clone(),
            parent: None,
            operator: "draft".into(),
            worker: Some(0),
            plan: reply.text,
            code: None,
            metric: Some(i as f64),
            buggy: false,
            valid_submission: check.valid,
            summary: check.message,
        })
        .await?;
    x.run.report_best(id, submission.id, i as f64).await?;
    Ok(())
}

fn steps(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("agent-step");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("native", |b| {
        b.iter_custom(|iters| {
            let x = services();
            s.rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    native_step(&s, &x, i).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    for journaled in [false, true] {
        let name = if journaled {
            "plugin+journal"
        } else {
            "plugin"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let x = services();
                let journal_dir = tempfile::tempdir().unwrap();
                let journal =
                    journaled.then(|| Arc::new(Journal::open(journal_dir.path()).unwrap()));
                s.rt.block_on(async {
                    let mut instance = s
                        .plugin
                        .strategy(host_services(&s, &x, journal.as_ref()))
                        .await
                        .unwrap();
                    let start = Instant::now();
                    let outcome = instance
                        .run(&format!("steps:{iters}"), Duration::from_secs(3600))
                        .await
                        .unwrap_or_else(|e| panic!("the worker failed after {iters} steps: {e}"));
                    let elapsed = start.elapsed();
                    assert_eq!(outcome.summary, format!("{iters} steps"));
                    elapsed
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
