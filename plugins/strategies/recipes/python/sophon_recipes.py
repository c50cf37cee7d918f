"""Sophon's recipe library: turns one structured solution recipe into a trained model, a
cross-validated metric and a submission file, for tabular and text competitions laid out as
MLE-bench prepares them (train/test CSVs and a sample submission under one directory).

Two entry points, both printing one JSON line prefixed with ``SOPHON_RESULT=``:

- ``python sophon_recipes.py profile DATA_DIR`` describes the task: files, the submission's key
  and target columns, the kind of target, the kinds of feature columns;
- ``python sophon_recipes.py solve DATA_DIR RECIPE_JSON OUT_CSV`` runs a recipe.

A recipe is ``{"family": ..., "params": {...}, "features": {...}, "folds": k, "metric": name}``.
Families: lightgbm, hist-gradient-boosting, random-forest, extra-trees, linear.
Everything the job needs is in this file; it writes only OUT_CSV.
"""

import glob
import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

MAX_CATEGORIES = 50
TEXT_MIN_MEAN_LENGTH = 25


def emit(payload):
    print("SOPHON_RESULT=" + json.dumps(payload, default=str), flush=True)


def cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------- files and task


def find_files(data_dir):
    csvs = sorted(glob.glob(os.path.join(data_dir, "*.csv")) + glob.glob(os.path.join(data_dir, "*", "*.csv")))
    names = {p: os.path.basename(p).lower() for p in csvs}
    samples = [p for p in csvs if "sample" in names[p] and "submission" in names[p]]
    if not samples:
        raise SystemExit("no sample submission (a CSV named like sample_submission.csv) in " + data_dir)
    rest = [p for p in csvs if p not in samples]
    trains = [p for p in rest if "train" in names[p]]
    tests = [p for p in rest if "test" in names[p]]
    if not trains or not tests:
        raise SystemExit("expected train*.csv and test*.csv next to the sample submission; found " + ", ".join(names.values()))
    largest = lambda ps: max(ps, key=os.path.getsize)
    return {"sample": samples[0], "train": largest(trains), "test": largest(tests)}


def read(path):
    return pd.read_csv(path, low_memory=False)


def is_id_like(name, series):
    lowered = name.lower()
    if lowered == "id" or lowered.endswith("_id") or lowered.endswith("id") and series.dtype.kind in "iu":
        return series.is_unique
    return False


def target_spec(train, test, sample):
    """Key columns (copied from test), target columns (predicted) and how to predict them."""
    keys = [c for c in sample.columns if c in test.columns]
    targets = [c for c in sample.columns if c not in test.columns]
    if not targets:
        raise SystemExit("the sample submission has no column that the test file lacks: cannot tell the target")
    if all(t in train.columns for t in targets):
        kinds = {}
        for t in targets:
            y = train[t].dropna()
            if y.dtype == bool or y.nunique() <= 2:
                kinds[t] = "binary"
            elif y.dtype.kind == "f" and y.nunique() > 20:
                kinds[t] = "regression"
            elif y.nunique() <= MAX_CATEGORIES:
                kinds[t] = "multiclass"
            else:
                kinds[t] = "regression" if y.dtype.kind in "if" else "multiclass"
        return {"keys": keys, "targets": targets, "mode": "columns", "kinds": kinds}
    wanted = set(targets)
    for c in train.columns:
        if train[c].dtype == object and wanted <= set(train[c].dropna().astype(str).unique()):
            return {"keys": keys, "targets": targets, "mode": "one-hot", "source": c}
    raise SystemExit("target columns %s are neither train columns nor the values of one train column" % targets)


def column_kinds(train, test, spec):
    excluded = set(spec["targets"]) | {spec.get("source")}
    kinds = {}
    for c in test.columns:
        if c not in train.columns or c in excluded:
            continue
        s = pd.concat([train[c], test[c]], ignore_index=True)
        if s.dtype == bool:
            kinds[c] = "numeric"
        elif s.dtype.kind in "iuf":
            kinds[c] = "id" if is_id_like(c, s) else "numeric"
        else:
            v = s.dropna().astype(str)
            if v.empty:
                continue
            lowered = v.str.lower()
            if lowered.isin(["true", "false"]).all():
                kinds[c] = "boolean"
            elif v.nunique() <= MAX_CATEGORIES:
                kinds[c] = "categorical"
            elif compound_separator(v) is not None:
                kinds[c] = "compound"
            elif v.str.len().mean() >= TEXT_MIN_MEAN_LENGTH and v.str.contains(" ").mean() > 0.5:
                kinds[c] = "text"
            elif is_id_like(c, s):
                kinds[c] = "id"
            else:
                kinds[c] = "high-cardinality"
    return kinds


