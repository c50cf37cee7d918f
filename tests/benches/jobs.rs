//! What running a trivial job (`true`) costs: a bare child process, the local executor without
//! its sandbox (queue, cgroup, capture, bookkeeping) and with it (bubblewrap), in the same run.
//! Rows: submit→exit latency of one job, and throughput of 20 jobs submitted at once.
//!
//! `cargo bench -p sophon-tests --bench jobs` (needs bubblewrap and writable cgroups); see
//! docs/performance.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sophon::jobs::config::SandboxKind;
use sophon::jobs::local::{JobContext, LocalExecutor};
use sophon::jobs::{JobHandle, JobSpec, JobState};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 20;

fn executor(dir: &std::path::Path, sandbox: SandboxKind) -> (Arc<LocalExecutor>, JobContext) {
    let e = sophon_tests::jobs::executor(&dir.join(format!("{sandbox:?}")), |local| {
        local.sandbox = Some(sandbox);
        local.default_memory_mb = Some(64);
    });
    (e.executor, e.context)
}

fn trivial() -> JobSpec {
    sophon_tests::jobs::command(&["true"])
}

async fn bare() {
    let status = tokio::process::Command::new("true").status().await.unwrap();
    assert!(status.success());
}

async fn job(executor: &Arc<LocalExecutor>, context: &JobContext) {
    let result = executor.submit(context, trivial()).unwrap().wait().await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _guard = rt.enter();
    let (plain, plain_context) = executor(dir.path(), SandboxKind::None);
    let (sandboxed, sandboxed_context) = executor(dir.path(), SandboxKind::Bubblewrap);

    let mut group = c.benchmark_group("job-latency");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("bare-process", |b| b.to_async(&rt).iter(bare));
    group.bench_function("executor-unsandboxed", |b| {
        b.to_async(&rt).iter(|| job(&plain, &plain_context))
    });
    group.bench_function("executor-sandboxed", |b| {
        b.to_async(&rt).iter(|| job(&sandboxed, &sandboxed_context))
    });
    group.finish();

    let mut group = c.benchmark_group("job-throughput");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("bare-process", |b| {
        b.to_async(&rt)
            .iter(|| async { futures_util::future::join_all((0..BATCH).map(|_| bare())).await })
    });
    for (name, executor, context) in [
        ("executor-unsandboxed", &plain, &plain_context),
        ("executor-sandboxed", &sandboxed, &sandboxed_context),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let jobs: Vec<_> = (0..BATCH)
                            .map(|_| executor.submit(context, trivial()).unwrap())
                            .collect();
                        for job in jobs {
                            job.wait().await;
                        }
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(jobs, benches);
criterion_main!(jobs);
