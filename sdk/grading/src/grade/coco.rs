//! VinBigData's COCO AP at IoU 0.4 (GRADERS.md 4.23): pycocotools' `COCOeval` (bbox,
//! `evaluate`/`accumulate`/`summarize` → `stats[0]`) as MLE-bench drives it, quirks included:
//! corners handed to COCO as `x y w h`, annotation ids from 0 (an id of 0 reads as "not
//! matched"), image ids by first appearance in the answers, categories from the answers.

use super::{GradeOutcome, error, invalid, require_columns};
use crate::table::{Cell, Column, Table};
use std::collections::HashMap;

/// One annotation as COCO sees it.
struct Annotation {
    id: usize,
    category: i64,
    /// As handed over: `[x_min, y_min, x_max, y_max]`, read as `[x, y, w, h]`.
    bbox: [f64; 4],
    /// The real corner area, used only by the area-range filter.
    area: f64,
    score: f64,
}

/// pycocotools' `bbIou` on `x y w h` boxes (not crowd).
fn iou(d: &[f64; 4], g: &[f64; 4]) -> f64 {
    let w = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / (d[2] * d[3] + g[2] * g[3] - inter)
}

/// pycocotools' area range "all".
const AREA_ALL: (f64, f64) = (0.0, 1e10);
const IOU_THRESHOLD: f64 = 0.4;
const MAX_DETECTIONS: usize = 100;

/// One detection's outcome in an image.
#[derive(Clone, Copy)]
struct Outcome {
    score: f64,
    matched: bool,
    ignored: bool,
}

/// `evaluateImg`'s result: the detections' outcomes and the number of non-ignored truths.
struct ImageEval {
    detections: Vec<Outcome>,
    truths: usize,
}

/// `evaluateImg` for one (image, category) at IoU 0.4, area "all", 100 detections.
fn evaluate_image(gts: &[&Annotation], dts: &[&Annotation]) -> ImageEval {
    let ignored = |a: &Annotation| a.area < AREA_ALL.0 || a.area > AREA_ALL.1;
    // Non-ignored truths first (stable), detections by descending score (stable), top 100.
    let mut gt: Vec<&Annotation> = gts.iter().copied().filter(|g| !ignored(g)).collect();
    gt.extend(gts.iter().copied().filter(|g| ignored(g)));
    let mut dt: Vec<&Annotation> = dts.to_vec();
    dt.sort_by(|a, b| b.score.total_cmp(&a.score));
    dt.truncate(MAX_DETECTIONS);
    let gt_ignored: Vec<bool> = gt.iter().map(|g| ignored(g)).collect();
    // Matches are stored as the partner's id, and an id of 0 reads as "unmatched".
    let mut gt_match = vec![0usize; gt.len()];
    let mut out = Vec::with_capacity(dt.len());
    for d in &dt {
        let mut best = IOU_THRESHOLD.min(1.0 - 1e-10);
        let mut m: Option<usize> = None;
        for (gi, g) in gt.iter().enumerate() {
            if gt_match[gi] > 0 {
                continue;
            }
            if m.is_some_and(|m| !gt_ignored[m]) && gt_ignored[gi] {
                break;
            }
            let overlap = iou(&d.bbox, &g.bbox);
            if overlap < best {
                continue;
            }
            best = overlap;
            m = Some(gi);
        }
        let (matched_id, ignore) = match m {
            Some(gi) => {
                gt_match[gi] = d.id;
                (gt[gi].id, gt_ignored[gi])
            }
            None => (0, false),
        };
        let ignore = ignore || (matched_id == 0 && ignored(d));
        out.push(Outcome {
            score: d.score,
            matched: matched_id != 0,
            ignored: ignore,
        });
    }
    ImageEval {
        detections: out,
        truths: gt_ignored.iter().filter(|i| !**i).count(),
    }
}

