//! What promotion policies (`hcc`, `top-k`) share:
//!
//! - [`describe`]: a compact task descriptor (modality, task type, metric and direction, data
//!   size measured and as an order of magnitude, the competition's name) from the adapter's task info,
//!   without a model, so the same task always gets the same descriptor (wisdom is stored and
//!   retrieved under it);
//! - [`digest`]: a phase's raw events folded into one outcome per search node (plan, metric,
//!   the error that ended it), ranked by metric in the task's direction;
//! - [`best_approaches`]: the wisdom a run's measured results alone support;
//! - [`lower_is_better`]: the direction a descriptor's metric states.

use sophon_sdk::hcc::{EventKind, StoredEvent, TaskDescriptor, WisdomEntry};
use sophon_sdk::{Direction, RunTrace, TaskInfo};

/// Longest descriptor summary, in bytes.
const SUMMARY_BYTES: usize = 160;

/// The first `max` bytes of `text` at a character boundary, with `…` when cut.
pub fn head(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The descriptor of a task: modality from the public files' kinds, task type from the metric
/// (and the description), `"<metric> (maximize|minimize)"`, the data's size as the adapter's
/// preview reports it, and the description's first sentences.
pub fn describe(task: &TaskInfo) -> TaskDescriptor {
    let direction = match task.metric.direction {
        Direction::Maximize => "maximize",
        Direction::Minimize => "minimize",
    };
    TaskDescriptor {
        modality: modality(&task.public_files, &task.data_preview).into(),
        task_type: task_type(&task.metric.name, &task.description).into(),
        metric: format!("{} ({direction})", task.metric.name),
        data_size: data_size(task),
        summary: summary(&task.title),
    }
}

/// `true` when the descriptor's metric says `(minimize)`.
pub fn lower_is_better(descriptor: &TaskDescriptor) -> bool {
    descriptor.metric.ends_with("(minimize)")
}

fn modality(files: &[String], preview: &str) -> &'static str {
    let count = |exts: &[&str]| {
        files
            .iter()
            .filter(|f| {
                let f = f.to_ascii_lowercase();
                exts.iter().any(|e| f.ends_with(e))
            })
            .count()
    };
    let images = count(&[".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm", ".bmp"]);
    let audio = count(&[".wav", ".mp3", ".flac", ".ogg", ".aif"]);
    let tables = count(&[".csv", ".parquet", ".tsv", ".json", ".jsonl"]);
    if images > 0 && images >= audio {
        if tables > 0 && images < 3 {
            "multimodal"
        } else {
            "image"
        }
    } else if audio > 0 {
        "audio"
    } else if long_text_columns(preview) {
        "text"
    } else {
        "tabular"
    }
}

/// Whether the preview shows a text column of prose: a measured mean of 6 words or more
/// (`mean 312 chars / 54.0 words`).
fn long_text_columns(preview: &str) -> bool {
    preview.lines().any(|line| {
        line.contains(": text")
            && line
                .split_once(" chars / ")
                .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
                .is_some_and(|words| words >= 6.0)
    })
}

fn task_type(metric: &str, description: &str) -> &'static str {
    let m = metric.to_ascii_lowercase();
    let d = description.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["dice", "iou", "hausdorff", "f0.5"]) {
        "segmentation"
    } else if has(&["average-precision", "map-at-iou", "mean-average-precision"])
        && d.contains("box")
    {
        "object-detection"
    } else if has(&["map@", "map-at", "ranking", "kendall", "lrap"]) {
        "ranking"
    } else if has(&["levenshtein", "jaccard", "edit"]) {
        "sequence-generation"
    } else if has(&[
        "rmse",
        "mae",
        "rmsle",
        "squared",
        "absolute",
        "mcrmse",
        "pearson",
        "spearman",
        "laplace",
        "haversine",
        "angular",
    ]) {
        "regression"
    } else if has(&["multi-label", "micro-f1", "column-wise", "multi-label"]) {
        "multi-label-classification"
    } else if has(&["multi-class", "kappa", "macro-f1", "top-1", "kl-divergence"]) {
        "multi-class-classification"
    } else if has(&[
        "auc", "log-loss", "logloss", "accuracy", "mcc", "matthews", "f1",
    ]) {
        if d.contains("multi-class") || d.contains("each class") {
            "multi-class-classification"
        } else {
            "classification"
        }
    } else {
        "unknown"
    }
}

