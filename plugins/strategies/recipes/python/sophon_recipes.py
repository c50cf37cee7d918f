"""Sophon's recipe library: turns one structured solution recipe into a trained model, a
cross-validated metric and a submission file, for tabular and text competitions laid out as
MLE-bench prepares them: train and test tables (CSV, TSV, zipped or gzipped, JSON arrays or JSON
lines; nested lists flattened) and a sample submission under one directory. Labels may sit in
another train table (``train_labels.csv``), the submission's ids in the sample alone, and
other tables keyed by a train and test column are joined in.

Two entry points, both printing one JSON line prefixed with ``SOPHON_RESULT=``:

- ``python sophon_recipes.py profile DATA_DIR [METRIC]`` describes the task: how the tables
  were put together, the submission's key and target columns, the kind of target (binary,
  multiclass, regression for any fractional target, text-span when the target is a piece of an
  input text, text otherwise), the kinds of feature columns;
- ``python sophon_recipes.py solve DATA_DIR RECIPE_JSON OUT_CSV`` runs a recipe.

A recipe is ``{"family": ..., "params": {...}, "features": {...}, "folds": k, "metric": name}``.
Families: lightgbm, hist-gradient-boosting, random-forest, extra-trees, linear. A span target
is learnt by a linear word classifier (``params.C``) whatever the family, and the whole text is
copied for each category where that validates better; a class target with more than
MAX_CLASSES labels is learnt on its most frequent ones.
Everything the job needs is in this file; it writes only OUT_CSV.
"""

import glob
import json
import os
import re
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

TABLE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".csv.zip", ".csv.gz", ".tsv.zip", ".tsv.gz")
MAX_AUX_BYTES = 256 << 20
MAX_AUX_TABLES = 4
MAX_AUX_COLUMNS = 200


def table_files(data_dir):
    """Tables at the top of DATA_DIR and one folder down (names only; nothing is read)."""
    found = []
    for pattern in ("*", os.path.join("*", "*")):
        for p in glob.glob(os.path.join(data_dir, pattern)):
            if p.lower().endswith(TABLE_SUFFIXES) and os.path.isfile(p):
                found.append(p)
    return sorted(found)


def find_files(data_dir):
    """The sample submission, the train and test tables (largest first) and the other tables
    at the top of DATA_DIR, by name."""
    tables = table_files(data_dir)
    name = lambda p: os.path.basename(p).lower()
    csvs = [p for p in tables if name(p).endswith(".csv")]
    samples = (
        [p for p in csvs if "sample" in name(p) and "submission" in name(p)]
        or [p for p in csvs if "submission" in name(p)]
        or [p for p in csvs if "sample" in name(p)]
    )
    if not samples:
        raise SystemExit("no sample submission (a CSV named like sample_submission.csv) in " + data_dir)
    rest = [p for p in tables if p not in samples]
    by_size = lambda ps: sorted(ps, key=os.path.getsize, reverse=True)
    trains = by_size([p for p in rest if "train" in name(p)])
    tests = by_size([p for p in rest if "test" in name(p) and "train" not in name(p)])
    if not trains or not tests:
        raise SystemExit(
            "expected train and test tables (CSV, TSV, JSON or JSON lines, named train*/test*) next to the sample submission; found "
            + (", ".join(name(p) for p in tables) or "no table")
        )
    top = os.path.normpath(data_dir)
    others = [p for p in rest if p not in trains and p not in tests and os.path.dirname(os.path.normpath(p)) == top]
    return {"sample": samples[0], "trains": trains, "tests": tests, "others": others}


def read(path):
    """One table: CSV/TSV (also zipped or gzipped), a JSON array or object of records, or JSON
    lines. Nested values are flattened (lists of numbers into statistics, lists of words into
    text); other nested values are dropped."""
    lowered = path.lower()
    if ".tsv" in lowered:
        frame = pd.read_csv(path, sep="\t", low_memory=False)
    elif ".csv" in lowered:
        frame = pd.read_csv(path, low_memory=False)
    elif lowered.endswith(".jsonl"):
        frame = pd.read_json(path, lines=True)
    else:
        try:
            frame = pd.read_json(path)
        except ValueError:
            frame = pd.read_json(path, lines=True)
    return flatten_nested(frame)


