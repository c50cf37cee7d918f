//! Segmentation graders over run-length-encoded masks: TGS salt (IoU thresholds), contrails
//! (global Dice), HuBMAP (mean Dice), Vesuvius (F0.5) and UW-Madison (Dice and 3-D Hausdorff).

use super::rle::{self, RleError};
use super::{
    Failure, GradeOutcome, align, aligned_target, as_error, error, exact_columns, invalid, numbers,
    require_columns, same_rows, text_cell,
};
use crate::table::{Cell, Column, Table};
use std::collections::HashMap;

type Runs = Vec<(usize, usize)>;

/// A cell's RLE text: blank is `blank` (None: an error, as a NaN reaches `rle_decode`);
/// a number or boolean is an error (`rle_decode` asserts `isinstance(str)`).
fn rle_text(column: &Column, row: usize, blank: Option<&str>) -> Result<String, Failure> {
    match text_cell(column, row, "mask")? {
        Some(text) => Ok(text.to_string()),
        None => blank.map(str::to_string).ok_or_else(|| {
            error(format!(
                "row {} has no mask: write `-` for an empty one",
                row + 1
            ))
        }),
    }
}

/// Decode, turning a rule violation into an invalid submission (`rule_invalid`) or a null
/// score, and malformed tokens into a null score.
fn decode(text: &str, pixels: usize, rule_invalid: bool, row: usize) -> Result<Runs, Failure> {
    rle::decode(text, pixels).map_err(|e| {
        let message = format!("row {}: {}", row + 1, e.message());
        match e {
            RleError::Rule(_) if rule_invalid => Failure::Invalid(message),
            _ => error(message),
        }
    })
}

/// An image size from the answers (`int()` of the cell).
fn sizes(answers: &Table, name: &str, order: &[usize]) -> Result<Vec<usize>, Failure> {
    numbers(answers, name, order, "answers")
        .map_err(as_error)?
        .into_iter()
        .map(|x| {
            (x.is_finite() && x >= 0.0)
                .then_some(x as usize)
                .ok_or_else(|| error(format!("the answers' `{name}` has a bad size {x}")))
        })
        .collect()
}

/// numpy's `np.arange(0.5, 1.0, 0.05)` as it computes it.
const TGS_THRESHOLDS: [f64; 10] = [
    0.5,
    0.55,
    0.600_000_000_000_000_1,
    0.650_000_000_000_000_1,
    0.700_000_000_000_000_2,
    0.750_000_000_000_000_2,
    0.800_000_000_000_000_3,
    0.850_000_000_000_000_3,
    0.900_000_000_000_000_4,
    0.950_000_000_000_000_4,
];
const TGS_SIDE: usize = 101;

/// tgs-salt-identification-challenge (GRADERS.md 4.12): exactly `id` and `rle_mask`, the row
/// count, text cells (blank = empty), ids equal after sorting, valid RLE (a rule violation is
/// invalid); per image the fraction of thresholds its IoU strictly exceeds (both empty: 1;
/// only the truth empty: 0), mean over images. The IoU comes from a two-bin histogram as in
/// the Kaggle kernel MLE-bench uses: an all-empty prediction falls in the upper bin, so it
/// counts as covering the whole image (IoU = |truth| / pixels).
pub(super) fn tgs_iou(id: &str, target: &str, submission: &Table, answers: &Table) -> GradeOutcome {
    exact_columns(submission, &[id, target])?;
    same_rows(submission, answers)?;
    for name in [id, target] {
        let column = submission.column(name).unwrap();
        if (0..submission.rows).any(|r| !matches!(column.cell(r), Cell::Text(_) | Cell::Missing)) {
            return invalid(format!(
                "`{name}` must hold text in every row (ids and RLE masks)"
            ));
        }
    }
    let (sub_order, ans_order) = align(id, submission, answers)?;
    let pixels = TGS_SIDE * TGS_SIDE;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    let mut predicted = Vec::with_capacity(sub_order.len());
    for &r in &sub_order {
        predicted.push(decode(&rle_text(sc, r, Some(""))?, pixels, true, r)?);
    }
    let mut total = 0.0;
    for (&r, pred) in ans_order.iter().zip(&predicted) {
        let truth = decode(&rle_text(ac, r, Some(""))?, pixels, false, r)?;
        let (t, p) = (rle::area(&truth), rle::area(pred));
        total += if t == 0 {
            if p == 0 { 1.0 } else { 0.0 }
        } else {
            let (inter, p) = if p == 0 {
                (t, pixels)
            } else {
                (rle::intersection(&truth, pred), p)
            };
            let iou = inter as f64 / (t + p - inter) as f64;
            TGS_THRESHOLDS.iter().filter(|&&th| iou > th).count() as f64 / 10.0
        };
    }
    Ok(total / ans_order.len() as f64)
}

