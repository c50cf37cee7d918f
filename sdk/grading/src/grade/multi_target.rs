//! Graders that score several target columns at once: Jigsaw's toxic-comment mean AUC,
//! Google QUEST's mean Spearman and HMS's KL divergence of vote distributions.

use super::{
    GradeOutcome, align, as_error, error, invalid, metric_numbers, numbers, quote, require_columns,
    same_rows,
};
use crate::metrics;
use crate::table::Table;

/// jigsaw-toxic-comment-classification-challenge (GRADERS.md 3.2 #8): the id and the class
/// columns must be present; then (each failure a null score, as MLE-bench reaches it by an
/// exception) equal row counts, equal ids after sorting, and the score matrix is every non-id
/// submission column *in the submission's order* against the answers' classes in theirs. Rows
/// whose answers are −1 (not scored by Kaggle) are dropped; the score is the mean of the
/// per-column ROC AUCs.
pub(super) fn jigsaw_toxic(
    id: &str,
    targets: &[&str],
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    let mut required = vec![id];
    required.extend_from_slice(targets);
    require_columns(submission, &required, "submission")?;
    if submission.rows != answers.rows {
        return Err(error(format!(
            "{} submission rows against {} test rows: one row per test id",
            submission.rows, answers.rows
        )));
    }
    let (sub_order, ans_order) = align(id, submission, answers).map_err(as_error)?;
    let truth_columns: Vec<&str> = answers
        .names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != id)
        .collect();
    let score_columns: Vec<&str> = submission
        .names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != id)
        .collect();
    // MLE-bench pairs the columns by position: another order scores the wrong classes (kept
    // for parity), another count fails.
    if score_columns.len() != truth_columns.len() {
        return Err(error(format!(
            "the submission has {} prediction columns but {} are scored: submit exactly {}, in \
             this order",
            score_columns.len(),
            truth_columns.len(),
            quote(&truth_columns)
        )));
    }
    let mut truth = Vec::with_capacity(truth_columns.len());
    for name in &truth_columns {
        truth.push(numbers(answers, name, &ans_order, "answers").map_err(as_error)?);
    }
    let scored: Vec<usize> = (0..ans_order.len())
        .filter(|&i| truth.iter().map(|column| column[i]).sum::<f64>() >= 0.0)
        .collect();
    let mut total = 0.0;
    for (c, name) in score_columns.iter().enumerate() {
        let scores = metric_numbers(submission, name, &sub_order, "submission")?;
        let t: Vec<f64> = scored.iter().map(|&i| truth[c][i]).collect();
        let s: Vec<f64> = scored.iter().map(|&i| scores[i]).collect();
        total += metrics::roc_auc(&t, &s).map_err(|e| error(format!("`{name}`: {e}")))?;
    }
    Ok(total / score_columns.len() as f64)
}

/// google-quest-challenge (GRADERS.md 3.2 #39): the id and every target present, exactly the
/// id and the targets (by count), equal row counts; both tables sorted by id and paired by
/// position (no id check); the mean over the targets of Spearman's ρ. A constant column or a
/// missing value makes that column's ρ, and so the score, NaN (valid, no medal).
pub(super) fn column_spearman(
    id: &str,
    targets: &[&str],
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    require_columns(submission, &[id], "submission")?;
    require_columns(submission, targets, "submission")?;
    if submission.names.len() != targets.len() + 1 {
        return invalid(format!(
            "the submission has {} prediction columns but exactly {} are expected (the targets \
             of the sample submission, nothing else)",
            submission.names.len() - 1,
            targets.len()
        ));
    }
    same_rows(submission, answers)?;
    let sub_order = submission.order_by(id).expect("id column checked");
    let ans_order = answers
        .order_by(id)
        .ok_or_else(|| error(format!("the answers lack `{id}`")))?;
    let mut total = 0.0;
    for target in targets {
        let preds = metric_numbers(submission, target, &sub_order, "submission")?;
        let truth = numbers(answers, target, &ans_order, "answers").map_err(as_error)?;
        total += metrics::spearman(&truth, &preds).map_err(error)?;
    }
    Ok(total / targets.len() as f64)
}