def flatten_nested(frame):
    for c in list(frame.columns):
        if frame[c].dtype != object:
            continue
        probe = frame[c].dropna().head(50)
        if probe.empty or not all(isinstance(v, (list, tuple, dict)) for v in probe):
            continue
        lists = all(isinstance(v, (list, tuple)) for v in probe)
        numbers = lists and all(all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) for v in probe)
        if numbers:
            arrays = frame[c].map(lambda v: np.asarray(v, dtype=float).ravel() if isinstance(v, (list, tuple)) and len(v) else np.array([np.nan]))
            for stat, fn in (("mean", np.nanmean), ("std", np.nanstd), ("min", np.nanmin), ("max", np.nanmax)):
                frame[c + "_" + stat] = arrays.map(fn)
            frame[c + "_len"] = frame[c].map(lambda v: float(len(v)) if isinstance(v, (list, tuple)) else np.nan)
        elif lists:
            frame[c + "_words"] = frame[c].map(lambda v: " ".join(str(x).replace(" ", "_") for x in v) if isinstance(v, (list, tuple)) else None)
        frame = frame.drop(columns=[c])
    return frame


def is_id_like(name, series):
    lowered = name.lower()
    if lowered == "id" or lowered.endswith("_id") or lowered.endswith("id") and series.dtype.kind in "iu":
        return series.is_unique
    return False


def shared_key(left, right):
    """A column both tables have whose values in RIGHT are unique: the join key, or None."""
    for c in right.columns:
        if c in left.columns and right[c].is_unique and right[c].notna().all():
            return c
    return None


def load_task(data_dir):
    """Train, test and sample tables put together: labels from another train table, submission
    keys from the sample where the test table lacks them, and tables keyed by a train and test
    column joined in. Returns (train, test, sample, notes)."""
    files = find_files(data_dir)
    sample = read(files["sample"])
    test = read(files["tests"][0])
    train = read(files["trains"][0])
    notes = ["train " + os.path.basename(files["trains"][0]), "test " + os.path.basename(files["tests"][0])]
    in_test = [c for c in sample.columns if c in test.columns]
    if not in_test and len(sample.columns) >= 2:
        key = sample.columns[0]
        if len(sample) != len(test):
            raise SystemExit(
                "the test table has no column of the sample submission and %d rows against the sample's %d: cannot tell which test row each submission row is"
                % (len(test), len(sample))
            )
        test.insert(0, key, sample[key].values)
        notes.append("submission keys (%s) taken from the sample in the test table's order" % key)
    targets = [c for c in sample.columns if c not in test.columns]
    if targets and not any(t in train.columns for t in targets):
        for other in files["trains"][1:]:
            labels = read(other)
            if not any(t in labels.columns for t in targets):
                continue
            key = shared_key(train, labels)
            if key is not None:
                train = train.merge(labels, on=key, how="left", suffixes=("", "_labels"))
                notes.append("labels from %s joined on %s" % (os.path.basename(other), key))
                break
            if len(labels) == len(train):
                for t in targets:
                    if t in labels.columns:
                        train[t] = labels[t].values
                notes.append("labels from %s by position" % os.path.basename(other))
                break
    joined = 0
    for other in files["others"]:
        if joined >= MAX_AUX_TABLES or os.path.getsize(other) > MAX_AUX_BYTES:
            continue
        try:
            aux = read(other)
        except Exception as e:  # a table we cannot read is not needed
            notes.append("skipped %s (%s)" % (os.path.basename(other), str(e)[:80]))
            continue
        key = next((c for c in aux.columns if c in train.columns and c in test.columns and c not in targets), None)
        if key is None:
            continue
        extra = [c for c in aux.columns if c != key and c not in train.columns and c not in sample.columns][:MAX_AUX_COLUMNS]
        if not extra:
            continue
        prefix = os.path.splitext(os.path.basename(other))[0] + "_"
        if aux[key].is_unique:
            block = aux[[key] + extra]
        else:
            numeric = [c for c in extra if aux[c].dtype.kind in "iufb"]
            grouped = aux.groupby(key)
            block = grouped[numeric].mean() if numeric else pd.DataFrame(index=grouped.size().index)
            block["rows"] = grouped.size()
            block = block.reset_index()
        block = block.rename(columns={c: prefix + str(c) for c in block.columns if c != key})
        train = train.merge(block, on=key, how="left")
        test = test.merge(block, on=key, how="left")
        notes.append("%s joined on %s" % (os.path.basename(other), key))
        joined += 1
    return train, test, sample, notes


