//! Where the grading tests find MLE-bench's real data and an independent Python reference.
//!
//! - The data: `$SOPHON_MLEBENCH_DIR`, else a `shared/mlebench` directory beside the
//!   checkout (`../shared/mlebench`). Never copied into the repository.
//! - The reference: `$SOPHON_PYREF` (a Python with pandas and scikit-learn), else
//!   `target/pyref/bin/python` as `tests/run` creates it.
//!
//! Without them the tests that need them print why and pass vacuously — unless required:
//! `SOPHON_REQUIRE_MLEBENCH=1` (set by `tests/run` when the data is present) requires both,
//! `SOPHON_REQUIRE_PYREF=1` (set by `tests/run` whenever it installed the reference) the
//! reference, so the tests on synthetic data always check something.

use std::path::{Path, PathBuf};

fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

fn missing(what: &str, required_by: &[&str]) -> Option<PathBuf> {
    if let Some(flag) = required_by.iter().find(|f| self::flag(f)) {
        panic!("{flag}=1 but {what}");
    }
    eprintln!("skipping: {what}");
    None
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `shared/mlebench` directory (with `data/`, `competitions/`, `THRESHOLDS.csv`).
pub fn mlebench_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SOPHON_MLEBENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            repo_root()
                .parent()
                .unwrap()
                .join("shared")
                .join("mlebench")
        });
    if dir.join("THRESHOLDS.csv").is_file() {
        Some(dir)
    } else {
        missing(
            &format!("no MLE-bench data at {}", dir.display()),
            &["SOPHON_REQUIRE_MLEBENCH"],
        )
    }
}

/// A Python that has pandas and scikit-learn.
pub fn python_reference() -> Option<PathBuf> {
    let python = std::env::var_os("SOPHON_PYREF")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/pyref/bin/python"));
    let works = std::process::Command::new(&python)
        .args([
            "-c",
            "import pandas, sklearn, Levenshtein, pycocotools, shapely, pyquaternion",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        Some(python)
    } else {
        missing(
            &format!(
                "no Python reference at {} (tests/run installs it)",
                python.display()
            ),
            &["SOPHON_REQUIRE_MLEBENCH", "SOPHON_REQUIRE_PYREF"],
        )
    }
}

/// The reference's score of `submission` (None: invalid or an error), and its reason.
pub fn reference_score(
    python: &Path,
    family: &str,
    id: &str,
    targets: &[&str],
    submission: &Path,
    answers: &Path,
) -> (Option<f64>, String) {
    let script = repo_root().join("tests/support/mlebench_reference.py");
    let targets = if targets.is_empty() {
        "-".to_string()
    } else {
        targets.join(",")
    };
    let output = std::process::Command::new(python)
        .arg(script)
        .args([family, id, &targets])
        .arg(submission)
        .arg(answers)
        .output()
        .expect("running the Python reference");
    assert!(
        output.status.success(),
        "the reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        value["score"].as_f64(),
        value["why"].as_str().unwrap_or_default().to_string(),
    )
}
