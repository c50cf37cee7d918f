//! Lyft's 3-D object detection (GRADERS.md 4.14): per sample and IoU threshold, the mean over
//! the sample's true classes of a VOC-style average precision, with 3-D IoU of boxes rotated
//! about the vertical axis (ground-footprint polygon intersection × vertical overlap).

use super::{GradeOutcome, aligned_target, error, invalid, text_cell};
use crate::table::Table;

/// The thresholds as MLE-bench writes them (literals, not `arange`).
const THRESHOLDS: [f64; 10] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

/// One box: `confidence cx cy cz width length height yaw class`.
struct Box3 {
    score: f64,
    center: [f64; 3],
    /// width, length, height
    size: [f64; 3],
    yaw: f64,
    class: String,
}

impl Box3 {
    /// The devkit's `Box3D` checks, made when a box is first compared: no NaN, sizes > 0.
    fn check(&self) -> Result<(), String> {
        if self.center.iter().chain(&self.size).any(|v| v.is_nan()) || self.yaw.is_nan() {
            return Err("a box has a NaN coordinate, size or yaw".into());
        }
        if self.size.iter().any(|s| *s <= 0.0) {
            return Err("a box has a size that is not positive".into());
        }
        Ok(())
    }

    /// The ground footprint, counter-clockwise.
    fn footprint(&self) -> [(f64, f64); 4] {
        let (c, s) = (self.yaw.cos(), self.yaw.sin());
        let (hl, hw) = (self.size[1] / 2.0, self.size[0] / 2.0);
        let [x, y, _] = self.center;
        let mut corners = [
            (x + hl * c + hw * s, y + hl * s - hw * c),
            (x + hl * c - hw * s, y + hl * s + hw * c),
            (x - hl * c - hw * s, y - hl * s + hw * c),
            (x - hl * c + hw * s, y - hl * s - hw * c),
        ];
        if signed_area(&corners) < 0.0 {
            corners.reverse();
        }
        corners
    }

    fn volume(&self) -> f64 {
        self.size[0] * self.size[1] * self.size[2]
    }

    fn iou(&self, other: &Box3) -> f64 {
        let z = |b: &Box3| (b.center[2] - b.size[2] / 2.0, b.center[2] + b.size[2] / 2.0);
        let ((a0, a1), (b0, b1)) = (z(self), z(other));
        let height = (a1.min(b1) - a0.max(b0)).max(0.0);
        let inter = height * convex_intersection_area(&self.footprint(), &other.footprint());
        (inter / (self.volume() + other.volume() - inter)).clamp(0.0, 1.0)
    }
}

