//! Medal thresholds from a competition's Kaggle leaderboard, by MLE-bench's rule, and the
//! per-submission report in MLE-bench's grading-report format.

use crate::table::{Limits, Table};
use serde::Serialize;
use std::path::Path;

/// Thresholds derived from one leaderboard.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    pub gold: f64,
    pub silver: f64,
    pub bronze: f64,
    pub median: f64,
    pub lower_is_better: bool,
    pub teams: usize,
}

/// The medals a score earns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Medals {
    pub gold: bool,
    pub silver: bool,
    pub bronze: bool,
    pub above_median: bool,
}

impl Medals {
    pub fn any(&self) -> bool {
        self.gold || self.silver || self.bronze
    }
}

/// 1-based leaderboard positions of the gold, silver and bronze thresholds for `n` teams.
pub fn positions(n: usize) -> (usize, usize, usize) {
    let frac = |f: f64| ((f * n as f64).floor() as usize).max(1);
    match n {
        0..100 => (frac(0.1), frac(0.2), frac(0.4)),
        100..250 => (10, frac(0.2), frac(0.4)),
        250..1000 => (10 + (0.002 * n as f64).floor() as usize, 50, 100),
        _ => (
            10 + (0.002 * n as f64).floor() as usize,
            frac(0.05),
            frac(0.1),
        ),
    }
}

impl Thresholds {
    /// From the leaderboard's scores in rank order (best first).
    pub fn from_scores(scores: &[f64]) -> Result<Thresholds, String> {
        let n = scores.len();
        if n == 0 {
            return Err("the leaderboard has no rows".into());
        }
        let (g, s, b) = positions(n);
        let at = |p: usize| scores[p.min(n) - 1];
        let mut present: Vec<f64> = scores.iter().copied().filter(|x| !x.is_nan()).collect();
        present.sort_by(f64::total_cmp);
        let median = match present.len() {
            0 => f64::NAN,
            m if m % 2 == 1 => present[m / 2],
            m => (present[m / 2 - 1] + present[m / 2]) / 2.0,
        };
        Ok(Thresholds {
            gold: at(g),
            silver: at(s),
            bronze: at(b),
            median,
            lower_is_better: scores[0] < scores[n - 1],
            teams: n,
        })
    }

    /// Read a Kaggle `leaderboard.csv` (its `score` column, in file order).
    pub fn read(path: &Path) -> Result<Thresholds, String> {
        let table = Table::read_path_with(path, Limits::default()).map_err(|e| e.to_string())?;
        let scores = table
            .column("score")
            .and_then(|c| c.to_f64())
            .ok_or_else(|| format!("{} has no numeric `score` column", path.display()))?;
        Thresholds::from_scores(&scores)
    }

    /// The medals `score` earns (none for NaN or no score).
    pub fn medals(&self, score: Option<f64>) -> Medals {
        let Some(s) = score else {
            return Medals::default();
        };
        let reaches = |threshold: f64| {
            if self.lower_is_better {
                s <= threshold
            } else {
                s >= threshold
            }
        };
        let gold = reaches(self.gold);
        let silver = !gold && reaches(self.silver);
        let bronze = !gold && !silver && reaches(self.bronze);
        let above_median = if self.lower_is_better {
            s < self.median
        } else {
            s > self.median
        };
        Medals {
            gold,
            silver,
            bronze,
            above_median,
        }
    }
}

/// One graded submission, with MLE-bench's report fields in MLE-bench's order. Non-finite
/// numbers are written as `null` (strict JSON); `valid_submission` tells a NaN score from an
/// invalid submission.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompetitionReport {
    pub competition_id: String,
    pub score: Option<f64>,
    pub gold_threshold: Option<f64>,
    pub silver_threshold: Option<f64>,
    pub bronze_threshold: Option<f64>,
    pub median_threshold: Option<f64>,
    pub any_medal: bool,
    pub gold_medal: bool,
    pub silver_medal: bool,
    pub bronze_medal: bool,
    pub above_median: bool,
    pub submission_exists: bool,
    pub valid_submission: bool,
    pub is_lower_better: bool,
    pub created_at: String,
    pub submission_path: String,
    /// Sophon's addition: why the submission is invalid, or what was scored.
    pub message: String,
}

