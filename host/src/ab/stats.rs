//! The numbers of an A/B experiment: per-run outcomes, per-arm rates and means with bootstrap
//! confidence intervals, and paired differences against the baseline arm.
//!
//! Pure arithmetic over finished runs; the bootstrap is seeded, so the same results give the
//! same intervals.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Bootstrap resamples per interval.
pub const BOOTSTRAP_SAMPLES: usize = 2000;
/// Two-sided confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// One finished run of an arm, as the comparison sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub arm: String,
    pub competition_id: String,
    pub seed: u64,
    pub run_dir: String,
    pub score: Option<f64>,
    pub valid: bool,
    pub any_medal: bool,
    pub above_median: bool,
    /// `(score − median) / (gold − median)`: 0 at the leaderboard's median, 1 at the gold
    /// threshold, in either metric direction; `None` without a valid score or a leaderboard.
    pub normalized: Option<f64>,
    pub elapsed_ms: u64,
    /// Why the strategy failed, if it did (the run still counts, graded as it ended).
    pub error: Option<String>,
}

/// `(score − median) / (gold − median)`; `None` without a score, a leaderboard, or when the two
/// thresholds coincide.
pub fn normalize(score: Option<f64>, median: Option<f64>, gold: Option<f64>) -> Option<f64> {
    let (score, median, gold) = (score?, median?, gold?);
    let span = gold - median;
    (span != 0.0 && score.is_finite()).then(|| (score - median) / span)
}

/// An estimate with its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    /// Observations it rests on.
    pub n: usize,
}

/// The mean of `values` with a percentile bootstrap interval; `None` without values.
pub fn bootstrap_mean(values: &[f64], rng: &mut StdRng) -> Option<Estimate> {
    if values.is_empty() {
        return None;
    }
    let mean = |xs: &mut dyn Iterator<Item = f64>| -> f64 {
        let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
        sum / n as f64
    };
    let mut means: Vec<f64> = (0..BOOTSTRAP_SAMPLES)
        .map(|_| mean(&mut (0..values.len()).map(|_| values[rng.random_range(0..values.len())])))
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let at = |q: f64| {
        means[((q * (BOOTSTRAP_SAMPLES - 1) as f64).round() as usize).min(BOOTSTRAP_SAMPLES - 1)]
    };
    Some(Estimate {
        value: mean(&mut values.iter().copied()),
        low: at(tail),
        high: at(1.0 - tail),
        n: values.len(),
    })
}

/// One arm's results over all its runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArmSummary {
    pub arm: String,
    pub runs: usize,
    pub valid_rate: Option<Estimate>,
    pub any_medal_rate: Option<Estimate>,
    pub above_median_rate: Option<Estimate>,
    pub mean_normalized_score: Option<Estimate>,
}

/// The arm's rates (each run 0 or 1) and mean normalised score, with intervals.
pub fn summarize_arm(arm: &str, outcomes: &[&Outcome], rng: &mut StdRng) -> ArmSummary {
    let rate = |f: fn(&Outcome) -> bool, rng: &mut StdRng| {
        let xs: Vec<f64> = outcomes.iter().map(|o| f64::from(u8::from(f(o)))).collect();
        bootstrap_mean(&xs, rng)
    };
    let normalized: Vec<f64> = outcomes.iter().filter_map(|o| o.normalized).collect();
    ArmSummary {
        arm: arm.to_string(),
        runs: outcomes.len(),
        valid_rate: rate(|o| o.valid, rng),
        any_medal_rate: rate(|o| o.any_medal, rng),
        above_median_rate: rate(|o| o.above_median, rng),
        mean_normalized_score: bootstrap_mean(&normalized, rng),
    }
}

/// An arm against the baseline on one competition (or on all, `competition_id = "all"`):
/// differences of normalised scores between runs with the same competition and seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedComparison {
    pub competition_id: String,
    pub arm: String,
    pub baseline: String,
    /// Mean of `arm − baseline` normalised scores over the pairs where both have one.
    pub difference: Option<Estimate>,
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
}

/// Pair `arm`'s runs with `baseline`'s by (competition, seed) within `competition` (all when
/// `None`).
pub fn compare(
    arm: &str,
    baseline: &str,
    outcomes: &[Outcome],
    competition: Option<&str>,
    rng: &mut StdRng,
) -> PairedComparison {
    let of = |name: &str| -> Vec<&Outcome> {
        outcomes
            .iter()
            .filter(|o| o.arm == name && competition.is_none_or(|c| o.competition_id == c))
            .collect()
    };
    let (mine, theirs) = (of(arm), of(baseline));
    let mut differences = Vec::new();
    let (mut wins, mut losses, mut ties) = (0, 0, 0);
    for m in &mine {
        let Some(b) = theirs
            .iter()
            .find(|b| b.competition_id == m.competition_id && b.seed == m.seed)
        else {
            continue;
        };
        match (m.normalized, b.normalized) {
            (Some(x), Some(y)) => {
                differences.push(x - y);
                if x > y {
                    wins += 1;
                } else if x < y {
                    losses += 1;
                } else {
                    ties += 1;
                }
            }
            // A valid score beats none.
            (Some(_), None) => wins += 1,
            (None, Some(_)) => losses += 1,
            // No leaderboard to normalise against: a valid submission still beats an
            // invalid (or missing) one.
            (None, None) => match (m.valid, b.valid) {
                (true, false) => wins += 1,
                (false, true) => losses += 1,
                _ => ties += 1,
            },
        }
    }
    PairedComparison {
        competition_id: competition.unwrap_or("all").to_string(),
        arm: arm.to_string(),
        baseline: baseline.to_string(),
        difference: bootstrap_mean(&differences, rng),
        wins,
        losses,
        ties,
    }
}

