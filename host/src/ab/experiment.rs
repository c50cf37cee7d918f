//! `experiment.toml`: the arms, competitions, seeds and budgets of an A/B experiment.
//!
//! ```toml
//! name = "hcc-vs-top-k"
//! competitions = ["spaceship-titanic", "playground-series-s3e18"]
//! seeds = [0, 1, 2]
//! data-dir = "../shared/mlebench/data"   # default: [mlebench] data-dir
//! output-dir = "ab/hcc-vs-top-k"          # default: ab/<name>, beside this file
//! max-parallel = 2                        # sequences at once (default: the cores here; on a
//!                                         # cluster, every sequence's job at once)
//! backend = "slurm"                       # where cells run: local (this process, the default),
//!                                         # or one cluster job per (arm, seed): slurm, ray
//!
//! [cell]                                  # what each (arm, seed) cluster job asks for
//! cpus = 8
//! memory-mb = 64000
//! gpus = 1
//! gpu-kind = "H100"
//! time = "30h"                            # default: per competition, time-limit + 15 min
//!
//! [budget]                                # every run's budget
//! time-limit = "5m"
//! max-steps = 8
//! max-tokens = 200000
//! max-cost-usd = 1.0
//!
//! [[arms]]                                # the first arm is the baseline
//! name = "top-k"
//! strategy = "recipes"
//! policy = "top-k"
//!
//! [[arms]]
//! name = "hcc"
//! strategy = "recipes"
//! policy = "hcc"
//! config = { job-timeout-secs = 300 }     # the strategy's settings
//! ```
//!
//! Relative paths are relative to the file. Errors name the field and the fix.

use super::error::AbError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Per competition, what a cell's cluster job gets beyond the run's time limit by default.
pub const CELL_OVERHEAD: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Experiment {
    pub name: Option<String>,
    pub competitions: Vec<String>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    pub data_dir: Option<PathBuf>,
    pub output_dir: Option<PathBuf>,
    pub max_parallel: Option<usize>,
    /// Where cells run: `local` (in this process) or a cluster backend.
    pub backend: Option<String>,
    /// What each (arm, seed) cluster job asks for.
    #[serde(default)]
    pub cell: CellResources,
    #[serde(default)]
    pub budget: Budget,
    pub arms: Vec<Arm>,
}

/// `[cell]`: the resources of one (arm, seed) sequence's cluster job.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CellResources {
    /// Cores (default 2).
    pub cpus: Option<u32>,
    /// Memory in MB (default 8192).
    pub memory_mb: Option<u64>,
    #[serde(default)]
    pub gpus: u32,
    pub gpu_kind: Option<String>,
    /// The job's time limit, a duration like `30h` (default: per competition, the run's time
    /// limit plus 15 minutes for setup, grading and the policy's last promotion).
    pub time: Option<String>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// Every run's budget (unset: the `[run]` defaults).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Budget {
    /// A duration like `5m` or `90s`.
    pub time_limit: Option<String>,
    pub max_steps: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
}

/// One arm: a strategy, a promotion policy and the strategy's settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Arm {
    pub name: String,
    /// A `[plugins]` name (default: the `[run]` routing).
    pub strategy: Option<String>,
    /// A `[plugins]` name or `none` (default: the `[run]` routing).
    pub policy: Option<String>,
    /// The strategy's settings (default: `[run.strategies.<name>]`).
    pub config: Option<toml::Table>,
}

