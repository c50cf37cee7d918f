//! H&M's personalised fashion recommendations: MAP@12 over the customers who bought in the
//! test week (GRADERS.md 3.2 #40 and 4.5).

use super::{GradeOutcome, cell_text, error, exact_columns, invalid};
use crate::metrics;
use crate::table::{Cell, Column, Table};
use std::collections::HashSet;

/// A cell as a set key with numpy's equality: numbers by value, text by text.
fn key(column: &Column, row: usize) -> Option<String> {
    match column.cell(row) {
        Cell::Missing => None,
        Cell::Text(t) => Some(format!("t:{t}")),
        cell => cell.as_number().map(|x| format!("n:{x}")),
    }
}

/// The columns must be exactly the id and the prediction, and the submission must cover
/// every customer of the answers (extra customers are dropped). Both tables are sorted by
/// customer and paired by position (duplicated customers mis-align, as in MLE-bench); each
/// prediction is split on single spaces and scored by MAP@`k` against the set of the
/// answers' article ids, compared as the raw text.
pub(super) fn customer_map_at_k(
    id: &str,
    target: &str,
    k: usize,
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    exact_columns(submission, &[id, target])?;
    let (sub_ids, ans_ids) = (
        submission.column(id).unwrap(),
        answers
            .column(id)
            .ok_or_else(|| error(format!("the answers lack `{id}`")))?,
    );
    let wanted: HashSet<Option<String>> = (0..answers.rows).map(|r| key(ans_ids, r)).collect();
    let given: HashSet<Option<String>> = (0..submission.rows).map(|r| key(sub_ids, r)).collect();
    let missing = wanted.difference(&given).count();
    if missing > 0 {
        return invalid(format!(
            "{missing} customers of the test week have no row: submit a row for every \
             customer of the sample submission"
        ));
    }
    let sub_order: Vec<usize> = submission
        .order_by(id)
        .expect("id column checked")
        .into_iter()
        .filter(|&r| wanted.contains(&key(sub_ids, r)))
        .collect();
    let ans_order = answers.order_by(id).expect("id column checked");
    let rows = sub_order.len().min(ans_order.len());
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers
            .column(target)
            .ok_or_else(|| error(format!("the answers lack `{target}`")))?,
    );
    // astype(str): a blank becomes "nan"; split(" ") keeps empty tokens (which never hit).
    let tokens = |c: &Column, r: usize| -> Vec<String> {
        cell_text(c, r, Some("nan"))
            .unwrap_or_default()
            .split(' ')
            .map(str::to_string)
            .collect()
    };
    let truth: Vec<Vec<String>> = ans_order[..rows]
        .iter()
        .map(|&r| {
            let mut set = tokens(ac, r);
            set.sort();
            set.dedup();
            set
        })
        .collect();
    let preds: Vec<Vec<String>> = sub_order[..rows].iter().map(|&r| tokens(sc, r)).collect();
    metrics::map_at_k(&truth, &preds, k).map_err(error)
}