/// The largest table's measured row count and its order of magnitude (`8.69k rows (order
/// 10k)`: the count for readers, the order for matching similar tasks), from the preview's
/// `<file>: <n> rows` lines; the number of files when no table shows.
fn data_size(task: &TaskInfo) -> String {
    let rows = task
        .data_preview
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(": ")?;
            let n = rest.split_whitespace().next()?.parse::<u64>().ok()?;
            rest.ends_with(" rows").then_some(n)
        })
        .max();
    match rows {
        Some(n) => format!("{} rows (order {})", measured(n), magnitude(n)),
        None => format!("{} files", task.public_files.len()),
    }
}

/// `8693` → `8.69k`, `17_600` → `17.6k`, `512` → `512`: three significant digits.
fn measured(rows: u64) -> String {
    let (value, unit) = match rows {
        r if r >= 1_000_000_000 => (r as f64 / 1e9, "G"),
        r if r >= 1_000_000 => (r as f64 / 1e6, "M"),
        r if r >= 1_000 => (r as f64 / 1e3, "k"),
        r => return r.to_string(),
    };
    let decimals = match value {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    format!("{value:.decimals$}{unit}")
}

/// `8693` → `10k`: the power of ten a count rounds up to.
fn magnitude(rows: u64) -> String {
    let mut bound = 10u64;
    while bound < rows && bound < 10_000_000_000 {
        bound *= 10;
    }
    match bound {
        b if b >= 1_000_000_000 => format!("{}G", b / 1_000_000_000),
        b if b >= 1_000_000 => format!("{}M", b / 1_000_000),
        b if b >= 1_000 => format!("{}k", b / 1_000),
        b => b.to_string(),
    }
}

/// The competition's name. Kept to the name on purpose: the offline (hashed word) embedder
/// matches descriptors on words, and a description's prose would drown the structured fields
/// (measured: two tabular tasks 0.24 apart in cosine with prose, 0.33 without, against 0.09–0.22
/// for a segmentation, a text and a regression task).
fn summary(title: &str) -> String {
    head(title.trim(), SUMMARY_BYTES)
}

/// The run's `k` best approaches with their measured metrics as `model-choice` wisdom: from its
/// knowledge units, else from the last phase's nodes.
pub fn best_approaches(trace: &RunTrace, k: usize) -> Vec<WisdomEntry> {
    let lower = lower_is_better(&trace.descriptor);
    let mut approaches: Vec<(f64, String)> = trace
        .knowledge
        .iter()
        .filter_map(|unit| Some((unit.best_metric?, unit.best_approach.clone()?)))
        .collect();
    if approaches.is_empty() {
        approaches = digest(&trace.final_events, lower)
            .into_iter()
            .filter_map(|n| Some((n.metric?, n.idea)))
            .collect();
    }
    approaches.sort_by(|a, b| {
        if lower {
            a.0.total_cmp(&b.0)
        } else {
            b.0.total_cmp(&a.0)
        }
    });
    let d = &trace.descriptor;
    approaches
        .into_iter()
        .take(k)
        .map(|(metric, idea)| WisdomEntry {
            category: "model-choice".into(),
            content: head(
                &format!("{idea} reached a validation {} of {metric:.5}", d.metric),
                1000,
            ),
            applies_when: format!("{} {} tasks", d.modality, d.task_type),
        })
        .collect()
}

/// What one search node came to in a phase.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOutcome {
    pub node: String,
    /// Its title: the `Title:` line strategies record with its code, else the first line of
    /// its plan or code (a `Title:`/`Plan:` label left out).
    pub idea: String,
    /// Its best measured metric (the log's numbers, never a model's).
    pub metric: Option<f64>,
    /// The last error line of a failed execution, if any.
    pub error: Option<String>,
    /// The end of its last execution's output (scores per target, run time, warnings), at
    /// most [`OUTPUT_TAIL_BYTES`].
    pub output: String,
}

