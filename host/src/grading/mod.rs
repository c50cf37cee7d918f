//! Grading submissions exactly as MLE-bench does: the sandboxed task adapter computes the
//! score (it alone reads the private answers), the host decides whether a submission exists,
//! finds the leaderboard, awards medals and writes MLE-bench's grading report.
//!
//! - [`config`]: `[mlebench]` in `sophon.toml`;
//! - [`Grader`]: one adapter, many submissions;
//! - [`submissions`]: MLE-bench's JSONL input;
//! - [`task::GradedTask`]: the adapter as a run's `task` service.

pub mod config;
pub mod leaderboards;
pub mod submissions;
pub mod task;

use crate::builtin;
use crate::runtime::{
    AdapterFiles, HostServices, LoadedPlugin, PluginError, PluginGrants, Runtime,
    TaskAdapterInstance,
};
use crate::task::{Direction, TaskInfo, TaskRequest, Validation};
use sophon_grading::{CompetitionReport, GradingReport, Thresholds};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use config::MleBenchConfig;

/// Longest one grading call may take.
pub const GRADE_TIMEOUT: Duration = Duration::from_secs(600);

/// What stops grading before any submission is looked at.
#[derive(Debug, thiserror::Error)]
pub enum GradingError {
    #[error(
        "`{0}` is not an MLE-bench competition: see `sophon competitions list`, or configure it under \
         [mlebench.competitions.{0}] (metric, id-column, target-columns)"
    )]
    UnknownCompetition(String),
    #[error(
        "`{id}` is not prepared for grading: {problem}. Prepare it with MLE-bench \
         (`mlebench prepare -c {id}`) or point --data-dir at the directory holding <id>/prepared/"
    )]
    NotPrepared { id: String, problem: String },
    #[error("the grading adapter: {0}")]
    Adapter(#[from] PluginError),
}

/// A leaderboard file that could not be read into medal thresholds; the message is the
/// reader's.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LeaderboardError {
    pub path: PathBuf,
    pub message: String,
}