/// Everything an experiment's report shows.
#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub arms: Vec<ArmSummary>,
    pub comparisons: Vec<PairedComparison>,
    pub bootstrap_samples: usize,
    pub confidence: f64,
}

/// Summaries of every arm and comparisons of every other arm with the first, per competition
/// and overall. Seeded by `seed`.
pub fn analyze(
    arms: &[String],
    competitions: &[String],
    outcomes: &[Outcome],
    seed: u64,
) -> Analysis {
    let mut rng = StdRng::seed_from_u64(seed);
    let summaries = arms
        .iter()
        .map(|arm| {
            let mine: Vec<&Outcome> = outcomes.iter().filter(|o| &o.arm == arm).collect();
            summarize_arm(arm, &mine, &mut rng)
        })
        .collect();
    let mut comparisons = Vec::new();
    if let Some((baseline, others)) = arms.split_first() {
        for arm in others {
            for competition in competitions {
                comparisons.push(compare(
                    arm,
                    baseline,
                    outcomes,
                    Some(competition),
                    &mut rng,
                ));
            }
            comparisons.push(compare(arm, baseline, outcomes, None, &mut rng));
        }
    }
    Analysis {
        arms: summaries,
        comparisons,
        bootstrap_samples: BOOTSTRAP_SAMPLES,
        confidence: CONFIDENCE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(arm: &str, competition: &str, seed: u64, normalized: Option<f64>) -> Outcome {
        Outcome {
            arm: arm.into(),
            competition_id: competition.into(),
            seed,
            run_dir: String::new(),
            score: normalized,
            valid: normalized.is_some(),
            any_medal: normalized.is_some_and(|n| n >= 1.0),
            above_median: normalized.is_some_and(|n| n > 0.0),
            normalized,
            elapsed_ms: 0,
            error: None,
        }
    }

    #[test]
    fn normalization_is_zero_at_the_median_and_one_at_gold_in_both_directions() {
        assert!((normalize(Some(0.9), Some(0.8), Some(1.0)).unwrap() - 0.5).abs() < 1e-12);
        // Lower is better: gold 0.1 below a median of 0.5; 0.3 is halfway.
        assert!((normalize(Some(0.3), Some(0.5), Some(0.1)).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(normalize(None, Some(0.5), Some(0.1)), None);
        assert_eq!(normalize(Some(0.3), None, None), None, "no leaderboard");
        assert_eq!(normalize(Some(0.3), Some(0.5), Some(0.5)), None);
    }

    #[test]
    fn bootstrap_intervals_contain_the_mean_and_shrink_with_more_data() {
        let mut rng = StdRng::seed_from_u64(1);
        let few = bootstrap_mean(&[0.0, 1.0, 0.0, 1.0], &mut rng).unwrap();
        assert_eq!(few.value, 0.5);
        assert!(few.low <= 0.5 && few.high >= 0.5 && few.low >= 0.0 && few.high <= 1.0);
        let many: Vec<f64> = (0..400).map(|i| f64::from(i % 2)).collect();
        let tight = bootstrap_mean(&many, &mut rng).unwrap();
        assert!(tight.high - tight.low < few.high - few.low);
        assert!(bootstrap_mean(&[], &mut rng).is_none());
        let constant = bootstrap_mean(&[0.3; 5], &mut rng).unwrap();
        assert_eq!((constant.low, constant.high), (0.3, 0.3));
    }

    #[test]
    fn paired_comparisons_match_competition_and_seed() {
        let outcomes = vec![
            outcome("a", "x", 0, Some(0.1)),
            outcome("b", "x", 0, Some(0.4)),
            outcome("a", "x", 1, Some(0.5)),
            outcome("b", "x", 1, Some(0.2)),
            outcome("a", "y", 0, None),
            outcome("b", "y", 0, Some(0.0)),
        ];
        let mut rng = StdRng::seed_from_u64(3);
        let x = compare("b", "a", &outcomes, Some("x"), &mut rng);
        assert_eq!((x.wins, x.losses, x.ties), (1, 1, 0));
        assert!((x.difference.unwrap().value - 0.0).abs() < 1e-12);
        let all = compare("b", "a", &outcomes, None, &mut rng);
        assert_eq!((all.wins, all.losses), (2, 1), "a valid score beats none");
        // Without a leaderboard (no normalised scores) validity still decides.
        let mut unranked = vec![
            outcome("a", "z", 0, None),
            outcome("b", "z", 0, None),
            outcome("a", "z", 1, None),
            outcome("b", "z", 1, None),
        ];
        unranked[1].valid = true;
        let z = compare("b", "a", &unranked, Some("z"), &mut rng);
        assert_eq!((z.wins, z.losses, z.ties), (1, 0, 1));
        let z = compare("a", "b", &unranked, Some("z"), &mut rng);
        assert_eq!((z.wins, z.losses, z.ties), (0, 1, 1));
        let analysis = analyze(
            &["a".into(), "b".into()],
            &["x".into(), "y".into()],
            &outcomes,
            7,
        );
        assert_eq!(analysis.arms[1].above_median_rate.unwrap().value, 2.0 / 3.0);
        assert_eq!(analysis.comparisons.len(), 3);
        // Seeded: the same results give the same intervals.
        let again = analyze(
            &["a".into(), "b".into()],
            &["x".into(), "y".into()],
            &outcomes,
            7,
        );
        assert_eq!(again.arms, analysis.arms);
    }
}
