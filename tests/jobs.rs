//! The local executor with real sandboxed jobs (bubblewrap + cgroups on this machine): what a
//! job gets, and every attack it may try — each contained and reported with the right status.

use sophon::capability::CapabilityError;
use sophon::jobs::config::{JobsConfig, LocalConfig};
use sophon::jobs::local::{JobContext, LocalExecutor};
use sophon::jobs::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    executor: Arc<LocalExecutor>,
    context: JobContext,
}

fn setup(tweak: impl FnOnce(&mut LocalConfig)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let e = sophon_tests::jobs::executor(dir.path(), tweak);
    Setup {
        _dir: dir,
        root: e.root,
        executor: e.executor,
        context: e.context,
    }
}

fn sh(script: &str) -> JobSpec {
    sophon_tests::jobs::command(&["sh", "-c", script])
}

async fn run(s: &Setup, spec: JobSpec) -> JobResult {
    let job = s.executor.submit(&s.context, spec).unwrap();
    tokio::time::timeout(Duration::from_secs(120), job.wait())
        .await
        .expect("the job ended")
}

#[tokio::test]
async fn a_job_gets_its_files_data_and_outputs() {
    let s = setup(|_| {});
    assert!(
        s.executor.cgroups().is_available(),
        "these tests need writable cgroups: {:?}",
        s.executor.cgroups()
    );
    let mut spec = sh(
        "echo hello; echo oops >&2; cat input.txt /data/train.csv > result/out.txt; echo $HOME $OMP_NUM_THREADS; nproc",
    );
    spec.files.push(JobFile {
        path: "input.txt".into(),
        contents: FileContents::Text("from the plugin\n".into()),
        executable: false,
    });
    spec.mounts.push(Mount {
        source: MountSource::TaskPublic,
        target: "/data".into(),
    });
    spec.outputs.push("result/".into());
    spec.files.push(JobFile {
        path: "result/.keep".into(),
        contents: FileContents::Bytes(Vec::new()),
        executable: false,
    });
    spec.resources.cpus = Some(1);
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert_eq!(result.exit, Some(ExitStatus::Code(0)));
    assert_eq!(result.stdout.head, "hello\n/work 1\n1\n");
    assert_eq!(result.stderr.head, "oops\n");
    let out = result
        .artifacts
        .iter()
        .find(|a| a.name == "result__out.txt")
        .expect("collected");
    assert_eq!(
        s.context.artifacts.read(&out.id, 0, 1000).unwrap(),
        b"from the plugin\nid,y\n1,0\n"
    );
    assert!(result.peak_memory_bytes.unwrap() > 0);
}

#[tokio::test]
async fn task_data_given_as_a_relative_path_is_mounted() {
    let mut s = setup(|_| {});
    // The same directory, spelled relative to this process's working directory.
    let public = s.root.join("public");
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let relative = PathBuf::from(format!(
        "{up}{}",
        public.strip_prefix("/").unwrap().display()
    ));
    assert!(relative.is_relative() && relative.join("train.csv").is_file());
    s.context.task_public = Some(relative);
    let mut spec = sh("cat /data/train.csv");
    spec.mounts.push(Mount {
        source: MountSource::TaskPublic,
        target: "/data".into(),
    });
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert_eq!(result.stdout.head, "id,y\n1,0\n");
}

#[tokio::test]
async fn gpus_are_exclusive_and_visible_through_cuda_visible_devices() {
    let s = setup(|_| {});
    let mut spec = sh("echo $CUDA_VISIBLE_DEVICES; sleep 0.5");
    spec.resources.gpus = 1;
    let first = s.executor.submit(&s.context, spec.clone()).unwrap();
    let second = s.executor.submit(&s.context, spec.clone()).unwrap();
    let (a, b) = (first.wait().await, second.wait().await);
    let mut seen = [
        a.stdout.head.trim().to_string(),
        b.stdout.head.trim().to_string(),
    ];
    seen.sort();
    assert_eq!(seen, ["0", "1"]);
    spec.resources.gpus = 3;
    let err = s.executor.submit(&s.context, spec).err().unwrap();
    assert!(
        matches!(err, CapabilityError::InvalidArgument(ref m) if m.contains("3 GPUs")),
        "{err}"
    );
}

