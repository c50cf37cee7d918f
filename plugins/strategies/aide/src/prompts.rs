//! AIDE's prompts and reply parsing.

use crate::Node;
use sophon_sdk::{Direction, TaskInfo};

pub const SYSTEM: &str = "You are an expert machine-learning engineer competing in a Kaggle \
competition. Answer with a short plan in plain text, then one complete Python script in a \
```python code block.";

/// The instructions every prompt ends with: where the data is, what the script must do.
fn rules(task: &TaskInfo) -> String {
    let direction = match task.metric.direction {
        Direction::Maximize => "higher is better",
        Direction::Minimize => "lower is better",
    };
    format!(
        "## Rules\n- The competition data is read-only in /data (files: {}).\n- Write the predictions for the test set to ./submission.csv in exactly this format:\n{}\n- Hold out part of the training data, compute the competition metric ({}, {direction}) on it, and print it as a line `VALIDATION_METRIC: <number>`.\n- numpy, pandas, scikit-learn, scipy and lightgbm are installed; there is no network. Keep the run under a few minutes.",
        task.public_files.join(", "),
        tail(&task.submission_format, 1500),
        task.metric.name
    )
}

fn task_text(task: &TaskInfo) -> String {
    format!(
        "# Task\n{}\n\n# Data\n{}\n",
        tail(&task.description, 6000),
        tail(&task.data_preview, 6000)
    )
}

/// A new solution, distinct from the drafts so far (the first one simple).
pub fn draft(task: &TaskInfo, nodes: &[Node]) -> String {
    let others: Vec<String> = nodes
        .iter()
        .filter(|n| n.parent.is_none())
        .map(|n| format!("- {} → {}", first_line(&n.plan), outcome(n)))
        .collect();
    let memory = if others.is_empty() {
        "This is the first draft: keep it simple and make sure it runs.".to_string()
    } else {
        format!(
            "Drafts so far (propose something distinctly different):\n{}",
            others.join("\n")
        )
    };
    format!(
        "{}\n# Instructions\nWrite a first solution.\n{memory}\n\n{}",
        task_text(task),
        rules(task)
    )
}

/// Fix a buggy node.
pub fn debug(task: &TaskInfo, node: &Node) -> String {
    format!(
        "{}\n# Instructions\nThe script below failed. Find the bug and return the whole fixed script.\n\n## Script\n```python\n{}\n```\n\n## What happened\n{}\n\n{}",
        task_text(task),
        node.code,
        tail(&node.output, 3000),
        rules(task)
    )
}

/// One atomic improvement of a good node.
pub fn improve(task: &TaskInfo, nodes: &[Node], i: usize) -> String {
    let node = &nodes[i];
    let siblings: Vec<String> = nodes
        .iter()
        .filter(|n| n.parent == Some(i))
        .map(|n| format!("- {} → {}", first_line(&n.plan), outcome(n)))
        .collect();
    format!(
        "{}\n# Instructions\nImprove this solution with one atomic change (features, model, or hyper-parameters), then return the whole script.\n{}\n\n## Script (validation {})\n```python\n{}\n```\n\n## Its output\n{}\n\n{}",
        task_text(task),
        if siblings.is_empty() {
            String::new()
        } else {
            format!("Changes already tried on it:\n{}", siblings.join("\n"))
        },
        node.metric.map_or("–".into(), |m| format!("{m:.5}")),
        node.code,
        tail(&node.output, 2000),
        rules(task)
    )
}

fn outcome(node: &Node) -> String {
    match (node.buggy, node.metric) {
        (false, Some(m)) => format!("validation {m:.5}"),
        _ => "failed".to_string(),
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    match line.char_indices().nth(200) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
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

/// The plan (text before the code) and the first fenced code block (```python, else ```).
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
