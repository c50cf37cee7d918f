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
        study-log-loss | pf1
"""

import json
import sys

import Levenshtein
import numpy as np
import pandas as pd
from scipy.stats import pearsonr
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


def main():
    family, id_col, targets, sub_path, ans_path = sys.argv[1:6]
    targets = [] if targets == "-" else targets.split(",")
    sub, ans = read(sub_path), read(ans_path)
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