#[tokio::test]
async fn a_job_cannot_reach_the_hosts_loopback() {
    let s = setup(|_| {});
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let result = run(
        &s,
        sh(&format!(
            "bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo CONNECTED"
        )),
    )
    .await;
    assert_eq!(result.state, JobState::Failed, "{result:?}");
    assert!(!result.stdout.head.contains("CONNECTED"));
    assert!(
        listener.accept().is_err(),
        "nothing reached the host's listener"
    );
}

#[tokio::test]
async fn host_files_private_answers_and_home_are_out_of_reach() {
    let s = setup(|_| {});
    let private = s.root.join("private/answers.csv");
    let script = format!(
        "for f in /etc/passwd /root/.bashrc {private} $(ls -d /home 2>/dev/null); do cat $f >/dev/null 2>&1 && echo READ $f; done; \
         touch /usr/x 2>/dev/null && echo WROTE /usr; echo x > /data/new 2>/dev/null && echo WROTE /data; \
         echo tmp > /tmp/scratch && echo tmp-ok; ls /",
        private = private.display()
    );
    let mut spec = sh(&script);
    spec.mounts.push(Mount {
        source: MountSource::TaskPublic,
        target: "/data".into(),
    });
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert!(
        !result.stdout.head.contains("READ") && !result.stdout.head.contains("WROTE"),
        "{}",
        result.stdout.head
    );
    assert!(result.stdout.head.contains("tmp-ok"));
    let listing: Vec<&str> = result.stdout.head.lines().skip(1).collect();
    assert!(
        !listing.contains(&"root") && !listing.contains(&"home"),
        "{listing:?}"
    );
    assert!(!s.root.join("public/new").exists());
}

#[tokio::test]
async fn paths_that_escape_the_workdir_are_refused() {
    let s = setup(|_| {});
    for bad in ["../evil.sh", "/etc/cron.d/evil", "a/../../x"] {
        let mut spec = sh("true");
        spec.files.push(JobFile {
            path: bad.into(),
            contents: FileContents::Text("x".into()),
            executable: true,
        });
        let err = s.executor.submit(&s.context, spec).err().unwrap();
        assert!(
            matches!(err, CapabilityError::InvalidArgument(_)),
            "{bad}: {err}"
        );
    }
    let mut spec = sh("true");
    spec.mounts.push(Mount {
        source: MountSource::TaskPublic,
        target: "/usr/lib".into(),
    });
    assert!(s.executor.submit(&s.context, spec).is_err());
    // An output that is a symlink out of the workdir is not collected.
    let mut spec = sh("ln -s /etc/hostname leak.txt; mkdir d; ln -s /etc d/etc");
    spec.outputs = vec!["leak.txt".into(), "d/".into()];
    let result = run(&s, spec).await;
    assert!(result.artifacts.is_empty(), "{:?}", result.artifacts);
    assert!(result.message.contains("symlink"), "{}", result.message);
}

#[tokio::test]
async fn a_fork_bomb_is_contained_by_the_process_limit() {
    let s = setup(|c| c.max_processes = Some(32));
    let mut spec = sh("bomb() { bomb | bomb & }; bomb; sleep 2");
    spec.resources.timeout_ms = Some(5_000);
    let started = Instant::now();
    let result = run(&s, spec).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        result.stderr.head.contains("Cannot fork"),
        "the process limit was reached: {result:?}"
    );
    // Nothing of the bomb outlives the job.
    let leftovers = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains("bomb() {"))
        .count();
    assert_eq!(leftovers, 0, "processes of the bomb survived the job");
    // The host still starts processes, and the next job runs normally.
    assert_eq!(run(&s, sh("echo fine")).await.stdout.head, "fine\n");
}

#[tokio::test]
async fn memory_past_the_limit_is_out_of_memory() {
    let s = setup(|_| {});
    let mut spec = sh("tail /dev/zero");
    spec.resources.memory_mb = Some(64);
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::OutOfMemory, "{result:?}");
    assert!(result.message.contains("64 MB"), "{}", result.message);
}