def compound_separator(values):
    for sep in ("/", "_", "-", ":"):
        counts = values.str.count(sep)
        if counts.min() >= 1 and counts.max() <= 3 and counts.nunique() == 1:
            return sep
    return None


def metric_of(name, spec):
    n = (name or "").lower()
    classification = spec["mode"] == "one-hot" or any(k != "regression" for k in spec.get("kinds", {}).values())
    if "auc" in n or "roc" in n:
        return "auc"
    if "log" in n and "loss" in n or "logloss" in n or "cross-entropy" in n:
        return "log-loss"
    if "rmsle" in n or "squared-log" in n:
        return "rmsle"
    if "rmse" in n or "root-mean-squared" in n or "mse" in n:
        return "rmse"
    if "mae" in n or "absolute" in n:
        return "mae"
    if "accuracy" in n:
        return "accuracy"
    return "accuracy" if classification else "rmse"


LOWER_IS_BETTER = {"log-loss", "rmse", "rmsle", "mae"}


def profile(data_dir):
    files = find_files(data_dir)
    train, test, sample = read(files["train"]), read(files["test"]), read(files["sample"])
    spec = target_spec(train, test, sample)
    kinds = column_kinds(train, test, spec)
    task = "multiclass" if spec["mode"] == "one-hot" else ",".join(sorted(set(spec["kinds"].values())))
    by_kind = {}
    for c, k in kinds.items():
        by_kind.setdefault(k, []).append(c)
    return {
        "files": {k: os.path.relpath(v, data_dir) for k, v in files.items()},
        "train_rows": len(train),
        "test_rows": len(test),
        "keys": spec["keys"],
        "targets": spec["targets"][:20],
        "n_targets": len(spec["targets"]),
        "target_mode": spec["mode"],
        "task": task,
        "columns": {k: v[:30] for k, v in by_kind.items()},
        "n_columns": {k: len(v) for k, v in by_kind.items()},
    }


# ---------------------------------------------------------------------------- features


def build_features(train, test, spec, kinds, options, dense):
    """Feature matrices for train and test. Trees get a dense frame (categories as codes,
    missing values kept as NaN); the linear family gets a sparse, scaled, one-hot matrix."""
    from scipy import sparse

    both = pd.concat([train.drop(columns=[c for c in train.columns if c not in test.columns]), test], ignore_index=True)
    n = len(train)
    numeric, categorical, texts = {}, {}, []
    for c, kind in kinds.items():
        s = both[c]
        if kind == "numeric":
            numeric[c] = pd.to_numeric(s, errors="coerce").astype(float)
        elif kind == "boolean":
            numeric[c] = s.astype(str).str.lower().map({"true": 1.0, "false": 0.0})
        elif kind == "categorical":
            categorical[c] = s.astype(str).where(s.notna(), None)
        elif kind == "compound" and options.get("split_compound", True):
            v = s.astype(str).where(s.notna(), None)
            parts = v.str.split(compound_separator(v.dropna()), expand=True)
            for i in parts.columns:
                p = parts[i]
                as_num = pd.to_numeric(p, errors="coerce")
                if as_num.notna().sum() >= 0.9 * p.notna().sum():
                    numeric["%s_part%d" % (c, i)] = as_num.astype(float)
                    if options.get("count_encode", True):
                        numeric["%s_part%d_count" % (c, i)] = p.map(p.value_counts()).astype(float)
                elif p.nunique() <= MAX_CATEGORIES:
                    categorical["%s_part%d" % (c, i)] = p
                else:
                    numeric["%s_part%d_count" % (c, i)] = p.map(p.value_counts()).astype(float)
        elif kind == "high-cardinality" and options.get("count_encode", True):
            numeric[c + "_count"] = s.map(s.value_counts()).astype(float)
        elif kind == "text" and options.get("text", True):
            texts.append(c)
    if options.get("row_stats", False) and len(numeric) >= 3:
        block = pd.DataFrame(numeric)
        numeric["_row_sum"] = block.sum(axis=1)
        numeric["_row_missing"] = block.isna().sum(axis=1).astype(float)
    num = pd.DataFrame(numeric) if numeric else pd.DataFrame(index=both.index)
    text_matrix = None
    if texts:
        from sklearn.feature_extraction.text import TfidfVectorizer

        joined = both[texts].fillna("").astype(str).agg(" ".join, axis=1)
        words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=options.get("max_text_features", 50000), sublinear_tf=True)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, max_features=options.get("max_text_features", 50000), sublinear_tf=True)
        text_matrix = sparse.hstack([words.fit_transform(joined), chars.fit_transform(joined)]).tocsr()
    if dense:
        frame = num.copy()
        for c, s in categorical.items():
            frame[c] = pd.Categorical(s).codes.astype(float)
            frame.loc[s.isna().values, c] = np.nan
        if text_matrix is not None:
            from sklearn.decomposition import TruncatedSVD

            k = min(64, text_matrix.shape[1] - 1)
            if k > 0:
                svd = TruncatedSVD(n_components=k, random_state=0).fit_transform(text_matrix)
                for i in range(k):
                    frame["_text_svd%d" % i] = svd[:, i]
        if frame.shape[1] == 0:
            raise SystemExit("no usable feature columns")
        return frame.iloc[:n].reset_index(drop=True), frame.iloc[n:].reset_index(drop=True), list(categorical)
    blocks = []
    if num.shape[1]:
        filled = num.fillna(num.median()).fillna(0.0)
        values = filled.values
        values = (values - values.mean(axis=0)) / (values.std(axis=0) + 1e-9)
        if options.get("quantile", False):
            from sklearn.preprocessing import QuantileTransformer

            values = QuantileTransformer(n_quantiles=min(1000, len(values)), output_distribution="normal", random_state=0).fit_transform(filled.values)
        missing = num.isna().values[:, num.isna().any().values].astype(float)
        blocks.append(sparse.csr_matrix(np.hstack([values, missing])))
    if categorical:
        from sklearn.preprocessing import OneHotEncoder

        cats = pd.DataFrame(categorical).fillna("__missing__")
        blocks.append(OneHotEncoder(handle_unknown="ignore").fit_transform(cats).tocsr())
    if text_matrix is not None:
        blocks.append(text_matrix)
    if not blocks:
        raise SystemExit("no usable feature columns")
    matrix = sparse.hstack(blocks).tocsr()
    return matrix[:n], matrix[n:], []


