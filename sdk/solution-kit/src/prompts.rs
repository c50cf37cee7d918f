//! The prompts of code-writing strategies, after AIDE and ML-Master: the task (description and
//! data preview) once, the rules of a solution (where the data is, the submission format, the
//! metric line, the job's real limits), and what each operator is told.
//!
//! Invariants every prompt keeps (checked on the real strategies by `tests/all/agent_run.rs`,
//! `every_prompt_says_the_task_once_within_budget_with_limits_and_node_ids`): the
//! task text appears once — either [`task_text`] or an HCC context that already holds it, never
//! both; earlier solutions are named by node id and title, with their outcome and run time; the
//! job's wall-time, CPU and memory limits are stated.

use crate::{JobLimits, METRIC_PREFIX};
use sophon_sdk::{Direction, TaskInfo};

pub const SYSTEM: &str = "You are an expert machine-learning engineer competing in a Kaggle \
competition. Begin your reply with one line `Title: <a few words naming your idea>`, then a \
short plan in plain text, then one complete Python script in a ```python code block.";

/// Longest task description and data preview quoted, each (head and tail kept).
const TASK_BYTES: usize = 6000;
/// Longest title kept.
const TITLE_CHARS: usize = 80;

/// What every prompt is built from.
pub struct Brief<'a> {
    pub task: &'a TaskInfo,
    /// The limits the solution's job will run under, stated in the rules.
    pub limits: JobLimits,
    /// An HCC context that already holds the task (description and data preview) and the
    /// run's memory: it opens the prompt in place of [`task_text`], so the task is said once.
    pub context: Option<&'a str>,
}

impl Brief<'_> {
    fn opening(&self) -> String {
        match self.context {
            Some(context) => format!("{}\n", context.trim_end()),
            None => task_text(self.task),
        }
    }
}

/// A solution as prompts show it.
#[derive(Clone, Copy)]
pub struct Shown<'a> {
    pub id: &'a str,
    pub plan: &'a str,
    pub code: &'a str,
    pub output: &'a str,
    pub metric: Option<f64>,
    pub seconds: Option<f64>,
}

impl Shown<'_> {
    fn header(&self) -> String {
        let mut facts = Vec::new();
        if let Some(m) = self.metric {
            facts.push(format!("validation {m:.5}"));
        }
        if let Some(s) = self.seconds {
            facts.push(format!("ran {}", duration(s)));
        }
        let facts = match facts.is_empty() {
            true => String::new(),
            false => format!(" ({})", facts.join(", ")),
        };
        format!("{} \"{}\"{facts}", self.id, title(self.plan))
    }

    fn block(&self, output_bytes: usize) -> String {
        format!(
            "### {}\n```python\n{}\n```\nIts output:\n```\n{}\n```\n",
            self.header(),
            self.code.trim_end(),
            crate::tail(self.output.trim_end(), output_bytes)
        )
    }
}

/// An earlier attempt as later prompts list it.
pub struct Attempt {
    pub id: String,
    pub title: String,
    /// e.g. `validation 0.81000, ran 42 s` or `failed after 3 s`.
    pub outcome: String,
}

impl Attempt {
    /// Node `id` with `plan`, buggy or scoring `metric`, that ran `seconds`.
    pub fn new(
        id: &str,
        plan: &str,
        buggy: bool,
        metric: Option<f64>,
        seconds: Option<f64>,
    ) -> Attempt {
        let ran = seconds.map_or(String::new(), |s| format!(", ran {}", duration(s)));
        Attempt {
            id: id.to_string(),
            title: title(plan),
            outcome: match (buggy, metric) {
                (false, Some(m)) => format!("validation {m:.5}{ran}"),
                _ => format!("failed{ran}"),
            },
        }
    }
}

/// Attempts one per line: `- node-3 "title": outcome`.
pub fn list(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("- {} \"{}\": {}", a.id, a.title, a.outcome))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `42 s`, `7.5 min`.
pub fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.0} s"),
        s => format!("{:.1} min", s / 60.0),
    }
}

