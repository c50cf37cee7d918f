//! The demo competition Sophon prepares itself, so the main job runs on a fresh machine with
//! no Kaggle account and no MLE-bench checkout: the Breast Cancer Wisconsin (Diagnostic)
//! dataset that scikit-learn ships inside its PyPI package, split into MLE-bench's prepared
//! layout (`<data-dir>/<id>/prepared/{public,private}`) and graded by ROC AUC through the
//! generic path of the `mlebench` adapter (`[mlebench.competitions.sophon-demo-breast-cancer]`
//! in the embedded configuration).
//!
//! Preparation is deterministic (a seeded stratified split), writes into a temporary
//! directory and renames it into place, so a crash never leaves a half-prepared competition.

use std::path::{Path, PathBuf};

/// The demo competition's id.
pub const DEMO_ID: &str = "sophon-demo-breast-cancer";

const PREPARE: &str = r#"
import os, sys
import numpy as np, pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

root = sys.argv[1]
data = load_breast_cancer(as_frame=True)
frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
frame["malignant"] = (frame.pop("target") == 0).astype(int)
frame.insert(0, "id", np.arange(1, len(frame) + 1))
train, test = train_test_split(frame, test_size=0.25, random_state=20260101, stratify=frame["malignant"])
public, private = os.path.join(root, "public"), os.path.join(root, "private")
os.makedirs(public); os.makedirs(private)
train.sort_values("id").to_csv(os.path.join(public, "train.csv"), index=False)
test = test.sort_values("id")
test.drop(columns=["malignant"]).to_csv(os.path.join(public, "test.csv"), index=False)
test[["id", "malignant"]].to_csv(os.path.join(private, "answers.csv"), index=False)
pd.DataFrame({"id": test["id"], "malignant": 0.5}).to_csv(os.path.join(public, "sample_submission.csv"), index=False)
with open(os.path.join(public, "description.md"), "w") as f:
    f.write(sys.argv[2])
print(len(train), len(test))
"#;

const DESCRIPTION: &str = "# Sophon demo: breast cancer diagnosis

Predict whether a breast mass is malignant from 30 features computed from a digitized image of
a fine needle aspirate (radius, texture, perimeter, area, smoothness, compactness, concavity,
concave points, symmetry and fractal dimension: mean, standard error and worst value of each).

## Data

- `train.csv`: `id`, the 30 features, and `malignant` (1 = malignant, 0 = benign).
- `test.csv`: `id` and the 30 features.
- `sample_submission.csv`: the submission format.

## Evaluation

Submissions are evaluated on the area under the ROC curve between the predicted probability
that a mass is malignant and the observed diagnosis. Submit one row per test `id`:

```
id,malignant
5,0.93
...
```

## Source

The Breast Cancer Wisconsin (Diagnostic) dataset (W. Wolberg, O. Mangasarian, N. Street,
W. Street; UCI Machine Learning Repository, CC BY 4.0), as shipped with scikit-learn.
Sophon prepares it locally with a fixed, stratified 75/25 split; there is no public
leaderboard, so runs on it report a score but no medals.
";

/// Where `id` is prepared under `data_dir`.
pub fn prepared_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DEMO_ID).join("prepared")
}

/// Why the demo competition could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The data directory could not be created.
    #[error("creating {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No staging directory could be made beside the target.
    #[error("creating a staging directory in {}: {source}", parent.display())]
    Staging {
        parent: PathBuf,
        source: std::io::Error,
    },
    /// The interpreter could not be started.
    #[error("running {}: {source}", python.display())]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    /// The preparation script failed; `stderr` is what it said.
    #[error("preparing the demo competition failed: {stderr}")]
    Script { stderr: String },
    /// The prepared data could not be renamed into place.
    #[error("moving the demo data to {}: {source}", target.display())]
    Move {
        target: PathBuf,
        source: std::io::Error,
    },
}

/// Prepare the demo competition under `data_dir` with `python` (which must have pandas and
/// scikit-learn), unless it is there already. Returns whether it was prepared now.
pub fn ensure_prepared(data_dir: &Path, python: &Path) -> Result<bool, DemoError> {
    let target = prepared_dir(data_dir);
    if target.join("private").join("answers.csv").is_file() {
        return Ok(false);
    }
    let parent = target.parent().expect("prepared dir has a parent");
    std::fs::create_dir_all(parent).map_err(|source| DemoError::CreateDir {
        path: parent.to_path_buf(),
        source,
    })?;
    let staging = tempfile::tempdir_in(parent).map_err(|source| DemoError::Staging {
        parent: parent.to_path_buf(),
        source,
    })?;
    let root = staging.path().join("prepared");
    let output = std::process::Command::new(python)
        .args(["-c", PREPARE])
        .arg(&root)
        .arg(DESCRIPTION)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| DemoError::Spawn {
            python: python.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(DemoError::Script {
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    match std::fs::rename(&root, &target) {
        Ok(()) => Ok(true),
        // Another process prepared it meanwhile.
        Err(_) if target.join("private").join("answers.csv").is_file() => Ok(false),
        Err(source) => Err(DemoError::Move { target, source }),
    }
}
