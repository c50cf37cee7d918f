//! The run's last resort: when the strategy leaves no best submission, the host writes a
//! baseline in the sample submission's format, so a run whose competition ships a sample never
//! ends without an answer.
//!
//! The baseline keeps the sample's header and ids and fills each target column from the
//! training table where it can (`train.csv` beside the sample): class priors for per-class
//! probability columns (columns named after the values of one training column), the mean of a
//! numeric target whose sample values are not whole numbers, the most frequent value
//! otherwise. A column the training table does not explain keeps the sample's value. Reading
//! problems (no `train.csv`, a table past its size limit, JSON data) leave the sample's values:
//! never worse than copying the sample. It never fails a run: a [`BaselineError`] is only logged.

use sophon_grading::table::{Cell, Column, Limits, Table, parse_float};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest training table read for the priors; larger ones leave the sample's values.
const MAX_TRAIN_BYTES: u64 = 512 << 20;
/// Rows of the sample looked at to tell fractions (probabilities, means) from labels.
const SAMPLE_ROWS_LOOKED_AT: usize = 1000;

/// What [`write`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// The sample submission it follows.
    pub sample: PathBuf,
    /// How each target column was filled, e.g. `Transported: most frequent (True)`.
    pub columns: Vec<String>,
}

impl Baseline {
    /// One line for the grade and the report.
    pub fn describe(&self) -> String {
        format!(
            "a baseline written by Sophon (the strategy left no valid submission): {} in the format of {}",
            if self.columns.is_empty() {
                "the sample's own values".to_string()
            } else {
                self.columns.join("; ")
            },
            self.sample
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().to_string())
        )
    }
}

/// The competition's sample submission in `public`: `sample_submission.csv`, else the first
/// (by name) CSV whose name contains `sample`.
pub fn find_sample(public: &Path) -> Option<PathBuf> {
    let exact = public.join("sample_submission.csv");
    if exact.is_file() {
        return Some(exact);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(public)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy().to_ascii_lowercase();
                    n.contains("sample") && n.ends_with(".csv")
                })
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Why no baseline was written (the run goes on without one).
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The public data holds no sample submission to follow.
    #[error("no sample submission in {}", public.display())]
    NoSample { public: PathBuf },
    /// The sample submission could not be read.
    #[error("reading {}: {source}", sample.display())]
    Read { sample: PathBuf, source: csv::Error },
    /// The baseline could not be written.
    #[error("writing {}: {source}", out.display())]
    Write { out: PathBuf, source: csv::Error },
}

/// Write a baseline for the competition whose public data is `public` to `out`.
pub fn write(public: &Path, out: &Path) -> Result<Baseline, BaselineError> {
    let sample = find_sample(public).ok_or_else(|| BaselineError::NoSample {
        public: public.to_path_buf(),
    })?;
    let reading = |source: csv::Error| BaselineError::Read {
        sample: sample.clone(),
        source,
    };
    let writing = |source: csv::Error| BaselineError::Write {
        out: out.to_path_buf(),
        source,
    };
    let open = || {
        csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_path(&sample)
            .map_err(reading)
    };
    // Samples can be hundreds of megabytes: a first look at the header and some rows decides
    // the fills, then the sample is streamed through.
    let mut reader = open()?;
    let header = reader.headers().map_err(reading)?.clone();
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .take(SAMPLE_ROWS_LOOKED_AT)
        .collect::<Result<_, _>>()
        .map_err(reading)?;
    let (fills, columns) = column_fills(public, &header, &rows);
    let mut writer = csv::Writer::from_path(out).map_err(writing)?;
    writer.write_record(&header).map_err(writing)?;
    for row in open()?.records() {
        let row = row.map_err(reading)?;
        let record: Vec<&str> = row
            .iter()
            .enumerate()
            .map(|(j, cell)| fills[j].as_deref().unwrap_or(cell))
            .collect();
        writer.write_record(&record).map_err(writing)?;
    }
    writer.flush().map_err(|e| writing(e.into()))?;
    Ok(Baseline { sample, columns })
}

