//! Metrics with the semantics of the libraries MLE-bench's graders call (scikit-learn 1.5,
//! numpy, scipy). Each returns `Err` where the library raises (which MLE-bench reports as a
//! null score) and NaN where the library returns NaN.

/// Why a metric could not be computed (the library would raise).
pub type MetricResult = Result<f64, String>;

/// scikit-learn's `log_loss` clipping: float64 machine epsilon.
pub const LOG_LOSS_EPS: f64 = f64::EPSILON;

fn same_length(a: usize, b: usize) -> Result<(), String> {
    if a != b {
        return Err(format!("{a} predictions for {b} true values"));
    }
    if a == 0 {
        return Err("no rows to score".into());
    }
    Ok(())
}

fn no_nan(values: &[f64], what: &str) -> Result<(), String> {
    if values.iter().any(|v| v.is_nan()) {
        return Err(format!("{what} contain NaN"));
    }
    Ok(())
}

/// Fraction of rows where `equal(i)` holds.
pub fn accuracy(rows: usize, equal: impl Fn(usize) -> bool) -> MetricResult {
    if rows == 0 {
        return Err("no rows to score".into());
    }
    Ok((0..rows).filter(|&i| equal(i)).count() as f64 / rows as f64)
}

/// Binary ROC AUC: the trapezoidal area under the ROC curve, which equals the Mann–Whitney
/// probability with ties counted as ½. `truth` holds two distinct values; the greater is
/// the positive class.
/// The `p`-th quantile (0 ≤ p ≤ 1) by numpy's default linear interpolation; NaN for no values.
pub fn quantile_linear(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = p * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = (low + 1).min(sorted.len() - 1);
    sorted[low] + (position - low as f64) * (sorted[high] - sorted[low])
}

