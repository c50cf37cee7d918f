//! A local executor for tests and benchmarks: jobs under a temporary directory, task data with
//! public and private parts, a fake two-GPU inventory and small limits.

use sophon::artifacts::ArtifactStore;
use sophon::jobs::config::{JobsConfig, LocalConfig};
use sophon::jobs::local::{JobContext, LocalExecutor};
use sophon::jobs::scheduler::Gpu;
use sophon::jobs::{JobSpec, Resources};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Executor {
    pub executor: Arc<LocalExecutor>,
    pub context: JobContext,
    /// Holds `public/train.csv` (mounted as task data) and `private/answers.csv` (never).
    pub root: PathBuf,
}

/// An executor rooted at `root`, its configuration adjusted by `tweak`.
pub fn executor(root: &Path, tweak: impl FnOnce(&mut LocalConfig)) -> Executor {
    std::fs::create_dir_all(root.join("public")).unwrap();
    std::fs::write(root.join("public/train.csv"), "id,y\n1,0\n").unwrap();
    std::fs::create_dir_all(root.join("private")).unwrap();
    std::fs::write(root.join("private/answers.csv"), "id,y\n1,1\n").unwrap();
    let mut local = LocalConfig {
        jobs_dir: Some(root.join("jobs")),
        gpus: Some(vec![
            Gpu {
                index: 0,
                name: "fake-a100".into(),
                memory_mb: 40_000,
            },
            Gpu {
                index: 1,
                name: "fake-a100".into(),
                memory_mb: 40_000,
            },
        ]),
        default_memory_mb: Some(512),
        default_timeout_secs: Some(60),
        grace_secs: Some(1),
        max_processes: Some(64),
        ..LocalConfig::default()
    };
    tweak(&mut local);
    let executor = Arc::new(
        LocalExecutor::new(&JobsConfig {
            local,
            ..JobsConfig::default()
        })
        .unwrap(),
    );
    let context = JobContext {
        owner: "run-1".into(),
        artifacts: Arc::new(ArtifactStore::open(&root.join("artifacts"), 1 << 30).unwrap()),
        task_public: Some(root.join("public")),
    };
    Executor {
        executor,
        context,
        root: root.to_path_buf(),
    }
}

/// A job running `argv`, everything else at its default.
pub fn command(argv: &[&str]) -> JobSpec {
    JobSpec {
        name: argv.join(" "),
        files: Vec::new(),
        command: argv.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        resources: Resources::default(),
        mounts: Vec::new(),
        outputs: Vec::new(),
        backend: None,
    }
}