/// Why a submission could not be put before the adapter ([`stage`]).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// No private staging directory could be made.
    #[error("cannot stage the submission: {0}")]
    TempDir(#[source] std::io::Error),
    /// The submission cannot be hard-linked and is too large to copy.
    #[error("the submission is {size} bytes, over the {limit} byte limit")]
    TooLarge { size: u64, limit: u64 },
    /// The submission could not be copied.
    #[error("cannot read the submission: {0}")]
    Copy(#[source] std::io::Error),
}

/// Why a call on a submission gave no answer: it could not be staged, or the adapter failed.
#[derive(Debug, thiserror::Error)]
enum SubmissionCallError {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Adapter(#[from] PluginError),
}

/// One competition's prepared directories.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub public: PathBuf,
    pub private: PathBuf,
}

/// Grades submissions with one task adapter.
pub struct Grader {
    adapter: LoadedPlugin,
    config: MleBenchConfig,
    data_dir: PathBuf,
}

/// The task adapter that grades, as the operator configured it (`[mlebench] adapter` and its
/// `[plugins]` entry; `SophonConfig::grader` reads both).
#[derive(Clone, Debug)]
pub struct GradingAdapter {
    /// A path, or `builtin:<name>` (default: the embedded `mlebench` adapter).
    pub source: String,
    /// What the operator grants it (a grader needs `task.private-data`).
    pub grants: PluginGrants,
}

impl Grader {
    /// Load `adapter` on `runtime` for the competitions of `config`, prepared under
    /// `data_dir` (default: `config`'s).
    pub fn load(
        runtime: &Runtime,
        config: &MleBenchConfig,
        adapter: &GradingAdapter,
        data_dir: Option<PathBuf>,
    ) -> Result<Grader, GradingError> {
        let source = builtin::resolve(&adapter.source)?;
        let adapter = runtime.load(&source, &adapter.grants)?;
        Ok(Grader {
            adapter,
            config: config.clone(),
            data_dir: data_dir.unwrap_or_else(|| config.data_dir()),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether Sophon knows `id` (MLE-bench's table or the operator's config).
    pub fn knows(&self, id: &str) -> bool {
        sophon_grading::find(id).is_some() || self.config.competitions.contains_key(id)
    }

    /// The adapter request for `id`: the operator's generic spec, if any, as options.
    pub fn request(&self, id: &str) -> TaskRequest {
        let options = self
            .config
            .competitions
            .get(id)
            .map(|spec| serde_json::to_string(spec).expect("a spec serialises"))
            .unwrap_or_else(|| "{}".into());
        TaskRequest {
            competition_id: id.to_string(),
            options,
        }
    }

    /// Check `id` is known and prepared: `prepared/private` exists and is not empty, and the
    /// answers file is there (as MLE-bench checks before grading).
    pub fn prepared(&self, id: &str) -> Result<Prepared, GradingError> {
        if !self.knows(id) {
            return Err(GradingError::UnknownCompetition(id.to_string()));
        }
        let root = self.data_dir.join(id).join("prepared");
        let private = root.join("private");
        let not_prepared = |problem: String| GradingError::NotPrepared {
            id: id.to_string(),
            problem,
        };
        let empty = std::fs::read_dir(&private)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        if empty {
            return Err(not_prepared(format!(
                "{} is missing or empty",
                private.display()
            )));
        }
        let answers = match self.config.competitions.get(id) {
            Some(spec) => Some(spec.answers.clone()),
            None => sophon_grading::find(id).map(|c| c.answers.to_string()),
        };
        if let Some(answers) = answers
            && !root.join(&answers).is_file()
        {
            return Err(not_prepared(format!(
                "the answers file {} is missing",
                root.join(&answers).display()
            )));
        }
        Ok(Prepared {
            public: root.join("public"),
            private,
        })
    }

    /// The leaderboard thresholds of `id`, from the first `leaderboard.csv` found in:
    /// `[mlebench] leaderboard-dir/<id>/`, `<data-dir>/<id>/`, `<data-dir>/../competitions/<id>/`
    /// (the layout of a checkout that keeps data and leaderboards side by side); else the
    /// built-in ones of MLE-bench's competitions ([`leaderboards`]); `None` when neither knows.
    pub fn thresholds(&self, id: &str) -> Option<Result<Thresholds, LeaderboardError>> {
        match self.leaderboard_path(id) {
            Some(path) => {
                Some(Thresholds::read(&path).map_err(|message| LeaderboardError { path, message }))
            }
            None => leaderboards::builtin(id).map(Ok),
        }
    }

    pub fn leaderboard_path(&self, id: &str) -> Option<PathBuf> {
        let mut candidates = Vec::new();
        if let Some(dir) = &self.config.leaderboard_dir {
            candidates.push(dir.join(id).join("leaderboard.csv"));
        }
        candidates.push(self.data_dir.join(id).join("leaderboard.csv"));
        if let Some(parent) = self.data_dir.parent() {
            candidates.push(parent.join("competitions").join(id).join("leaderboard.csv"));
        }
        candidates.into_iter().find(|p| p.is_file())
    }

    /// The adapter's description of `id`: metric, submission format, data preview. The
    /// adapter sees only the public data for this.
    pub async fn describe(&self, id: &str, prepared: &Prepared) -> Result<TaskInfo, PluginError> {
        let files = AdapterFiles {
            public: Some(prepared.public.clone()),
            private: None,
            submission_dir: None,
        };
        let mut instance = self
            .adapter
            .task_adapter(HostServices::default(), &files)
            .await?;
        instance.describe(&self.request(id), GRADE_TIMEOUT).await
    }

    /// Grade one submission of `id` (already checked with [`Grader::prepared`]). Never fails
    /// for a bad submission or a failing adapter: the report says the submission is invalid
    /// and why.
    pub async fn grade(
        &self,
        id: &str,
        prepared: &Prepared,
        submission: &Path,
        shown_path: &str,
    ) -> CompetitionReport {
        let created_at = chrono::Local::now()
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string();
        let exists = submission.is_file()
            && submission
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let (thresholds, leaderboard_note) = match self.thresholds(id) {
            Some(Ok(t)) => (Some(t), None),
            Some(Err(e)) => (None, Some(format!("leaderboard unreadable: {e}"))),
            None => (
                None,
                Some(
                    "no leaderboard: not an MLE-bench competition and no leaderboard.csv found \
                     ([mlebench] leaderboard-dir): no medal thresholds"
                        .to_string(),
                ),
            ),
        };
        let (score, valid, mut message, direction) = if exists {
            self.score(id, prepared, submission).await
        } else {
            (
                None,
                false,
                "no submission: the path is not an existing .csv file".to_string(),
                None,
            )
        };
        if let Some(note) = leaderboard_note {
            message = format!("{message}; {note}");
        }
        let lower = direction.map_or_else(
            || sophon_grading::find(id).is_some_and(|c| c.lower_is_better),
            |d| d == Direction::Minimize,
        );
        CompetitionReport::new(
            id,
            shown_path,
            exists,
            score,
            valid,
            message,
            thresholds.as_ref(),
            lower,
            created_at,
        )
    }

    async fn score(
        &self,
        id: &str,
        prepared: &Prepared,
        submission: &Path,
    ) -> (Option<f64>, bool, String, Option<Direction>) {
        let outcome = self
            .with_submission(prepared, submission, async |instance, inside| {
                instance
                    .grade(&self.request(id), inside, GRADE_TIMEOUT)
                    .await
            })
            .await;
        match outcome {
            Ok(g) => (g.score, g.valid, g.message, Some(g.direction)),
            Err(e) => (
                None,
                false,
                format!("the submission could not be graded: {e}"),
                None,
            ),
        }
    }

    /// MLE-bench's validity check of one submission of `id`: never a score. A submission the
    /// adapter cannot read is invalid, with the reason.
    pub async fn validate(&self, id: &str, prepared: &Prepared, submission: &Path) -> Validation {
        let outcome = self
            .with_submission(prepared, submission, async |instance, inside| {
                instance
                    .validate(&self.request(id), inside, GRADE_TIMEOUT)
                    .await
            })
            .await;
        match outcome {
            Ok(validation) => validation,
            Err(e) => Validation {
                valid: false,
                message: format!("the submission could not be checked: {e}"),
            },
        }
    }

    /// Run `call` on a fresh adapter instance that sees the public and private data and, under
    /// `/submission`, the submission alone — never the directory around it. `Err` when the
    /// submission cannot be staged or the adapter fails.
    async fn with_submission<T>(
        &self,
        prepared: &Prepared,
        submission: &Path,
        call: impl AsyncFnOnce(&mut TaskAdapterInstance, &str) -> Result<T, PluginError>,
    ) -> Result<T, SubmissionCallError> {
        let staged = stage(submission)?;
        let files = AdapterFiles {
            public: Some(prepared.public.clone()),
            private: Some(prepared.private.clone()),
            submission_dir: Some(staged.path().to_path_buf()),
        };
        let inside = format!("/submission/{STAGED_NAME}");
        let mut instance = self
            .adapter
            .task_adapter(HostServices::default(), &files)
            .await?;
        Ok(call(&mut instance, &inside).await?)
    }
}

/// The submission's name inside the adapter's sandbox.
const STAGED_NAME: &str = "submission.csv";
/// Largest submission copied when it cannot be hard-linked into the staging directory.
const MAX_STAGED_COPY: u64 = 2 << 30;

/// A private directory holding only the submission (hard-linked, else copied), removed when
/// dropped.
fn stage(submission: &Path) -> Result<tempfile::TempDir, StageError> {
    let dir = tempfile::tempdir().map_err(StageError::TempDir)?;
    let target = dir.path().join(STAGED_NAME);
    if std::fs::hard_link(submission, &target).is_err() {
        let size = std::fs::metadata(submission).map_or(0, |m| m.len());
        if size > MAX_STAGED_COPY {
            return Err(StageError::TooLarge {
                size,
                limit: MAX_STAGED_COPY,
            });
        }
        std::fs::copy(submission, &target).map_err(StageError::Copy)?;
    }
    Ok(dir)
}

/// Write `report` as `<output-dir>/<UTC timestamp>_grading_report.json` (the directory is
/// created). Returns the file's path.
pub fn write_report(report: &GradingReport, output_dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(output_dir)?;
    let stamp = chrono::Utc::now().format("%Y-%m-%dT%H-%M-%S-GMT");
    let path = output_dir.join(format!("{stamp}_grading_report.json"));
    let text = serde_json::to_string_pretty(report).expect("a report serialises");
    std::fs::write(&path, text + "\n")?;
    Ok(path)
}
