//! Detection graders: Kuzushiji's point-in-box F1 and SIIM-COVID's per-class average
//! precision over a custom match list.

use super::{GradeOutcome, aligned_target, error, invalid, text_cell};
use crate::metrics;
use crate::table::{Column, Table};

/// Python's `float()` on a token: surrounding whitespace, a sign, exponents and the
/// `nan`/`inf`/`infinity` spellings in any case.
fn python_float(token: &str) -> Option<f64> {
    token.trim().parse().ok()
}

/// kuzushiji-recognition (GRADERS.md 4.9): the row count, `image_id` and `labels`, ids equal
/// after sorting, every non-blank prediction a multiple of 3 single-space-separated tokens
/// (invalid otherwise) with float coordinates (a null score otherwise). A truth box
/// `label x y w h` is hit by the first unused prediction `label px py` of the same label
/// strictly inside it; TP, FP and FN pooled over pages; F1 (0 when undefined).
pub(super) fn kuzushiji_f1(
    id: &str,
    target: &str,
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    let (sub_order, ans_order, sc, ac) = aligned_target(id, target, submission, answers)?;
    let mut predictions = Vec::with_capacity(sub_order.len());
    for &r in &sub_order {
        let Some(text) = text_cell(sc, r, target)? else {
            predictions.push(None);
            continue;
        };
        let tokens: Vec<&str> = text.split(' ').collect();
        if !tokens.len().is_multiple_of(3) {
            return invalid(format!(
                "row {}: {} tokens; predictions are `label x y` triples separated by single spaces",
                r + 1,
                tokens.len()
            ));
        }
        let mut points = Vec::with_capacity(tokens.len() / 3);
        for triple in tokens.chunks(3) {
            let (x, y) = (python_float(triple[1]), python_float(triple[2]));
            let (Some(x), Some(y)) = (x, y) else {
                return Err(error(format!(
                    "row {}: x and y must be numbers in {:?}",
                    r + 1,
                    triple.join(" ")
                )));
            };
            points.push((triple[0], x, y));
        }
        predictions.push(Some(points));
    }
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&a, predicted) in ans_order.iter().zip(&predictions) {
        let truth = text_cell(ac, a, target)?;
        match (truth, predicted) {
            (None, None) => {}
            (None, Some(points)) => fp += points.len(),
            (Some(t), None) => fn_ += t.split(' ').count() / 5,
            (Some(t), Some(points)) => {
                let tokens: Vec<&str> = t.split(' ').collect();
                if !tokens.len().is_multiple_of(5) {
                    return Err(error("malformed answers labels"));
                }
                let mut unused = vec![true; points.len()];
                for b in tokens.chunks(5) {
                    let n: Vec<f64> = b[1..]
                        .iter()
                        .map(|s| python_float(s).ok_or_else(|| error("malformed answers box")))
                        .collect::<Result<_, _>>()?;
                    let (x0, y0, x1, y1) = (n[0], n[1], n[0] + n[2], n[1] + n[3]);
                    let hit = points.iter().enumerate().position(|(i, &(label, px, py))| {
                        unused[i] && label == b[0] && x0 < px && x1 > px && y0 < py && y1 > py
                    });
                    match hit {
                        Some(i) => {
                            tp += 1;
                            unused[i] = false;
                        }
                        None => fn_ += 1,
                    }
                }
                fp += unused.iter().filter(|u| **u).count();
            }
        }
    }
    if tp + fp == 0 || tp + fn_ == 0 {
        return Ok(0.0);
    }
    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fn_) as f64;
    Ok(if precision > 0.0 && recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    })
}

/// One SIIM box: label, confidence and corners.
struct LabelledBox<'a> {
    label: &'a str,
    confidence: f64,
    corners: [f64; 4],
}