/// `accumulate` + `summarize` for one category: the 101-point interpolated precision, or
/// `None` when pycocotools leaves it at −1 (no evaluated image or no non-ignored truth).
fn category_precision(images: &[ImageEval]) -> Option<Vec<f64>> {
    let truths: usize = images.iter().map(|e| e.truths).sum();
    let mut detections: Vec<Outcome> = images
        .iter()
        .flat_map(|e| e.detections.iter().copied())
        .collect();
    if truths == 0 {
        return None;
    }
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut recall = Vec::new();
    let mut precision = Vec::new();
    for d in &detections {
        if d.ignored {
            // Ignored detections add to neither count but keep their place.
        } else if d.matched {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        recall.push(tp / truths as f64);
        precision.push(tp / (fp + tp + f64::EPSILON));
    }
    for i in (1..precision.len()).rev() {
        if precision[i] > precision[i - 1] {
            precision[i - 1] = precision[i];
        }
    }
    let mut q = vec![0.0; 101];
    for (r, slot) in q.iter_mut().enumerate() {
        let threshold = if r == 100 { 1.0 } else { r as f64 * 0.01 };
        let at = recall.partition_point(|x| *x < threshold);
        match precision.get(at) {
            Some(p) => *slot = *p,
            None => break,
        }
    }
    Some(q)
}

/// (image, category) → annotations, in annotation order.
fn by_image_and_category(list: &[(usize, Annotation)]) -> HashMap<(usize, i64), Vec<&Annotation>> {
    let mut groups: HashMap<(usize, i64), Vec<&Annotation>> = HashMap::new();
    for (image, a) in list {
        groups.entry((*image, a.category)).or_default().push(a);
    }
    groups
}

/// A COCO image or category id: integers exactly, anything else by its text.
fn id_key(column: &Column, row: usize) -> String {
    match column.cell(row) {
        Cell::Text(t) => format!("t:{t}"),
        Cell::Missing => "missing".into(),
        cell => format!("n:{}", cell.as_number().unwrap_or(f64::NAN)),
    }
}

/// vinbigdata-chest-xray-abnormalities-detection: `PredictionString` and `image_id` present,
/// the same image set (invalid otherwise); predictions `class score x_min y_min x_max y_max`
/// separated by single spaces (anything else a null score); COCO AP at IoU 0.4.
pub(super) fn coco_ap(id: &str, target: &str, submission: &Table, answers: &Table) -> GradeOutcome {
    require_columns(submission, &[target, id], "submission")?;
    let ans_ids = answers
        .column(id)
        .ok_or_else(|| error(format!("the answers lack `{id}`")))?;
    let sub_ids = submission.column(id).unwrap();
    let mut image_of: HashMap<String, usize> = HashMap::new();
    for r in 0..answers.rows {
        let n = image_of.len();
        image_of.entry(id_key(ans_ids, r)).or_insert(n);
    }
    let given: std::collections::HashSet<String> =
        (0..submission.rows).map(|r| id_key(sub_ids, r)).collect();
    if given.len() != image_of.len() || !given.iter().all(|k| image_of.contains_key(k)) {
        return invalid(format!(
            "the `{id}` values differ from the test images': one row per test image"
        ));
    }
    let number = |name: &str| -> Result<Vec<f64>, super::Failure> {
        let all: Vec<usize> = (0..answers.rows).collect();
        super::numbers(answers, name, &all, "answers").map_err(super::as_error)
    };
    let (class, x0, y0, x1, y1) = (
        number("class_id")?,
        number("x_min")?,
        number("y_min")?,
        number("x_max")?,
        number("y_max")?,
    );
    // Truths grouped by image in first-appearance order, ids counting from 0 across images.
    let mut truths: Vec<(usize, Annotation)> = Vec::with_capacity(answers.rows);
    let mut rows_by_image: Vec<Vec<usize>> = vec![Vec::new(); image_of.len()];
    for r in 0..answers.rows {
        rows_by_image[image_of[&id_key(ans_ids, r)]].push(r);
    }
    for (image, rows) in rows_by_image.iter().enumerate() {
        for &r in rows {
            truths.push((
                image,
                Annotation {
                    id: truths.len(),
                    category: class[r] as i64,
                    bbox: [x0[r], y0[r], x1[r], y1[r]],
                    area: (x1[r] - x0[r]) * (y1[r] - y0[r]),
                    score: 0.0,
                },
            ));
        }
    }
    let sc = submission.column(target).unwrap();
    let mut detections: Vec<(usize, Annotation)> = Vec::new();
    for r in 0..submission.rows {
        let text = match sc.cell(r) {
            Cell::Text(t) => t.to_string(),
            Cell::Missing => {
                return Err(error(format!(
                    "row {}: `{target}` is blank (write `14 1 0 0 1 1` for no finding)",
                    r + 1
                )));
            }
            _ => return Err(error(format!("row {}: `{target}` must be text", r + 1))),
        };
        let values: Vec<f64> = text
            .split(' ')
            .map(|t| t.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                error(format!(
                    "row {}: every token must be a number, separated by single spaces",
                    r + 1
                ))
            })?;
        if !values.len().is_multiple_of(6) {
            return Err(error(format!(
                "row {}: {} numbers; boxes are `class score x_min y_min x_max y_max`",
                r + 1,
                values.len()
            )));
        }
        let image = image_of[&id_key(sub_ids, r)];
        for b in values.chunks(6) {
            if !b[0].is_finite() {
                return Err(error(format!("row {}: the class must be a number", r + 1)));
            }
            detections.push((
                image,
                Annotation {
                    id: detections.len(),
                    category: b[0] as i64,
                    bbox: [b[2], b[3], b[4], b[5]],
                    area: (b[4] - b[2]) * (b[5] - b[3]),
                    score: b[1],
                },
            ));
        }
    }
    let mut categories: Vec<i64> = truths.iter().map(|(_, a)| a.category).collect();
    categories.sort_unstable();
    categories.dedup();
    let (gt_groups, dt_groups) = (
        by_image_and_category(&truths),
        by_image_and_category(&detections),
    );
    let mut precisions = Vec::new();
    for category in categories {
        let mut images = Vec::new();
        for image in 0..image_of.len() {
            let gts = gt_groups
                .get(&(image, category))
                .map_or(&[][..], Vec::as_slice);
            let dts = dt_groups
                .get(&(image, category))
                .map_or(&[][..], Vec::as_slice);
            if gts.is_empty() && dts.is_empty() {
                continue;
            }
            images.push(evaluate_image(gts, dts));
        }
        if let Some(q) = category_precision(&images) {
            precisions.extend(q);
        }
    }
    if precisions.is_empty() {
        return Ok(-1.0);
    }
    Ok(precisions.iter().sum::<f64>() / precisions.len() as f64)
}
