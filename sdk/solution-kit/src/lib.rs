//! What code-writing strategies (`aide`, `ml-master`) share:
//!
//! - [`prompts`]: the task text, the rules every solution follows, and the draft, debug and
//!   improve prompts;
//! - [`split_reply`]: a model's plan and code from its reply;
//! - [`execute`]: run a solution as a sandboxed job and collect its metric and submission;
//! - [`search`]: ML-Master's search tree (capacity, UCT, stop-rule bookkeeping, rewards);
//! - [`review`]: ML-Master's reviewer request and the parsing of its verdict.

pub mod prompts;
pub mod review;
pub mod search;

use sophon_sdk::jobs::{self, JobResult, JobSpec, JobState};

/// The line a solution prints its validation score on.
pub const METRIC_PREFIX: &str = "VALIDATION_METRIC:";

/// The last `max` bytes of `text`, cut at a character boundary (marked with `…`).
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// The plan (the text before the code) and the first fenced code block (```python, else
/// ```); `None` when there is no non-empty block.
pub fn split_reply(reply: &str) -> (String, Option<String>) {
    let open = reply
        .find("```python")
        .map(|i| (i, "```python".len()))
        .or_else(|| reply.find("```").map(|i| (i, 3)));
    let Some((start, skip)) = open else {
        return (reply.trim().to_string(), None);
    };
    let body = &reply[start + skip..];
    let body = body.strip_prefix('\n').unwrap_or(body);
    let code = match body.find("```") {
        Some(end) => &body[..end],
        None => body,
    };
    (
        reply[..start].trim().to_string(),
        Some(code.trim_end().to_string()).filter(|c| !c.trim().is_empty()),
    )
}

/// Resources of a solution job.
#[derive(Clone, Copy, Debug)]
pub struct JobLimits {
    pub cpus: u32,
    pub memory_mb: u64,
    pub timeout_ms: u64,
}

/// What running a solution produced.
pub struct Execution {
    pub result: JobResult,
    /// The last `VALIDATION_METRIC:` the script printed.
    pub metric: Option<f64>,
    /// The `submission.csv` it wrote, as an artifact id.
    pub submission: Option<String>,
    /// Its output for prompts and reports: stdout's tail, or why it failed.
    pub output: String,
    /// Its wall time.
    pub seconds: f64,
}

/// The job that runs `code` as `main.py`, with the task's public data at `/data`, collecting
/// `submission.csv`.
pub fn spec(id: &str, code: &str, limits: JobLimits) -> JobSpec {
    JobSpec::new(id, &["python", "main.py"])
        .file("main.py", code.to_string())
        .mount_task_data("/data")
        .cpus(limits.cpus)
        .memory_mb(limits.memory_mb)
        .timeout_ms(limits.timeout_ms)
        .output("submission.csv")
}

/// Run `code` (see [`spec`]) in a job named `id` and wait for it.
pub fn execute(id: &str, code: &str, limits: JobLimits) -> Result<Execution, String> {
    let result = jobs::run(&spec(id, code, limits)).map_err(|e| format!("submitting {id}: {e}"))?;
    Ok(collect(result))
}

/// Ask the task adapter about `submission`: `None` when it is valid, else the sentence to add
/// to the solution's output (why it is invalid, or why it could not be checked).
pub fn validation_problem(submission: &str) -> Option<String> {
    match sophon_sdk::task::validate(submission) {
        Ok(check) if check.valid => None,
        Ok(check) => Some(format!("the submission is invalid: {}", check.message)),
        Err(e) => Some(format!("the submission could not be validated: {e}")),
    }
}

/// [`Execution`] from a finished job (for strategies that run jobs concurrently).
pub fn collect(result: JobResult) -> Execution {
    let metric = result
        .stdout_lines_with(METRIC_PREFIX)
        .last()
        .and_then(|m| m.parse::<f64>().ok())
        .filter(|m| m.is_finite());
    let submission = result.artifact("submission.csv");
    let stdout = tail(
        &format!("{}{}", result.stdout.head, result.stdout.tail),
        2000,
    );
    let output = match (&submission, metric) {
        _ if result.state != JobState::Succeeded => result.failure(30),
        (None, _) => format!("{stdout}\nthe script wrote no submission.csv"),
        (Some(_), None) => {
            format!("{stdout}\nthe script printed no `{METRIC_PREFIX} <number>` line")
        }
        (Some(_), Some(_)) => stdout,
    };
    Execution {
        seconds: result.wall_ms as f64 / 1000.0,
        result,
        metric,
        submission,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_split_into_plan_and_code() {
        let (plan, code) = split_reply("Use a forest.\n```python\nprint(1)\n```\nDone.");
        assert_eq!(plan, "Use a forest.");
        assert_eq!(code.as_deref(), Some("print(1)"));
        assert_eq!(split_reply("```\nx = 1\n```").1.as_deref(), Some("x = 1"));
        assert_eq!(split_reply("no code here").1, None);
        assert_eq!(split_reply("```python\n```").1, None);
        // An unclosed block is taken to the end.
        assert_eq!(
            split_reply("```python\nx = 2\n").1.as_deref(),
            Some("x = 2")
        );
    }

    #[test]
    fn tails_cut_at_character_boundaries() {
        assert_eq!(tail("short", 10), "short");
        assert_eq!(tail("ééé", 3), "…é");
    }
}