/// 2·|a ∩ b| / (|a| + |b|), `both_empty` when both are empty.
fn dice(inter: usize, a: usize, b: usize, both_empty: f64) -> f64 {
    if a + b == 0 {
        both_empty
    } else {
        2.0 * inter as f64 / (a + b) as f64
    }
}

/// google-research-identify-contrails (GRADERS.md 4.15): both columns, the row count, ids
/// equal after sorting; `-` is an empty mask, a blank cell or a bad RLE a null score; the
/// Dice coefficient over all pixels of all records (NaN when both are empty everywhere).
pub(super) fn global_dice(
    id: &str,
    target: &str,
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    let (sub_order, ans_order, sc, ac) = aligned_target(id, target, submission, answers)?;
    let heights = sizes(answers, "height", &ans_order)?;
    let widths = sizes(answers, "width", &ans_order)?;
    let dash = |text: String| if text == "-" { String::new() } else { text };
    let (mut inter, mut sum_p, mut sum_t) = (0usize, 0usize, 0usize);
    for (i, (&s, &a)) in sub_order.iter().zip(&ans_order).enumerate() {
        let pixels = heights[i] * widths[i];
        let truth = decode(&dash(rle_text(ac, a, None)?), pixels, false, a)?;
        let pred = decode(&dash(rle_text(sc, s, None)?), pixels, false, s)?;
        inter += rle::intersection(&truth, &pred);
        sum_t += rle::area(&truth);
        sum_p += rle::area(&pred);
    }
    Ok(dice(inter, sum_p, sum_t, f64::NAN))
}

/// hubmap-kidney-segmentation: `id` and `predicted` present, the row count and the id set
/// (invalid otherwise); sorted by id and paired by position; blank = empty mask, a bad RLE a
/// null score; the mean per-image Dice (both empty: 1).
pub(super) fn mean_dice(
    id: &str,
    target: &str,
    submission: &Table,
    answers: &Table,
) -> GradeOutcome {
    require_columns(submission, &[id, target], "submission")?;
    same_rows(submission, answers)?;
    let (sub_ids, ans_ids) = (submission.column(id).unwrap(), answers.column(id).unwrap());
    let set = |c: &Column, n: usize| {
        let mut keys: Vec<_> = (0..n).map(|r| c.sort_key(r)).collect();
        keys.sort_by(|a, b| a.total_cmp(b));
        keys.dedup();
        keys
    };
    if set(sub_ids, submission.rows) != set(ans_ids, answers.rows) {
        return invalid(format!(
            "the `{id}` values differ from the test images': one row per test image"
        ));
    }
    let sub_order = submission.order_by(id).unwrap();
    let ans_order = answers.order_by(id).unwrap();
    let heights = sizes(answers, "height_pixels", &ans_order)?;
    let widths = sizes(answers, "width_pixels", &ans_order)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers
            .column("encoding")
            .ok_or_else(|| error("the answers lack `encoding`"))?,
    );
    let mut total = 0.0;
    for (i, (&s, &a)) in sub_order.iter().zip(&ans_order).enumerate() {
        let pixels = heights[i] * widths[i];
        let pred = decode(&rle_text(sc, s, Some(""))?, pixels, false, s)?;
        // MLE-bench fills the submission's blanks only: a blank answer is a null score.
        let truth = decode(&rle_text(ac, a, None)?, pixels, false, a)?;
        total += dice(
            rle::intersection(&truth, &pred),
            rle::area(&pred),
            rle::area(&truth),
            1.0,
        );
    }
    Ok(total / ans_order.len() as f64)
}

