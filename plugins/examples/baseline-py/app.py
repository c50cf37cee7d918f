"""Example Python strategy: fits a few scikit-learn baselines as sandboxed jobs, each scored by
5-fold cross-validation, and submits the best one. No LLM: a starting point to grow from.

Build and run it on the demo competition:

    sophon plugin build sdk/python/examples/baseline
    sophon plugin run sdk/python/examples/baseline/baseline-py.wasm --grant-requested \
        --competition sophon-demo-breast-cancer
"""

import sophon_sdk as sophon

DEFAULTS = {"models": ["logistic", "forest"], "job-timeout-ms": 300_000}

# The job: plain Python run in the job sandbox with the task's public data at /data. It finds the
# target as the sample submission's non-id columns, scores MODEL by cross-validation (printing
# "CV: <score>", higher is better) and writes submission.csv.
SOLUTION = r'''
import sys
import numpy as np, pandas as pd
from sklearn.compose import make_column_transformer, make_column_selector
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

model_name, seed = sys.argv[1], int(sys.argv[2])
train = pd.read_csv("/data/train.csv")
test = pd.read_csv("/data/test.csv")
sample = pd.read_csv("/data/sample_submission.csv")
id_col, targets = sample.columns[0], list(sample.columns[1:])
target = targets[0]
y = train[target]
classify = y.nunique() <= 20
features = [c for c in test.columns if c != id_col and c in train.columns]
prep = make_column_transformer(
    (make_pipeline(SimpleImputer(), StandardScaler()), make_column_selector(dtype_include="number")),
    (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", max_categories=30)),
     make_column_selector(dtype_exclude="number")),
)
if model_name == "forest":
    est = (RandomForestClassifier if classify else RandomForestRegressor)(n_estimators=300, random_state=seed, n_jobs=-1)
else:
    est = LogisticRegression(max_iter=2000) if classify else Ridge()
model = make_pipeline(prep, est)
binary = classify and y.nunique() == 2
scoring = "roc_auc" if binary else ("accuracy" if classify else "neg_root_mean_squared_error")
score = cross_val_score(model, train[features], y, cv=5, scoring=scoring).mean()
print(f"CV: {score:.6f}")
model.fit(train[features], y)
# A binary target whose sample submission holds fractions wants probabilities.
if binary and sample[target].dtype.kind == "f":
    pred = model.predict_proba(test[features])[:, 1]
else:
    pred = model.predict(test[features])
pd.DataFrame({id_col: test[id_col], target: pred}).to_csv("submission.csv", index=False)
'''


class Baseline(sophon.Strategy):
    def run(self, config: dict) -> sophon.Outcome:
        settings = sophon.config.parse(config, DEFAULTS)
        seed = sophon.run.info().seed
        best = None  # (cv score, node id, submission artifact)
        made = 0
        for model in settings["models"]:
            timeout = sophon.run.job_time(settings["job-timeout-ms"])
            if sophon.run.should_stop() or timeout is None:
                break
            node_id = f"node-{made}"
            made += 1
            spec = (
                sophon.jobs.spec(f"baseline-{model}", ["python", "main.py", model, str(seed)])
                .file("main.py", SOLUTION)
                .mount_task_data("/data")
                .timeout_ms(timeout)
                .output("submission.csv")
            )
            result = sophon.jobs.run(spec)
            node = sophon.run.node(node_id, "draft").plan(f"{model} baseline, 5-fold CV")
            scores = sophon.jobs.stdout_lines_with(result, "CV:")
            submission = sophon.jobs.artifact(result, "submission.csv")
            if not sophon.jobs.succeeded(result) or not scores or submission is None:
                node.buggy().summary(sophon.jobs.failure(result)).report()
                continue
            score = float(scores[-1])
            verdict = sophon.task.validate(submission)
            if not verdict.valid:
                node.buggy().summary(f"invalid submission: {verdict.message}").report()
                continue
            node.metric(score).valid().summary(f"{model}: CV {score:.4f}").report()
            if best is None or score > best[0]:
                best = (score, node_id, submission)
                sophon.run.report_best(node_id, submission, score)
        if best is None:
            return sophon.Outcome(nodes=made, summary="no baseline produced a valid submission")
        return sophon.Outcome(
            best_node=best[1], nodes=made, summary=f"best baseline {best[1]}: CV {best[0]:.4f}"
        )


StrategyApi = sophon.export_strategy(Baseline)
