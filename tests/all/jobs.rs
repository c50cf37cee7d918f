//! The local executor with real sandboxed jobs (bubblewrap + cgroups on this machine): what a
//! job gets, and every attack it may try — each contained and reported with the right status.

use sophon::capability::CapabilityError;
use sophon::jobs::backends::Backends;
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

/// Wait until `condition` holds, checking every 10 ms; fails the test naming `what` after 30 s.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    // Long enough for the shell to set its trap inside the sandbox on a loaded machine.
    spec.resources.timeout_ms = Some(3_000);
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
    until("the first job runs", || {
        running.state() == JobState::Running
    })
    .await;
    // One core, held by the first job: the second cannot start.
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
    let err = LocalExecutor::new(&config).err().unwrap().to_string();
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
    let jobs = PluginJobs::new(
        "planner",
        Arc::new(Backends::local(s.executor.clone())),
        s.context.clone(),
        quota,
    );
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
    // The GPU-hours are charged when the job ends (a task watching it), not in `wait`.
    until("the finished GPU job is charged", || {
        jobs.inventory().gpu_hours_left == Some(0.0)
    })
    .await;
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
        Arc::new(Backends::local(s.executor.clone())),
        s.context.clone(),
        JobQuota::default(),
    );
    let jobs = sophon_tests::services::WaitCounter::new(Arc::new(jobs));
    let services = HostServices {
        jobs: Some(jobs.clone()),
        ..HostServices::default()
    };
    let mut instance = plugin.strategy(services).await.unwrap();
    let outcome = instance
        .run("slow-jobs:3", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(outcome.summary, "0\n|1\n|2\n");
    // Each job sleeps 0.5 s (and the third waits for one of the two cores), so waits made
    // one after another could never overlap.
    assert_eq!(
        jobs.most_waited_at_once(),
        3,
        "the three waits were pending together"
    );
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
    // Its files go too: the working directory was prepared before the start failed.
    let dir = s.executor.job(&job.id()).unwrap().dir().to_path_buf();
    assert!(!dir.join("work").exists(), "the working directory is left");
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

/// This process's effective uid (tests assert root-specific guarantees only as root, as CI is).
fn euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() }
}

