//! `[mlebench]` in `sophon.toml`.
//!
//! ```toml
//! [mlebench]
//! data-dir = "/data/mle-bench"           # default: ~/.cache/mle-bench/data (MLE-bench's)
//! leaderboard-dir = "/data/leaderboards" # <id>/leaderboard.csv; default: see Grader
//! adapter = "builtin:mlebench"           # the task adapter that grades (a [plugins] name)
//!
//! [mlebench.competitions.my-competition] # a competition MLE-bench does not know
//! metric = "rmse"                        # accuracy | auc | log-loss | binary-log-loss | rmse
//! id-column = "id"
//! target-columns = ["y"]
//! answers = "private/test.csv"           # relative to <data-dir>/<id>/prepared/
//! sample-submission = "public/sample_submission.csv"
//! ```

use serde::Deserialize;
use sophon_grading::GenericSpec;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MleBenchConfig {
    pub data_dir: Option<PathBuf>,
    pub leaderboard_dir: Option<PathBuf>,
    /// The `[plugins]` entry of the grading adapter (default `mlebench`).
    pub adapter: Option<String>,
    #[serde(default)]
    pub competitions: BTreeMap<String, GenericSpec>,
}

impl MleBenchConfig {
    pub fn merged(self, other: MleBenchConfig) -> MleBenchConfig {
        let mut competitions = self.competitions;
        competitions.extend(other.competitions);
        MleBenchConfig {
            data_dir: other.data_dir.or(self.data_dir),
            leaderboard_dir: other.leaderboard_dir.or(self.leaderboard_dir),
            adapter: other.adapter.or(self.adapter),
            competitions,
        }
    }

    /// The prepared-data directory: the configured one, else MLE-bench's default.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("mle-bench")
                .join("data")
        })
    }

    pub fn adapter(&self) -> &str {
        self.adapter.as_deref().unwrap_or("mlebench")
    }
}