/// vesuvius-challenge-ink-detection (GRADERS.md 4.22): the row count, then row by row in file
/// order: exactly two columns including `Id` and `Predicted`, the same `Id` as the answers'
/// row (a null score otherwise), `Predicted` text (blank is invalid), valid RLE (rule
/// violations invalid); pixel F0.5 (0 when undefined), mean over rows.
pub(super) fn ink_f05(id: &str, target: &str, submission: &Table, answers: &Table) -> GradeOutcome {
    same_rows(submission, answers)?;
    if submission.names.len() != 2 {
        return invalid(format!(
            "the submission must have exactly two columns, `{id}` and `{target}`"
        ));
    }
    require_columns(submission, &[id, target], "submission")?;
    let all: Vec<usize> = (0..answers.rows).collect();
    let heights = sizes(answers, "height", &all)?;
    let widths = sizes(answers, "width", &all)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    let (si, ai) = (submission.column(id).unwrap(), answers.column(id).unwrap());
    let mut total = 0.0;
    for r in 0..answers.rows {
        if !si.cell(r).label_eq(&ai.cell(r)) {
            return Err(error(format!(
                "row {}: `{id}` differs from the test fragment's (keep the sample submission's rows)",
                r + 1
            )));
        }
        let text = match sc.cell(r) {
            Cell::Text(t) => t.to_string(),
            _ => {
                return invalid(format!(
                    "row {}: `{target}` must be an RLE text (write it even when empty)",
                    r + 1
                ));
            }
        };
        let pixels = heights[r] * widths[r];
        let pred = decode(&text, pixels, true, r)?;
        let truth = decode(&rle_text(ac, r, None)?, pixels, false, r)?;
        let tp = rle::intersection(&truth, &pred) as f64;
        let fp = rle::area(&pred) as f64 - tp;
        let fn_ = rle::area(&truth) as f64 - tp;
        let denominator = 1.25 * tp + 0.25 * fn_ + fp;
        total += if denominator == 0.0 {
            0.0
        } else {
            1.25 * tp / denominator
        };
    }
    Ok(total / answers.rows as f64)
}

/// One 2-D mask: its runs over the flat column-major index, and its size.
struct Slice {
    runs: Runs,
    height: usize,
    width: usize,
}

/// uw-madison-gi-tract-image-segmentation (GRADERS.md 4.13): `id`, `class` and `predicted`
/// present; no sort and no id check — row i is decoded at answers row i's size and compared
/// with it (extra rows on either side are ignored). Dice per row (both empty: NaN), mean
/// ignoring NaN; 3-D volumes per case and day (masks of one slice OR-ed, slices stacked in id
/// order, each table grouped by its own ids, volumes paired in order), the symmetric Hausdorff
/// distance of the voxel sets in coordinates scaled by the true volume's shape, ÷ √3 (both
/// empty: NaN; equal: 0; one empty or prediction > 10× the truth: 1), mean ignoring NaN.
/// Score = 0.4·Dice + 0.6·(1 − Hausdorff). Bad RLE or unequal slice sizes in a volume: null.
pub(super) fn dice_hausdorff(target: &str, submission: &Table, answers: &Table) -> GradeOutcome {
    require_columns(submission, &["id", "class", target], "submission")?;
    require_columns(
        answers,
        &["id", target, "image_height", "image_width"],
        "answers",
    )
    .map_err(as_error)?;
    let rows = submission.rows.min(answers.rows);
    let all: Vec<usize> = (0..rows).collect();
    let heights = sizes(answers, "image_height", &all)?;
    let widths = sizes(answers, "image_width", &all)?;
    let (sc, ac) = (
        submission.column(target).unwrap(),
        answers.column(target).unwrap(),
    );
    let mut predicted = Vec::with_capacity(rows);
    let mut truth = Vec::with_capacity(rows);
    let (mut dice_sum, mut dice_n) = (0.0, 0usize);
    for r in 0..rows {
        let pixels = heights[r] * widths[r];
        let p = decode(&rle_text(sc, r, Some(""))?, pixels, false, r)?;
        let t = decode(&rle_text(ac, r, Some(""))?, pixels, false, r)?;
        let d = dice(
            rle::intersection(&p, &t),
            rle::area(&p),
            rle::area(&t),
            f64::NAN,
        );
        if !d.is_nan() {
            dice_sum += d;
            dice_n += 1;
        }
        predicted.push(Slice {
            runs: p,
            height: heights[r],
            width: widths[r],
        });
        truth.push(Slice {
            runs: t,
            height: heights[r],
            width: widths[r],
        });
    }
    let ids = |table: &Table| -> Vec<String> {
        let c = table.column("id").unwrap();
        (0..rows)
            .map(|r| super::cell_text(c, r, Some("nan")).unwrap_or_default())
            .collect()
    };
    let sub_volumes = volumes(predicted, &ids(submission))?;
    let ans_volumes = volumes(truth, &ids(answers))?;
    let (mut h_sum, mut h_n) = (0.0, 0usize);
    for (p, t) in sub_volumes.iter().zip(&ans_volumes) {
        let h = hausdorff(p, t);
        if !h.is_nan() {
            h_sum += h;
            h_n += 1;
        }
    }
    let mean = |sum: f64, n: usize| if n == 0 { f64::NAN } else { sum / n as f64 };
    Ok(0.4 * mean(dice_sum, dice_n) + 0.6 * (1.0 - mean(h_sum, h_n)))
}

