"""Independent reference scores for Sophon's grading tests.

Re-derives MLE-bench's grading of a few competition families with the libraries MLE-bench
calls (pandas read_csv, scikit-learn metrics), from the behaviour described in
shared/mlebench/GRADERS.md — not from Sophon's code. Prints one JSON line:
{"score": <float rounded as MLE-bench rounds, or null>, "why": "..."}.

usage: mlebench_reference.py <family> <id-column> <targets|-> <submission.csv> <answers.csv>
family: accuracy | auc | mean-auc | one-hot-log-loss | kappa | pearson | levenshtein | jaccard |
        macro-f1 | masked-mae | sorted-rmse | text-accuracy | binary-log-loss | map5 | micro-f1-sets |
        text-accuracy-nan | levenshtein-nan | tweet-jaccard | angular | top1-error | mcc |
        weighted-auc | joined-mae-int | log-mae-by-type | sequence-edit-rate | kendall |
        study-log-loss | pf1 | jigsaw-toxic | google-quest | hms | h-and-m | nq | kuzushiji |
        siim | tgs | contrails | hubmap | vesuvius | uw-madison | vinbigdata | lyft-3d
"""

import json
import sys

import Levenshtein
import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    matthews_corrcoef,
    mean_squared_error,
    label_ranking_average_precision_score,
    roc_auc_score,
    roc_curve,
)


class Invalid(Exception):
    pass


def read(path):
    try:
        return pd.read_csv(path, float_precision="round_trip")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def aligned(sub, ans, id_col):
    sub = sub.sort_values(by=id_col).reset_index(drop=True)
    ans = ans.sort_values(by=id_col).reset_index(drop=True)
    if (sub[id_col].values != ans[id_col].values).any():
        raise Invalid("ids differ")
    return sub, ans