/// Parse `label confidence xmin ymin xmax ymax` groups as MLE-bench does, in order: a token
/// missing from the last group is a null score, a token that is not a float invalid.
fn siim_boxes<'a>(text: &'a str, row: usize) -> Result<Vec<LabelledBox<'a>>, super::Failure> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut boxes = Vec::with_capacity(tokens.len() / 6);
    for group in (0..tokens.len()).step_by(6) {
        let mut values = [0.0; 5];
        for (k, value) in values.iter_mut().enumerate() {
            let token = tokens.get(group + 1 + k).ok_or_else(|| {
                error(format!(
                    "row {}: {} tokens; boxes are 6 tokens each",
                    row + 1,
                    tokens.len()
                ))
            })?;
            *value = python_float(token).ok_or_else(|| {
                super::Failure::Invalid(format!(
                    "row {}: {token:?} is not a number; boxes are `label confidence xmin ymin xmax ymax`",
                    row + 1
                ))
            })?;
        }
        boxes.push(LabelledBox {
            label: tokens[group],
            confidence: values[0],
            corners: [values[1], values[2], values[3], values[4]],
        });
    }
    Ok(boxes)
}

/// Each row's boxes, by descending confidence (stable); a blank cell is an error.
fn sorted_boxes<'a>(
    column: &'a Column,
    order: &[usize],
    name: &str,
) -> Result<Vec<Vec<LabelledBox<'a>>>, super::Failure> {
    order
        .iter()
        .map(|&r| {
            let text = text_cell(column, r, name)?.ok_or_else(|| {
                error(format!(
                    "row {}: `{name}` is blank (write `none 1 0 0 1 1`)",
                    r + 1
                ))
            })?;
            let mut boxes = siim_boxes(text, r)?;
            boxes.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
            Ok(boxes)
        })
        .collect()
}

fn corner_iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// siim-covid19-detection (GRADERS.md 4.19): the row count, `id` and `PredictionString`, ids
/// equal after sorting; per answer class (sorted), each row's predictions of the class by
/// descending confidence take the unmatched truth box of the class with the largest IoU
/// above 0.5 → (1, confidence), else (0, confidence); unmatched truth boxes add (1, 0), a row
/// with neither adds (0, 0); scikit-learn's average precision of the list; mean over classes.
pub(super) fn siim_map(
    id: &str,
    target: &str,
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    let (sub_order, ans_order, sc, ac) = aligned_target(id, target, submission, answers)?;
    let predicted = sorted_boxes(sc, &sub_order, target)?;
    let truth = sorted_boxes(ac, &ans_order, target)?;
    let mut classes: Vec<&str> = truth.iter().flatten().map(|b| b.label).collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return Ok(0.0);
    }
    let mut total = 0.0;
    for class in &classes {
        let (mut labels, mut scores) = (Vec::new(), Vec::new());
        for (preds, truths) in predicted.iter().zip(&truth) {
            let gts: Vec<&[f64; 4]> = truths
                .iter()
                .filter(|b| b.label == *class)
                .map(|b| &b.corners)
                .collect();
            let mut matched = vec![false; gts.len()];
            let before = labels.len();
            for p in preds.iter().filter(|p| p.label == *class) {
                let mut best: Option<(usize, f64)> = None;
                for (i, gt) in gts.iter().enumerate() {
                    if matched[i] {
                        continue;
                    }
                    let iou = corner_iou(&p.corners, gt);
                    if iou > best.map_or(0.0, |b| b.1) && iou > 0.5 {
                        best = Some((i, iou));
                    }
                }
                labels.push(best.is_some());
                scores.push(p.confidence);
                if let Some((i, _)) = best {
                    matched[i] = true;
                }
            }
            for _ in matched.iter().filter(|m| !**m) {
                labels.push(true);
                scores.push(0.0);
            }
            if labels.len() == before {
                labels.push(false);
                scores.push(0.0);
            }
        }
        if labels.iter().all(|l| *l) {
            return Err(error(format!(
                "class {class}: every pair is a positive; AP is undefined"
            )));
        }
        total += metrics::average_precision(&labels, &scores).map_err(error)?;
    }
    Ok(total / classes.len() as f64)
}