/// A 3-D volume: `depth` slices of `height × width`, as the set voxels (z, row, column).
struct Volume {
    shape: [usize; 3],
    voxels: Vec<[usize; 3]>,
}

/// Group slices into volumes as MLE-bench does: sorted (stably) by id, masks of one id OR-ed,
/// slice ids grouped by the text before `_slice_`, days and slices in order of first
/// appearance.
fn volumes(slices: Vec<Slice>, ids: &[String]) -> Result<Vec<Volume>, Failure> {
    let mut order: Vec<usize> = (0..slices.len()).collect();
    order.sort_by(|a, b| ids[*a].cmp(&ids[*b]));
    let mut days: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut day_of: HashMap<&str, usize> = HashMap::new();
    let mut merged: Vec<Slice> = Vec::new();
    let mut slice_of: HashMap<&str, usize> = HashMap::new();
    for i in order {
        let id = ids[i].as_str();
        let s = &slices[i];
        match slice_of.get(id) {
            Some(&m) => {
                let into = &mut merged[m];
                if (into.height, into.width) != (s.height, s.width) {
                    return Err(error(format!("slice {id} has masks of different sizes")));
                }
                into.runs = union(&into.runs, &s.runs);
            }
            None => {
                slice_of.insert(id, merged.len());
                let day = id.split("_slice_").next().unwrap_or(id);
                let d = *day_of.entry(day).or_insert_with(|| {
                    days.push((day, Vec::new()));
                    days.len() - 1
                });
                days[d].1.push(merged.len());
                merged.push(Slice {
                    runs: s.runs.clone(),
                    height: s.height,
                    width: s.width,
                });
            }
        }
    }
    days.into_iter()
        .map(|(day, members)| {
            let first = &merged[members[0]];
            let (height, width) = (first.height, first.width);
            let mut voxels = Vec::new();
            for (z, &m) in members.iter().enumerate() {
                let s = &merged[m];
                if (s.height, s.width) != (height, width) {
                    return Err(error(format!("the slices of {day} have different sizes")));
                }
                for &(a, b) in &s.runs {
                    // Column-major: flat index k is row k mod height, column k div height.
                    voxels.extend((a..b).map(|k| [z, k % height, k / height]));
                }
            }
            voxels.sort_unstable();
            Ok(Volume {
                shape: [members.len(), height, width],
                voxels,
            })
        })
        .collect()
}

/// The union of two sorted, disjoint run lists (sorted, disjoint, adjacent runs merged).
fn union(a: &[(usize, usize)], b: &[(usize, usize)]) -> Runs {
    let mut all: Vec<(usize, usize)> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    let mut out: Runs = Vec::with_capacity(all.len());
    for (low, high) in all {
        match out.last_mut() {
            Some(last) if low <= last.1 => last.1 = last.1.max(high),
            _ => out.push((low, high)),
        }
    }
    out
}

/// MLE-bench's normalised symmetric Hausdorff distance between two volumes.
fn hausdorff(predicted: &Volume, truth: &Volume) -> f64 {
    let (p, t) = (predicted.voxels.len(), truth.voxels.len());
    if p == 0 && t == 0 {
        return f64::NAN;
    }
    if predicted.shape == truth.shape && predicted.voxels == truth.voxels {
        return 0.0;
    }
    if p == 0 || t == 0 || p > 10 * t {
        return 1.0;
    }
    let scale = truth.shape.map(|s| 1.0 / s as f64);
    let d1 = directed_hausdorff(&truth.voxels, &predicted.voxels, scale);
    let d2 = directed_hausdorff(&predicted.voxels, &truth.voxels, scale);
    d1.max(d2) / 3f64.sqrt()
}