/// Everything a job may try to become host root or change the host's kernel settings: none of
/// it works, and the host's values are unchanged afterwards.
#[tokio::test]
async fn a_job_is_never_host_root_and_cannot_change_kernel_settings() {
    let s = setup(|_| {});
    let watched = [
        "/proc/sys/vm/swappiness",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/hostname",
        "/proc/sys/fs/file-max",
    ];
    let before: Vec<String> = watched
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let script = r#"
id -u; id -g; id -G
grep -E '^(CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status
for f in /proc/sys/vm/swappiness /proc/sys/kernel/core_pattern /proc/sys/kernel/hostname /proc/sys/fs/file-max /proc/sysrq-trigger; do
  (echo '|/tmp/evil %p' > "$f") 2>/dev/null && echo "WROTE $f"
done
python3 - <<'PY'
import os
for path, value in [("/proc/sys/vm/swappiness", "1"), ("/proc/sys/kernel/core_pattern", "|/tmp/x")]:
    try:
        with open(path, "w") as f:
            f.write(value)
        print("WROTE", path)
    except OSError as e:
        print("refused", path, e.errno)
for name, call in [("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                   ("setgroups", lambda: os.setgroups([0])), ("chroot", lambda: os.chroot("/tmp"))]:
    try:
        call()
        print("BECAME", name)
    except OSError as e:
        print("refused", name, e.errno)
PY
mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED
unshare -r true 2>/dev/null && echo USERNS
touch /usr/evil 2>/dev/null && echo WROTE-usr
echo done
"#;
    let result = run(&s, sh(script)).await;
    let out = &result.stdout.head;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert!(out.ends_with("done\n"), "{out}");
    for forbidden in ["WROTE", "BECAME", "MOUNTED", "USERNS"] {
        assert!(!out.contains(forbidden), "{forbidden}:\n{out}");
    }
    let lines: Vec<&str> = out.lines().collect();
    let uid: u32 = lines[0].parse().unwrap();
    if euid() == 0 {
        assert_eq!(uid, 65534, "as root, jobs run as the unprivileged job-uid");
        assert_eq!(lines[1], "65534");
        assert_eq!(lines[2], "65534", "no supplementary groups");
    } else {
        assert_eq!(uid, euid());
    }
    assert_ne!(uid, 0);
    for cap in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{cap}:\t0000000000000000")),
            "{cap}:\n{out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    let after: Vec<String> = watched
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_eq!(before, after, "a host kernel setting changed");
}

/// The seccomp filter: the calls a job never needs are refused, ordinary work goes on.
#[tokio::test]
async fn a_job_is_refused_the_system_calls_it_never_needs() {
    let s = setup(|_| {});
    let script = r#"
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": dict(keyctl=250, bpf=321, perf_event_open=298, ptrace=101, unshare=272,
                    io_uring_setup=425, clone3=435, userfaultfd=323, kexec_load=246,
                    init_module=175, mount=165, setns=308, add_key=248, process_vm_writev=311,
                    open_by_handle_at=304, pivot_root=155, ioctl=16),
      "aarch64": dict(keyctl=219, bpf=280, perf_event_open=241, ptrace=117, unshare=97,
                     io_uring_setup=425, clone3=435, userfaultfd=282, kexec_load=104,
                     init_module=105, mount=40, setns=268, add_key=217, process_vm_writev=271,
                     open_by_handle_at=265, pivot_root=41, ioctl=29)}[os.uname().machine]
libc.syscall.restype = ctypes.c_long
def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr[name]), *[ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()
for name in ["keyctl", "bpf", "perf_event_open", "ptrace", "userfaultfd", "kexec_load",
             "init_module", "setns", "add_key", "process_vm_writev", "open_by_handle_at",
             "pivot_root", "mount"]:
    r, e = call(name, 0, 0, 0, 0, 0)
    print(name, "ALLOWED" if r >= 0 or e not in (errno.EPERM,) else "EPERM")
r, e = call("unshare", 0x10000000)
print("unshare", "EPERM" if e == errno.EPERM else "ALLOWED")
for name in ["io_uring_setup", "clone3"]:
    r, e = call(name, 0, 0)
    print(name, "ENOSYS" if e == errno.ENOSYS else "ALLOWED")
# TIOCSTI on a terminal of its own, with and without junk in the request's upper half.
import pty, fcntl, termios
master, slave = pty.openpty()
for request in (termios.TIOCSTI, termios.TIOCSTI | (1 << 32)):
    r, e = call("ioctl", slave, request, ctypes.addressof(ctypes.c_char(b"x")))
    print("tiocsti", "EPERM" if e == errno.EPERM else "ALLOWED")
r, e = call("ioctl", slave, 0x541C, 0)
print("tioclinux", "EPERM" if e == errno.EPERM else "ALLOWED")
# What a job does need still works: threads (clone), processes, pipes, memory maps.
import threading, subprocess, mmap
t = threading.Thread(target=lambda: None); t.start(); t.join()
print("subprocess", subprocess.run(["true"]).returncode)
m = mmap.mmap(-1, 1 << 20); m[0] = 1
print("fine")
"#;
    let mut spec = sophon_tests::jobs::command(&["python3", "probe.py"]);
    spec.files.push(JobFile {
        path: "probe.py".into(),
        contents: FileContents::Text(script.into()),
        executable: false,
    });
    let result = run(&s, spec).await;
    let out = &result.stdout.head;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert!(!out.contains("ALLOWED"), "{out}");
    assert_eq!(out.matches("EPERM").count(), 17, "{out}");
    assert_eq!(out.matches("ENOSYS").count(), 2, "{out}");
    assert!(out.contains("subprocess 0\nfine\n"), "{out}");
}