def is_fractional(y):
    """A numeric target with a non-integer value: continuous, whatever its number of values."""
    if y.dtype.kind != "f":
        return False
    values = y.to_numpy(dtype=float)
    return bool(np.any(np.abs(values - np.round(values)) > 1e-9))


def looks_like_text(values):
    v = values.astype(str)
    return v.str.len().mean() >= 8 and v.str.contains(" ").mean() > 0.3


def classification_metric(name):
    """Whether the competition's metric scores labels (so integer targets are classes)."""
    n = (name or "").lower()
    return any(word in n for word in ("f1", "accuracy", "map@", "error", "kappa", "log-loss", "logloss"))


def target_spec(train, test, sample, metric_name=None):
    """Key columns (copied from test), target columns (predicted) and how to predict them.
    METRIC_NAME (the competition's) decides whether many integer values are classes."""
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
            elif y.dtype.kind in "iuf":
                many = y.nunique() > MAX_CATEGORIES and not classification_metric(metric_name)
                kinds[t] = "regression" if is_fractional(y) or many else "multiclass"
            elif y.nunique() <= MAX_CATEGORIES or not looks_like_text(y):
                kinds[t] = "multiclass"
            else:
                kinds[t] = "text"
        spec = {"keys": keys, "targets": targets, "mode": "columns", "kinds": kinds}
        text_targets = [t for t in targets if kinds[t] == "text"]
        if len(targets) == 1 and text_targets:
            source, share = span_source(train, test, targets[0])
            if source is not None:
                spec.update(mode="span", source=source, share=share)
        return spec
    wanted = set(targets)
    for c in train.columns:
        if train[c].dtype == object and wanted <= set(train[c].dropna().astype(str).unique()):
            return {"keys": keys, "targets": targets, "mode": "one-hot", "source": c}
    raise SystemExit("target columns %s are neither train columns nor the values of one train column" % targets)


def span_source(train, test, target):
    """The input text column that holds the target as a substring in most training rows."""
    rows = train[[target]].dropna().head(5000).index
    best, best_share = None, 0.0
    for c in test.columns:
        if c not in train.columns or c == target or train[c].dtype != object:
            continue
        pairs = zip(train.loc[rows, target].astype(str), train.loc[rows, c].fillna("").astype(str))
        share = float(np.mean([t.strip() != "" and t.strip() in s for t, s in pairs]))
        if share > best_share:
            best, best_share = c, share
    return (best, best_share) if best_share >= 0.5 else (None, best_share)


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
            elif c.lower().endswith("_id") and is_id_like(c, s):
                kinds[c] = "id"
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
    if "spearman" in n:
        return "spearman"
    if "pearson" in n:
        return "pearson"
    return "accuracy" if classification else "rmse"


LOWER_IS_BETTER = {"log-loss", "rmse", "rmsle", "mae"}
# Labels beyond this many are too rare to learn here: the rarest are left out of training.
MAX_CLASSES = 100


