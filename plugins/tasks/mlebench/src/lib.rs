//! The MLE-bench task adapter: any competition in MLE-bench's prepared layout, seen through
//! the sandbox as `/data/public` (what agents may read) and `/data/private` (the answers, for
//! this adapter only), with the submission under `/submission`.
//!
//! - `describe`: the competition's description, metric and direction, the submission format
//!   from the sample submission, and a bounded preview of the public data (file tree; CSV
//!   schemas with types, ranges, examples and missing values).
//! - `validate`: MLE-bench's checks, with a message saying what to fix — never a score.
//! - `grade`: the competition's metric, rounded as MLE-bench rounds.
//!
//! Options (JSON, from `sophon.toml`): a generic spec for competitions MLE-bench does not know,
//! `{"metric": "rmse", "id-column": "id", "target-columns": ["y"], "answers":
//! "private/test.csv", "sample-submission": "public/sample_submission.csv"}`.

mod preview;

use sophon_grading::competitions::GenericSpec;
use sophon_grading::metrics::{round5_numpy, round5_python};
use sophon_grading::{Columns, Failure, Limits, Recipe, Table};
use sophon_sdk::task::Metric;
use sophon_sdk::{Direction, GradeResult, TaskAdapter, TaskInfo, TaskRequest, Validation};
use std::path::{Path, PathBuf};

const PUBLIC: &str = "/data/public";
const PRIVATE: &str = "/data/private";
/// Longest description passed on, in bytes.
const MAX_DESCRIPTION_BYTES: usize = 32 * 1024;

struct MleBench;

/// The competition as this adapter grades it.
struct Spec {
    id: String,
    metric: String,
    lower_is_better: bool,
    id_column: String,
    targets: Vec<String>,
    answers: String,
    sample_submission: String,
    recipe: Recipe,
}

impl Spec {
    fn resolve(request: &TaskRequest) -> Result<Spec, String> {
        let options = request.options.trim();
        let generic = if options.is_empty() || options == "{}" {
            None
        } else {
            Some(
                sophon_sdk::json::from_str::<GenericSpec>(options).map_err(|e| {
                    format!("the adapter options are not a generic grading spec: {e}")
                })?,
            )
        };
        if let Some(g) = generic {
            let (recipe, lower) = g.recipe()?;
            return Ok(Spec {
                id: request.competition_id.clone(),
                metric: g.metric.clone(),
                lower_is_better: g.lower_is_better.unwrap_or(lower),
                id_column: g.id_column,
                targets: g.target_columns,
                answers: g.answers,
                sample_submission: g.sample_submission,
                recipe,
            });
        }
        let known = sophon_grading::find(&request.competition_id).ok_or_else(|| {
            format!(
                "`{}` is not an MLE-bench competition: configure its metric, id column and target \
                 columns under [tasks.mlebench.competitions.{}] in sophon.toml",
                request.competition_id, request.competition_id
            )
        })?;
        Ok(Spec {
            id: known.id.to_string(),
            metric: known.metric.to_string(),
            lower_is_better: known.lower_is_better,
            id_column: known.id_column.to_string(),
            targets: known.targets.iter().map(|t| t.to_string()).collect(),
            answers: known.answers.to_string(),
            sample_submission: known.sample_submission.to_string(),
            recipe: known.recipe,
        })
    }

    fn direction(&self) -> Direction {
        if self.lower_is_better {
            Direction::Minimize
        } else {
            Direction::Maximize
        }
    }

    /// Grade the submission at `path` (inside the sandbox).
    fn score(&self, path: &str) -> Result<(f64, usize), Failure> {
        if !path.to_ascii_lowercase().ends_with(".csv") {
            return Err(Failure::Invalid(format!(
                "{path} is not a .csv file: submit a CSV named like the sample submission"
            )));
        }
        let answers_path = in_sandbox(&self.answers);
        let answers = sophon_grading::read_answers(&answers_path).map_err(|e| {
            Failure::Error(format!(
                "cannot read the answers {}: {e}",
                answers_path.display()
            ))
        })?;
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let limits = Limits {
            // Generous for any honest submission (one as large as the sample submission, which
            // for H&M covers every customer while the answers hold a week's buyers), small
            // enough to refuse a hostile one early.
            max_bytes: (size(&answers_path) * 8)
                .max(size(&in_sandbox(&self.sample_submission)) * 2)
                .max(64 << 20),
            max_columns: (answers.names.len() * 4).max(1024),
        };
        let submission = Table::read_path_with(Path::new(path), limits)
            .map_err(|e| Failure::Invalid(format!("the submission cannot be read: {e}")))?;
        let targets: Vec<&str> = self.targets.iter().map(String::as_str).collect();
        let columns = Columns {
            id: &self.id_column,
            targets: &targets,
        };
        let score = sophon_grading::grade(self.recipe, columns, &submission, &answers)?;
        Ok((score, submission.rows))
    }