impl CompetitionReport {
    /// Assemble a report; `thresholds` may be unknown (no leaderboard), in which case no
    /// medal is awarded and direction comes from `lower_is_better`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        competition_id: &str,
        submission_path: &str,
        submission_exists: bool,
        score: Option<f64>,
        valid: bool,
        message: String,
        thresholds: Option<&Thresholds>,
        lower_is_better: bool,
        created_at: String,
    ) -> CompetitionReport {
        let medals = thresholds.map(|t| t.medals(score)).unwrap_or_default();
        let finite = |x: f64| x.is_finite().then_some(x);
        CompetitionReport {
            competition_id: competition_id.to_string(),
            score: score.and_then(finite),
            gold_threshold: thresholds.and_then(|t| finite(t.gold)),
            silver_threshold: thresholds.and_then(|t| finite(t.silver)),
            bronze_threshold: thresholds.and_then(|t| finite(t.bronze)),
            median_threshold: thresholds.and_then(|t| finite(t.median)),
            any_medal: medals.any(),
            gold_medal: medals.gold,
            silver_medal: medals.silver,
            bronze_medal: medals.bronze,
            above_median: medals.above_median,
            submission_exists,
            valid_submission: valid,
            is_lower_better: thresholds.map_or(lower_is_better, |t| t.lower_is_better),
            created_at,
            submission_path: submission_path.to_string(),
            message,
        }
    }
}

/// The whole grading report (`<timestamp>_grading_report.json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GradingReport {
    pub total_runs: usize,
    pub total_runs_with_submissions: usize,
    pub total_valid_submissions: usize,
    pub total_medals: usize,
    pub total_gold_medals: usize,
    pub total_silver_medals: usize,
    pub total_bronze_medals: usize,
    pub total_above_median: usize,
    pub competition_reports: Vec<CompetitionReport>,
}

impl GradingReport {
    pub fn new(reports: Vec<CompetitionReport>) -> GradingReport {
        let count = |f: fn(&CompetitionReport) -> bool| reports.iter().filter(|r| f(r)).count();
        GradingReport {
            total_runs: reports.len(),
            total_runs_with_submissions: count(|r| r.submission_exists),
            total_valid_submissions: count(|r| r.valid_submission),
            total_medals: count(|r| r.any_medal),
            total_gold_medals: count(|r| r.gold_medal),
            total_silver_medals: count(|r| r.silver_medal),
            total_bronze_medals: count(|r| r.bronze_medal),
            total_above_median: count(|r| r.above_median),
            competition_reports: reports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_the_table() {
        assert_eq!(positions(5), (1, 1, 2));
        assert_eq!(positions(99), (9, 19, 39));
        assert_eq!(positions(100), (10, 20, 40));
        assert_eq!(positions(249), (10, 49, 99));
        assert_eq!(positions(250), (10, 50, 100));
        assert_eq!(positions(999), (11, 50, 100));
        assert_eq!(positions(1000), (12, 50, 100));
        assert_eq!(positions(3000), (16, 150, 300));
    }

    #[test]
    fn medals_in_both_directions_and_for_missing_scores() {
        let higher = Thresholds::from_scores(&[0.9, 0.8, 0.7, 0.6, 0.5]).unwrap();
        assert_eq!((higher.gold, higher.silver, higher.bronze), (0.9, 0.9, 0.8));
        assert_eq!(higher.median, 0.7);
        assert!(!higher.lower_is_better);
        let m = higher.medals(Some(0.85));
        assert!(m.bronze && !m.silver && !m.gold && m.above_median);
        assert!(higher.medals(Some(0.9)).gold);
        assert!(!higher.medals(Some(0.7)).above_median, "strictly above");
        assert_eq!(higher.medals(None), Medals::default());
        assert_eq!(higher.medals(Some(f64::NAN)), Medals::default());
        let lower = Thresholds::from_scores(&[0.1, 0.2, 0.3, 0.4]).unwrap();
        assert!(lower.lower_is_better);
        assert_eq!(lower.median, 0.25);
        assert!(lower.medals(Some(0.1)).gold);
        assert!(lower.medals(Some(0.24)).above_median);
    }
}
