//! `sophon run` with its jobs on a cluster backend: the built-in `recipes` strategy (a real
//! plugin) on the demo competition, its jobs sent to `[jobs.<backend>]`, and what every
//! backend's job directories then hold, by owner.

use sophon::config::SophonConfig;
use sophon::jobs::records::list_jobs;
use sophon::run::execute::{RunRequest, RunSummary, execute};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A run on the demo competition whose jobs go to `backend`, configured by `table` (the TOML
/// body of `[jobs.<backend>]`, without `shared-dir`, which is `dir/shared`).
pub struct ClusterRun {
    pub summary: RunSummary,
    /// The cluster's job directories.
    pub shared: PathBuf,
    /// The local executor's job directories.
    pub local: PathBuf,
}

impl ClusterRun {
    pub async fn demo(dir: &Path, backend: &str, table: &str) -> ClusterRun {
        let shared = dir.join("shared");
        let local = dir.join("local-jobs");
        let path = dir.join("sophon.toml");
        std::fs::write(
            &path,
            format!(
                "[hcc]\nstore = \"hcc.sqlite\"\n[run]\nruns-dir = \"runs\"\npolicy = \"none\"\n\
                 jobs-backend = \"{backend}\"\n[run.strategies.recipes]\nuse-llm = false\n\
                 job-memory-mb = 1024\n[jobs.local]\njobs-dir = \"{}\"\n[jobs.{backend}]\n\
                 shared-dir = \"{}\"\n{table}\n",
                local.display(),
                shared.display()
            ),
        )
        .unwrap();
        let config = SophonConfig::load(&path).unwrap();
        let request = RunRequest {
            competition_id: "sophon-demo-breast-cancer".into(),
            data_dir: Some(dir.join("data")),
            time_limit: Some(Duration::from_secs(300)),
            max_steps: Some(2),
            ..RunRequest::default()
        };
        let summary = execute(&config, request, vec![]).await.expect("the run");
        ClusterRun {
            summary,
            shared,
            local,
        }
    }

    /// (id, state) of the jobs the run owns under `dir`.
    pub fn jobs_in(&self, dir: &Path) -> Vec<(String, String)> {
        list_jobs(dir)
            .into_iter()
            .filter(|(record, _)| record.owner == self.summary.run_id)
            .map(|(record, state)| (record.id, state))
            .collect()
    }
}
