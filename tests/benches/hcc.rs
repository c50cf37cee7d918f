//! The HCC store's hot paths, each beside a baseline measured in the same run:
//!
//! - recording an event (a 3 KB training log) through `RunHcc`, against a bare rusqlite
//!   `INSERT` of the same row into the same schema (table and index) with the same pragmas
//!   (WAL, synchronous=NORMAL);
//! - assembling a 32k-token context for a run 500 nodes deep (warm: the run's token cache
//!   filled by earlier calls, as in a live run; cold: a freshly opened run), against building
//!   the naive prompt (read every event, render it, count its tokens);
//! - top-5 wisdom retrieval over 10k and 100k entries (int8 scan + exact rerank from SQLite),
//!   for 256-dimensional vectors (the offline hashed embedder) and 1536-dimensional ones (a
//!   typical embeddings endpoint), against an exact f32 scan of the same vectors in memory.
//!
//! `cargo bench -p sophon-tests --bench hcc`; see docs/performance.md.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::params;
use sophon::hcc::context::render_event;
use sophon::hcc::embed::normalize;
use sophon::hcc::simulate::{SimulationConfig, simulate};
use sophon::hcc::tokens::TokenCounter;
use sophon::hcc::wisdom::WisdomQuery;
use sophon::hcc::*;
use std::path::Path;
use std::sync::Arc;

const LOG_LINE: &str =
    "epoch 12/40  train_loss=0.41237  val_loss=0.43981  val_acc=0.80412  lr=3.0e-4\n";

fn log_event(node: u32) -> Event {
    Event {
        kind: EventKind::Execution,
        node: Some(format!("n{node}")),
        content: LOG_LINE.repeat(40),
        metric: None,
    }
}

fn descriptor() -> TaskDescriptor {
    TaskDescriptor {
        modality: "tabular".into(),
        task_type: "binary-classification".into(),
        metric: "accuracy (maximize)".into(),
        data_size: "8693 rows".into(),
        summary: "bench".into(),
    }
}

fn open_run(
    store: &Arc<HccStore>,
    run_id: &str,
    descriptor: TaskDescriptor,
    competition: &str,
) -> RunHcc {
    RunHcc::open(
        store.clone(),
        RunSpec {
            run_id: run_id.into(),
            competition_id: competition.into(),
            descriptor,
        },
        HccSettings::default(),
    )
    .unwrap()
}

fn bench_record(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &Path) {
    let store = Arc::new(HccStore::open(&dir.join("record.sqlite")).unwrap());
    let run = open_run(&store, "record", descriptor(), "bench");
    let mut bare = rusqlite::Connection::open(dir.join("bare.sqlite")).unwrap();
    bare.pragma_update(None, "journal_mode", "WAL").unwrap();
    bare.pragma_update(None, "synchronous", "NORMAL").unwrap();
    sophon::hcc::schema::migrate(&mut bare).unwrap();
    bare.execute(
        "INSERT INTO runs (id, competition_id, descriptor, started_ms) VALUES ('record', 'bench', '{}', 0)",
        [],
    )
    .unwrap();
    let event = log_event(1);

    let mut group = c.benchmark_group("hcc/record-event-3KB");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare rusqlite insert", |b| {
        let mut insert = bare
            .prepare_cached(
                "INSERT INTO events (run_id, phase, time_ms, kind, node, content, metric)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .unwrap();
        b.iter(|| {
            insert
                .execute(params![
                    "record",
                    0,
                    0,
                    "execution",
                    "n1",
                    event.content,
                    None::<f64>
                ])
                .unwrap()
        })
    });
    group.bench_function("sophon RunHcc::record_event", |b| {
        b.iter(|| rt.block_on(run.record_event(event.clone())).unwrap())
    });
    group.finish();
}