/// Great-circle distance in metres between two (latitude, longitude) points in degrees, on a
/// sphere of radius 6,371,000 m.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dlat = p2 - p1;
    let dlon = (lon2 - lon1).to_radians();
    let a = (dlat / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

/// Label-weighted label-ranking average precision (freesound's lwlrap): scikit-learn's LRAP
/// with each sample weighted by its number of positive labels, over the samples that have one.
/// For a positive label r: precision = |{positive j : s_j ≥ s_r}| / |{j : s_j ≥ s_r}| (ties
/// count as ranked ahead); a sample whose labels are all positive scores 1.
pub fn lwlrap(truth: &[Vec<bool>], scores: &[Vec<f64>]) -> MetricResult {
    same_length(scores.len(), truth.len())?;
    let (mut weighted, mut weights) = (0.0, 0.0);
    for (labels, s) in truth.iter().zip(scores) {
        same_length(s.len(), labels.len())?;
        no_nan(s, "predictions")?;
        let positives: Vec<usize> = (0..labels.len()).filter(|&j| labels[j]).collect();
        if positives.is_empty() {
            continue;
        }
        let value = if positives.len() == labels.len() {
            1.0
        } else {
            positives
                .iter()
                .map(|&r| {
                    let rank = s.iter().filter(|&&x| x >= s[r]).count() as f64;
                    let hits = positives.iter().filter(|&&j| s[j] >= s[r]).count() as f64;
                    hits / rank
                })
                .sum::<f64>()
                / positives.len() as f64
        };
        weighted += positives.len() as f64 * value;
        weights += positives.len() as f64;
    }
    if weights == 0.0 {
        return Err("no sample has a positive label".into());
    }
    Ok(weighted / weights)
}

pub fn roc_auc(truth: &[f64], scores: &[f64]) -> MetricResult {
    same_length(scores.len(), truth.len())?;
    no_nan(truth, "true labels")?;
    no_nan(scores, "predictions")?;
    let mut classes: Vec<f64> = truth.to_vec();
    classes.sort_by(f64::total_cmp);
    classes.dedup();
    if classes.len() != 2 {
        return Err(format!(
            "ROC AUC needs exactly two classes in the truth, found {}",
            classes.len()
        ));
    }
    let positive = classes[1];
    // Mann–Whitney from average ranks (ties share their mean rank, so they count ½).
    let ranks = average_ranks(scores);
    let n_pos = truth.iter().filter(|t| **t == positive).count() as f64;
    let n_neg = truth.len() as f64 - n_pos;
    let rank_sum: f64 = truth
        .iter()
        .zip(&ranks)
        .filter(|(t, _)| **t == positive)
        .map(|(_, r)| r)
        .sum();
    Ok((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// Multi-class log loss: mean over rows of −Σ_c y_c·ln(clip(p_c, eps, 1−eps)), rows not
/// renormalised (scikit-learn ≥ 1.5 only warns). `truth` and `probs` are row-major
/// `rows × classes`.
pub fn log_loss(truth: &[f64], probs: &[f64], classes: usize, eps: f64) -> MetricResult {
    same_length(probs.len(), truth.len())?;
    if classes == 0 || !truth.len().is_multiple_of(classes) {
        return Err("log loss needs a rows × classes matrix".into());
    }
    no_nan(probs, "predictions")?;
    no_nan(truth, "true labels")?;
    let rows = truth.len() / classes;
    let mut total = 0.0;
    for r in 0..rows {
        let mut row = 0.0;
        for c in 0..classes {
            let y = truth[r * classes + c];
            if y != 0.0 {
                let p = probs[r * classes + c].clamp(eps, 1.0 - eps);
                row -= y * p.ln();
            }
        }
        total += row;
    }
    Ok(total / rows as f64)
}

/// Binary log loss of P(positive) against 0/1 truth (scikit-learn's 1-D form).
pub fn binary_log_loss(truth: &[f64], probs: &[f64], eps: f64) -> MetricResult {
    same_length(probs.len(), truth.len())?;
    let mut t = Vec::with_capacity(truth.len() * 2);
    let mut p = Vec::with_capacity(truth.len() * 2);
    for (y, q) in truth.iter().zip(probs) {
        t.extend([1.0 - y, *y]);
        p.extend([1.0 - q, *q]);
    }
    log_loss(&t, &p, 2, eps)
}

pub fn rmse(truth: &[f64], preds: &[f64]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    no_nan(preds, "predictions")?;
    no_nan(truth, "true values")?;
    let mse = truth
        .iter()
        .zip(preds)
        .map(|(t, p)| (t - p) * (t - p))
        .sum::<f64>()
        / truth.len() as f64;
    Ok(mse.sqrt())
}

pub fn mae(truth: &[f64], preds: &[f64]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    no_nan(preds, "predictions")?;
    no_nan(truth, "true values")?;
    Ok(truth
        .iter()
        .zip(preds)
        .map(|(t, p)| (t - p).abs())
        .sum::<f64>()
        / truth.len() as f64)
}

/// Root mean squared log error; scikit-learn 1.5 refuses any negative value.
pub fn rmsle(truth: &[f64], preds: &[f64]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    no_nan(preds, "predictions")?;
    if truth.iter().chain(preds).any(|v| *v < 0.0) {
        return Err("RMSLE cannot be used when targets contain negative values".into());
    }
    let msle = truth
        .iter()
        .zip(preds)
        .map(|(t, p)| (p.ln_1p() - t.ln_1p()).powi(2))
        .sum::<f64>()
        / truth.len() as f64;
    Ok(msle.sqrt())
}

/// Cohen's kappa with quadratic weights over label *positions* in the sorted union of both
/// arrays' labels (scikit-learn's definition).
pub fn quadratic_weighted_kappa(truth: &[f64], preds: &[f64]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    no_nan(preds, "predictions")?;
    no_nan(truth, "true values")?;
    let mut labels: Vec<f64> = truth.iter().chain(preds).copied().collect();
    labels.sort_by(f64::total_cmp);
    labels.dedup();
    let k = labels.len();
    let index = |v: f64| labels.binary_search_by(|l| l.total_cmp(&v)).unwrap();
    let mut observed = vec![0f64; k * k];
    for (t, p) in truth.iter().zip(preds) {
        observed[index(*t) * k + index(*p)] += 1.0;
    }
    let n = truth.len() as f64;
    let row_sums: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| observed[i * k + j]).sum())
        .collect();
    let col_sums: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| observed[i * k + j]).sum())
        .collect();
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            let w = ((i as f64) - (j as f64)).powi(2);
            num += w * observed[i * k + j];
            den += w * row_sums[i] * col_sums[j] / n;
        }
    }
    Ok(1.0 - num / den)
}

