//! A task adapter that reports what its sandboxed filesystem lets it do.

use sophon_sdk::task::Metric;
use sophon_sdk::{Direction, GradeResult, TaskAdapter, TaskInfo, TaskRequest, Validation};

struct Probe;

fn attempt<T>(what: &str, result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => format!("{what}: GOT"),
        Err(e) => format!("{what}: denied ({})", e.kind()),
    }
}

impl TaskAdapter for Probe {
    fn describe(request: TaskRequest) -> Result<TaskInfo, String> {
        let report = [
            attempt("read public", std::fs::read("/data/public/train.csv")),
            attempt("read private", std::fs::read("/data/private/answers.csv")),
            attempt(
                "write public",
                std::fs::write("/data/public/train.csv", b"tampered"),
            ),
            attempt(
                "create in public",
                std::fs::write("/data/public/new.csv", b"x"),
            ),
            attempt(
                "escape with ..",
                std::fs::read("/data/public/../../../etc/passwd"),
            ),
            attempt("follow symlink", std::fs::read("/data/public/link")),
        ];
        let public_files = std::fs::read_dir("/data/public")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(TaskInfo {
            competition_id: request.competition_id,
            title: "probe".into(),
            description: report.join("\n"),
            metric: Metric {
                name: "accuracy".into(),
                direction: Direction::Maximize,
                description: String::new(),
            },
            submission_format: String::new(),
            data_preview: String::new(),
            public_files,
            sample_submission: None,
        })
    }

    fn validate(_request: TaskRequest, submission: String) -> Result<Validation, String> {
        let text =
            std::fs::read_to_string(&submission).map_err(|e| format!("{submission}: {e}"))?;
        Ok(Validation {
            valid: text.starts_with("id,"),
            message: format!("{} lines", text.lines().count()),
        })
    }

    fn grade(_request: TaskRequest, submission: String) -> Result<GradeResult, String> {
        let answers =
            std::fs::read_to_string("/data/private/answers.csv").map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&submission).map_err(|e| e.to_string())?;
        let score = if text == answers { 1.0 } else { 0.0 };
        // What the adapter can see beside the submission.
        let mut visible: Vec<String> = std::fs::read_dir("/submission")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        visible.sort();
        Ok(GradeResult {
            score: Some(score),
            valid: true,
            message: format!("visible: {}", visible.join(",")),
            direction: Direction::Maximize,
        })
    }
}

sophon_sdk::export_task_adapter!(Probe);