fn bench_context(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &Path) {
    let store = Arc::new(HccStore::open(&dir.join("context.sqlite")).unwrap());
    let config = SimulationConfig {
        steps: 500,
        finish: false,
        ..SimulationConfig::default()
    };
    rt.block_on(simulate(store.clone(), "deep", &config))
        .unwrap();
    let record = store.run("deep").unwrap();
    let reopen = || {
        open_run(
            &store,
            "deep",
            record.descriptor.clone(),
            &record.competition_id,
        )
    };
    let request = ContextRequest {
        budget_tokens: 32_000,
        query: None,
        model: None,
    };
    let counter = TokenCounter::for_model(None);

    let mut group = c.benchmark_group("hcc/context-500-nodes");
    group.sample_size(20);
    group.bench_function("naive: read, render and count every event", |b| {
        b.iter(|| {
            let events = store.events("deep", None, 0, None, u32::MAX).unwrap();
            let prompt: String = events.iter().map(render_event).collect();
            counter.count(&prompt)
        })
    });
    let warm = reopen();
    rt.block_on(warm.context(request.clone())).unwrap();
    group.bench_function("sophon context 32k (warm)", |b| {
        b.iter(|| rt.block_on(warm.context(request.clone())).unwrap().tokens)
    });
    group.bench_function("sophon context 32k (cold)", |b| {
        b.iter_batched(
            reopen,
            |run| rt.block_on(run.context(request.clone())).unwrap().tokens,
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn random_unit(rng: &mut StdRng, dims: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    normalize(&mut v);
    v
}

/// Top-k by an exact f32 dot product over vectors held in memory (the baseline).
fn exact_scan(vectors: &[f32], dims: usize, query: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> = vectors
        .chunks_exact(dims)
        .enumerate()
        .map(|(i, v)| (i, v.iter().zip(query).map(|(a, b)| a * b).sum()))
        .collect();
    scored.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1));
    scored.truncate(k);
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

fn bench_wisdom(c: &mut Criterion, dir: &Path) {
    const DIMS: [usize; 2] = [256, 1536];
    let mut rng = StdRng::seed_from_u64(7);
    let mut group = c.benchmark_group("hcc/wisdom-top5");
    group.sample_size(20);
    for entries in [10_000usize, 100_000] {
        let store = HccStore::open(&dir.join(format!("wisdom-{entries}.sqlite"))).unwrap();
        // 100 competitions, each contributing its share of entries.
        let mut seqs = Vec::with_capacity(entries);
        for competition in 0..100 {
            let batch: Vec<WisdomEntry> = (0..entries / 100)
                .map(|i| WisdomEntry {
                    category: "model-choice".into(),
                    content: format!("entry {i} of competition {competition}: gradient boosting on target-encoded categoricals"),
                    applies_when: "tabular classification".into(),
                })
                .collect();
            let added = store
                .add_wisdom(
                    &format!("comp-{competition}"),
                    "bench",
                    &descriptor(),
                    &batch,
                )
                .unwrap();
            assert_eq!(added.len(), batch.len());
        }
        for (seq, _) in store.wisdom_without_vectors("none", u32::MAX).unwrap() {
            seqs.push(seq);
        }
        for dims in DIMS {
            let embedder = format!("bench-{dims}");
            let mut flat = Vec::with_capacity(entries * dims);
            let vectors: Vec<(i64, Vec<f32>)> = seqs
                .iter()
                .map(|&seq| {
                    let v = random_unit(&mut rng, dims);
                    flat.extend_from_slice(&v);
                    (seq, v)
                })
                .collect();
            store.put_wisdom_vectors(&embedder, &vectors).unwrap();
            drop(vectors);
            let query = random_unit(&mut rng, dims);
            let search = || {
                store
                    .search_wisdom(&WisdomQuery {
                        embedder: &embedder,
                        vector: &query,
                        k: 5,
                        min_score: -1.0,
                        exclude_competition: None,
                    })
                    .unwrap()
            };
            // The first search loads the index; afterwards it is topped up incrementally.
            let hits = search();
            let exact = exact_scan(&flat, dims, &query, 5);
            assert_eq!(hits.len(), 5);
            for (hit, (_, score)) in hits.iter().zip(&exact) {
                assert!(
                    (hit.score - score).abs() < 1e-4,
                    "the int8 pass keeps the true top 5"
                );
            }
            let label = format!("{entries}x{dims}");
            group.bench_with_input(
                BenchmarkId::new("exact f32 scan in memory", &label),
                &(),
                |b, _| b.iter(|| exact_scan(&flat, dims, &query, 5)),
            );
            group.bench_with_input(
                BenchmarkId::new("sophon search_wisdom", &label),
                &(),
                |b, _| b.iter(search),
            );
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    bench_record(c, &rt, dir.path());
    bench_context(c, &rt, dir.path());
    bench_wisdom(c, dir.path());
}

criterion_group!(hcc, benches);
criterion_main!(hcc);
