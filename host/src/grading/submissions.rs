//! MLE-bench's submissions file: JSONL, one `{"competition_id", "submission_path"}` per line.
//! Lines are trimmed; blank lines and lines starting with `#` or `//` are skipped; other keys
//! are ignored; a relative path is relative to the working directory.

use serde::Deserialize;

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmissionLine {
    pub line: usize,
    pub competition_id: String,
    pub submission_path: String,
}

#[derive(Deserialize)]
struct Raw {
    competition_id: String,
    submission_path: serde_json::Value,
}

/// A line of the submissions file that is not a submission record.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionsError {
    /// The line is not a JSON record with the two keys.
    #[error(
        "line {line} is not a submission record ({source}); expected \
         {{\"competition_id\": \"…\", \"submission_path\": \"…\"}}"
    )]
    NotARecord {
        line: usize,
        source: serde_json::Error,
    },
    /// The record's `submission_path` is `null`.
    #[error("line {0}: submission_path is null")]
    NullPath(usize),
}

/// Parse the whole file; an error names the line and what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<SubmissionLine>, SubmissionsError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        let raw: Raw =
            serde_json::from_str(trimmed).map_err(|source| SubmissionsError::NotARecord {
                line: line_no,
                source,
            })?;
        // MLE-bench converts the path with str(): numbers are accepted as text.
        let path = match raw.submission_path {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => {
                return Err(SubmissionsError::NullPath(line_no));
            }
            other => other.to_string(),
        };
        out.push(SubmissionLine {
            line: line_no,
            competition_id: raw.competition_id,
            submission_path: path,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blanks_and_extra_keys() {
        let text = "# runs\n\n  {\"competition_id\": \"a\", \"submission_path\": \"x.csv\", \"seed\": 1}  \n// skip\n{\"competition_id\": \"a\", \"submission_path\": 7}\n";
        let lines = parse(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 3);
        assert_eq!(lines[0].submission_path, "x.csv");
        assert_eq!(lines[1].submission_path, "7");
        let err = parse("{\"competition_id\": \"a\"}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("submission_path"),
            "{err}"
        );
    }
}