    /// MLE-bench's `round(score, 5)`: on a Python float for accuracy and scikit-learn's log
    /// loss, on a numpy float64 for the others.
    fn round(&self, score: f64) -> f64 {
        match self.recipe {
            // scikit-learn's accuracy and log loss return Python floats.
            Recipe::Accuracy
            | Recipe::TextAccuracy { .. }
            | Recipe::OneHotLogLoss { .. }
            | Recipe::BinaryLogLoss { .. }
            // Kuzushiji's grader returns float(f1).
            | Recipe::KuzushijiF1 => round5_python(score),
            _ => round5_numpy(score),
        }
    }
}

/// The competition's name: the description's first top-level heading unless it is a section
/// name (MLE-bench's descriptions mostly open with `# Overview`), else the id in words
/// (`spaceship-titanic` → `Spaceship Titanic`).
fn title(description: &str, id: &str) -> String {
    const SECTIONS: &[&str] = &[
        "overview",
        "description",
        "introduction",
        "competition description",
        "dataset description",
    ];
    description
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().trim_matches('*').trim())
        .filter(|t| !t.is_empty() && !SECTIONS.contains(&t.to_ascii_lowercase().as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            id.split(['-', '_'])
                .filter(|w| !w.is_empty())
                .map(|w| {
                    let mut chars = w.chars();
                    chars
                        .next()
                        .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
}

/// `private/x.csv` → `/data/private/x.csv`; `public/…` likewise.
fn in_sandbox(relative: &str) -> PathBuf {
    match relative.split_once('/') {
        Some(("private", rest)) => Path::new(PRIVATE).join(rest),
        Some(("public", rest)) => Path::new(PUBLIC).join(rest),
        _ => Path::new(PUBLIC).join(relative),
    }
}

impl TaskAdapter for MleBench {
    fn describe(request: TaskRequest) -> Result<TaskInfo, String> {
        let spec = Spec::resolve(&request)?;
        let description = std::fs::read_to_string(Path::new(PUBLIC).join("description.md"))
            .map(|d| preview::cut(&d, MAX_DESCRIPTION_BYTES))
            .unwrap_or_else(|_| format!("(no description.md in the public data of {})", spec.id));
        let title = title(&description, &spec.id);
        let sample = in_sandbox(&spec.sample_submission);
        let sample_name = sample
            .strip_prefix(PUBLIC)
            .ok()
            .map(|p| p.display().to_string());
        let submission_format = preview::submission_format(&sample, &spec.id_column, &spec.targets);
        let direction = spec.direction();
        let how = format!(
            "{} ({} is better), graded as MLE-bench grades it; the score is rounded to 5 decimals.",
            spec.metric,
            if spec.lower_is_better {
                "lower"
            } else {
                "higher"
            }
        );
        Ok(TaskInfo {
            competition_id: spec.id.clone(),
            title,
            description,
            metric: Metric {
                name: spec.metric.clone(),
                direction,
                description: how,
            },
            submission_format,
            data_preview: preview::data_preview(Path::new(PUBLIC)),
            public_files: preview::file_list(Path::new(PUBLIC)),
            sample_submission: sample_name.filter(|_| sample.exists()),
        })
    }

    fn validate(request: TaskRequest, submission: String) -> Result<Validation, String> {
        let spec = Spec::resolve(&request)?;
        Ok(match spec.score(&submission) {
            Ok((_, rows)) => Validation {
                valid: true,
                message: format!("valid: {rows} rows in the expected format"),
            },
            Err(f) => Validation {
                valid: false,
                message: f.message().to_string(),
            },
        })
    }

    fn grade(request: TaskRequest, submission: String) -> Result<GradeResult, String> {
        let spec = Spec::resolve(&request)?;
        let direction = spec.direction();
        Ok(match spec.score(&submission) {
            Ok((score, rows)) => GradeResult {
                score: Some(spec.round(score)),
                valid: true,
                message: format!("{} over {rows} rows", spec.metric),
                direction,
            },
            Err(f) => GradeResult {
                score: None,
                valid: false,
                message: f.message().to_string(),
                direction,
            },
        })
    }
}

sophon_sdk::export_task_adapter!(MleBench);
