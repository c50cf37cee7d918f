//! The Slurm backend against a real single-node cluster with two fake GPUs
//! (`tests/slurm/start.sh`, which `tests/run` and CI start). Both transports: slurmrestd
//! (OpenAPI v0.0.38) and the sbatch family of commands.
//!
//! Without a cluster (no `SOPHON_SLURM_URL`) these tests say so and pass, unless
//! `SOPHON_REQUIRE_SLURM=1` (set where the cluster was started), where a missing cluster fails.

use sophon::jobs::batch::BatchExecutor;
use sophon::jobs::config::SlurmConfig;
use sophon::jobs::local::JobContext;
use sophon::jobs::slurm;
use sophon::jobs::*;
use std::sync::Arc;
use std::time::Duration;

struct Cluster {
    _dir: tempfile::TempDir,
    rest: Arc<BatchExecutor>,
    cli: Arc<BatchExecutor>,
    context: JobContext,
}

fn cluster() -> Option<Cluster> {
    let Ok(url) = std::env::var("SOPHON_SLURM_URL") else {
        assert!(
            std::env::var("SOPHON_REQUIRE_SLURM").as_deref() != Ok("1"),
            "SOPHON_REQUIRE_SLURM=1 but no test cluster: run tests/slurm/start.sh"
        );
        eprintln!(
            "no Slurm test cluster (SOPHON_SLURM_URL unset): skipped; `tests/run` starts one"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let shared = sophon_tests::jobs::executor(dir.path(), |_| {});
    let config = |url: Option<String>| SlurmConfig {
        url,
        user: std::env::var("SOPHON_SLURM_USER").ok(),
        token_env: Some("SOPHON_SLURM_TOKEN".into()),
        shared_dir: Some(dir.path().join("shared")),
        poll_ms: Some(200),
        grace_secs: Some(1),
        default_memory_mb: Some(200),
        max_timeout_secs: Some(120),
        ..SlurmConfig::default()
    };
    let env = |k: &str| std::env::var(k).ok();
    let rest = Arc::new(slurm::executor(&config(Some(url)), Default::default(), &env).unwrap());
    let cli = Arc::new(slurm::executor(&config(None), Default::default(), &env).unwrap());
    Some(Cluster {
        _dir: dir,
        rest,
        cli,
        context: shared.context,
    })
}

fn sh(script: &str) -> JobSpec {
    sophon_tests::jobs::command(&["sh", "-c", script])
}

async fn run(executor: &Arc<BatchExecutor>, context: &JobContext, spec: JobSpec) -> JobResult {
    let job = executor.submit(context, spec).await.unwrap();
    tokio::time::timeout(Duration::from_secs(120), job.wait())
        .await
        .expect("the job ended")
}

#[tokio::test]
async fn jobs_run_on_the_cluster_with_gpus_files_and_outputs() {
    let Some(c) = cluster() else { return };
    for executor in [&c.rest, &c.cli] {
        let mut spec = sh(
            "echo gpus=$CUDA_VISIBLE_DEVICES; cat input.txt > out.txt; test -e /etc/passwd || echo sandboxed",
        );
        spec.resources.gpus = 1;
        spec.files.push(JobFile {
            path: "input.txt".into(),
            contents: FileContents::Text("data\n".into()),
            executable: false,
        });
        spec.outputs.push("out.txt".into());
        let result = run(executor, &c.context, spec).await;
        assert_eq!(result.state, JobState::Succeeded, "{result:?}");
        assert!(
            result.stdout.head.contains("gpus=0") || result.stdout.head.contains("gpus=1"),
            "{result:?}"
        );
        assert!(
            result.stdout.head.contains("sandboxed"),
            "the job ran in bubblewrap: {result:?}"
        );
        let out = result
            .artifacts
            .iter()
            .find(|a| a.name == "out.txt")
            .expect("collected");
        assert_eq!(
            c.context.artifacts.read(&out.id, 0, 100).unwrap(),
            b"data\n"
        );
    }
}

#[tokio::test]
async fn failures_timeouts_and_cancels_are_reported() {
    let Some(c) = cluster() else { return };
    for executor in [&c.rest, &c.cli] {
        let result = run(executor, &c.context, sh("echo bad >&2; exit 3")).await;
        assert_eq!(result.state, JobState::Failed, "{result:?}");
        assert_eq!(result.exit, Some(ExitStatus::Code(3)));
        assert_eq!(result.stderr.head, "bad\n");

        let mut slow = sh("sleep 300");
        slow.resources.timeout_ms = Some(1500);
        let result = run(executor, &c.context, slow).await;
        assert_eq!(result.state, JobState::TimedOut, "{result:?}");

        let job = executor.submit(&c.context, sh("sleep 300")).await.unwrap();
        for _ in 0..100 {
            if job.state() == JobState::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        job.cancel().await;
        let result = tokio::time::timeout(Duration::from_secs(60), job.wait())
            .await
            .unwrap();
        assert_eq!(result.state, JobState::Cancelled, "{result:?}");
    }
}

#[tokio::test]
async fn bad_credentials_are_a_clear_error() {
    let Some(_) = cluster() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = SlurmConfig {
        url: std::env::var("SOPHON_SLURM_URL").ok(),
        user: Some("root".into()),
        token_env: Some("BAD_TOKEN".into()),
        shared_dir: Some(dir.path().to_path_buf()),
        ..SlurmConfig::default()
    };
    let err = slurm::executor(&config, Default::default(), &|_| None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("$BAD_TOKEN holds no JWT"), "{err}");
    let executor = Arc::new(
        slurm::executor(&config, Default::default(), &|_| Some("not-a-jwt".into())).unwrap(),
    );
    let context = sophon_tests::jobs::executor(dir.path(), |_| {}).context;
    let err = executor
        .submit(&context, sh("true"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("credentials") || err.contains("refused"),
        "{err}"
    );
}

/// `sophon job ls` and `sophon job cancel` work on cluster jobs: their directories carry the
/// same records as local jobs, and the cancel file stops them.
#[tokio::test]
async fn cluster_jobs_are_recorded_and_can_be_cancelled_through_their_directory() {
    use sophon::jobs::records::{CANCEL_FILE, list_jobs};
    let Some(c) = cluster() else { return };
    let job = c.rest.submit(&c.context, sh("sleep 300")).await.unwrap();
    for _ in 0..100 {
        if job.state() == JobState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shared = c._dir.path().join("shared");
    let listed = list_jobs(&shared);
    assert!(
        listed
            .iter()
            .any(|(r, state)| r.id == job.id() && state == "running"),
        "{listed:?}"
    );
    std::fs::write(job.dir().join(CANCEL_FILE), b"").unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), job.wait())
        .await
        .unwrap();
    assert_eq!(result.state, JobState::Cancelled, "{result:?}");
    assert!(
        list_jobs(&shared)
            .iter()
            .any(|(r, state)| r.id == job.id() && state == "cancelled")
    );
}

/// A cluster job runs in the same sandbox as a local one: on a node where the batch script runs
/// as root, as the unprivileged job-uid with no capabilities, under the seccomp filter for the
/// node's architecture, with `/proc/sys` read-only; its working directory is removed once its
/// outputs are collected, its time limit is capped (`max-timeout-secs`), and a GPU kind that
/// would smuggle more into `--gres` is refused.
#[tokio::test]
async fn cluster_jobs_are_contained_like_local_ones() {
    let Some(c) = cluster() else { return };
    let before = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    for executor in [&c.rest, &c.cli] {
        let mut spec = sh(
            "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
             (echo 1 > /proc/sys/vm/swappiness) 2>/dev/null && echo WROTE; \
             unshare -r true 2>/dev/null && echo USERNS; echo out > out.txt",
        );
        spec.outputs = vec!["out.txt".into()];
        let job = executor.submit(&c.context, spec).await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(120), job.wait())
            .await
            .unwrap();
        assert_eq!(result.state, JobState::Succeeded, "{result:?}");
        let out = &result.stdout.head;
        assert!(out.starts_with("65534\n"), "{out}");
        assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
        assert!(
            out.contains("NoNewPrivs:\t1") && out.contains("Seccomp:\t2"),
            "{out}"
        );
        assert!(!out.contains("WROTE") && !out.contains("USERNS"), "{out}");
        assert_eq!(result.artifacts.len(), 1);
        assert!(!job.dir().join("work").exists());

        let mut long = sh("sleep 1");
        long.resources.timeout_ms = Some(10 * 24 * 3600 * 1000);
        let job = executor.submit(&c.context, long).await.unwrap();
        let shown = std::process::Command::new("scontrol")
            .args(["show", "job", job.native_id()])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.contains("TimeLimit=00:03:00"), "{shown}");
        job.wait().await;

        let mut smuggled = sh("true");
        smuggled.resources.gpus = 1;
        smuggled.resources.gpu_kind = Some("a100:8,gpu".into());
        let err = executor.submit(&c.context, smuggled).await.err().unwrap();
        assert!(err.to_string().contains("gpu-kind"), "{err}");
    }
    assert_eq!(
        before,
        std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap()
    );
}

/// `sophon run --jobs-backend slurm`: a real strategy's jobs all go to the cluster (none runs
/// locally), with the jobs' Python on the node, and the run ends with its own valid answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_jobs_go_to_slurm() {
    let Some(cluster) = cluster() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "url = \"{}\"\nuser = \"{}\"\ntoken-env = \"SOPHON_SLURM_TOKEN\"\npoll-ms = 200\ngrace-secs = 1\nnode-cpus = 1\nnode-memory-mb = 2048\n",
        std::env::var("SOPHON_SLURM_URL").unwrap(),
        std::env::var("SOPHON_SLURM_USER").unwrap_or_else(|_| "root".into()),
    );
    drop(cluster);
    sophon_tests::clusters::ClusterRun::demo(dir.path(), "slurm", &table)
        .await
        .assert_every_job_ran_on("slurm");
}