# ---------------------------------------------------------------------------- models


def make_model(family, params, classification, seed, categorical):
    p = dict(params or {})
    jobs = cpus()
    if family == "lightgbm":
        import lightgbm as lgb

        args = dict(
            n_estimators=int(p.get("n_estimators", 400)),
            learning_rate=float(p.get("learning_rate", 0.05)),
            num_leaves=int(p.get("num_leaves", 31)),
            min_child_samples=int(p.get("min_child_samples", 20)),
            subsample=float(p.get("subsample", 0.8)),
            subsample_freq=1,
            colsample_bytree=float(p.get("colsample_bytree", 0.8)),
            reg_lambda=float(p.get("reg_lambda", 1.0)),
            random_state=seed,
            n_jobs=jobs,
            verbose=-1,
        )
        return lgb.LGBMClassifier(**args) if classification else lgb.LGBMRegressor(**args)
    if family == "hist-gradient-boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        args = dict(
            max_iter=int(p.get("n_estimators", 300)),
            learning_rate=float(p.get("learning_rate", 0.06)),
            max_leaf_nodes=int(p.get("num_leaves", 31)),
            min_samples_leaf=int(p.get("min_child_samples", 20)),
            l2_regularization=float(p.get("reg_lambda", 0.0)),
            random_state=seed,
        )
        return HistGradientBoostingClassifier(**args) if classification else HistGradientBoostingRegressor(**args)
    if family in ("random-forest", "extra-trees"):
        from sklearn import ensemble

        name = ("RandomForest" if family == "random-forest" else "ExtraTrees") + ("Classifier" if classification else "Regressor")
        return getattr(ensemble, name)(
            n_estimators=int(p.get("n_estimators", 300)),
            min_samples_leaf=int(p.get("min_child_samples", 1)),
            max_features=p.get("max_features", "sqrt" if classification else 1.0),
            n_jobs=jobs,
            random_state=seed,
        )
    if family == "linear":
        if classification:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=float(p.get("C", 1.0)), max_iter=int(p.get("max_iter", 2000)), random_state=seed)
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0 / max(float(p.get("C", 1.0)), 1e-6))
    raise SystemExit("unknown model family %r: use lightgbm, hist-gradient-boosting, random-forest, extra-trees or linear" % family)


def fill_for(family, X):
    if family in ("random-forest", "extra-trees") and hasattr(X, "fillna"):
        return X.fillna(-999.0)
    return X


def score(metric, y_true, pred, classes=None):
    from sklearn import metrics as m

    if metric == "auc":
        return float(m.roc_auc_score(y_true, pred))
    if metric == "log-loss":
        return float(m.log_loss(y_true, pred, labels=classes))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y_true, pred)))
    if metric == "rmsle":
        return float(np.sqrt(m.mean_squared_log_error(y_true, np.clip(pred, 0, None))))
    if metric == "mae":
        return float(m.mean_absolute_error(y_true, pred))
    return float(m.accuracy_score(y_true, pred))