/// Pearson correlation (scipy): NaN for constant input or any NaN; error under 2 points.
pub fn pearson(x: &[f64], y: &[f64]) -> MetricResult {
    if x.len() != y.len() {
        return Err(format!(
            "{} predictions for {} true values",
            y.len(),
            x.len()
        ));
    }
    if x.len() < 2 {
        return Err("correlation needs at least two points".into());
    }
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return Ok(f64::NAN);
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return Ok(f64::NAN);
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Average ranks (1-based; ties share their mean).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    let mut ranks = vec![0f64; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        for k in i..=j {
            ranks[order[k]] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman correlation (scipy): Pearson of average ranks; NaN for constant input or NaN.
pub fn spearman(x: &[f64], y: &[f64]) -> MetricResult {
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return Ok(f64::NAN);
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// scikit-learn's `average_precision_score` for binary labels: Σ (R_n − R_{n−1})·P_n over the
/// distinct scores in decreasing order (tied scores enter together), without interpolation.
/// Without positives it is 0 (scikit-learn warns and sets the recall to 1); NaN scores raise.
pub fn average_precision(truth: &[bool], scores: &[f64]) -> MetricResult {
    same_length(scores.len(), truth.len())?;
    no_nan(scores, "scores")?;
    let positives = truth.iter().filter(|t| **t).count();
    if positives == 0 {
        return Ok(0.0);
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let (mut tp, mut seen, mut recall, mut total) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            tp += usize::from(truth[order[j]]);
            seen += 1;
            j += 1;
        }
        let r = tp as f64 / positives as f64;
        total += (r - recall) * (tp as f64 / seen as f64);
        recall = r;
        i = j;
    }
    Ok(total)
}

/// Edit distance (unit-cost insert, delete, substitute) between two strings, on Unicode code
/// points (python-Levenshtein's `distance`).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    edit_distance(&a, &b)
}

/// Word-set Jaccard of two texts after lower-casing and splitting on runs of whitespace;
/// 0 when both are empty (the chaii grader).
pub fn word_jaccard(a: &str, b: &str) -> f64 {
    let set = |s: &str| {
        let lower = s.to_lowercase();
        let mut words: Vec<String> = lower.split_whitespace().map(str::to_string).collect();
        words.sort_unstable();
        words.dedup();
        words
    };
    let (a, b) = (set(a), set(b));
    let common = a.iter().filter(|w| b.binary_search(w).is_ok()).count();
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f64 / union as f64
    }
}

/// Macro F1 over the union of true and predicted labels: per label precision and recall
/// (0/0 → 0), F1 = 0 when both are 0, unweighted mean (scikit-learn's `f1_score(average=
/// "macro")`).
pub fn macro_f1(truth: &[i64], preds: &[i64]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<i64, (f64, f64, f64)> = BTreeMap::new(); // tp, fp, fn
    for (t, p) in truth.iter().zip(preds) {
        if t == p {
            counts.entry(*t).or_default().0 += 1.0;
        } else {
            counts.entry(*p).or_default().1 += 1.0;
            counts.entry(*t).or_default().2 += 1.0;
        }
    }
    let total: f64 = counts
        .values()
        .map(|(tp, fp, fneg)| {
            let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
            let recall = if tp + fneg > 0.0 {
                tp / (tp + fneg)
            } else {
                0.0
            };
            if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            }
        })
        .sum();
    Ok(total / counts.len() as f64)
}

/// Mean average precision at `k`: per row, the predictions truncated to `k`; a prediction is a
/// hit if it is true and not predicted earlier; precision at each hit summed and divided by
/// min(|truth|, k); 0 for an empty truth.
pub fn map_at_k(truth: &[Vec<String>], preds: &[Vec<String>], k: usize) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    let total: f64 = truth
        .iter()
        .zip(preds)
        .map(|(t, p)| {
            if t.is_empty() {
                return 0.0;
            }
            let p = &p[..p.len().min(k)];
            let (mut hits, mut sum) = (0.0, 0.0);
            for (i, guess) in p.iter().enumerate() {
                if t.contains(guess) && !p[..i].contains(guess) {
                    hits += 1.0;
                    sum += hits / (i + 1) as f64;
                }
            }
            sum / t.len().min(k) as f64
        })
        .sum();
    Ok(total / truth.len() as f64)
}

