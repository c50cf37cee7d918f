//! The prompts of code-writing strategies, after AIDE and ML-Master: the task (description and
//! data preview), the rules of a solution (where the data is, the submission format, the
//! metric line), and what each operator is told.

use crate::{METRIC_PREFIX, tail};
use sophon_sdk::{Direction, TaskInfo};

pub const SYSTEM: &str = "You are an expert machine-learning engineer competing in a Kaggle \
competition. Answer with a short plan in plain text, then one complete Python script in a \
```python code block.";

/// An earlier attempt as later prompts mention it.
pub struct Attempt {
    pub plan: String,
    /// e.g. `validation 0.81` or `failed`.
    pub outcome: String,
}

impl Attempt {
    /// An attempt with `plan` that was buggy, or scored `metric`.
    pub fn new(plan: &str, buggy: bool, metric: Option<f64>) -> Attempt {
        Attempt {
            plan: plan.to_string(),
            outcome: match (buggy, metric) {
                (false, Some(m)) => format!("validation {m:.5}"),
                _ => "failed".to_string(),
            },
        }
    }
}

fn list(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("- {} → {}", crate::first_line(&a.plan), a.outcome))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What every solution must do.
pub fn rules(task: &TaskInfo) -> String {
    let direction = match task.metric.direction {
        Direction::Maximize => "higher is better",
        Direction::Minimize => "lower is better",
    };
    format!(
        "## Rules\n- The competition data is read-only in /data (files: {}).\n- Write the predictions for the test set to ./submission.csv in exactly this format:\n{}\n- Hold out part of the training data, compute the competition metric ({}, {direction}) on it, and print it as a line `{METRIC_PREFIX} <number>`.\n- numpy, pandas, scikit-learn, scipy and lightgbm are installed; there is no network. Keep the run under a few minutes.",
        task.public_files.join(", "),
        tail(&task.submission_format, 1500),
        task.metric.name
    )
}

/// The task: its description and data preview.
pub fn task_text(task: &TaskInfo) -> String {
    format!(
        "# Task\n{}\n\n# Data\n{}\n",
        tail(&task.description, 6000),
        tail(&task.data_preview, 6000)
    )
}

/// A new solution, distinct from the other drafts (the first one simple). `context` is added
/// before the rules (e.g. time left, or memory).
pub fn draft(task: &TaskInfo, others: &[Attempt], context: &str) -> String {
    let memory = if others.is_empty() {
        "This is the first draft: keep it simple and make sure it runs.".to_string()
    } else {
        format!(
            "Drafts so far (propose something distinctly different):\n{}",
            list(others)
        )
    };
    format!(
        "{}\n# Instructions\nWrite a first solution.\n{memory}\n{context}\n\n{}",
        task_text(task),
        rules(task)
    )
}

/// Fix a buggy solution, given what happened and any analysis of it.
pub fn debug(task: &TaskInfo, code: &str, output: &str, analysis: &str, context: &str) -> String {
    let analysis = if analysis.is_empty() {
        String::new()
    } else {
        format!("\n## Analysis\n{}\n", tail(analysis, 1500))
    };
    format!(
        "{}\n# Instructions\nThe script below failed. Find the bug and return the whole fixed script.\n{context}\n\n## Script\n```python\n{code}\n```\n\n## What happened\n{}\n{analysis}\n{}",
        task_text(task),
        tail(output, 3000),
        rules(task)
    )
}

/// One atomic improvement of a good solution, told the changes already tried on it.
pub fn improve(
    task: &TaskInfo,
    code: &str,
    output: &str,
    metric: Option<f64>,
    tried: &[Attempt],
    context: &str,
) -> String {
    let tried = if tried.is_empty() {
        String::new()
    } else {
        format!("Changes already tried on it:\n{}\n", list(tried))
    };
    format!(
        "{}\n# Instructions\nImprove this solution with one atomic change (features, model, or hyper-parameters), then return the whole script.\n{tried}{context}\n\n## Script (validation {})\n```python\n{code}\n```\n\n## Its output\n{}\n\n{}",
        task_text(task),
        metric.map_or("–".into(), |m| format!("{m:.5}")),
        tail(output, 2000),
        rules(task)
    )
}