/// What to write in each of the sample's columns (`None`: the sample's own values) and how
/// each filled column was filled, from the training table beside the sample and a first look
/// at the sample's `header` and `rows`.
fn column_fills(
    public: &Path,
    header: &csv::StringRecord,
    rows: &[csv::StringRecord],
) -> (Vec<Option<String>>, Vec<String>) {
    let train = read_train(public);
    // The sample's columns that the test table also has are keys (ids, or inputs such as a
    // comment's text): always the sample's own values. Without a test table, the first column.
    let keys = test_columns(public);
    let is_target = |j: usize, name: &str| match &keys {
        Some(keys) => !keys.iter().any(|k| k == name),
        None => j > 0,
    };
    let mut fills: Vec<Option<String>> = vec![None; header.len()];
    let mut columns = Vec::new();
    if let Some(train) = &train {
        let targets: Vec<&str> = header
            .iter()
            .enumerate()
            .filter(|(j, name)| is_target(*j, name))
            .map(|(_, name)| name)
            .collect();
        let priors = class_priors(train, &targets);
        for (j, name) in header.iter().enumerate() {
            if !is_target(j, name) {
                continue;
            }
            let sample_values = rows.iter().filter_map(|r| r.get(j));
            let fill = match &priors {
                Some((label, p)) => p
                    .get(name)
                    .map(|v| (format!("{v}"), format!("prior of {label} = {name}"))),
                None => train
                    .column(name)
                    .and_then(|c| column_fill(c, sample_values)),
            };
            if let Some((value, how)) = fill {
                columns.push(format!("{name}: {how}"));
                fills[j] = Some(value);
            }
        }
    }
    (fills, columns)
}

/// The header of the test table beside the sample (`test.csv`, else a CSV named like
/// `*test*`), if there is one.
fn test_columns(public: &Path) -> Option<Vec<String>> {
    let named = |p: &Path| {
        p.file_name().is_some_and(|n| {
            let n = n.to_string_lossy().to_ascii_lowercase();
            n.contains("test") && !n.contains("sample") && n.ends_with(".csv")
        })
    };
    let path = Some(public.join("test.csv"))
        .filter(|p| p.is_file())
        .or_else(|| {
            let mut found: Vec<PathBuf> = std::fs::read_dir(public)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && named(p))
                .collect();
            found.sort();
            found.into_iter().next()
        })?;
    let mut reader = csv::ReaderBuilder::new().from_path(path).ok()?;
    Some(reader.headers().ok()?.iter().map(str::to_string).collect())
}

/// `train.csv` beside the sample, if it is there and small enough to read.
fn read_train(public: &Path) -> Option<Table> {
    let path = public.join("train.csv");
    let size = std::fs::metadata(&path).ok()?.len();
    if size > MAX_TRAIN_BYTES {
        return None;
    }
    Table::read_path_with(
        &path,
        Limits {
            max_bytes: MAX_TRAIN_BYTES,
            ..Limits::default()
        },
    )
    .ok()
}

/// Per-class probability columns: when every target column is a value of one training
/// column (and there are at least two), that column's name and the share of each class.
fn class_priors(train: &Table, targets: &[&str]) -> Option<(String, HashMap<String, f64>)> {
    if targets.len() < 2 {
        return None;
    }
    train.names.iter().find_map(|label| {
        let counts = value_counts(train.column(label)?)?;
        if !targets.iter().all(|t| counts.contains_key(*t)) {
            return None;
        }
        let total: usize = counts.values().sum();
        let priors = targets
            .iter()
            .map(|t| (t.to_string(), counts[*t] as f64 / total as f64))
            .collect();
        Some((label.clone(), priors))
    })
}

/// How often each present value occurs, as text (integers without a fraction).
fn value_counts(column: &Column) -> Option<HashMap<String, usize>> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for row in 0..column.len() {
        let key = match column.cell(row) {
            Cell::Missing => continue,
            Cell::Num(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
                format!("{}", x as i64)
            }
            Cell::Num(x) => format!("{x}"),
            Cell::Bool(b) => if b { "True" } else { "False" }.to_string(),
            Cell::Text(t) => t.to_string(),
        };
        *counts.entry(key).or_default() += 1;
    }
    (!counts.is_empty()).then_some(counts)
}