/// Micro F1 over label sets with the vocabulary fixed by the truth: predicted labels outside
/// it are dropped. 2·TP / (2·TP + FP + FN), pooled over rows.
pub fn micro_f1_sets(truth: &[Vec<String>], preds: &[Vec<String>]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    let mut vocabulary: Vec<&str> = truth.iter().flatten().map(String::as_str).collect();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
    for (t, p) in truth.iter().zip(preds) {
        let mut p: Vec<&str> = p
            .iter()
            .map(String::as_str)
            .filter(|l| vocabulary.binary_search(l).is_ok())
            .collect();
        p.sort_unstable();
        p.dedup();
        let mut t: Vec<&str> = t.iter().map(String::as_str).collect();
        t.sort_unstable();
        t.dedup();
        let common = p.iter().filter(|l| t.binary_search(l).is_ok()).count() as f64;
        tp += common;
        fp += p.len() as f64 - common;
        fneg += t.len() as f64 - common;
    }
    let denominator = 2.0 * tp + fp + fneg;
    Ok(if denominator == 0.0 {
        0.0
    } else {
        2.0 * tp / denominator
    })
}

/// Matthews correlation of binary labels; 0 when the denominator is 0 (scikit-learn).
pub fn matthews(truth: &[f64], preds: &[f64]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    let (mut tp, mut tn, mut fp, mut fneg) = (0f64, 0f64, 0f64, 0f64);
    for (t, p) in truth.iter().zip(preds) {
        match (*t != 0.0, *p != 0.0) {
            (true, true) => tp += 1.0,
            (false, false) => tn += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fneg += 1.0,
        }
    }
    let denominator = ((tp + fp) * (tp + fneg) * (tn + fp) * (tn + fneg)).sqrt();
    Ok(if denominator == 0.0 {
        0.0
    } else {
        (tp * tn - fp * fneg) / denominator
    })
}

/// Mean angle (radians) between true and predicted directions given as (azimuth, zenith).
pub fn mean_angular_error(
    true_azimuth: &[f64],
    true_zenith: &[f64],
    azimuth: &[f64],
    zenith: &[f64],
) -> MetricResult {
    same_length(azimuth.len(), true_azimuth.len())?;
    let unit = |a: f64, z: f64| (z.sin() * a.cos(), z.sin() * a.sin(), z.cos());
    let total: f64 = (0..azimuth.len())
        .map(|i| {
            let (x1, y1, z1) = unit(true_azimuth[i], true_zenith[i]);
            let (x2, y2, z2) = unit(azimuth[i], zenith[i]);
            (x1 * x2 + y1 * y2 + z1 * z2).clamp(-1.0, 1.0).acos().abs()
        })
        .sum();
    Ok(total / azimuth.len() as f64)
}

/// ALASKA2's weighted ROC AUC: the ROC curve (one vertex per distinct score) split at TPR 0.4;
/// the area below TPR 0.4 weighs 2, the area above weighs 1, normalised by 2·0.4 + 0.6.
pub fn weighted_auc(truth: &[f64], scores: &[f64]) -> MetricResult {
    same_length(scores.len(), truth.len())?;
    no_nan(scores, "predictions")?;
    let positives = truth.iter().filter(|t| **t == 1.0).count() as f64;
    let negatives = truth.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Err("the weighted AUC needs both classes in the truth".into());
    }
    // ROC vertices from the highest score down, one per distinct score.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let mut curve = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (n, &i) in order.iter().enumerate() {
        if truth[i] == 1.0 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(n + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            curve.push((fp / negatives, tp / positives));
        }
    }
    const SPLIT: f64 = 0.4;
    if !curve.iter().any(|(_, t)| *t == SPLIT) {
        let k = curve
            .iter()
            .position(|(_, t)| *t > SPLIT)
            .expect("the curve ends at TPR 1");
        let ((f0, t0), (f1, t1)) = (curve[k - 1], curve[k]);
        let f = f0 + (f1 - f0) * (SPLIT - t0) / (t1 - t0);
        curve.insert(k, (f, SPLIT));
    }
    let area = |points: &[(f64, f64)]| -> f64 {
        points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum()
    };
    let mut low: Vec<(f64, f64)> = curve.iter().copied().filter(|(_, t)| *t <= SPLIT).collect();
    low.push((1.0, SPLIT));
    let mut high: Vec<(f64, f64)> = curve
        .iter()
        .copied()
        .filter(|(_, t)| *t >= SPLIT)
        .map(|(f, t)| (f, t - SPLIT))
        .collect();
    high.push((1.0, 1.0 - SPLIT));
    Ok((2.0 * area(&low) + area(&high)) / (2.0 * SPLIT + (1.0 - SPLIT)))
}