impl Experiment {
    /// Read and check `path`; relative paths in it become relative to its directory.
    pub fn load(path: &Path) -> Result<Experiment, AbError> {
        let text = std::fs::read_to_string(path).map_err(|source| AbError::ReadExperiment {
            path: path.to_path_buf(),
            source,
        })?;
        let mut experiment: Experiment =
            toml::from_str(&text).map_err(|source| AbError::InvalidExperiment {
                path: path.to_path_buf(),
                source,
            })?;
        // `exp.toml` has the empty path as its parent: that is the current directory.
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(parent).map_err(|source| AbError::ExperimentDir {
            path: path.to_path_buf(),
            source,
        })?;
        let name = experiment.name();
        experiment.output_dir = Some(
            base.join(
                experiment
                    .output_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("ab").join(&name)),
            ),
        );
        experiment.data_dir = experiment.data_dir.map(|d| base.join(d));
        experiment.check()?;
        Ok(experiment)
    }

    /// The name, else `experiment`.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| "experiment".into())
    }

    pub fn output_dir(&self) -> PathBuf {
        self.output_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("ab").join(self.name()))
    }

    /// `budget.time-limit`, parsed; an error when it is not a duration.
    pub fn time_limit(&self) -> Result<Option<Duration>, AbError> {
        self.budget
            .time_limit
            .as_deref()
            .map(|t| {
                humantime::parse_duration(t).map_err(|source| AbError::TimeLimit {
                    value: t.to_string(),
                    source,
                })
            })
            .transpose()
    }

    /// What the experiment is, without how it is run (`max-parallel`, `backend`, `[cell]`):
    /// two files with the same identity are the same experiment, which an output directory
    /// holds at most one of.
    pub fn identity(&self) -> Experiment {
        Experiment {
            max_parallel: None,
            backend: None,
            cell: CellResources::default(),
            ..self.clone()
        }
    }

    /// Where cells run (`local` unless the experiment or a flag says otherwise).
    pub fn backend(&self) -> &str {
        self.backend
            .as_deref()
            .unwrap_or(crate::jobs::service::LOCAL)
    }

    /// The time limit of one (arm, seed) cluster job.
    pub fn cell_time(&self) -> Result<Duration, AbError> {
        match &self.cell.time {
            Some(t) => humantime::parse_duration(t).map_err(|source| AbError::CellTime {
                value: t.clone(),
                source,
            }),
            None => {
                let run = self
                    .time_limit()?
                    .unwrap_or(crate::run::execute::DEFAULT_TIME_LIMIT);
                let competitions = u32::try_from(self.competitions.len()).unwrap_or(u32::MAX);
                run.checked_add(CELL_OVERHEAD)
                    .and_then(|per| per.checked_mul(competitions))
                    .ok_or(AbError::CellTimeOverflow)
            }
        }
    }

    /// The checks a run would otherwise fail late on, in this order: the arms, the
    /// competitions, the seeds, `max-parallel`, the durations, the backend.
    pub fn check(&self) -> Result<(), AbError> {
        self.check_arms()?;
        if self.competitions.is_empty() {
            return Err(AbError::NoCompetitions);
        }
        if let Some(c) = self.competitions.iter().find(|c| !valid_name(c)) {
            return Err(AbError::CompetitionId(c.clone()));
        }
        self.check_seeds()?;
        if self.max_parallel == Some(0) {
            return Err(AbError::NoParallelism);
        }
        self.time_limit()?;
        self.cell_time()?;
        if !crate::jobs::backends::known().contains(&self.backend()) {
            return Err(AbError::UnknownBackend(self.backend().to_string()));
        }
        Ok(())
    }

    /// At least two arms, each validly and differently named.
    fn check_arms(&self) -> Result<(), AbError> {
        if self.arms.len() < 2 {
            return Err(AbError::TooFewArms(self.arms.len()));
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if !valid_name(&arm.name) {
                return Err(AbError::ArmName {
                    index: i,
                    name: arm.name.clone(),
                });
            }
            if self.arms[..i].iter().any(|a| a.name == arm.name) {
                return Err(AbError::DuplicateArm(arm.name.clone()));
            }
        }
        Ok(())
    }

    /// At least one seed, none repeated.
    fn check_seeds(&self) -> Result<(), AbError> {
        if self.seeds.is_empty() {
            return Err(AbError::NoSeeds);
        }
        let mut seeds = self.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.len() != self.seeds.len() {
            return Err(AbError::RepeatedSeed);
        }
        Ok(())
    }
}

/// An arm or competition name: 1–64 ASCII letters, digits, `-` or `_` (it names directories).
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const GOOD: &str = "name = 'x'\ncompetitions = ['a']\nseeds = [1, 2]\n[budget]\ntime-limit = '2m'\nmax-steps = 3\n[[arms]]\nname = 'base'\npolicy = 'top-k'\n[[arms]]\nname = 'hcc'\npolicy = 'hcc'\nconfig = { k = 1 }\n";

    #[test]
    fn a_good_experiment_loads_with_paths_beside_it() {
        let (dir, path) = write(GOOD);
        let e = Experiment::load(&path).unwrap();
        assert_eq!(e.output_dir(), dir.path().join("ab/x"));
        assert_eq!(e.time_limit().unwrap(), Some(Duration::from_secs(120)));
        assert_eq!(
            e.arms[1].config.as_ref().unwrap()["k"].as_integer(),
            Some(1)
        );
    }

    #[test]
    fn bad_experiments_name_the_problem() {
        for (text, expected) in [
            (
                GOOD.replace(
                    "[[arms]]\nname = 'hcc'\npolicy = 'hcc'\nconfig = { k = 1 }\n",
                    "",
                ),
                "at least two",
            ),
            (
                GOOD.replace("name = 'hcc'", "name = 'base'"),
                "two arms are named",
            ),
            (
                GOOD.replace("name = 'hcc'", "name = '../x'"),
                "letters, digits",
            ),
            (
                GOOD.replace("seeds = [1, 2]", "seeds = [1, 1]"),
                "repeats a seed",
            ),
            (
                GOOD.replace("competitions = ['a']", "competitions = []"),
                "is empty",
            ),
            (GOOD.replace("'2m'", "'soon'"), "not a duration"),
            (GOOD.replace("max-steps", "max-stepz"), "unknown field"),
            (
                format!("backend = 'k8s'\n{GOOD}"),
                "use one of local, slurm, ray",
            ),
            (
                GOOD.replace("[budget]", "[cell]\ntime = 'long'\n[budget]"),
                "cell.time",
            ),
        ] {
            let (_dir, path) = write(&text);
            let err = Experiment::load(&path).unwrap_err();
            let err = err.to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