fn signed_area(polygon: &[(f64, f64)]) -> f64 {
    let n = polygon.len();
    (0..n)
        .map(|i| {
            let (a, b) = (polygon[i], polygon[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        / 2.0
}

/// Area of the intersection of two convex counter-clockwise polygons (Sutherland–Hodgman).
fn convex_intersection_area(subject: &[(f64, f64)], clip: &[(f64, f64)]) -> f64 {
    let mut output: Vec<(f64, f64)> = subject.to_vec();
    for i in 0..clip.len() {
        if output.is_empty() {
            break;
        }
        let (a, b) = (clip[i], clip[(i + 1) % clip.len()]);
        let side = |p: (f64, f64)| (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
        let input = std::mem::take(&mut output);
        for j in 0..input.len() {
            let (p, q) = (input[j], input[(j + 1) % input.len()]);
            let (sp, sq) = (side(p), side(q));
            if sp >= 0.0 {
                output.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                output.push((p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
            }
        }
    }
    if output.len() < 3 {
        0.0
    } else {
        signed_area(&output).abs()
    }
}

/// Parse a prediction string as MLE-bench does: blank → no boxes; a token count that is not a
/// multiple of 9 is invalid; a number that does not parse is a null score.
fn parse(text: &str, row: usize) -> Result<Vec<Box3>, super::Failure> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let tokens: Vec<&str> = text.split(' ').collect();
    if !tokens.len().is_multiple_of(9) {
        return invalid(format!(
            "row {}: {} tokens; each box is `confidence x y z width length height yaw class`",
            row + 1,
            tokens.len()
        ));
    }
    tokens
        .chunks(9)
        .map(|t| {
            let n: Vec<f64> = t[..8]
                .iter()
                .map(|s| s.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    error(format!(
                        "row {}: a box has a token that is not a number",
                        row + 1
                    ))
                })?;
            Ok(Box3 {
                score: n[0],
                center: [n[1], n[2], n[3]],
                size: [n[4], n[5], n[6]],
                yaw: n[7],
                class: t[8].to_string(),
            })
        })
        .collect()
}

/// The devkit's `recall_precision` + `get_ap` for one class of one sample.
fn average_precision(truth: &[&Box3], predictions: &[&Box3], threshold: f64) -> f64 {
    let mut order: Vec<&Box3> = predictions.to_vec();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut checked = vec![false; truth.len()];
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut recalls, mut precisions) = (vec![0.0], vec![0.0]);
    for p in order {
        let mut best: Option<(usize, f64)> = None;
        for (j, g) in truth.iter().enumerate() {
            let overlap = p.iou(g);
            if best.is_none_or(|(_, b)| overlap > b) {
                best = Some((j, overlap));
            }
        }
        match best {
            Some((j, overlap)) if overlap > threshold && !checked[j] => {
                tp += 1.0;
                checked[j] = true;
            }
            _ => fp += 1.0,
        }
        recalls.push(tp / truth.len() as f64);
        precisions.push(tp / (tp + fp).max(f64::EPSILON));
    }
    recalls.push(1.0);
    precisions.push(0.0);
    for i in (1..precisions.len()).rev() {
        precisions[i - 1] = precisions[i - 1].max(precisions[i]);
    }
    (0..recalls.len() - 1)
        .filter(|&i| recalls[i + 1] != recalls[i])
        .map(|i| (recalls[i + 1] - recalls[i]) * precisions[i + 1])
        .sum()
}

/// 3d-object-detection-for-autonomous-vehicles: the row count, `Id` and `PredictionString`,
/// ids equal after sorting (invalid otherwise); blank = no boxes; per sample and threshold
/// t ∈ 0.50…0.95 the mean over the sample's true classes of the average precision (predictions
/// by descending confidence take their best-IoU truth of the class if IoU > t and it is still
/// free; a class without predictions scores 0); the mean over all (sample, t).
pub(super) fn mean_ap_3d(
    id: &str,
    target: &str,
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    let (sub_order, ans_order, sc, ac) = aligned_target(id, target, submission, answers)?;
    let mut predicted = Vec::with_capacity(sub_order.len());
    for &r in &sub_order {
        predicted.push(parse(text_cell(sc, r, target)?.unwrap_or(""), r)?);
    }
    let mut total = 0.0;
    let mut count = 0usize;
    for (&a, preds) in ans_order.iter().zip(&predicted) {
        let truth = parse(
            text_cell(ac, a, target)?
                .ok_or_else(|| error(format!("answers row {}: no boxes", a + 1)))?,
            a,
        )?;
        let mut classes: Vec<&str> = truth.iter().map(|b| b.class.as_str()).collect();
        classes.sort_unstable();
        classes.dedup();
        let mut per_threshold = [0.0; THRESHOLDS.len()];
        for class in &classes {
            let gts: Vec<&Box3> = truth.iter().filter(|b| b.class == *class).collect();
            let ps: Vec<&Box3> = preds.iter().filter(|b| b.class == *class).collect();
            if ps.is_empty() {
                continue;
            }
            for b in gts.iter().chain(&ps) {
                b.check().map_err(error)?;
            }
            for (t, threshold) in THRESHOLDS.iter().enumerate() {
                per_threshold[t] += average_precision(&gts, &ps, *threshold);
            }
        }
        for value in per_threshold {
            total += value / classes.len() as f64;
            count += 1;
        }
    }
    Ok(total / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: f64, y: f64, side: f64) -> Vec<(f64, f64)> {
        vec![(x, y), (x + side, y), (x + side, y + side), (x, y + side)]
    }

    #[test]
    fn polygon_intersections() {
        assert!(
            (convex_intersection_area(&square(0.0, 0.0, 2.0), &square(1.0, 1.0, 2.0)) - 1.0).abs()
                < 1e-12
        );
        assert_eq!(
            convex_intersection_area(&square(0.0, 0.0, 1.0), &square(5.0, 5.0, 1.0)),
            0.0
        );
        // A unit square rotated 45° inside a 2×2 square centred on it: the whole diamond.
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let diamond = vec![
            (1.0, 1.0 - h),
            (1.0 + h, 1.0),
            (1.0, 1.0 + h),
            (1.0 - h, 1.0),
        ];
        assert!((convex_intersection_area(&diamond, &square(0.0, 0.0, 2.0)) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rotated_boxes_iou() {
        let b = |yaw: f64, x: f64| Box3 {
            score: 1.0,
            center: [x, 0.0, 0.0],
            size: [2.0, 4.0, 1.0],
            yaw,
            class: "car".into(),
        };
        assert!((b(0.3, 0.0).iou(&b(0.3, 0.0)) - 1.0).abs() < 1e-12);
        // Half the length overlapping along the yaw-0 axis: 4 / (8 + 8 − 4).
        assert!((b(0.0, 0.0).iou(&b(0.0, 2.0)) - 1.0 / 3.0).abs() < 1e-12);
        // A quarter turn: a 2×2 overlap of two 2×4 footprints.
        assert!((b(0.0, 0.0).iou(&b(std::f64::consts::FRAC_PI_2, 0.0)) - 4.0 / 12.0).abs() < 1e-12);
    }
}
