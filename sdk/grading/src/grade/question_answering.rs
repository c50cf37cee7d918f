//! TensorFlow 2.0 Question Answering (GRADERS.md 3.2 #61 and 4.11): answers from Natural
//! Questions JSONL, scored as MLE-bench scores them — micro F1 over per-row 0/1 labels, which
//! is the accuracy of "answered" against "answered correctly or rightly left blank".

use super::{GradeOutcome, cell_text, error, invalid, require_columns};
use crate::table::{Column, ReadError, Table};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;

#[derive(Deserialize)]
struct Example {
    example_id: serde_json::Value,
    annotations: Vec<Annotation>,
}

#[derive(Deserialize)]
struct Annotation {
    long_answer: Span,
    #[serde(default)]
    short_answers: Vec<Span>,
    #[serde(default = "no_yes_no")]
    yes_no_answer: String,
}

fn no_yes_no() -> String {
    "NONE".into()
}

#[derive(Deserialize)]
struct Span {
    start_token: i64,
    end_token: i64,
}

/// Columns of the answers table built from the JSONL.
pub const NQ_ID: &str = "example_id";
/// `start:end` of the first annotation's long answer, missing when it has none.
pub const NQ_LONG: &str = "long_answer";
/// The first annotation's short answers as space-separated `start:end`, then `YES`/`NO`.
pub const NQ_SHORT: &str = "short_answers";

/// Read Natural Questions examples (one JSON object per line; the document text and other
/// fields are skipped while parsing, one line in memory at a time) into a table of the
/// example ids and their first annotation's valid answers.
pub fn read_nq_answers(input: impl BufRead) -> Result<Table, ReadError> {
    let (mut ids, mut long, mut short) = (Vec::new(), Vec::new(), Vec::new());
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| ReadError(format!("cannot read line {}: {e}", n + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let example: Example = serde_json::from_str(&line)
            .map_err(|e| ReadError(format!("line {} is not an NQ example: {e}", n + 1)))?;
        let annotation = example
            .annotations
            .first()
            .ok_or_else(|| ReadError(format!("line {} has no annotation", n + 1)))?;
        ids.push(Some(match example.example_id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }));
        let span = |s: &Span| format!("{}:{}", s.start_token, s.end_token);
        long.push(
            (annotation.long_answer.start_token != -1).then(|| span(&annotation.long_answer)),
        );
        let mut shorts: Vec<String> = annotation.short_answers.iter().map(span).collect();
        if annotation.yes_no_answer != "NONE" {
            shorts.push(annotation.yes_no_answer.clone());
        }
        short.push((!shorts.is_empty()).then(|| shorts.join(" ")));
    }
    Ok(Table {
        names: vec![NQ_ID.into(), NQ_LONG.into(), NQ_SHORT.into()],
        rows: ids.len(),
        columns: vec![Column::Text(ids), Column::Text(long), Column::Text(short)],
    })
}

/// A parsed prediction or valid answer.
#[derive(PartialEq, Eq, Hash, Clone, Debug)]
enum Answer {
    Span(i64, i64),
    Word(String),
}

/// Python's `int()` on a token: surrounding whitespace and a sign allowed.
fn python_int(token: &str) -> Option<i64> {
    let t = token.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// Row count twice the examples, both columns, the ids exactly `<id>_long` and `<id>_short`
/// for every example, once each, and every prediction `start:end`, `YES`, `NO` or empty
/// (invalid otherwise; a non-integer token is a null score).
pub(super) fn nq_accuracy(submission: &Table, answers: &Table) -> GradeOutcome {
    if submission.rows != 2 * answers.rows {
        return invalid(format!(
            "the submission has {} rows but {} are expected: `<id>_long` and `<id>_short` for \
             each of the {} test examples",
            submission.rows,
            2 * answers.rows,
            answers.rows
        ));
    }
    require_columns(
        submission,
        &["example_id", "PredictionString"],
        "submission",
    )?;
    let text = |table: &Table, name: &str, r: usize| {
        cell_text(table.column(name).unwrap(), r, Some("")).unwrap_or_default()
    };
    let mut valid: HashMap<String, Vec<Answer>> = HashMap::new();
    for r in 0..answers.rows {
        let id = text(answers, NQ_ID, r);
        let parse = |cell: String| -> Vec<Answer> {
            cell.split_whitespace()
                .map(|t| match t.split_once(':') {
                    Some((a, b)) => Answer::Span(a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
                    None => Answer::Word(t.to_string()),
                })
                .collect()
        };
        valid.insert(format!("{id}_long"), parse(text(answers, NQ_LONG, r)));
        valid.insert(format!("{id}_short"), parse(text(answers, NQ_SHORT, r)));
    }
    let ids: Vec<String> = (0..submission.rows)
        .map(|r| text(submission, "example_id", r))
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    let expected: HashSet<&String> = valid.keys().collect();
    if unique != expected {
        return invalid(
            "the `example_id` values must be exactly `<id>_long` and `<id>_short` for every test \
             example",
        );
    }
    if unique.len() != ids.len() {
        return invalid("an `example_id` appears twice: one row per `<id>_long` / `<id>_short`");
    }
    let mut correct = 0usize;
    for (r, id) in ids.iter().enumerate() {
        let raw = text(submission, "PredictionString", r);
        let prediction = raw.trim();
        let parsed = match prediction.split(':').collect::<Vec<_>>().as_slice() {
            [a, b] => {
                let span = python_int(a).zip(python_int(b)).ok_or_else(|| {
                    error(format!(
                        "row {}: {prediction:?} is not `start:end` with integer tokens",
                        r + 1
                    ))
                })?;
                Some(Answer::Span(span.0, span.1))
            }
            _ if matches!(prediction, "YES" | "NO") => Some(Answer::Word(prediction.to_string())),
            _ if prediction.is_empty() => None,
            _ => {
                return invalid(format!(
                    "row {}: {prediction:?} is not a prediction: write `start:end` token \
                     indices, `YES`, `NO` or leave it empty",
                    r + 1
                ));
            }
        };
        let answers_here = &valid[id];
        let truth = match &parsed {
            Some(answer) => answers_here.contains(answer),
            None => !answers_here.is_empty(),
        };
        if truth == parsed.is_some() {
            correct += 1;
        }
    }
    Ok(correct as f64 / ids.len() as f64)
}