/// Most bytes of a node's output a digest keeps.
pub const OUTPUT_TAIL_BYTES: usize = 600;

/// The last `max` bytes of `text` from a line start where one is near (a `…` marks the cut).
fn output_tail(text: &str, max: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_string();
    }
    let mut from = text.len() - max;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let from = text[from..].find('\n').map_or(from, |i| from + i + 1);
    format!("…{}", &text[from..])
}

/// The phase's events folded per node in order of first appearance, then ranked: nodes with a
/// metric best first (in the task's direction), then the rest in order.
pub fn digest(events: &[StoredEvent], lower_is_better: bool) -> Vec<NodeOutcome> {
    let mut nodes: Vec<NodeOutcome> = Vec::new();
    for e in events {
        let Some(node) = &e.event.node else { continue };
        let index = match nodes.iter().position(|n| &n.node == node) {
            Some(i) => i,
            None => {
                nodes.push(NodeOutcome {
                    node: node.clone(),
                    idea: String::new(),
                    metric: None,
                    error: None,
                    output: String::new(),
                });
                nodes.len() - 1
            }
        };
        let n = &mut nodes[index];
        let first_line = || {
            let line = e
                .event
                .content
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .trim_start_matches(['#', '/', '*'])
                .trim();
            // `get`, not indexing: the label's length may fall inside a multi-byte character.
            let label = ["Title:", "Plan:"].iter().find(|l| {
                line.get(..l.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(l))
            });
            let line = label.map_or(line, |l| line[l.len()..].trim());
            head(line, 200)
        };
        match e.event.kind {
            EventKind::Plan | EventKind::Code | EventKind::Insight if n.idea.is_empty() => {
                n.idea = first_line();
            }
            EventKind::Execution | EventKind::Review => {
                if let Some(m) = e.event.metric.filter(|m| m.is_finite()) {
                    let better = n
                        .metric
                        .is_none_or(|old| if lower_is_better { m < old } else { m > old });
                    if better {
                        n.metric = Some(m);
                    }
                }
                if matches!(e.event.kind, EventKind::Execution) {
                    n.output = output_tail(&e.event.content, OUTPUT_TAIL_BYTES);
                    if e.event.metric.is_none() {
                        n.error = error_line(&e.event.content);
                    }
                }
            }
            _ => {}
        }
    }
    let mut ranked: Vec<NodeOutcome> = nodes
        .iter()
        .filter(|n| n.metric.is_some())
        .cloned()
        .collect();
    ranked.sort_by(|a, b| {
        let (x, y) = (a.metric.unwrap(), b.metric.unwrap());
        if lower_is_better {
            x.total_cmp(&y)
        } else {
            y.total_cmp(&x)
        }
    });
    ranked.extend(nodes.into_iter().filter(|n| n.metric.is_none()));
    ranked
}

