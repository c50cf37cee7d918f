//! What Sophon's LLM client adds to a call: the full path (plugin budget, run budget, request
//! building, retries wrapper, reply parsing, pricing, ledger) against a bare reqwest POST of the
//! same request with the reply parsed as JSON, both to the same loopback OpenAI-protocol server.
//! Criterion gives the means; the `percentiles` row prints p50/p99 of 3000 sequential calls each.
//!
//! `cargo bench -p sophon-tests --bench llm`; see docs/performance.md.

use criterion::{Criterion, criterion_group, criterion_main};
use sophon::llm::budget::Limits;
use sophon::llm::{ChatRequest, LanguageModel, Message, Role};
use sophon_tests::openai_server::{OpenAiServer, Reply, loopback_hub, serve_on_own_thread};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Setup {
    /// The clients' runtime: one thread, like a plugin's calls on the host's executor.
    rt: tokio::runtime::Runtime,
    /// The server runs on a runtime of its own, on another thread, as a remote server would.
    _server_rt: tokio::runtime::Runtime,
    server: OpenAiServer,
    sophon: Arc<dyn LanguageModel>,
    bare: reqwest::Client,
}

fn setup() -> Setup {
    let (server_rt, server) = serve_on_own_thread(Reply::text("ok"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hub = loopback_hub(
        &server,
        Limits {
            tokens: Some(u64::MAX),
            ..Limits::default()
        },
    );
    let sophon = hub.scoped(
        "bench",
        Limits {
            requests: Some(u64::MAX),
            ..Limits::default()
        },
    );
    Setup {
        rt,
        _server_rt: server_rt,
        server,
        sophon,
        bare: reqwest::Client::new(),
    }
}

fn request() -> ChatRequest {
    let mut request = ChatRequest::new(vec![Message::new(Role::User, "Say ok.")]);
    request.max_tokens = Some(8);
    request
}

async fn bare_call(client: &reqwest::Client, url: &str) -> String {
    let body = serde_json::json!({
        "model": "m", "max_tokens": 8,
        "messages": [{ "role": "user", "content": "Say ok." }]
    });
    let reply: serde_json::Value = client
        .post(url)
        .bearer_auth("sk")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string()
}

fn means(c: &mut Criterion) {
    let s = setup();
    let url = format!("{}/chat/completions", s.server.base_url());
    let mut group = c.benchmark_group("llm-call");
    group.bench_function("sophon", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(s.sophon.chat(request()).await.unwrap()) })
    });
    group.bench_function("bare-reqwest", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(bare_call(&s.bare, &url).await) })
    });
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn percentiles(_: &mut Criterion) {
    let s = setup();
    let url = format!("{}/chat/completions", s.server.base_url());
    const CALLS: usize = 3000;
    let (sophon, bare) = s.rt.block_on(async {
        // Warm the connection pools.
        for _ in 0..200 {
            s.sophon.chat(request()).await.unwrap();
            bare_call(&s.bare, &url).await;
        }
        let mut sophon = Vec::with_capacity(CALLS);
        let mut bare = Vec::with_capacity(CALLS);
        // Interleaved, so both see the same machine state.
        for _ in 0..CALLS {
            let start = Instant::now();
            black_box(s.sophon.chat(request()).await.unwrap());
            sophon.push(start.elapsed());
            let start = Instant::now();
            black_box(bare_call(&s.bare, &url).await);
            bare.push(start.elapsed());
        }
        (sophon, bare)
    });
    let report = |name: &str, mut times: Vec<Duration>| {
        times.sort();
        let (p50, p99) = (percentile(&times, 0.50), percentile(&times, 0.99));
        println!(
            "llm-call/{name:<13} p50 {:>8.1} µs   p99 {:>8.1} µs",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
        (p50, p99)
    };
    let (s50, s99) = report("sophon", sophon);
    let (b50, b99) = report("bare-reqwest", bare);
    println!(
        "llm-call/overhead     p50 {:+.1} µs ({:.2}x)   p99 {:+.1} µs ({:.2}x)",
        (s50.as_secs_f64() - b50.as_secs_f64()) * 1e6,
        s50.as_secs_f64() / b50.as_secs_f64(),
        (s99.as_secs_f64() - b99.as_secs_f64()) * 1e6,
        s99.as_secs_f64() / b99.as_secs_f64()
    );
}

criterion_group! {
    name = llm;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = means, percentiles
}
criterion_main!(llm);