/// Edit distance between two sequences of any comparable items.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = (previous[j] + usize::from(x != y))
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Kendall tau in Kaggle's pooled form: 1 − 4·Σ inversions / Σ n(n−1) over all rows, where a
/// row's inversions count the pairs of true items that the prediction orders the other way.
/// Every prediction must be a permutation of its truth.
pub fn pooled_kendall_tau(truth: &[Vec<String>], preds: &[Vec<String>]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    let (mut inversions, mut pairs) = (0f64, 0f64);
    for (t, p) in truth.iter().zip(preds) {
        let position: std::collections::HashMap<&str, usize> =
            p.iter().enumerate().map(|(i, x)| (x.as_str(), i)).collect();
        let ranks: Vec<usize> = t
            .iter()
            .map(|x| {
                position
                    .get(x.as_str())
                    .copied()
                    .ok_or_else(|| format!("the prediction lacks the true item {x:?}"))
            })
            .collect::<Result<_, _>>()?;
        for i in 0..ranks.len() {
            for j in i + 1..ranks.len() {
                if ranks[i] > ranks[j] {
                    inversions += 1.0;
                }
            }
        }
        let n = t.len() as f64;
        pairs += n * (n - 1.0);
    }
    if pairs == 0.0 {
        return Err("no pairs to rank".into());
    }
    Ok(1.0 - 4.0 * inversions / pairs)
}

/// Probabilistic F1 (β = 1): predictions clipped to [0, 1]; cTP and cFP are the summed
/// predictions over positive and negative rows; 0 when precision or recall is 0 (or 0/0).
pub fn probabilistic_f1(truth: &[f64], preds: &[f64]) -> MetricResult {
    same_length(preds.len(), truth.len())?;
    let (mut ctp, mut cfp, mut positives) = (0.0, 0.0, 0.0);
    for (t, p) in truth.iter().zip(preds) {
        let p = p.clamp(0.0, 1.0);
        if *t == 1.0 {
            ctp += p;
            positives += 1.0;
        } else {
            cfp += p;
        }
    }
    let precision = ctp / (ctp + cfp);
    let recall = ctp / positives;
    Ok(if precision > 0.0 && recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    })
}