/// The model's name for its idea: the `Title:` line of its reply, else its first line with a
/// leading `Plan:`-like label or markdown marks removed (the next line when nothing is left).
/// At most [`TITLE_CHARS`] characters; `untitled` when the plan is empty.
pub fn title(plan: &str) -> String {
    let clean = |line: &str| -> String {
        let line = line.trim().trim_start_matches(['#', '*', '-', '>', ' ']);
        let line = line.trim_end_matches(['*', ' ']);
        let lowered = line.to_ascii_lowercase();
        let mut rest = line;
        for label in ["title:", "plan:", "idea:", "approach:", "summary:"] {
            if lowered.starts_with(label) {
                rest = line[label.len()..].trim_start_matches(['*', ' ']);
                break;
            }
        }
        rest.trim().to_string()
    };
    let lines: Vec<&str> = plan.lines().filter(|l| !l.trim().is_empty()).collect();
    let chosen = lines
        .iter()
        .find(|l| {
            l.trim_start_matches(['#', '*', ' '])
                .to_ascii_lowercase()
                .starts_with("title:")
        })
        .map(|l| clean(l))
        .filter(|t| !t.is_empty())
        .or_else(|| lines.iter().map(|l| clean(l)).find(|t| !t.is_empty()))
        .unwrap_or_else(|| "untitled".to_string());
    match chosen.char_indices().nth(TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &chosen[..cut]),
        None => chosen,
    }
}