/// Outputs are measured before they are read: sparse files of 3 GiB and 200 GiB (no blocks on
/// disk) are refused by size without the host reading them, files that fit are streamed into
/// the store, and together a job's outputs stay under its disk quota.
#[tokio::test]
async fn huge_and_sparse_outputs_are_refused_by_size_before_anything_is_read() {
    // A quota large enough for the kernel to let the job make a 200 GiB sparse file.
    let s = setup(|c| c.disk_mb = Some(300 << 10));
    let hwm_before = peak_rss_kib();
    let mut spec = sh(
        "truncate -s 3G big.bin && truncate -s 200G huge.bin && printf 'id,y\\n1,0\\n' > sub.csv",
    );
    spec.outputs = vec!["big.bin".into(), "huge.bin".into(), "sub.csv".into()];
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    for name in ["big.bin", "huge.bin"] {
        assert!(
            result.message.contains(&format!(
                "output {name} is {} bytes, more than the 1073741824 bytes an artifact may hold",
                if name == "big.bin" {
                    3u64 << 30
                } else {
                    200 << 30
                }
            )),
            "{}",
            result.message
        );
    }
    let names: Vec<&str> = result.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["sub.csv"]);
    let grown_kib = peak_rss_kib().saturating_sub(hwm_before);
    assert!(
        grown_kib < 512 * 1024,
        "collecting grew the host's peak memory by {grown_kib} KiB"
    );

    // Files that fit are streamed in whole; past the job's disk quota together, the rest are
    // named and left.
    let s = setup(|c| c.disk_mb = Some(600));
    let mut spec = sh("mkdir out && for f in a b c; do truncate -s 250M out/$f.bin; done");
    spec.outputs = vec!["out/".into()];
    let result = run(&s, spec).await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    assert_eq!(result.artifacts.len(), 2, "{result:?}");
    assert!(
        result
            .message
            .contains("would take the job's outputs past 629145600 bytes"),
        "{}",
        result.message
    );
    use sha2::Digest;
    let zeros = format!("{:x}", sha2::Sha256::digest(vec![0u8; 250 << 20]));
    for artifact in &result.artifacts {
        assert_eq!(
            (artifact.size, artifact.sha256.as_str()),
            (250 << 20, zeros.as_str())
        );
    }
}

/// This process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A job's disk quota holds: too many bytes, too many files and a nearly full disk each stop
/// the job with a message naming the setting; a file past the quota is refused by the kernel;
/// a quiet job on a nearly full disk is left alone.
#[tokio::test]
async fn a_job_that_fills_the_disk_loses_only_itself() {
    let s = setup(|c| {
        c.disk_mb = Some(40);
        c.max_files = Some(500);
    });
    let cases = [
        // Many files of 1 MiB: the watcher sees 40 MiB pass.
        (
            "for i in $(seq 1 60); do head -c 1048576 /dev/zero > f$i; done; sleep 30",
            "disk-mb",
        ),
        // One file past the quota: the kernel stops it (RLIMIT_FSIZE) or the watcher does.
        ("head -c 60000000 /dev/zero > big", "SIGXFSZ|disk-mb"),
        // Many empty files.
        (
            "mkdir d; cd d; i=0; while [ $i -lt 2000 ]; do : > f$i; i=$((i+1)); done; sleep 30",
            "max-files",
        ),
    ];
    for (script, named) in cases {
        let mut spec = sh(script);
        spec.resources.timeout_ms = Some(60_000);
        let started = Instant::now();
        let result = run(&s, spec).await;
        assert_eq!(result.state, JobState::Failed, "{script}: {result:?}");
        assert!(
            named.split('|').any(|n| result.message.contains(n)),
            "{script}: {}",
            result.message
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{script}: not stopped"
        );
    }
    // A nearly full disk (the reserve is set above the disk's size) stops a job that writes…
    let full = setup(|c| c.min_free_disk_mb = Some(u64::MAX >> 21));
    let mut spec = sh("for i in $(seq 1 30); do echo $i >> grow; sleep 0.2; done");
    spec.resources.timeout_ms = Some(60_000);
    let result = run(&full, spec).await;
    assert_eq!(result.state, JobState::Failed, "{result:?}");
    assert!(
        result.message.contains("min-free-disk-mb"),
        "{}",
        result.message
    );
    // … but not one that only reads and computes.
    let result = run(&full, sh("sleep 2.5; echo fine")).await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    // The next job on the executor runs normally.
    assert_eq!(run(&s, sh("echo next")).await.stdout.head, "next\n");
}

