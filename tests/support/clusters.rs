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

    /// The run ended with its own valid answer, every one of its jobs (at least one per node)
    /// ran on the cluster — ids starting `<backend>-` — and succeeded, and none ran locally.
    pub fn assert_every_job_ran_on(&self, backend: &str) {
        let summary = &self.summary;
        assert!(summary.error.is_none(), "{:?}", summary.error);
        assert!(summary.baseline.is_none(), "the strategy answered itself");
        assert!(summary.grade.valid_submission, "{:?}", summary.grade);
        let on_cluster = self.jobs_in(&self.shared);
        assert!(
            on_cluster.len() as u32 >= summary.nodes && summary.nodes >= 1,
            "{} nodes, cluster jobs {on_cluster:?}",
            summary.nodes
        );
        let prefix = format!("{backend}-");
        assert!(
            on_cluster
                .iter()
                .all(|(id, state)| id.starts_with(&prefix) && state == "succeeded"),
            "{on_cluster:?}"
        );
        assert_eq!(self.jobs_in(&self.local), vec![], "no job ran locally");
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