/// The last line that looks like an error in a job's output.
fn error_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find(|l| {
            l.contains("Error")
                || l.contains("error:")
                || l.contains("Traceback")
                || l.contains("failed")
        })
        .map(|l| head(l.trim(), 200))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sophon_sdk::hcc::Event;
    use sophon_sdk::task::Metric;

    fn task(files: &[&str], metric: &str, direction: Direction, preview: &str) -> TaskInfo {
        TaskInfo {
            competition_id: "c".into(),
            title: "Spaceship Titanic".into(),
            description: "# Title\n\nPredict which passengers were transported.\n\n## Data\nRows of passengers.".into(),
            metric: Metric { name: metric.into(), direction, description: String::new() },
            submission_format: String::new(),
            data_preview: preview.into(),
            public_files: files.iter().map(|f| f.to_string()).collect(),
            sample_submission: None,
        }
    }

    #[test]
    fn descriptors_from_files_metric_and_preview() {
        let d = describe(&task(
            &["train.csv", "test.csv"],
            "accuracy",
            Direction::Maximize,
            "sample_submission.csv: 4277 rows\ntrain.csv: 8693 rows\n  Name: text, 8473 distinct, 0 missing, mean 15 chars / 2.0 words, e.g. \"Maham Ofracculy\"",
        ));
        assert_eq!(d.modality, "tabular");
        assert_eq!(d.task_type, "classification");
        assert_eq!(d.metric, "accuracy (maximize)");
        assert_eq!(
            d.data_size, "8.69k rows (order 10k)",
            "the largest table, measured and as a magnitude"
        );
        assert_eq!(d.summary, "Spaceship Titanic");
        assert!(!lower_is_better(&d));
        let images = describe(&task(
            &["train/1.jpg", "train/2.jpg", "train/3.jpg", "train.csv"],
            "auc-roc",
            Direction::Maximize,
            "",
        ));
        assert_eq!(images.modality, "image");
        let text = describe(&task(
            &["train.csv"],
            "log-loss",
            Direction::Minimize,
            "comment_text: text, 17590 distinct, 0 missing, mean 412 chars / 71.3 words, e.g. \"the quick brown fox jumps over the lazy\"",
        ));
        assert_eq!(text.modality, "text");
        assert!(lower_is_better(&text));
        assert_eq!(
            describe(&task(
                &["a.csv"],
                "root-mean-squared-error",
                Direction::Minimize,
                ""
            ))
            .task_type,
            "regression"
        );
    }

    #[test]
    fn sizes_are_measured_and_rounded_up_to_a_power_of_ten() {
        assert_eq!(magnitude(7), "10");
        assert_eq!(magnitude(8693), "10k");
        assert_eq!(magnitude(10_000), "10k");
        assert_eq!(magnitude(1_371_980), "10M");
        assert_eq!(measured(7), "7");
        assert_eq!(measured(8693), "8.69k");
        assert_eq!(measured(17_600), "17.6k");
        assert_eq!(measured(1_371_980), "1.37M");
    }

    fn event(
        id: u64,
        kind: EventKind,
        node: &str,
        content: &str,
        metric: Option<f64>,
    ) -> StoredEvent {
        StoredEvent {
            id,
            phase: 1,
            time_ms: id,
            event: Event {
                kind,
                node: Some(node.into()),
                content: content.into(),
                metric,
            },
        }
    }

    #[test]
    fn digest_ranks_nodes_in_the_tasks_direction() {
        let events = vec![
            event(
                1,
                EventKind::Code,
                "a",
                "# gradient boosting\nimport lightgbm",
                None,
            ),
            event(2, EventKind::Execution, "a", "ok", Some(0.80)),
            event(3, EventKind::Code, "b", "# logistic regression", None),
            event(4, EventKind::Execution, "b", "ok", Some(0.75)),
            event(5, EventKind::Code, "c", "# a bug", None),
            event(
                6,
                EventKind::Execution,
                "c",
                "Traceback\nKeyError: 'Cabin'",
                None,
            ),
        ];
        let up = digest(&events, false);
        assert_eq!(
            up.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(up[0].idea, "gradient boosting", "comment markers dropped");
        assert_eq!(up[2].error.as_deref(), Some("KeyError: 'Cabin'"));
        let down = digest(&events, true);
        assert_eq!(down[0].node, "b");
    }

    #[test]
    fn titles_and_labels_are_read_whatever_the_characters() {
        let events = vec![
            event(
                1,
                EventKind::Code,
                "a",
                "Title: gradient boosting
import x",
                None,
            ),
            event(2, EventKind::Code, "b", "Plan: stack two models", None),
            // A label-length cut would fall inside `é` (bytes 5 and 6).
            event(3, EventKind::Code, "c", "abcdé: a plan in prose", None),
        ];
        let nodes = digest(&events, false);
        let ideas: Vec<&str> = nodes.iter().map(|n| n.idea.as_str()).collect();
        assert_eq!(
            ideas,
            [
                "gradient boosting",
                "stack two models",
                "abcdé: a plan in prose"
            ]
        );
    }
}