def fit_predict_target(recipe, X, y, X_test, kind, metric, categorical):
    """Cross-validated metric and test predictions for one target column."""
    from sklearn.model_selection import KFold, StratifiedKFold

    family, seed = recipe["family"], int(recipe.get("seed", 0))
    classification = kind != "regression"
    folds = int(recipe.get("folds", 5))
    if classification:
        counts = pd.Series(y).value_counts()
        splitter = StratifiedKFold(n_splits=max(2, min(folds, int(counts.min()))), shuffle=True, random_state=seed) if counts.min() >= 2 else KFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    proba = metric in ("auc", "log-loss")
    classes = np.unique(y) if classification else None
    oof = np.zeros((len(y), len(classes))) if classification else np.zeros(len(y))
    test_pred = np.zeros((X_test.shape[0], len(classes))) if classification else np.zeros(X_test.shape[0])
    Xf, Xt = fill_for(family, X), fill_for(family, X_test)
    take = (lambda M, idx: M.iloc[idx]) if hasattr(Xf, "iloc") else (lambda M, idx: M[idx])
    for train_idx, valid_idx in splitter.split(np.zeros(len(y)), y if classification else None):
        model = make_model(family, recipe.get("params"), classification, seed, categorical)
        model.fit(take(Xf, train_idx), y[train_idx])
        if classification:
            p = np.zeros((len(valid_idx), len(classes)))
            p[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(take(Xf, valid_idx))
            oof[valid_idx] = p
            t = np.zeros((X_test.shape[0], len(classes)))
            t[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(Xt)
            test_pred += t / splitter.get_n_splits()
        else:
            oof[valid_idx] = model.predict(take(Xf, valid_idx))
            test_pred += model.predict(Xt) / splitter.get_n_splits()
    if not classification:
        return score(metric, y, oof), test_pred, None
    if metric == "auc" and len(classes) == 2:
        return score(metric, y == classes[1], oof[:, 1]), test_pred, classes
    if metric == "log-loss":
        return score(metric, y, np.clip(oof, 1e-15, 1), classes), test_pred, classes
    if metric == "auc":
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, oof, multi_class="ovr", labels=classes)), test_pred, classes
    return score(metric, y, classes[oof.argmax(axis=1)]), test_pred, classes


def solve(data_dir, recipe, out_csv):
    started = time.time()
    files = find_files(data_dir)
    train, test, sample = read(files["train"]), read(files["test"]), read(files["sample"])
    spec = target_spec(train, test, sample)
    kinds = column_kinds(train, test, spec)
    metric = metric_of(recipe.get("metric"), spec)
    family = recipe["family"]
    dense = family != "linear"
    X, X_test, categorical = build_features(train, test, spec, kinds, recipe.get("features", {}), dense)
    out = test[spec["keys"]].copy() if spec["keys"] else pd.DataFrame(index=range(len(test)))
    scores = []
    if spec["mode"] == "one-hot":
        labels = train[spec["source"]].astype(str).values
        valid, pred, classes = fit_predict_target(recipe, X, labels, X_test, "multiclass", metric, categorical)
        scores.append(valid)
        index = {c: i for i, c in enumerate(classes)}
        for t in spec["targets"]:
            out[t] = pred[:, index[t]] if t in index else 0.0
        if metric == "log-loss":
            block = out[spec["targets"]].clip(1e-15, 1)
            out[spec["targets"]] = block.div(block.sum(axis=1), axis=0)
    else:
        for t in spec["targets"]:
            kind = spec["kinds"][t]
            rows = train[t].notna().values
            y = train[t].values[rows]
            Xr = X.iloc[rows] if hasattr(X, "iloc") else X[rows]
            valid, pred, classes = fit_predict_target(recipe, Xr, y, X_test, kind, metric, categorical)
            scores.append(valid)
            if classes is None:
                out[t] = pred
            elif metric in ("auc", "log-loss") and len(classes) == 2:
                out[t] = pred[:, 1]
            else:
                out[t] = classes[pred.argmax(axis=1)]
    out = out[list(sample.columns)]
    out.to_csv(out_csv, index=False)
    value = float(np.mean(scores))
    emit({
        "metric": metric,
        "lower_is_better": metric in LOWER_IS_BETTER,
        "validation": value,
        "per_target": scores[:20],
        "rows": len(out),
        "features": int(X.shape[1]),
        "seconds": round(time.time() - started, 2),
    })


def main(argv):
    if len(argv) >= 3 and argv[1] == "profile":
        emit(profile(argv[2]))
    elif len(argv) >= 5 and argv[1] == "solve":
        solve(argv[2], json.loads(argv[3]), argv[4])
    else:
        raise SystemExit("usage: sophon_recipes.py profile DATA_DIR | solve DATA_DIR RECIPE_JSON OUT_CSV")


if __name__ == "__main__":
    main(sys.argv)