/// Once its outputs are collected a job's working directory is gone (its logs stay), even
/// when the job locked parts of it.
#[tokio::test]
async fn a_jobs_working_directory_is_removed_once_its_outputs_are_collected() {
    let s = setup(|_| {});
    let mut spec = sh(
        "mkdir -p keep locked/deep && echo 1 > keep/a && echo 2 > locked/deep/b && chmod 000 locked && echo ok",
    );
    spec.outputs = vec!["keep/".into()];
    let job = s.executor.submit(&s.context, spec).unwrap();
    let result = job.wait().await;
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
    let dir = s.executor.job(&job.id()).unwrap().dir().to_path_buf();
    assert!(!dir.join("work").exists(), "the working directory is left");
    assert!(!dir.join("seccomp-deny.bpf").exists());
    assert!(dir.join("stdout.log").is_file(), "the logs are kept");
    let a = &result.artifacts[0];
    assert_eq!(s.context.artifacts.read(&a.id, 0, 10).unwrap(), b"1\n");
}

/// A plugin's GPU kind reaches a scheduler's request only as a plain name.
#[tokio::test]
async fn gpu_kinds_that_are_not_plain_names_are_refused() {
    let s = setup(|_| {});
    for kind in [
        "a100:8,gpu:h100",
        "a100 --x",
        "",
        "x".repeat(65).as_str(),
        "a/b",
    ] {
        let mut spec = sh("true");
        spec.resources.gpus = 1;
        spec.resources.gpu_kind = Some(kind.to_string());
        let err = s.executor.submit(&s.context, spec).err().unwrap();
        assert!(
            matches!(err, CapabilityError::InvalidArgument(ref m) if m.contains("gpu-kind")),
            "{kind:?}: {err}"
        );
    }
    let mut spec = sh("echo $CUDA_VISIBLE_DEVICES");
    spec.resources.gpus = 1;
    spec.resources.gpu_kind = Some("fake-a100".into());
    assert_eq!(run(&s, spec).await.state, JobState::Succeeded);
}