/// The value for one target column and how it was chosen: the mean where the training
/// column is numeric and the sample holds fractions (a probability or a regression target),
/// the most frequent value otherwise (a label).
fn column_fill<'a>(
    column: &Column,
    mut sample_values: impl Iterator<Item = &'a str>,
) -> Option<(String, String)> {
    let fractional = sample_values.any(|v| parse_float(v).is_some_and(|x| x.fract() != 0.0));
    if fractional && let Some(values) = column.to_f64() {
        let present: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if !present.is_empty() {
            let mean = present.iter().sum::<f64>() / present.len() as f64;
            return Some((format!("{mean}"), "mean of the training target".to_string()));
        }
    }
    let counts = value_counts(column)?;
    let (value, _) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))?;
    Some((value.clone(), format!("most frequent ({value})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn baseline(dir: &tempfile::TempDir) -> (Baseline, String) {
        let out = dir.path().join("out.csv");
        let b = write(dir.path(), &out).unwrap();
        (b, std::fs::read_to_string(out).unwrap())
    }

    #[test]
    fn labels_get_the_most_frequent_value_and_probabilities_the_mean() {
        let dir = public(&[
            ("train.csv", "id,a,b\n1,True,0.2\n2,False,0.4\n3,True,0.9\n"),
            (
                "sample_submission.csv",
                "id,a,b\n10,False,0.5\n11,False,0.5\n",
            ),
        ]);
        let (b, text) = baseline(&dir);
        assert_eq!(text, "id,a,b\n10,True,0.5\n11,True,0.5\n");
        assert_eq!(b.columns[0], "a: most frequent (True)");
        assert!(b.columns[1].starts_with("b: mean"));
    }

    #[test]
    fn columns_the_test_table_has_are_keys_wherever_they_stand() {
        // detecting-insults-in-social-commentary: the target first, then two input columns
        // (one of them empty in places) that identify the row.
        let dir = public(&[
            (
                "train.csv",
                "Insult,Date,Comment\n1,20120618,\"you idiot\"\n0,20120619,\"nice\"\n1,,\"fool\"\n",
            ),
            ("test.csv", "Date,Comment\n,\"hello\"\n20120620,\"bye\"\n"),
            (
                "sample_submission_null.csv",
                "Insult,Date,Comment\n0,,\"hello\"\n0,20120620,\"bye\"\n",
            ),
        ]);
        let (b, text) = baseline(&dir);
        assert_eq!(text, "Insult,Date,Comment\n1,,hello\n1,20120620,bye\n");
        assert_eq!(b.columns, ["Insult: most frequent (1)"]);
    }

    #[test]
    fn per_class_columns_get_class_priors() {
        let dir = public(&[
            ("train.csv", "id,species\n1,cat\n2,dog\n3,cat\n4,cat\n"),
            ("sample_submission.csv", "id,cat,dog\n7,0.5,0.5\n"),
        ]);
        let (b, text) = baseline(&dir);
        assert_eq!(text, "id,cat,dog\n7,0.75,0.25\n");
        assert!(b.describe().contains("prior of species = cat"));
    }

    #[test]
    fn without_a_training_table_the_sample_is_kept_and_quoting_survives() {
        let dir = public(&[(
            "sampleSubmission.csv",
            "id,text\n\"a,1\",\"say \"\"hi\"\"\"\n",
        )]);
        let (b, text) = baseline(&dir);
        assert_eq!(text, "id,text\n\"a,1\",\"say \"\"hi\"\"\"\n");
        assert!(b.columns.is_empty());
        assert!(b.describe().contains("the sample's own values"));
        let none = public(&[("train.csv", "id,y\n1,2\n")]);
        assert!(write(none.path(), &none.path().join("o.csv")).is_err());
    }
}