/// max over `from` of the distance to the nearest voxel of `to`, each axis scaled by
/// `scale`: an exact separable squared distance transform (Felzenszwalb–Huttenlocher with
/// per-axis weights) over the bounding box of both sets.
fn directed_hausdorff(from: &[[usize; 3]], to: &[[usize; 3]], scale: [f64; 3]) -> f64 {
    let mut low = [usize::MAX; 3];
    let mut high = [0usize; 3];
    for v in from.iter().chain(to) {
        for a in 0..3 {
            low[a] = low[a].min(v[a]);
            high[a] = high[a].max(v[a]);
        }
    }
    let dims: [usize; 3] = std::array::from_fn(|a| high[a] - low[a] + 1);
    let index =
        |v: &[usize; 3]| ((v[0] - low[0]) * dims[1] + (v[1] - low[1])) * dims[2] + (v[2] - low[2]);
    let mut field = vec![f64::INFINITY; dims[0] * dims[1] * dims[2]];
    for v in to {
        field[index(v)] = 0.0;
    }
    let strides = [dims[1] * dims[2], dims[2], 1];
    let mut line = Vec::new();
    let mut out = Vec::new();
    for axis in 0..3 {
        let weight = scale[axis] * scale[axis];
        let n = dims[axis];
        let others: Vec<usize> = (0..3).filter(|&a| a != axis).collect();
        for i in 0..dims[others[0]] {
            for j in 0..dims[others[1]] {
                let base = i * strides[others[0]] + j * strides[others[1]];
                line.clear();
                line.extend((0..n).map(|k| field[base + k * strides[axis]]));
                lower_envelope(&line, weight, &mut out);
                for (k, value) in out.iter().enumerate() {
                    field[base + k * strides[axis]] = *value;
                }
            }
        }
    }
    from.iter()
        .map(|v| field[index(v)])
        .fold(0.0, f64::max)
        .sqrt()
}

/// 1-D squared distance transform: out[p] = min_q f[q] + weight·(p − q)² (infinite sites
/// skipped; all infinite gives infinity).
fn lower_envelope(f: &[f64], weight: f64, out: &mut Vec<f64>) {
    out.clear();
    let n = f.len();
    let mut sites: Vec<usize> = Vec::with_capacity(n);
    let mut bounds: Vec<f64> = Vec::with_capacity(n + 1);
    // Where the parabolas rooted at sites q < r meet.
    let meet = |q: usize, r: usize| -> f64 {
        let (qf, rf) = (q as f64, r as f64);
        ((f[r] + weight * rf * rf) - (f[q] + weight * qf * qf)) / (2.0 * weight * (rf - qf))
    };
    for (q, value) in f.iter().enumerate() {
        if value.is_infinite() {
            continue;
        }
        while let Some(&last) = sites.last() {
            let s = meet(last, q);
            if s <= *bounds.last().unwrap() {
                sites.pop();
                bounds.pop();
            } else {
                bounds.push(s);
                break;
            }
        }
        if sites.is_empty() {
            bounds.clear();
            bounds.push(f64::NEG_INFINITY);
        }
        sites.push(q);
    }
    if sites.is_empty() {
        out.resize(n, f64::INFINITY);
        return;
    }
    bounds.push(f64::INFINITY);
    let mut k = 0;
    for p in 0..n {
        while bounds[k + 1] < p as f64 {
            k += 1;
        }
        let q = sites[k];
        let d = p as f64 - q as f64;
        out.push(f[q] + weight * d * d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(from: &[[usize; 3]], to: &[[usize; 3]], scale: [f64; 3]) -> f64 {
        from.iter()
            .map(|a| {
                to.iter()
                    .map(|b| {
                        (0..3)
                            .map(|i| ((a[i] as f64 - b[i] as f64) * scale[i]).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let mut seed = 7u64;
        let mut next = |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % m
        };
        for _ in 0..30 {
            let a: Vec<[usize; 3]> = (0..1 + next(40))
                .map(|_| [next(6), next(20), next(15)])
                .collect();
            let b: Vec<[usize; 3]> = (0..1 + next(40))
                .map(|_| [next(6), next(20), next(15)])
                .collect();
            let scale = [1.0 / 6.0, 1.0 / 266.0, 1.0 / 310.0];
            let (x, y) = (directed_hausdorff(&a, &b, scale), brute(&a, &b, scale));
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }

    #[test]
    fn hausdorff_edge_cases() {
        let v = |voxels: Vec<[usize; 3]>| Volume {
            shape: [2, 4, 4],
            voxels,
        };
        assert!(hausdorff(&v(vec![]), &v(vec![])).is_nan());
        assert_eq!(hausdorff(&v(vec![[0, 1, 1]]), &v(vec![[0, 1, 1]])), 0.0);
        assert_eq!(hausdorff(&v(vec![]), &v(vec![[0, 1, 1]])), 1.0);
        let far = hausdorff(&v(vec![[1, 3, 3]]), &v(vec![[0, 0, 0]]));
        let expected = ((0.5f64).powi(2) + 2.0 * (0.75f64).powi(2)).sqrt() / 3f64.sqrt();
        assert!((far - expected).abs() < 1e-15);
    }
}