def profile(data_dir, metric_name=None):
    train, test, sample, notes = load_task(data_dir)
    spec = target_spec(train, test, sample, metric_name)
    kinds = column_kinds(train, test, spec)
    if spec["mode"] == "one-hot":
        task, classes = "multiclass", len(spec["targets"])
    elif spec["mode"] == "span":
        task, classes = "text-span", 0
    else:
        task = ",".join(sorted(set(spec["kinds"].values())))
        classes = max([int(train[t].nunique()) for t, k in spec["kinds"].items() if k == "multiclass"] or [0])
    by_kind = {}
    for c, k in kinds.items():
        by_kind.setdefault(k, []).append(c)
    return {
        "notes": notes,
        "train_rows": len(train),
        "test_rows": len(test),
        "keys": spec["keys"],
        "targets": spec["targets"][:20],
        "n_targets": len(spec["targets"]),
        "target_mode": spec["mode"],
        "task": task,
        "n_classes": classes,
        "span_source": spec.get("source") if spec["mode"] == "span" else None,
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


# ---------------------------------------------------------------------------- text spans


def words_of(text):
    """Whitespace-separated words of TEXT with their character offsets."""
    return [(m.group(0), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def word_jaccard(a, b):
    a, b = set(str(a).lower().split()), set(str(b).lower().split())
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def norm_word(w):
    stripped = re.sub(r"[^\w']+", "", w.lower())
    return stripped or "<punct>"


def word_features(words, context):
    """Hashed features of each word: itself, its neighbours and its place, alone and crossed
    with the row's categories (e.g. the sentiment a span must express)."""
    n = len(words)
    rows = []
    for i, (w, _, _) in enumerate(words):
        here = norm_word(w)
        prev = norm_word(words[i - 1][0]) if i else "<start>"
        nxt = norm_word(words[i + 1][0]) if i + 1 < n else "<end>"
        place = "pos%d" % min(4, int(5 * i / max(n, 1)))
        size = "len%d" % min(6, n // 5)
        base = ["w=" + here, "p=" + prev, "n=" + nxt, place, size, "first" if i == 0 else "", "last" if i == n - 1 else ""]
        feats = [f for f in base if f]
        for c in context:
            feats += [c] + [c + "|" + f for f in base if f]
        rows.append(feats)
    return rows


def best_span(words, proba):
    """The contiguous words whose probabilities most exceed one half (at least one word)."""
    best, best_sum, start, run = (0, 0), -1e9, 0, 0.0
    for i, p in enumerate(proba):
        if run <= 0:
            start, run = i, 0.0
        run += p - 0.5
        if run > best_sum:
            best, best_sum = (start, i), run
    i, j = best
    return " ".join(w for w, _, _ in words[i : j + 1])


def span_labels(text, target):
    """1 for each word of TEXT inside the first occurrence of TARGET (case-insensitively
    found when the exact text is not), else 0; None when TARGET is not in TEXT."""
    target = target.strip()
    at = text.find(target)
    if at < 0:
        at = text.lower().find(target.lower())
    if at < 0 or not target:
        return None
    end = at + len(target)
    return [int(s < end and e > at) for _, s, e in words_of(text)]


def solve_span(recipe, train, test, spec, kinds):
    """Predict a target that is a piece of an input text: a word classifier picks the span;
    the whole text is copied instead for each category where that validates better."""
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    target, source = spec["targets"][0], spec["source"]
    by = [c for c, k in kinds.items() if k in ("categorical", "boolean")][:3]
    hasher = FeatureHasher(n_features=1 << 18, input_type="string", alternate_sign=False)
    c_value = float((recipe.get("params") or {}).get("C", 1.0))

    def rows_of(frame):
        texts = frame[source].fillna("").astype(str).tolist()
        contexts = [["%s=%s" % (c, frame[c].iloc[r]) for c in by] for r in range(len(frame))]
        return texts, contexts

    def category(contexts, r):
        return contexts[r][0] if by else ""

    texts, contexts = rows_of(train)
    truths = train[target].fillna("").astype(str).tolist()
    usable = [r for r in range(len(texts)) if span_labels(texts[r], truths[r]) is not None and words_of(texts[r])]

    def fit(rows):
        feats, labels = [], []
        for r in rows:
            words = words_of(texts[r])
            feats += word_features(words, contexts[r])
            labels += span_labels(texts[r], truths[r])
        model = LogisticRegression(C=c_value, solver="liblinear")
        model.fit(hasher.transform(feats), labels)
        return model

    def predict(model, row_texts, row_contexts):
        # One batch for every word of every row, then each row's span from its slice.
        words = [words_of(text) for text in row_texts]
        feats = [f for ws, context in zip(words, row_contexts) for f in word_features(ws, context)]
        proba = model.predict_proba(hasher.transform(feats))[:, 1] if feats else np.zeros(0)
        out, at = [], 0
        for text, ws in zip(row_texts, words):
            out.append(best_span(ws, proba[at : at + len(ws)]) if ws else text)
            at += len(ws)
        return out

    folds = max(2, min(int(recipe.get("folds", 5)), 5))
    span_scores, copy_scores = {}, {}
    for fit_idx, valid_idx in KFold(folds, shuffle=True, random_state=int(recipe.get("seed", 0))).split(usable):
        model = fit([usable[i] for i in fit_idx])
        rows = [usable[i] for i in valid_idx]
        guesses = predict(model, [texts[r] for r in rows], [contexts[r] for r in rows])
        for r, guess in zip(rows, guesses):
            span_scores.setdefault(category(contexts, r), []).append(word_jaccard(guess, truths[r]))
            copy_scores.setdefault(category(contexts, r), []).append(word_jaccard(texts[r], truths[r]))
    copy_for = {c for c in copy_scores if np.mean(copy_scores[c]) >= np.mean(span_scores[c])}
    validation = float(np.mean([s for c in span_scores for s in (copy_scores[c] if c in copy_for else span_scores[c])]))
    model = fit(usable)
    test_texts, test_contexts = rows_of(test)
    spans = predict(model, test_texts, test_contexts)
    chosen = [test_texts[r] if category(test_contexts, r) in copy_for else spans[r] for r in range(len(test_texts))]
    return validation, [c if c.strip() else t for c, t in zip(chosen, test_texts)], sorted(copy_for)


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
    if metric in ("spearman", "pearson"):
        from scipy import stats

        if np.std(pred) == 0 or np.std(y_true) == 0:
            return 0.0
        test = stats.spearmanr if metric == "spearman" else stats.pearsonr
        return float(test(y_true, pred)[0])
    return float(m.accuracy_score(y_true, pred))


def fit_predict_target(recipe, X, y, X_test, kind, metric, categorical):
    """Cross-validated metric and test predictions for one target column."""
    from sklearn.model_selection import KFold, StratifiedKFold

    family, seed = recipe["family"], int(recipe.get("seed", 0))
    classification = kind != "regression"
    folds = int(recipe.get("folds", 5))
    if classification and pd.Series(y).nunique() > MAX_CLASSES:
        # Thousands of labels would make every model's per-class state explode (memory and
        # time): learn the most frequent ones only.
        keep = set(pd.Series(y).value_counts().index[:MAX_CLASSES])
        rows = np.array([v in keep for v in y])
        X = X.iloc[rows] if hasattr(X, "iloc") else X[rows]
        y = y[rows]
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
    train, test, sample, notes = load_task(data_dir)
    spec = target_spec(train, test, sample, recipe.get("metric"))
    kinds = column_kinds(train, test, spec)
    metric = metric_of(recipe.get("metric"), spec)
    out = test[spec["keys"]].copy() if spec["keys"] else pd.DataFrame(index=range(len(test)))
    scores, features, extra = [], 0, {}
    if spec["mode"] == "span":
        metric = "jaccard"
        valid, spans, copied = solve_span(recipe, train, test, spec, kinds)
        out[spec["targets"][0]] = spans
        scores.append(valid)
        extra = {"span_source": spec["source"], "copied_for": copied[:20]}
    else:
        family = recipe["family"]
        X, X_test, categorical = build_features(train, test, spec, kinds, recipe.get("features", {}), family != "linear")
        features = int(X.shape[1])
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
                valid, column = predict_column(recipe, train, t, spec["kinds"][t], X, X_test, metric, categorical)
                scores.append(valid)
                out[t] = column
    out = out[list(sample.columns)]
    out.to_csv(out_csv, index=False)
    emit({
        "metric": metric,
        "lower_is_better": metric in LOWER_IS_BETTER,
        "validation": float(np.mean(scores)),
        "per_target": scores[:20],
        "rows": len(out),
        "features": features,
        "notes": notes,
        "seconds": round(time.time() - started, 2),
        **extra,
    })


def predict_column(recipe, train, t, kind, X, X_test, metric, categorical):
    """Validation score and test predictions for target column T of kind KIND."""
    rows = train[t].notna().values
    y = train[t].values[rows]
    if kind == "text":
        # Free text that no input holds: the most frequent answer is the baseline.
        common = pd.Series(y).astype(str).mode().iloc[0]
        return float(np.mean(pd.Series(y).astype(str) == common)), [common] * X_test.shape[0]
    Xr = X.iloc[rows] if hasattr(X, "iloc") else X[rows]
    ranked = metric in ("spearman", "pearson")
    fit_metric = "auc" if ranked and kind == "binary" else metric
    valid, pred, classes = fit_predict_target(recipe, Xr, y, X_test, kind, fit_metric, categorical)
    if classes is None:
        return valid, pred
    if fit_metric in ("auc", "log-loss") and len(classes) == 2:
        return valid, pred[:, 1]
    if ranked and np.asarray(classes).dtype.kind in "iuf":
        return valid, pred @ np.asarray(classes, dtype=float)
    return valid, classes[pred.argmax(axis=1)]


def main(argv):
    if len(argv) >= 3 and argv[1] == "profile":
        emit(profile(argv[2], argv[3] if len(argv) > 3 else None))
    elif len(argv) >= 5 and argv[1] == "solve":
        solve(argv[2], json.loads(argv[3]), argv[4])
    else:
        raise SystemExit("usage: sophon_recipes.py profile DATA_DIR [METRIC] | solve DATA_DIR RECIPE_JSON OUT_CSV")


if __name__ == "__main__":
    main(sys.argv)