#[tokio::test]
async fn timeouts_interrupt_then_kill() {
    let s = setup(|_| {});
    // A job that exits on SIGINT ends within the grace period.
    let mut spec = sh("trap 'echo interrupted; exit 3' INT; sleep 60 & wait");
    spec.resources.timeout_ms = Some(300);
    let started = Instant::now();
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::TimedOut, "{result:?}");
    assert!(
        result.stdout.head.contains("interrupted"),
        "SIGINT reached the job: {result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // One that ignores SIGINT is killed after the grace period.
    let mut spec = sh("trap '' INT; sleep 60 & wait; sleep 60");
    spec.resources.timeout_ms = Some(300);
    let started = Instant::now();
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::TimedOut, "{result:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the grace period was given"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn gigabytes_of_output_are_counted_not_kept() {
    let s = setup(|c| c.log_max_bytes = Some(1 << 20));
    let mut spec = sh("head -c 1000000000 /dev/zero | tr '\\0' 'x'; echo; echo END");
    spec.resources.timeout_ms = Some(60_000);
    let job = s.executor.submit(&s.context, spec).unwrap();
    let result = job.wait().await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert_eq!(result.stdout.total_bytes, 1_000_000_005);
    assert!(result.stdout.head.len() <= 8192 && result.stdout.tail.ends_with("END\n"));
    assert_eq!(
        std::fs::metadata(s.executor.job(&job.id()).unwrap().dir().join("stdout.log"))
            .unwrap()
            .len(),
        1 << 20
    );
}

#[tokio::test]
async fn jobs_can_be_cancelled_running_or_queued() {
    let s = setup(|c| c.cpus = Some(vec![0]));
    let running = s.executor.submit(&s.context, sh("sleep 60")).unwrap();
    let queued = s.executor.submit(&s.context, sh("echo never")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(running.state(), JobState::Running);
    assert_eq!(queued.state(), JobState::Queued);
    queued.cancel().await;
    assert_eq!(queued.wait().await.state, JobState::Cancelled);
    running.cancel().await;
    let result = running.wait().await;
    assert_eq!(result.state, JobState::Cancelled);
    let logs = running.logs(LogStream::Stdout, 0, 100).await.unwrap();
    assert!(logs.is_empty());
}

#[tokio::test]
async fn live_logs_can_be_read_while_the_job_runs() {
    let s = setup(|_| {});
    let job = s
        .executor
        .submit(&s.context, sh("echo first; sleep 1; echo second"))
        .unwrap();
    let mut seen = String::new();
    for _ in 0..50 {
        seen = job.logs(LogStream::Stdout, 0, 1000).await.unwrap();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "first\n");
    assert_eq!(job.wait().await.stdout.head, "first\nsecond\n");
    assert_eq!(
        job.logs(LogStream::Stdout, 6, 1000).await.unwrap(),
        "second\n"
    );
}

#[tokio::test]
async fn a_missing_sandbox_is_an_error_naming_the_fix_and_the_opt_out_is_explicit() {
    let config = JobsConfig {
        local: LocalConfig {
            bwrap: Some("/nonexistent/bwrap".into()),
            ..LocalConfig::default()
        },
        ..JobsConfig::default()
    };
    let err = LocalExecutor::new(&config).err().unwrap();
    assert!(
        err.contains("apt-get install bubblewrap") && err.contains("sandbox = \"none\""),
        "{err}"
    );

    let s = setup(|c| c.sandbox = Some(sophon::jobs::config::SandboxKind::None));
    let result = run(&s, sh("test -e /etc/passwd && echo unsandboxed")).await;
    assert_eq!(
        result.stdout.head, "unsandboxed\n",
        "the opt-out really runs on the host"
    );
}

#[tokio::test]
async fn quotas_limit_concurrency_gpus_and_gpu_hours() {
    use sophon::jobs::service::{JobQuota, PluginJobs};
    let s = setup(|_| {});
    let quota = JobQuota {
        max_concurrent: Some(1),
        max_gpus: Some(1),
        gpu_hours: Some(1e-9),
    };
    let jobs = PluginJobs::new("planner", s.executor.clone(), s.context.clone(), quota);
    let mut gpu_job = sh("sleep 0.3");
    gpu_job.resources.gpus = 1;
    let first = jobs.submit(gpu_job.clone()).await.unwrap();
    let err = jobs.submit(sh("true")).await.err().unwrap();
    assert!(
        matches!(err, CapabilityError::BudgetExhausted(ref m) if m.contains("jobs.max-concurrent")),
        "{err}"
    );
    assert_eq!(jobs.inventory().job_slots_free, 0);
    first.wait().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = jobs.submit(gpu_job.clone()).await.err().unwrap();
    assert!(
        matches!(err, CapabilityError::BudgetExhausted(ref m) if m.contains("GPU-hours")),
        "{err}"
    );
    gpu_job.resources.gpus = 2;
    let err = jobs.submit(gpu_job).await.err().unwrap();
    assert!(
        matches!(err, CapabilityError::NotGranted(ref m) if m.contains("at most 1 GPUs")),
        "{err}"
    );
    // CPU jobs are not held back by the GPU-hours quota.
    assert_eq!(
        jobs.submit(sh("echo cpu"))
            .await
            .unwrap()
            .wait()
            .await
            .stdout
            .head,
        "cpu\n"
    );
    let inventory = jobs.inventory();
    assert_eq!(
        (inventory.gpus, inventory.gpu_kinds.as_slice()),
        (2, ["fake-a100".to_string()].as_slice())
    );
    let mut elsewhere = sh("true");
    elsewhere.backend = Some("slurm".into());
    assert!(matches!(
        jobs.submit(elsewhere).await,
        Err(CapabilityError::Unavailable(_))
    ));
}

/// A sandboxed plugin submits real sandboxed jobs and waits on them concurrently.
#[tokio::test]
async fn a_plugin_runs_jobs_through_the_host() {
    use sophon::jobs::service::{JobQuota, PluginJobs};
    use sophon::runtime::HostServices;
    let s = setup(|c| c.cpus = Some(vec![0, 1]));
    let runtime = sophon_tests::test_runtime();
    let grants = "[grants]\nllm = { max-concurrent = 8 }\njobs = {}\nhcc = { scopes = ['experience:write', 'knowledge:read', 'wisdom:read'] }\ntask = {}\nartifacts = {}";
    let plugin = sophon_tests::load(&runtime, "worker", grants);
    let jobs = PluginJobs::new(
        "worker",
        s.executor.clone(),
        s.context.clone(),
        JobQuota::default(),
    );
    let services = HostServices {
        jobs: Some(Arc::new(jobs)),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let outcome = instance
        .run("jobs:3", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(outcome.summary, "0\n|1\n|2\n");
}

#[tokio::test]
async fn a_command_that_cannot_start_fails_cleanly() {
    let s = setup(|c| c.sandbox = Some(sophon::jobs::config::SandboxKind::None));
    let job = s
        .executor
        .submit(
            &s.context,
            sophon_tests::jobs::command(&["/nonexistent/program"]),
        )
        .unwrap();
    let result = job.wait().await;
    assert_eq!(result.state, JobState::Failed);
    assert!(
        result.message.contains("/nonexistent/program"),
        "{}",
        result.message
    );
    // cgroup v2: /sys/fs/cgroup/sophon/<id>; v1: /sys/fs/cgroup/<controller>/sophon/<id>.
    let mut places = vec![PathBuf::from("/sys/fs/cgroup/sophon")];
    places.extend(
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path().join("sophon")),
    );
    assert!(
        places.iter().any(|p| p.is_dir()),
        "some cgroup hierarchy holds Sophon's jobs"
    );
    let leftover: Vec<_> = places
        .iter()
        .map(|p| p.join(job.id()))
        .filter(|p| p.exists())
        .collect();
    assert!(
        leftover.is_empty(),
        "the job's cgroup was not removed: {leftover:?}"
    );
}