/// Within a run no job outlives its deadline: timeouts are cut to the time left, jobs still
/// running at the deadline are cancelled, none starts after it, and a stop flag does the same.
#[tokio::test]
async fn a_runs_jobs_end_at_its_deadline_or_stop() {
    use sophon::jobs::service::{JobQuota, PluginJobs, RunEnd};
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = setup(|_| {});
    let jobs = PluginJobs::new(
        "strategy",
        Arc::new(Backends::local(s.executor.clone())),
        s.context.clone(),
        JobQuota::default(),
    )
    .with_run_end(RunEnd {
        deadline: Some(Instant::now() + Duration::from_secs(2)),
        stop: None,
    });
    let mut long = sh("trap 'exit 3' INT; sleep 60 & wait");
    long.resources.timeout_ms = Some(60_000);
    let started = Instant::now();
    let job = jobs.submit(long.clone()).await.unwrap();
    let result = job.wait().await;
    assert!(
        matches!(result.state, JobState::TimedOut | JobState::Cancelled),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "ran {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = jobs.submit(sh("true")).await.err().unwrap();
    assert!(
        matches!(err, CapabilityError::BudgetExhausted(ref m) if m.contains("out of time")),
        "{err}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let jobs = PluginJobs::new(
        "strategy",
        Arc::new(Backends::local(s.executor.clone())),
        s.context.clone(),
        JobQuota::default(),
    )
    .with_run_end(RunEnd {
        deadline: None,
        stop: Some(stop.clone()),
    });
    let running = jobs.submit(long.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    assert_eq!(running.wait().await.state, JobState::Cancelled);
    assert!(jobs.submit(sh("true")).await.is_err());

    // At the run's end every job still running is cancelled.
    let jobs = PluginJobs::new(
        "strategy",
        Arc::new(Backends::local(s.executor.clone())),
        s.context.clone(),
        JobQuota::default(),
    );
    let a = jobs.submit(long.clone()).await.unwrap();
    let b = jobs.submit(long).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(jobs.cancel_all().await, 2);
    assert_eq!(a.wait().await.state, JobState::Cancelled);
    assert_eq!(b.wait().await.state, JobState::Cancelled);
}

/// Runs of one process share its backends (`sophon ab` cells do): a core one run's job holds
/// is not handed to another run's job, and ending a run cancels its own jobs only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_sharing_the_backends_never_hold_the_same_core_and_end_only_their_own_jobs() {
    use sophon::jobs::service::{JobQuota, PluginJobs};
    let s = setup(|local| local.cpus = Some(vec![0]));
    let backends = Arc::new(Backends::local(s.executor.clone()));
    let run = |owner: &str| {
        let mut context = s.context.clone();
        context.owner = owner.into();
        PluginJobs::new("strategy", backends.clone(), context, JobQuota::default())
    };
    let (a, b) = (run("run-a"), run("run-b"));
    assert_eq!(a.inventory().cpus, 1);
    let long = a.submit(sh("sleep 60")).await.unwrap();
    let started = Instant::now();
    while long.state() != JobState::Running {
        assert!(started.elapsed() < Duration::from_secs(30), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.executor.scheduler().free().0, 0, "the one core is held");
    let short = b.submit(sh("true")).await.unwrap();
    // Run B's job waits for the core run A's job holds.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), short.wait())
            .await
            .is_err(),
        "run B's job ran on the core run A's job held"
    );
    assert_eq!(short.state(), JobState::Queued);
    // Run A ends: its job is cancelled, run B's is not, and gets the core.
    assert_eq!(a.cancel_all().await, 1);
    assert_eq!(long.wait().await.state, JobState::Cancelled);
    let result = tokio::time::timeout(Duration::from_secs(60), short.wait())
        .await
        .expect("run B's job ran once the core was free");
    assert_eq!(result.state, JobState::Succeeded, "{result:?}");
}

/// A submission the plugin's host call abandons — its deadline ends it while the cluster has
/// not answered — gives its job slot back: abandoned submissions never eat into the plugin's
/// `max-concurrent`. The cluster is a slurmrestd that takes the connection and never answers.
#[tokio::test]
async fn an_abandoned_cluster_submission_gives_its_slot_back() {
    use sophon::jobs::config::ClusterConfig;
    use sophon::jobs::service::{JobQuota, PluginJobs};
    let s = setup(|_| {});
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = ClusterConfig {
        url: Some(format!("http://{}", silent.local_addr().unwrap())),
        user: Some("sophon".into()),
        token_env: Some("SILENT_TOKEN".into()),
        shared_dir: Some(s.root.join("shared")),
        ..ClusterConfig::default()
    };
    let cluster = sophon::jobs::slurm::executor(&config, Default::default(), &|_| {
        Some("header.payload.signature".into())
    })
    .unwrap();
    let backends = Backends::local(s.executor.clone()).with_cluster(Arc::new(cluster));
    let quota = JobQuota {
        max_concurrent: Some(1),
        ..JobQuota::default()
    };
    let jobs = PluginJobs::new("strategy", Arc::new(backends), s.context.clone(), quota)
        .with_default_backend("slurm");
    for attempt in 0..3 {
        let abandoned =
            tokio::time::timeout(Duration::from_millis(500), jobs.submit(sh("true"))).await;
        assert!(
            abandoned.is_err(),
            "attempt {attempt}: the silent cluster answered"
        );
        assert_eq!(jobs.inventory().job_slots_free, 1, "attempt {attempt}");
    }
}