/// Clipping of HMS's KL divergence (Kaggle's metric: 1e-15, no renormalisation).
const KL_EPS: f64 = 1e-15;

/// hms-harmful-brain-activity-classification (GRADERS.md 4.16): the id and the 6 vote columns
/// present, equal row counts, every row's 6 probabilities summing to 1 at 5 decimals, the same
/// id set (invalid otherwise); then Kaggle's checks on every non-id column (numeric, within
/// [0, 1], rows summing to 1 — a null score otherwise). Both tables are sorted by id (stably:
/// rows of one id pair in file order) and paired by position; truth = votes ÷ their row sum;
/// per row Σ y·ln(y / clip(p)) over the classes with y ≠ 0; mean over rows.
pub(super) fn kl_divergence(
    id: &str,
    targets: &[&str],
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    let mut required = vec![id];
    required.extend_from_slice(targets);
    require_columns(submission, &required, "submission")?;
    same_rows(submission, answers)?;
    let all: Vec<usize> = (0..submission.rows).collect();
    let mut probabilities = Vec::with_capacity(targets.len());
    for target in targets {
        probabilities.push(numbers(submission, target, &all, "submission")?);
    }
    // pandas' row sum skips NaN; Python's round(x, 5) == 1.
    let row_sum = |columns: &[Vec<f64>], r: usize| -> f64 {
        columns.iter().map(|c| c[r]).filter(|v| !v.is_nan()).sum()
    };
    if let Some(r) = all
        .iter()
        .copied()
        .find(|&r| metrics::round5_python(row_sum(&probabilities, r)) != 1.0)
    {
        return invalid(format!(
            "row {} has probabilities summing to {}: each row's {} vote probabilities must sum to 1",
            r + 1,
            row_sum(&probabilities, r),
            targets.len()
        ));
    }
    let keys = |table: &Table| -> Vec<crate::table::SortKey> {
        let column = table.column(id).unwrap();
        let mut keys: Vec<_> = (0..table.rows).map(|r| column.sort_key(r)).collect();
        keys.sort_by(|a, b| a.total_cmp(b));
        keys.dedup();
        keys
    };
    require_columns(answers, &required, "answers").map_err(as_error)?;
    if keys(submission) != keys(answers) {
        return invalid(format!(
            "the `{id}` values differ from the test set's: one row per test row, with its `{id}`"
        ));
    }
    // Kaggle's probability checks run on every column but the id, extra ones included.
    let mut every_sum = vec![0.0; submission.rows];
    for (name, column) in submission.names.iter().zip(&submission.columns) {
        if name == id {
            continue;
        }
        let values = column.to_f64().ok_or_else(|| {
            error(format!(
                "`{name}` is not numeric: every column but `{id}` must hold probabilities"
            ))
        })?;
        if values.iter().any(|v| *v < 0.0 || *v > 1.0) {
            return Err(error(format!("`{name}` holds values outside [0, 1]")));
        }
        for (sum, v) in every_sum.iter_mut().zip(&values) {
            if !v.is_nan() {
                *sum += v;
            }
        }
    }
    if every_sum.iter().any(|s| (s - 1.0).abs() > 1e-8 + 1e-5) {
        return Err(error(format!(
            "the rows do not sum to 1 over every column but `{id}`: submit only `{id}` and the \
             vote probabilities"
        )));
    }
    let sub_order = submission.order_by(id).expect("id column checked");
    let ans_order = answers.order_by(id).expect("id column checked");
    let mut votes = Vec::with_capacity(targets.len());
    let mut preds = Vec::with_capacity(targets.len());
    for target in targets {
        votes.push(numbers(answers, target, &ans_order, "answers").map_err(as_error)?);
        preds.push(numbers(submission, target, &sub_order, "submission")?);
    }
    let mut total = 0.0;
    for row in 0..ans_order.len() {
        let votes_sum: f64 = votes.iter().map(|c| c[row]).filter(|v| !v.is_nan()).sum();
        for (truth, pred) in votes.iter().zip(&preds) {
            let y = truth[row] / votes_sum;
            if y != 0.0 {
                total += y * (y / pred[row].clamp(KL_EPS, 1.0 - KL_EPS)).ln();
            }
        }
    }
    Ok(total / ans_order.len() as f64)
}