/// `text` within `max` bytes, its head and tail kept and cut at line ends (words are never
/// split), with a marker saying how much was left out.
pub fn head_and_tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let half = max / 2;
    // Character boundaries at or below the head's end and at or above the tail's start.
    let head_limit = (0..=half)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let tail_limit = (text.len() - half..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let head_end = match text[..head_limit].rfind('\n') {
        Some(i) if i > 0 => i,
        _ => head_limit,
    };
    let tail_start = match text[tail_limit..].find('\n') {
        Some(i) if tail_limit + i + 1 < text.len() => tail_limit + i + 1,
        _ => tail_limit,
    };
    format!(
        "{}\n[… {} bytes left out …]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

/// What every solution must do, with the job's real limits.
pub fn rules(brief: &Brief) -> String {
    let task = brief.task;
    let direction = match task.metric.direction {
        Direction::Maximize => "higher is better",
        Direction::Minimize => "lower is better",
    };
    format!(
        "## Rules\n- The competition data is read-only in /data (the files listed under Data preview above).\n- Write the predictions for the test set to ./submission.csv in exactly this format:\n{}\n- Hold out part of the training data, compute the competition metric ({}, {direction}) on it, and print it as a line `{METRIC_PREFIX} <number>`.\n- The script runs with {}: budget for that (earlier solutions' run times are given with them).\n- numpy, pandas, scikit-learn, scipy and lightgbm are installed; there is no network.",
        crate::tail(&task.submission_format, 1500),
        task.metric.name,
        limits_text(&brief.limits),
    )
}

/// A job's limits as every prompt states them: `2 CPU cores, 8 GB of memory and no GPU, killed
/// after 2.0 min of wall time`.
pub fn limits_text(limits: &JobLimits) -> String {
    format!(
        "{} CPU core{}, {} of memory and no GPU, killed after {} of wall time",
        limits.cpus,
        if limits.cpus == 1 { "" } else { "s" },
        memory(limits.memory_mb),
        duration(limits.timeout_ms as f64 / 1000.0),
    )
}

fn memory(mb: u64) -> String {
    match mb {
        m if m >= 1024 && m % 1024 == 0 => format!("{} GB", m / 1024),
        m if m >= 1024 => format!("{:.1} GB", m as f64 / 1024.0),
        m => format!("{m} MB"),
    }
}

/// The task: its description and data preview, each within [`TASK_BYTES`].
pub fn task_text(task: &TaskInfo) -> String {
    format!("# Task\n{}", task_body(task))
}

/// [`task_text`] without its heading: what an HCC task event holds (the context adds the
/// heading).
pub fn task_body(task: &TaskInfo) -> String {
    format!(
        "{}\n\n# Data preview\n{}\n",
        head_and_tail(task.description.trim(), TASK_BYTES),
        head_and_tail(task.data_preview.trim(), TASK_BYTES)
    )
}

/// A new solution, distinct from the other drafts (the first one simple). `ask` is added
/// before the rules (a direction to follow, time left).
pub fn draft(brief: &Brief, others: &[Attempt], ask: &str) -> String {
    let memory = if others.is_empty() {
        "This is the first draft: keep it simple and make sure it runs.".to_string()
    } else {
        format!(
            "Drafts so far (propose something distinctly different):\n{}",
            list(others)
        )
    };
    format!(
        "{}\n# Instructions\nWrite a first solution.\n{memory}\n{ask}\n\n{}",
        brief.opening(),
        rules(brief)
    )
}

/// Fix a buggy solution, given what happened and any analysis of it.
pub fn debug(brief: &Brief, node: &Shown, analysis: &str, ask: &str) -> String {
    let analysis = if analysis.is_empty() {
        String::new()
    } else {
        format!("\n## Analysis\n{}\n", crate::tail(analysis, 1500))
    };
    format!(
        "{}\n# Instructions\nThe script below failed. Find the bug and return the whole fixed script.\n{ask}\n\n## The failed solution\n{}{analysis}\n{}",
        brief.opening(),
        node.block(3000),
        rules(brief)
    )
}

/// Improve a good solution. Without a `direction`, by one atomic change, told the changes
/// already tried on it; with one, by implementing the direction whole, given also the code of
/// the other solutions it builds on (`also`).
pub fn improve(
    brief: &Brief,
    node: &Shown,
    tried: &[Attempt],
    ask: &str,
    direction: Option<&str>,
    also: &[Shown],
) -> String {
    let tried = if tried.is_empty() {
        String::new()
    } else {
        format!("Changes already tried on it:\n{}\n", list(tried))
    };
    let instruction = match direction {
        None => format!(
            "Improve solution {} with one atomic change (features, model, or hyper-parameters), then return the whole script.",
            node.id
        ),
        Some(direction) => format!(
            "Implement this direction on top of solution {} — all of its parts, keeping what already works — then return the whole script.\nDirection: {direction}",
            node.id
        ),
    };
    let others = match also.is_empty() {
        true => String::new(),
        false => format!(
            "\n## Other solutions the direction builds on\n{}",
            also.iter()
                .map(|s| s.block(800))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    format!(
        "{}\n# Instructions\n{instruction}\n{tried}{ask}\n\n## The solution to improve\n{}{others}\n{}",
        brief.opening(),
        node.block(2000),
        rules(brief)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_models_name_for_its_idea() {
        assert_eq!(
            title("Title: LightGBM with counts\nPlan: ..."),
            "LightGBM with counts"
        );
        assert_eq!(
            title("Plan:\nUse a forest on the raw features."),
            "Use a forest on the raw features."
        );
        assert_eq!(title("**Plan:** stack two models"), "stack two models");
        assert_eq!(title("## Approach\nx"), "Approach");
        assert_eq!(title("   \n"), "untitled");
        assert_eq!(title(&"a".repeat(200)).chars().count(), TITLE_CHARS + 1);
    }

    #[test]
    fn long_text_keeps_head_and_tail_whole_lines() {
        let text: String = (0..400).map(|i| format!("line number {i}\n")).collect();
        let cut = head_and_tail(&text, 600);
        assert!(cut.starts_with("line number 0\n"));
        assert!(cut.ends_with("line number 399\n"));
        assert!(cut.contains("bytes left out"));
        assert!(
            cut.lines()
                .all(|l| l.starts_with("line number ") || l.starts_with("[…")),
            "{cut}"
        );
        assert_eq!(head_and_tail("short", 600), "short");
        // Multi-byte characters at both cuts, no line ends: cut at character boundaries.
        let wide = "é".repeat(1000);
        let cut = head_and_tail(&wide, 601);
        assert!(
            cut.starts_with("éé") && cut.ends_with("éé") && cut.len() < 700,
            "{cut}"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(42.2), "42 s");
        assert_eq!(duration(900.0), "15.0 min");
        assert_eq!(memory(4096), "4 GB");
        assert_eq!(memory(1536), "1.5 GB");
        assert_eq!(memory(512), "512 MB");
    }
}