def accuracy(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    for col in (target, id_col):
        if col not in sub.columns:
            raise Invalid("missing column")
    sub, ans = aligned(sub, ans, id_col)
    return float(accuracy_score(ans[target].values, sub[target].values))


def auc_columns(sub, ans, id_col, targets, range_check):
    for col in [id_col] + targets:
        if col not in sub.columns:
            raise Invalid("missing column")
    if len(sub) != len(ans):
        raise Invalid("row count")
    for t in targets:
        try:
            values = sub[t].astype(float)
        except ValueError:
            raise Invalid("not numeric")
        if range_check and (values.min() < 0 or values.max() > 1):
            raise Invalid("range")
    sub, ans = aligned(sub, ans, id_col)
    scores = [roc_auc_score(ans[t].astype(float), sub[t].astype(float)) for t in targets]
    return np.mean(scores)


def one_hot_log_loss(sub, ans, id_col, _targets):
    classes = [c for c in ans.columns if c != id_col]
    if set(sub.columns) != set([id_col] + classes):
        raise Invalid("columns")
    if len(sub) != len(ans):
        raise Invalid("row count")
    if not np.isclose(sub[classes].sum(axis=1), 1, atol=1e-6).all():
        raise Invalid("row sums")
    if not ((sub[classes] >= 0) & (sub[classes] <= 1)).all().all():
        raise Invalid("range")
    sub = sub[[id_col] + classes].sort_values(by=id_col).reset_index(drop=True)
    ans = ans[[id_col] + classes].sort_values(by=id_col).reset_index(drop=True)
    assert (sub[id_col].values == ans[id_col].values).all(), "ids differ"
    return log_loss(ans[classes].to_numpy(), sub[classes].to_numpy())


def kappa(sub, ans, id_col, targets):
    target = targets[0]
    for col in (target, id_col):
        if col not in sub.columns:
            raise Invalid("missing column")
    if len(sub) == 0:
        raise Invalid("empty")
    sub, ans = aligned(sub, ans, id_col)
    return cohen_kappa_score(ans[target], sub[target], weights="quadratic")


def pearson(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    for col in (id_col, target):
        if col not in sub.columns:
            raise Invalid("missing column")
    sub, ans = aligned(sub, ans, id_col)
    return pearsonr(ans[target], sub[target])[0]


def texts(sub, ans, id_col, targets, per_row, fill):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    for col in (id_col, target):
        if col not in sub.columns:
            raise Invalid("missing column")
    sub, ans = aligned(sub, ans, id_col)
    if fill:
        sub[target] = sub[target].fillna("")
        ans[target] = ans[target].fillna("")
    return np.mean([per_row(t, p) for t, p in zip(ans[target], sub[target])])


def require(sub, *cols):
    for col in cols:
        if col not in sub.columns:
            raise Invalid("missing column")


def macro_f1(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub, ans = aligned(sub, ans, id_col)
    return f1_score(ans[target], sub[target], average="macro")


def masked_mae(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub, ans = aligned(sub, ans, id_col)
    keep = ans["u_out"] == 0
    return mean_absolute_error(ans[target][keep], sub[target][keep])


def sorted_rmse(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    sub = sub.sort_values(by=id_col).reset_index(drop=True)
    ans = ans.sort_values(by=id_col).reset_index(drop=True)
    return mean_squared_error(ans[target], sub[target]) ** 0.5


def text_accuracy(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub, ans = aligned(sub, ans, id_col)
    return accuracy_score(ans[target].fillna(""), sub[target].fillna(""))


def binary_log_loss(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    if not ((sub[target] >= 0) & (sub[target] <= 1)).all():
        raise Invalid("range")
    sub = sub.sort_values(by=id_col).reset_index(drop=True)
    ans = ans.sort_values(by=id_col).reset_index(drop=True)
    return log_loss(ans[target], sub[target])


def map5(sub, ans, id_col, targets):
    target = targets[0]
    if set(sub.columns) != {id_col, target}:
        raise Invalid("columns")
    if len(sub) != len(ans):
        raise Invalid("row count")
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    sub = sub.sort_values(by=id_col).reset_index(drop=True)
    ans = ans.sort_values(by=id_col).reset_index(drop=True)
    total = 0.0
    for truth, pred in zip(ans[target].astype(str), sub[target].astype(str)):
        guesses = pred.split(" ")[:5]
        hits, score = 0, 0.0
        for i, g in enumerate(guesses):
            if g == truth and g not in guesses[:i]:
                hits += 1
                score += hits / (i + 1)
        total += score / min(1, 5)
    return total / len(ans)


def micro_f1_sets(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub, ans = aligned(sub, ans, id_col)
    truth = ans[target].str.split()
    pred = sub[target].str.split()
    mlb = MultiLabelBinarizer()
    mlb.fit(truth)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown predicted labels are ignored
        return f1_score(mlb.transform(truth), mlb.transform(pred), average="micro")


def text_accuracy_nan(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub, ans = aligned(sub, ans, id_col)
    return accuracy_score(ans[target].astype(str), sub[target].astype(str))


def tweet_jaccard(a, b):
    a, b = set(str(a).lower().split()), set(str(b).lower().split())
    c = a & b
    return float(len(c)) / (len(a) + len(b) - len(c))


def angular(sub, ans, id_col, targets):
    az, zen = targets
    if set(sub.columns) != {id_col, az, zen}:
        raise Invalid("columns")
    for col in (az, zen):
        if not pd.api.types.is_numeric_dtype(sub[col]) or not np.isfinite(sub[col]).all():
            raise Invalid("not numeric/finite")
    if len(sub) != len(ans):
        raise Invalid("row count")
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    sub = sub.sort_values(by=id_col).reset_index(drop=True)
    ans = ans.sort_values(by=id_col).reset_index(drop=True)

    def vec(a, z):
        return np.stack([np.sin(z) * np.cos(a), np.sin(z) * np.sin(a), np.cos(z)], axis=1)

    dots = np.sum(vec(ans[az].values, ans[zen].values) * vec(sub[az].values, sub[zen].values), axis=1)
    return np.mean(np.abs(np.arccos(np.clip(dots, -1, 1))))


def top1_error(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub, ans = aligned(sub, ans, id_col)

    def first(series):
        if pd.api.types.is_integer_dtype(series):
            return series
        if series.dtype == object:
            return series.str.split(" ").str[0].astype(int)
        raise ValueError("float labels")

    return 1 - accuracy_score(first(ans[target]), first(sub[target]))


def mcc(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub = sub.sort_values(by=id_col).reset_index(drop=True)
    ans = ans.sort_values(by=id_col).reset_index(drop=True)
    return matthews_corrcoef(ans[target], sub[target])


def weighted_auc(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub, ans = aligned(sub, ans, id_col)
    try:
        scores = sub[target].astype(float)
    except ValueError:
        raise Invalid("not numeric")
    if scores.isna().any():
        raise Invalid("nan")
    fpr, tpr, _ = roc_curve(ans[target], scores)
    fpr, tpr = list(fpr), list(tpr)
    if 0.4 not in tpr:
        k = next(i for i, t in enumerate(tpr) if t > 0.4)
        f = fpr[k - 1] + (fpr[k] - fpr[k - 1]) * (0.4 - tpr[k - 1]) / (tpr[k] - tpr[k - 1])
        fpr.insert(k, f)
        tpr.insert(k, 0.4)
    low = [(f, t) for f, t in zip(fpr, tpr) if t <= 0.4] + [(1.0, 0.4)]
    high = [(f, t - 0.4) for f, t in zip(fpr, tpr) if t >= 0.4] + [(1.0, 0.6)]

    def area(points):
        xs, ys = zip(*points)
        return np.trapz(ys, xs)

    return (2 * area(low) + area(high)) / (2 * 0.4 + 0.6)


def joined(sub, ans, id_col, target):
    require(sub, id_col, target)
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    return ans.merge(sub[[id_col, target]], on=id_col, how="inner", suffixes=("_true", "_pred"))


def joined_mae_int(sub, ans, id_col, targets):
    target = targets[0]
    m = joined(sub, ans, id_col, target)
    return round(mean_absolute_error(m[target + "_true"], m[target + "_pred"]))


def log_mae_by_type(sub, ans, id_col, targets):
    target = targets[0]
    m = joined(sub, ans, id_col, target)
    m["err"] = (m[target + "_true"] - m[target + "_pred"]).abs()
    if m["err"].isna().any():
        raise ValueError("NaN")
    return np.mean([np.log(g["err"].mean()) for _, g in m.groupby("type")])


def sequence_edit_rate(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub, ans = aligned(sub, ans, id_col)
    total, length = 0, 0
    for t, p in zip(ans[target].astype(str), sub[target].astype(str)):
        try:
            t_seq = [int(x) for x in t.split(" ")]
            p_seq = [int(x) for x in p.split(" ")]
        except ValueError:
            raise Invalid("not an integer")
        total += Levenshtein.distance(t_seq, p_seq)
        length += len(t_seq)
    return total / length


def kendall(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    sub = sub.sort_values(by=id_col).reset_index(drop=True)
    ans = ans.sort_values(by=id_col).reset_index(drop=True)
    inversions, pairs = 0, 0
    for t, p in zip(ans[target].astype(str), sub[target].astype(str)):
        t, p = t.split(" "), p.split(" ")
        if len(t) != len(p):
            raise Invalid("length")
        ranks = [p.index(x) for x in t]  # ValueError (null) when a true cell is missing
        n = len(ranks)
        inversions += sum(1 for i in range(n) for j in range(i + 1, n) if ranks[i] > ranks[j])
        pairs += n * (n - 1)
    return 1 - 4 * inversions / pairs


def study_log_loss(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if not ((sub[target] >= 0) & (sub[target] <= 1)).all():
        raise Invalid("range")
    sub, ans = aligned(sub, ans, id_col)
    frame = pd.DataFrame(
        {
            "study": ans[id_col].str.split("_", n=1).str[0],
            "part": ans[id_col].str.split("_", n=1).str[1],
            "y": ans[target].astype(float),
            "p": sub[target].astype(float).clip(1e-15, 1 - 1e-15),
        }
    )
    frame["loss"] = -(frame.y * np.log(frame.p) + (1 - frame.y) * np.log(1 - frame.p))
    overall = frame.part == "patient_overall"
    frame["w"] = np.where(overall, np.where(frame.y == 1, 14, 7), np.where(frame.y == 1, 2, 1))
    per_study = frame.groupby("study").apply(lambda g: (g.w * g.loss).sum() / g.w.sum(), include_groups=False)
    return per_study.mean()


def pf1(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub, ans = aligned(sub, ans, id_col)
    p = sub[target].clip(0, 1).values
    y = ans[target].values
    if np.isnan(p).any():
        raise ValueError("NaN")
    ctp, cfp = p[y == 1].sum(), p[y == 0].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = ctp / (ctp + cfp)
        recall = ctp / (y == 1).sum()
    if precision > 0 and recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def jaccard(a, b):
    a, b = set(str(a).lower().split()), set(str(b).lower().split())
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


JIGSAW_IDENTITIES = [
    "male", "female", "homosexual_gay_or_lesbian", "christian", "jewish", "muslim", "black",
    "white", "psychiatric_or_mental_illness",
]


def jigsaw_bias(sub, ans, id_col, targets):
    # Kaggle's benchmark kernel, with every score binarised at 0.5 as MLE-bench's grader does.
    require(sub, id_col)
    col = "prediction" if "prediction" in sub.columns else "toxicity"
    require(sub, col)
    if len(sub) != len(ans):
        raise ValueError("length mismatch")
    sub, ans = aligned(sub, ans, id_col)
    pred = np.where(sub[col] >= 0.5, 1, 0)
    tox = np.where(ans["toxicity"] >= 0.5, 1, 0)

    def auc(mask):
        try:
            return roc_auc_score(tox[mask], pred[mask])
        except ValueError:
            return np.nan

    fams = [[], [], []]
    for identity in JIGSAW_IDENTITIES:
        m = np.where(ans[identity] >= 0.5, 1, 0)
        fams[0].append(auc(m == 1))
        fams[1].append(auc(((tox == 0) & (m == 1)) | ((tox == 1) & (m == 0))))
        fams[2].append(auc(((tox == 1) & (m == 1)) | ((tox == 0) & (m == 0))))

    def power_mean(xs):
        return np.power(np.mean(np.power(np.array(xs, dtype=float), -5)), -1 / 5)

    overall = auc(np.ones(len(tox), dtype=bool))
    return 0.25 * (overall + power_mean(fams[0]) + power_mean(fams[1]) + power_mean(fams[2]))


def covid_mcrmse(sub, ans, id_col, targets):
    cols = [id_col] + targets
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, *cols)
    sub = sub[cols].sort_values(by=id_col)
    ans = ans.sort_values(by=id_col)
    if (sub[id_col].values != ans[id_col].values).any():
        raise Invalid("ids differ")
    kept_sub = sub[ans["keep"]]  # aligned on the index, as MLE-bench's grader does
    kept_ans = ans[ans["keep"]]
    scored = ["reactivity", "deg_Mg_pH10", "deg_Mg_50C"]
    return np.mean([np.sqrt(mean_squared_error(kept_ans[c], kept_sub[c])) for c in scored])


def osic(sub, ans, id_col, targets):
    require(sub, "Patient_Week", "FVC", "Confidence")
    if not set(sub["Patient_Week"]).issubset(set(ans["Patient_Week"])):
        raise Invalid("unknown Patient_Week")
    for c in ["FVC", "Confidence"]:
        if not pd.api.types.is_numeric_dtype(sub[c]):
            raise Invalid("not numeric")
    ans = ans.dropna(subset=["FVC"]).copy()
    parts = ans["Patient_Week"].str.rsplit("_", n=1)
    ans["Patient"] = parts.str[0]
    ans["Weeks"] = parts.str[1].astype(int)
    last3 = ans.sort_values("Weeks").groupby("Patient").tail(3)
    s = sub[sub["Patient_Week"].isin(last3["Patient_Week"])].sort_values("Patient_Week")
    a = last3[last3["Patient_Week"].isin(s["Patient_Week"])].sort_values("Patient_Week")
    if len(s) != len(a):
        raise ValueError("duplicated rows")
    sigma = np.maximum(s["Confidence"].fillna(0).values, 70)
    delta = np.minimum(np.abs(a["FVC"].values - s["FVC"].values), 1000)
    return np.mean(-np.sqrt(2) * delta / sigma - np.log(np.sqrt(2) * sigma))


def lwlrap(sub, ans, id_col, targets):
    if len(sub) != len(ans):
        raise Invalid("row count")
    if sub.columns[0] != id_col:
        raise Invalid("first column")
    classes = [c for c in ans.columns if c != id_col]
    if list(sub.columns[1:]) != classes:
        raise Invalid("class columns")
    sub, ans = aligned(sub, ans, id_col)
    for c in classes:
        if not pd.api.types.is_numeric_dtype(sub[c]):
            raise Invalid("not numeric")
    truth = ans[classes].values > 0.5
    scores = sub[classes].values.astype(float)
    keep = truth.sum(axis=1) > 0
    return label_ranking_average_precision_score(
        truth[keep], scores[keep], sample_weight=truth[keep].sum(axis=1)
    )


def trip_haversine(sub, ans, id_col, targets):
    require(sub, id_col, *targets)
    if len(sub) != len(ans):
        raise Invalid("row count")
    per_trip = []
    for trip in ans[id_col].unique():
        a = ans[ans[id_col] == trip]
        s = sub[sub[id_col] == trip]
        if len(a) != len(s):
            raise Invalid("trip row count")
        lat1 = np.radians(a["LatitudeDegrees"].values.astype(float))
        lon1 = np.radians(a["LongitudeDegrees"].values.astype(float))
        lat2 = np.radians(s["LatitudeDegrees"].values.astype(float))
        lon2 = np.radians(s["LongitudeDegrees"].values.astype(float))
        h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        d = 2 * 6_371_000 * np.arcsin(np.sqrt(h))
        per_trip.append((np.percentile(d, 50) + np.percentile(d, 95)) / 2)
    return np.mean(per_trip)


def jigsaw_toxic(sub, ans, id_col, targets):
    require(sub, id_col, *targets)
    if len(sub) != len(ans):
        raise ValueError("row count")
    sub = sub.set_index(id_col).sort_index()
    ans = ans.set_index(id_col).sort_index()
    if list(sub.index) != list(ans.index):
        raise ValueError("ids differ (pandas cannot align the mask)")
    scored = (ans.sum(axis=1) >= 0).values
    # Every non-id submission column, in the submission's order, against the answers' classes.
    return roc_auc_score(ans.values[scored], sub.values[scored], average="macro")


def google_quest(sub, ans, id_col, targets):
    if id_col not in sub.columns:
        raise Invalid("missing id")
    require(sub, *targets)
    if len(sub.columns) != len(targets) + 1:
        raise Invalid("column count")
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub = sub.sort_values(id_col)
    ans = ans.sort_values(id_col)
    return np.mean([spearmanr(sub[t].values, ans[t].values).correlation for t in targets])


def hms(sub, ans, id_col, targets):
    require(sub, id_col, *targets)
    if len(sub) != len(ans):
        raise Invalid("row count")
    if not sub[targets].sum(axis=1).map(lambda x: round(float(x), 5) == 1).all():
        raise Invalid("row sums")
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    probs = sub.drop(columns=[id_col])
    if not all(pd.api.types.is_numeric_dtype(t) for t in probs.dtypes):
        raise ValueError("not numeric")
    if probs.min().min() < 0 or probs.max().max() > 1:
        raise ValueError("range")
    if not np.allclose(probs.sum(axis=1), 1):
        raise ValueError("sum over every column")
    # GRADERS 4.16: rows of one eeg_id pair in file order (a stable sort).
    sub = sub.sort_values(id_col, kind="stable").reset_index(drop=True)
    ans = ans.sort_values(id_col, kind="stable").reset_index(drop=True)
    y = ans[targets].values.astype(float)
    y = y / y.sum(axis=1, keepdims=True)
    p = np.clip(sub[targets].values.astype(float), 1e-15, 1 - 1e-15)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y != 0, y * np.log(y / p), 0.0)
    return np.mean(terms.sum(axis=1))


def h_and_m(sub, ans, id_col, targets):
    target = targets[0]
    if set(sub.columns) != {id_col, target}:
        raise Invalid("columns")
    if not set(sub[id_col]) >= set(ans[id_col]):
        raise Invalid("customers missing")
    sub = sub[sub[id_col].isin(ans[id_col])]
    sub = sub.sort_values(id_col).reset_index(drop=True)
    ans = ans.sort_values(id_col).reset_index(drop=True)
    truth = [set(t.split(" ")) for t in ans[target].astype(str)]
    preds = [p.split(" ") for p in sub[target].astype(str)]
    scores = []
    for t, p in zip(truth, preds):
        p = p[:12]
        hits, total = 0, 0.0
        for i, x in enumerate(p):
            if x in t and x not in p[:i]:
                hits += 1
                total += hits / (i + 1)
        scores.append(total / min(len(t), 12))
    return np.mean(scores)


def nq(sub, answers_path):
    examples = [json.loads(line) for line in open(answers_path) if line.strip()]
    if len(sub) != 2 * len(examples):
        raise Invalid("row count")
    sub = sub.fillna("").astype(str)
    require(sub, "example_id", "PredictionString")
    valid = {}
    for e in examples:
        a = e["annotations"][0]
        long = []
        if a["long_answer"]["start_token"] != -1:
            long.append((a["long_answer"]["start_token"], a["long_answer"]["end_token"]))
        short = [(s["start_token"], s["end_token"]) for s in a["short_answers"]]
        if a["yes_no_answer"] != "NONE":
            short.append(a["yes_no_answer"])
        valid[f"{e['example_id']}_long"] = long
        valid[f"{e['example_id']}_short"] = short
    if set(sub["example_id"]) != set(valid):
        raise Invalid("ids")
    if sub["example_id"].nunique() != len(sub):
        raise Invalid("duplicate ids")
    right = 0
    for eid, raw in zip(sub["example_id"], sub["PredictionString"]):
        p = raw.strip()
        parts = p.split(":")
        if len(parts) == 2:
            p = (int(parts[0]), int(parts[1]))
        elif p not in ("YES", "NO", ""):
            raise Invalid("prediction format")
        truth = (p in valid[eid]) if p != "" else bool(valid[eid])
        right += int(truth == (p != ""))
    return np.float64(right / len(sub))


def kuzushiji(sub, ans, id_col, targets):
    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub, ans = aligned(sub, ans, id_col)
    for v in sub[target]:
        if isinstance(v, float) and np.isnan(v):
            continue
        toks = v.split(" ")
        if len(toks) % 3:
            raise Invalid("token count")
        [float(t) for i, t in enumerate(toks) if i % 3]
    tp = fp = fn = 0
    for p, t in zip(sub[target], ans[target]):
        p_missing = isinstance(p, float) and np.isnan(p)
        t_missing = isinstance(t, float) and np.isnan(t)
        if p_missing and t_missing:
            continue
        if t_missing:
            fp += len(p.split(" ")) // 3
            continue
        if p_missing:
            fn += len(t.split(" ")) // 5
            continue
        pt = p.split(" ")
        points = [(pt[i], float(pt[i + 1]), float(pt[i + 2])) for i in range(0, len(pt), 3)]
        used = [False] * len(points)
        tt = t.split(" ")
        for i in range(0, len(tt), 5):
            label, x, y, w, h = tt[i], *map(float, tt[i + 1 : i + 5])
            for j, (pl, px, py) in enumerate(points):
                if not used[j] and pl == label and x < px < x + w and y < py < y + h:
                    used[j] = True
                    tp += 1
                    break
            else:
                fn += 1
        fp += used.count(False)
    if tp + fp == 0 or tp + fn == 0:
        return 0.0
    prec, rec = tp / (tp + fp), tp / (tp + fn)
    return 2 * prec * rec / (prec + rec) if prec > 0 and rec > 0 else 0.0


def siim(sub, ans, id_col, targets):
    from sklearn.metrics import average_precision_score

    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub, ans = aligned(sub, ans, id_col)

    def boxes(text):
        toks = text.strip().split()
        out = []
        for i in range(0, len(toks), 6):
            group = toks[i : i + 6]
            values = []
            for k in range(1, 6):
                if k >= len(group):
                    raise IndexError("incomplete box")
                try:
                    values.append(float(group[k]))
                except ValueError:
                    raise Invalid("not a float")
            out.append((group[0], values[0], values[1:]))
        return sorted(out, key=lambda b: -b[1])

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / union if union > 0 else 0.0

    preds = [boxes(t) for t in sub[target]]
    truth = [boxes(t) for t in ans[target]]
    aps = []
    for cls in sorted({b[0] for row in truth for b in row}):
        y, s = [], []
        for p_row, t_row in zip(preds, truth):
            gts = [b[2] for b in t_row if b[0] == cls]
            taken = [False] * len(gts)
            n = len(y)
            for label, conf, corners in p_row:
                if label != cls:
                    continue
                scored = [(iou(corners, g), i) for i, g in enumerate(gts) if not taken[i]]
                scored = [x for x in scored if x[0] > 0.5]
                if scored:
                    best = max(scored, key=lambda x: (x[0], -x[1]))
                    taken[best[1]] = True
                    y.append(1)
                else:
                    y.append(0)
                s.append(conf)
            y += [1] * taken.count(False)
            s += [0.0] * taken.count(False)
            if len(y) == n:
                y.append(0)
                s.append(0.0)
        if all(v == 1 for v in y):
            raise AssertionError("all positive")
        aps.append(average_precision_score(y, s))
    return np.mean(aps)


def rle_mask(text, pixels):
    """The flat boolean mask of an RLE text, as numpy would decode it (assertions kept)."""
    if not isinstance(text, str):
        raise AssertionError("not a string")
    mask = np.zeros(pixels, dtype=bool)
    if not text.strip():
        return mask
    numbers = [int(t) for t in text.split()]
    starts, lengths = numbers[0::2], numbers[1::2]
    assert starts == sorted(starts), "unsorted"
    assert all(v > 0 for v in starts + lengths), "not positive"
    ends = np.array(starts) - 1 + lengths  # numpy broadcasting, as in the original
    for lo, hi in zip(np.array(starts) - 1, ends):
        assert not mask[lo:hi].any(), "overlap"
        mask[lo:hi] = True
    return mask


def tgs(sub, ans, id_col, targets):
    target = targets[0]
    if set(sub.columns) != {id_col, target}:
        raise Invalid("columns")
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub = sub.fillna("")
    ans = ans.fillna("")
    if not all(isinstance(v, str) for v in sub.values.ravel()):
        raise Invalid("not text")
    sub, ans = aligned(sub, ans, id_col)
    try:
        preds = [rle_mask(t, 101 * 101) for t in sub[target]]
    except AssertionError as e:
        raise Invalid(f"rle: {e}")
    thresholds = np.arange(0.5, 1.0, 0.05)
    scores = []
    for t_text, p in zip(ans[target], preds):
        t = rle_mask(t_text, 101 * 101)
        if t.sum() == 0:
            scores.append(1.0 if p.sum() == 0 else 0.0)
            continue
        inter = np.histogram2d(t.astype(float), p.astype(float), bins=2)[0][1, 1]
        area_t = np.histogram(t.astype(float), bins=2)[0][1]
        area_p = np.histogram(p.astype(float), bins=2)[0][1]
        iou = inter / (area_t + area_p - inter)
        scores.append(np.mean([1.0 if iou > th else 0.0 for th in thresholds]))
    return np.mean(scores)


def dice(a, b, both_empty):
    total = a.sum() + b.sum()
    return both_empty if total == 0 else 2 * (a & b).sum() / total


def contrails(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if len(sub) != len(ans):
        raise Invalid("row count")
    sub, ans = aligned(sub, ans, id_col)
    t_all, p_all = [], []
    for p, t, h, w in zip(sub[target], ans[target], ans["height"], ans["width"]):
        t_all.append(rle_mask("" if t == "-" else t, int(h) * int(w)))
        p_all.append(rle_mask("" if p == "-" else p, int(h) * int(w)))
    return dice(np.concatenate(p_all), np.concatenate(t_all), np.nan)


def hubmap(sub, ans, id_col, targets):
    target = targets[0]
    require(sub, id_col, target)
    if len(sub) != len(ans):
        raise Invalid("row count")
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("id set")
    sub = sub.sort_values(id_col).reset_index(drop=True)
    ans = ans.sort_values(id_col).reset_index(drop=True)
    scores = []
    for p, t, h, w in zip(sub[target].fillna(""), ans["encoding"], ans["height_pixels"], ans["width_pixels"]):
        scores.append(dice(rle_mask(p, h * w), rle_mask(t, h * w), 1.0))
    return np.mean(scores)


def vesuvius(sub, ans, id_col, targets):
    from sklearn.metrics import fbeta_score

    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    scores = []
    for (_, s), (_, a) in zip(sub.iterrows(), ans.iterrows()):
        if len(s) != 2:
            raise Invalid("two columns")
        require(sub, id_col, target)
        assert s[id_col] == a[id_col], "id"
        if not isinstance(s[target], str):
            raise Invalid("not text")
        pixels = int(a["width"]) * int(a["height"])
        try:
            p = rle_mask(s[target], pixels)
        except AssertionError:
            raise Invalid("rle")
        t = rle_mask(a[target], pixels)
        scores.append(fbeta_score(t, p, beta=0.5, zero_division=0.0))
    return np.mean(scores)


def uw_madison(sub, ans, id_col, targets):
    from scipy.spatial.distance import directed_hausdorff

    target = targets[0]
    require(sub, "id", "class", target)
    sub_text = sub[target].fillna("").tolist()
    ans_text = ans[target].fillna("").tolist()
    sizes = list(zip(ans["image_height"].astype(int), ans["image_width"].astype(int)))
    masks = lambda texts: [
        rle_mask(t, h * w).reshape((w, h)).T for t, (h, w) in zip(texts, sizes)
    ]
    sub_masks, ans_masks = masks(sub_text), masks(ans_text)

    def volumes(ms, ids):
        slices, days = {}, {}
        for m, i in sorted(zip(ms, ids), key=lambda x: x[1]):
            slices.setdefault(i, []).append(m)
        for i, group in slices.items():
            days.setdefault(i.split("_slice_")[0], []).append(np.logical_or.reduce(group))
        return [np.stack(v) for v in days.values()]

    def hausdorff(p, t):
        if p.sum() == 0 and t.sum() == 0:
            return np.nan
        if np.array_equal(p, t):
            return 0.0
        if p.sum() == 0 or t.sum() == 0 or p.sum() > 10 * t.sum():
            return 1.0
        a = np.argwhere(t) / t.shape
        b = np.argwhere(p) / t.shape
        return max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0]) / np.sqrt(3)

    with np.errstate(all="ignore"):
        import warnings

        warnings.simplefilter("ignore")
        d = np.nanmean([dice(p, t, np.nan) for p, t in zip(sub_masks, ans_masks)])
        vols = zip(volumes(sub_masks, sub["id"]), volumes(ans_masks, ans["id"]))
        h = np.nanmean([hausdorff(p, t) for p, t in vols])
    return 0.4 * d + 0.6 * (1 - h)


def vinbigdata(sub, ans, id_col, targets):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    target = targets[0]
    require(sub, target, id_col)
    if set(sub[id_col]) != set(ans[id_col]):
        raise Invalid("image set")
    images = list(ans[id_col].unique())
    index = {img: i for i, img in enumerate(images)}
    categories = [{"id": int(c), "name": str(c)} for c in sorted(ans["class_id"].unique())]
    truth, k = [], 0
    for img in images:
        for _, r in ans[ans[id_col] == img].iterrows():
            # GRADERS 4.23: corners handed over as x y w h; ids from 0; the real area.
            truth.append({"id": k, "image_id": index[img], "category_id": int(r["class_id"]),
                          "bbox": [r["x_min"], r["y_min"], r["x_max"], r["y_max"]],
                          "area": (r["x_max"] - r["x_min"]) * (r["y_max"] - r["y_min"]),
                          "iscrowd": 0, "ignore": 0})
            k += 1
    preds, k = [], 0
    for img, text in zip(sub[id_col], sub[target]):
        values = np.array([float(t) for t in text.split(" ")]).reshape(-1, 6)
        for v in values:
            preds.append({"id": k, "image_id": index[img], "category_id": int(v[0]),
                          "bbox": [v[2], v[3], v[4], v[5]], "area": (v[4] - v[2]) * (v[5] - v[3]),
                          "iscrowd": 0, "ignore": 0, "score": v[1]})
            k += 1
    with contextlib.redirect_stdout(io.StringIO()):
        gt, dt = COCO(), COCO()
        gt.dataset = {"images": [{"id": i} for i in range(len(images))], "categories": categories, "annotations": truth}
        dt.dataset = {"images": [{"id": i} for i in range(len(images))], "categories": categories, "annotations": preds}
        gt.createIndex()
        dt.createIndex()
        e = COCOeval(gt, dt, "bbox")
        e.params.imgIds = sorted(gt.getImgIds())
        e.params.iouThrs = np.array([0.4])
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats[0]


def lyft_3d(sub, ans, id_col, targets):
    from pyquaternion import Quaternion
    from shapely.geometry import Polygon

    target = targets[0]
    if len(sub) != len(ans):
        raise Invalid("row count")
    require(sub, id_col, target)
    sub = sub.sort_values(id_col)
    ans = ans.sort_values(id_col)
    if (sub[id_col].values != ans[id_col].values).any():
        raise Invalid("ids")
    sub[target] = sub[target].fillna("")

    def boxes(text):
        if text.strip() == "":
            return []
        toks = text.split(" ")
        if len(toks) % 9:
            raise Invalid("token count")
        out = []
        for i in range(0, len(toks), 9):
            t = toks[i : i + 9]
            score, x, y, z, w, l, h, yaw = map(float, t[:8])
            out.append({"score": score, "c": (x, y, z), "s": (w, l, h), "yaw": yaw, "name": t[8]})
        return out

    def check(b):
        if np.isnan(list(b["c"]) + list(b["s"]) + [b["yaw"]]).any():
            raise ValueError("NaN")
        assert all(v > 0 for v in b["s"])

    def footprint(b):
        r = Quaternion(axis=[0, 0, 1], radians=b["yaw"]).rotation_matrix
        c, s = r[0, 0], r[1, 0]
        (x, y, _), (w, l, _) = b["c"], b["s"]
        return Polygon([
            (x + l / 2 * c + w / 2 * s, y + l / 2 * s - w / 2 * c),
            (x + l / 2 * c - w / 2 * s, y + l / 2 * s + w / 2 * c),
            (x - l / 2 * c - w / 2 * s, y - l / 2 * s + w / 2 * c),
            (x - l / 2 * c + w / 2 * s, y - l / 2 * s - w / 2 * c),
        ])

    def iou(a, b):
        za = (a["c"][2] - a["s"][2] / 2, a["c"][2] + a["s"][2] / 2)
        zb = (b["c"][2] - b["s"][2] / 2, b["c"][2] + b["s"][2] / 2)
        inter = max(0, min(za[1], zb[1]) - max(za[0], zb[0])) * footprint(a).intersection(footprint(b)).area
        return np.clip(inter / (np.prod(a["s"]) + np.prod(b["s"]) - inter), 0, 1)

    def ap(gts, preds, t):
        preds = sorted(preds, key=lambda p: p["score"], reverse=True)
        taken = np.zeros(len(gts))
        tp = np.zeros(len(preds))
        for k, p in enumerate(preds):
            overlaps = [iou(p, g) for g in gts]
            j = int(np.argmax(overlaps))
            if overlaps[j] > t and not taken[j]:
                taken[j] = 1
                tp[k] = 1
        tps = np.cumsum(tp)
        fps = np.cumsum(1 - tp)
        recalls = np.concatenate(([0.0], tps / len(gts), [1.0]))
        precisions = np.concatenate(([0.0], tps / np.maximum(tps + fps, np.finfo(np.float64).eps), [0.0]))
        for i in range(len(precisions) - 1, 0, -1):
            precisions[i - 1] = max(precisions[i - 1], precisions[i])
        i = np.where(recalls[1:] != recalls[:-1])[0]
        return np.sum((recalls[i + 1] - recalls[i]) * precisions[i + 1])

    values = []
    for p_text, t_text in zip(sub[target], ans[target]):
        preds, truth = boxes(p_text), boxes(t_text)
        names = sorted({b["name"] for b in truth})
        for t in [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]:
            aps = []
            for name in names:
                gts = [b for b in truth if b["name"] == name]
                ps = [b for b in preds if b["name"] == name]
                if not ps:
                    aps.append(0.0)
                    continue
                for b in gts + ps:
                    check(b)
                aps.append(ap(gts, ps, t))
            values.append(np.mean(aps))
    return np.mean(values)


def main():
    family, id_col, targets, sub_path, ans_path = sys.argv[1:6]
    targets = [] if targets == "-" else targets.split(",")
    sub = read(sub_path)
    ans = None if ans_path.endswith(".jsonl") else read(ans_path)
    try:
        if family == "accuracy":
            score = accuracy(sub, ans, id_col, targets)
        elif family == "auc":
            score = auc_columns(sub, ans, id_col, targets, True)
        elif family == "mean-auc":
            score = auc_columns(sub, ans, id_col, targets, False)
        elif family == "one-hot-log-loss":
            score = one_hot_log_loss(sub, ans, id_col, targets)
        elif family == "kappa":
            score = kappa(sub, ans, id_col, targets)
        elif family == "pearson":
            score = pearson(sub, ans, id_col, targets)
        elif family == "levenshtein":
            score = texts(sub, ans, id_col, targets, Levenshtein.distance, False)
        elif family == "jaccard":
            score = texts(sub, ans, id_col, targets, jaccard, True)
        elif family == "macro-f1":
            score = macro_f1(sub, ans, id_col, targets)
        elif family == "masked-mae":
            score = masked_mae(sub, ans, id_col, targets)
        elif family == "sorted-rmse":
            score = sorted_rmse(sub, ans, id_col, targets)
        elif family == "text-accuracy":
            score = text_accuracy(sub, ans, id_col, targets)
        elif family == "binary-log-loss":
            score = binary_log_loss(sub, ans, id_col, targets)
        elif family == "text-accuracy-nan":
            score = text_accuracy_nan(sub, ans, id_col, targets)
        elif family == "levenshtein-nan":
            sub[targets[0]] = sub[targets[0]].astype(str)
            ans[targets[0]] = ans[targets[0]].astype(str)
            score = texts(sub, ans, id_col, targets, Levenshtein.distance, False)
        elif family == "tweet-jaccard":
            score = texts(sub, ans, id_col, targets, tweet_jaccard, True)
        elif family == "angular":
            score = angular(sub, ans, id_col, targets)
        elif family == "top1-error":
            score = top1_error(sub, ans, id_col, targets)
        elif family == "mcc":
            score = mcc(sub, ans, id_col, targets)
        elif family == "study-log-loss":
            score = study_log_loss(sub, ans, id_col, targets)
        elif family == "pf1":
            score = pf1(sub, ans, id_col, targets)
        elif family == "sequence-edit-rate":
            score = sequence_edit_rate(sub, ans, id_col, targets)
        elif family == "kendall":
            score = kendall(sub, ans, id_col, targets)
        elif family == "weighted-auc":
            score = weighted_auc(sub, ans, id_col, targets)
        elif family == "joined-mae-int":
            score = joined_mae_int(sub, ans, id_col, targets)
        elif family == "log-mae-by-type":
            score = log_mae_by_type(sub, ans, id_col, targets)
        elif family == "trip-haversine":
            score = trip_haversine(sub, ans, id_col, targets)
        elif family == "lwlrap":
            score = lwlrap(sub, ans, id_col, targets)
        elif family == "osic":
            score = osic(sub, ans, id_col, targets)
        elif family == "covid-mcrmse":
            score = covid_mcrmse(sub, ans, id_col, targets)
        elif family == "jigsaw-bias":
            score = jigsaw_bias(sub, ans, id_col, targets)
        elif family == "map5":
            score = map5(sub, ans, id_col, targets)
        elif family == "jigsaw-toxic":
            score = jigsaw_toxic(sub, ans, id_col, targets)
        elif family == "google-quest":
            score = google_quest(sub, ans, id_col, targets)
        elif family == "hms":
            score = hms(sub, ans, id_col, targets)
        elif family == "h-and-m":
            score = h_and_m(sub, ans, id_col, targets)
        elif family == "nq":
            score = nq(sub, ans_path)
        elif family == "kuzushiji":
            score = kuzushiji(sub, ans, id_col, targets)
        elif family == "siim":
            score = siim(sub, ans, id_col, targets)
        elif family == "tgs":
            score = tgs(sub, ans, id_col, targets)
        elif family == "contrails":
            score = contrails(sub, ans, id_col, targets)
        elif family == "hubmap":
            score = hubmap(sub, ans, id_col, targets)
        elif family == "vesuvius":
            score = vesuvius(sub, ans, id_col, targets)
        elif family == "lyft-3d":
            score = lyft_3d(sub, ans, id_col, targets)
        elif family == "vinbigdata":
            score = vinbigdata(sub, ans, id_col, targets)
        elif family == "uw-madison":
            score = uw_madison(sub, ans, id_col, targets)
        elif family == "micro-f1-sets":
            score = micro_f1_sets(sub, ans, id_col, targets)
        else:
            raise SystemExit(f"unknown family {family}")
        if not np.isfinite(score):  # NaN/inf: valid, but no number to compare (nor strict JSON)
            print(json.dumps({"score": None, "why": "nan"}))
            return
        # MLE-bench: round(score, 5) on whatever the metric returned.
        print(json.dumps({"score": round(score, 5), "why": "scored"}))
    except Invalid as e:
        print(json.dumps({"score": None, "why": f"invalid: {e}"}))
    except Exception as e:  # MLE-bench: any other exception is a null score too
        print(json.dumps({"score": None, "why": f"error: {type(e).__name__}: {e}"}))


main()
