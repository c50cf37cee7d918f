//! The Ray backend against a real local Ray head with two fake GPUs (`tests/ray/start.sh`,
//! which `tests/run` and CI start), through the Ray Jobs REST API.
//!
//! Without a head (no `SOPHON_RAY_URL`) these tests say so and pass, unless
//! `SOPHON_REQUIRE_RAY=1` (set where the head was started), where a missing head fails.

use sophon::jobs::batch::BatchExecutor;
use sophon::jobs::config::ClusterConfig;
use sophon::jobs::local::JobContext;
use sophon::jobs::ray;
use sophon::jobs::*;
use std::sync::Arc;
use std::time::Duration;

fn head() -> Option<(tempfile::TempDir, Arc<BatchExecutor>, JobContext)> {
    let Ok(url) = std::env::var("SOPHON_RAY_URL") else {
        assert!(
            std::env::var("SOPHON_REQUIRE_RAY").as_deref() != Ok("1"),
            "SOPHON_REQUIRE_RAY=1 but no Ray head: run tests/ray/start.sh"
        );
        eprintln!("no Ray head (SOPHON_RAY_URL unset): skipped; `tests/run` starts one");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let context = sophon_tests::jobs::executor(dir.path(), |_| {}).context;
    let config = ClusterConfig {
        url: Some(url),
        shared_dir: Some(dir.path().join("shared")),
        poll_ms: Some(200),
        grace_secs: Some(1),
        default_memory_mb: Some(100),
        ..ClusterConfig::default()
    };
    let executor = Arc::new(ray::executor(&config, Default::default()).unwrap());
    Some((dir, executor, context))
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
async fn ray_jobs_get_gpus_files_outputs_and_statuses() {
    let Some((_dir, executor, context)) = head() else {
        return;
    };
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
    let result = run(&executor, &context, spec).await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert!(
        result.stdout.head.starts_with("gpus=0") || result.stdout.head.starts_with("gpus=1"),
        "{result:?}"
    );
    assert!(result.stdout.head.contains("sandboxed"), "{result:?}");
    let out = result
        .artifacts
        .iter()
        .find(|a| a.name == "out.txt")
        .expect("collected");
    assert_eq!(context.artifacts.read(&out.id, 0, 100).unwrap(), b"data\n");

    let result = run(&executor, &context, sh("echo bad >&2; exit 4")).await;
    assert_eq!(result.state, JobState::Failed, "{result:?}");
    assert_eq!(result.exit, Some(ExitStatus::Code(4)));
    assert_eq!(result.stderr.head, "bad\n");

    let mut slow = sh("sleep 300");
    slow.resources.timeout_ms = Some(1500);
    assert_eq!(
        run(&executor, &context, slow).await.state,
        JobState::TimedOut
    );

    let job = executor.submit(&context, sh("sleep 300")).await.unwrap();
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

/// `sophon run --jobs-backend ray`: a real strategy's jobs all go to the Ray cluster (none runs
/// locally), with the jobs' Python on the node, and the run ends with its own valid answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_jobs_go_to_ray() {
    let Some((_head_dir, _, _)) = head() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let table = format!(
        "url = \"{}\"\npoll-ms = 200\ngrace-secs = 1\nnode-cpus = 1\nnode-memory-mb = 2048\n",
        std::env::var("SOPHON_RAY_URL").unwrap()
    );
    sophon_tests::clusters::ClusterRun::demo(dir.path(), "ray", &table)
        .await
        .assert_every_job_ran_on("ray");
}