/// Python's `round(x, digits)` on a Python float (correctly rounded, ties to even).
pub fn round_python(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// Python's `round(x, 5)` on a Python float: the exact binary value correctly rounded to 5
/// decimals (ties to even), which is what Rust's formatting does.
pub fn round5_python(x: f64) -> f64 {
    round_python(x, 5)
}

/// numpy's `round(x, 5)` on a float64: scale by 10⁵, round half to even, scale back.
pub fn round5_numpy(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let scaled = x * 1e5;
    if !scaled.is_finite() {
        return x;
    }
    scaled.round_ties_even() / 1e5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_matches_scikit_learn_including_ties() {
        // scikit-learn's documented example: 0.8333…
        let ap = average_precision(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert!((ap - 0.833_333_333_333_333_4).abs() < 1e-12);
        // Tied scores enter together: one step to recall 1 at precision 2/3.
        let tied = average_precision(&[true, false, true], &[0.5, 0.5, 0.5]).unwrap();
        assert!((tied - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(average_precision(&[false, false], &[0.2, 0.9]), Ok(0.0));
        assert!(average_precision(&[true], &[f64::NAN]).is_err());
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn roc_auc_counts_ties_as_half() {
        // scikit-learn's documented example: 0.75.
        assert!(close(
            roc_auc(&[0., 0., 1., 1.], &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            0.75
        ));
        // One tie across classes: (3 + 0.5) / 4.
        assert!(close(
            roc_auc(&[0., 0., 1., 1.], &[0.1, 0.5, 0.5, 0.8]).unwrap(),
            0.875
        ));
        // Constant predictions: 0.5; perfect: 1; reversed: 0.
        assert!(close(roc_auc(&[0., 1., 0., 1.], &[0.3; 4]).unwrap(), 0.5));
        assert!(close(roc_auc(&[0., 1.], &[0.2, 0.9]).unwrap(), 1.0));
        assert!(close(roc_auc(&[0., 1.], &[0.9, 0.2]).unwrap(), 0.0));
        // The greater label is positive, whatever the labels are.
        assert!(close(roc_auc(&[3., 7.], &[0.2, 0.9]).unwrap(), 1.0));
        assert!(
            roc_auc(&[1., 1.], &[0.2, 0.9])
                .unwrap_err()
                .contains("two classes")
        );
        assert!(
            roc_auc(&[0., 1.], &[0.2, f64::NAN])
                .unwrap_err()
                .contains("NaN")
        );
    }

    #[test]
    fn log_loss_clips_at_machine_epsilon_without_renormalising() {
        // Perfect one-hot predictions: −ln(1−eps) ≈ eps.
        let perfect = log_loss(&[1., 0., 0., 1.], &[1., 0., 0., 1.], 2, LOG_LOSS_EPS).unwrap();
        assert!(perfect < 1e-15);
        // A confident miss is bounded by −ln(eps) ≈ 36.04.
        let miss = log_loss(&[1., 0.], &[0., 1.], 2, LOG_LOSS_EPS).unwrap();
        assert!(close(miss, -(LOG_LOSS_EPS.ln())));
        // Uniform over 3 classes: ln 3.
        let uniform = log_loss(&[0., 1., 0.], &[1. / 3.; 3], 3, LOG_LOSS_EPS).unwrap();
        assert!(close(uniform, 3f64.ln()));
        // Rows are not renormalised: p = 0.5 on the true class of a row summing to 2.
        let unnormalised = log_loss(&[1., 0.], &[0.5, 1.5], 2, LOG_LOSS_EPS).unwrap();
        assert!(close(unnormalised, 2f64.ln()));
        let binary = binary_log_loss(&[1., 0.], &[0.8, 0.4], LOG_LOSS_EPS).unwrap();
        assert!(close(binary, -(0.8f64.ln() + 0.6f64.ln()) / 2.0));
    }

    #[test]
    fn regression_metrics_and_their_refusals() {
        assert!(close(
            rmse(&[1., 2., 3.], &[1., 2., 5.]).unwrap(),
            (4f64 / 3.).sqrt()
        ));
        assert!(close(mae(&[1., 2., 3.], &[2., 2., 1.]).unwrap(), 1.0));
        assert!(close(rmsle(&[0., 1.], &[0., 1.]).unwrap(), 0.0));
        assert!(rmsle(&[0., 1.], &[-0.5, 1.]).is_err());
        assert!(rmse(&[1.], &[f64::NAN]).is_err());
        assert!(
            rmse(&[1., 2.], &[1.])
                .unwrap_err()
                .contains("1 predictions for 2")
        );
    }

    #[test]
    fn kappa_uses_label_positions() {
        assert!(close(
            quadratic_weighted_kappa(&[0., 1., 2.], &[0., 1., 2.]).unwrap(),
            1.0
        ));
        let spaced = quadratic_weighted_kappa(&[0., 2., 4., 4.], &[0., 4., 2., 4.]).unwrap();
        let dense = quadratic_weighted_kappa(&[0., 1., 2., 2.], &[0., 2., 1., 2.]).unwrap();
        assert!(close(spaced, dense));
        // Symmetric in its arguments.
        let a = quadratic_weighted_kappa(&[0., 1., 1., 3.], &[1., 1., 2., 3.]).unwrap();
        let b = quadratic_weighted_kappa(&[1., 1., 2., 3.], &[0., 1., 1., 3.]).unwrap();
        assert!(close(a, b));
    }

    #[test]
    fn correlations_return_nan_where_scipy_does() {
        assert!(close(pearson(&[1., 2., 3.], &[2., 4., 6.]).unwrap(), 1.0));
        assert!(pearson(&[1., 2., 3.], &[5., 5., 5.]).unwrap().is_nan());
        assert!(pearson(&[1.], &[1.]).is_err());
        assert!(close(
            spearman(&[1., 2., 3., 4.], &[1., 4., 9., 16.]).unwrap(),
            1.0
        ));
        assert_eq!(average_ranks(&[10., 20., 10.]), vec![1.5, 3.0, 1.5]);
    }

    #[test]
    fn macro_f1_counts_every_label_of_either_side() {
        assert!(close(macro_f1(&[1, 2, 3], &[1, 2, 3]).unwrap(), 1.0));
        // Label 9 is only predicted: it adds an F1 of 0 to the mean.
        let f = macro_f1(&[1, 1, 2], &[1, 9, 2]).unwrap();
        let f1_label1 = 2.0 * 1.0 * 0.5 / 1.5;
        assert!(close(f, (f1_label1 + 1.0 + 0.0) / 3.0));
    }

    #[test]
    fn map_at_k_and_set_f1() {
        let t = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        // Hit at position 2 of a single-answer row: 1/2. A repeated hit counts once.
        assert!(close(map_at_k(&[t("a")], &[t("x a a")], 5).unwrap(), 0.5));
        assert!(close(map_at_k(&[t("a")], &[t("a a")], 5).unwrap(), 1.0));
        // Beyond k: no credit.
        assert!(close(
            map_at_k(&[t("a")], &[t("1 2 3 4 5 a")], 5).unwrap(),
            0.0
        ));
        // Two answers, both found at 1 and 3: (1/1 + 2/3) / 2.
        assert!(close(
            map_at_k(&[t("a b")], &[t("a x b")], 5).unwrap(),
            (1.0 + 2.0 / 3.0) / 2.0
        ));
        // Unknown predicted labels are dropped, not false positives.
        let f = micro_f1_sets(&[t("a b"), t("c")], &[t("a zzz"), t("b")]).unwrap();
        // tp 1 (a), fp 1 (b in row 2), fn 2 (b row 1, c row 2): 2/(2+1+2).
        assert!(close(f, 2.0 / 5.0));
    }

    #[test]
    fn weighted_auc_of_perfect_and_constant_scores() {
        assert!(close(
            weighted_auc(&[0., 1., 0., 1.], &[0.1, 0.9, 0.2, 0.8]).unwrap(),
            1.0
        ));
        // Constant scores: the diagonal; band 1 area 0.4·1 − 0.4²/2·… computed exactly:
        // low = ∫ min(f, 0.4) df = 0.4 − 0.08 = 0.32; high = ∫ max(f − 0.4, 0) df = 0.18.
        let v = weighted_auc(&[0., 1., 0., 1.], &[0.5; 4]).unwrap();
        assert!(close(v, (2.0 * 0.32 + 0.18) / 1.4), "{v}");
        assert!(weighted_auc(&[1., 1.], &[0.5, 0.6]).is_err());
    }

    #[test]
    fn kendall_tau_and_sequence_distance() {
        let v = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(close(
            pooled_kendall_tau(&[v("a b c")], &[v("a b c")]).unwrap(),
            1.0
        ));
        // Reversed: every one of the 3 pairs inverted: 1 − 4·3/6 = −1.
        assert!(close(
            pooled_kendall_tau(&[v("a b c")], &[v("c b a")]).unwrap(),
            -1.0
        ));
        assert!(pooled_kendall_tau(&[v("a b")], &[v("a x")]).is_err());
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 3]), 1);
        assert_eq!(edit_distance::<i64>(&[], &[4, 5]), 2);
    }

    #[test]
    fn probabilistic_f1_edges() {
        assert!(close(probabilistic_f1(&[1., 0.], &[1., 0.]).unwrap(), 1.0));
        assert_eq!(
            probabilistic_f1(&[1., 0.], &[0., 0.]).unwrap(),
            0.0,
            "0/0 is 0"
        );
        // cTP 0.5, cFP 0.5: P = 0.5, R = 0.5 → 0.5.
        assert!(close(
            probabilistic_f1(&[1., 0.], &[0.5, 0.5]).unwrap(),
            0.5
        ));
    }

    #[test]
    fn edit_distance_and_jaccard() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("é", "e"), 1, "code points, not bytes");
        assert_eq!(levenshtein("same", "same"), 0);
        assert!(close(
            word_jaccard("The cat sat", "the CAT  ran"),
            2.0 / 4.0
        ));
        assert_eq!(word_jaccard("", "  "), 0.0);
        assert_eq!(word_jaccard("a a b", "b a"), 1.0, "sets, not bags");
    }

    #[test]
    fn quantiles_interpolate_as_numpy_and_distances_are_great_circles() {
        assert_eq!(quantile_linear(&[3.0, 1.0, 2.0, 4.0], 0.5), 2.5);
        assert!((quantile_linear(&[1.0, 2.0, 3.0, 4.0, 10.0], 0.95) - 8.8).abs() < 1e-12);
        assert!(quantile_linear(&[], 0.5).is_nan());
        // A degree of latitude is about 111.19 km on this sphere.
        let d = haversine_m(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111_194.93).abs() < 0.01, "{d}");
        assert_eq!(haversine_m(37.4, -122.1, 37.4, -122.1), 0.0);
    }

    #[test]
    fn lwlrap_weights_samples_by_their_positives_and_counts_ties_ahead() {
        let t = |v: &[u8]| v.iter().map(|&x| x == 1).collect::<Vec<bool>>();
        // One positive ranked second: precision 1/2; weight 1.
        assert_eq!(lwlrap(&[t(&[0, 1, 0])], &[vec![0.9, 0.5, 0.1]]), Ok(0.5));
        // Two positives, ranked first and third: (1/1 + 2/3) / 2, weight 2; plus a sample
        // ranked perfectly (weight 1): (2 · 5/6 + 1) / 3.
        let v = lwlrap(
            &[t(&[1, 0, 1]), t(&[0, 1, 0]), t(&[0, 0, 0])],
            &[
                vec![0.9, 0.5, 0.1],
                vec![0.1, 0.8, 0.2],
                vec![0.3, 0.3, 0.3],
            ],
        )
        .unwrap();
        assert!((v - (2.0 * 5.0 / 6.0 + 1.0) / 3.0).abs() < 1e-12, "{v}");
        // Ties count as ranked ahead: a constant score gives each positive |R|/n.
        assert_eq!(lwlrap(&[t(&[1, 0, 0, 0])], &[vec![0.5; 4]]), Ok(0.25));
        assert!(lwlrap(&[t(&[0, 0])], &[vec![0.1, 0.2]]).is_err());
        assert!(lwlrap(&[t(&[1, 0])], &[vec![f64::NAN, 0.2]]).is_err());
    }

    #[test]
    fn rounding_matches_python_and_numpy() {
        // Values checked with CPython 3 (`round(x, 5)` and `round(x * 1e5) / 1e5`): the
        // binary value of 0.123455 lies below the half, but ×10⁵ rounds to exactly 12345.5.
        assert_eq!(round5_python(0.123455), 0.12345);
        assert_eq!(round5_numpy(0.123455), 0.12346);
        assert_eq!(round5_python(0.002675), 0.00267);
        assert_eq!(round5_numpy(0.002675), 0.00268);
        assert_eq!(round5_python(0.000025), 0.00003);
        assert_eq!(round5_numpy(0.000025), 0.00002);
        assert_eq!(round5_python(0.7685549), 0.76855);
        assert_eq!(round5_numpy(0.7685549), 0.76855);
        assert_eq!(round5_python(1.0), 1.0);
        assert!(round5_python(f64::NAN).is_nan());
        assert_eq!(round5_numpy(f64::INFINITY), f64::INFINITY);
    }
}
