//! An experiment's `summary.json` and self-contained `report.html` (no scripts, inline SVG;
//! every name from the experiment is escaped).

use super::experiment::Experiment;
use super::stats::{Analysis, Estimate, Outcome};
use crate::report::html::escape;
use std::fmt::Write;

/// The JSON summary: the experiment, every cell's outcome and the analysis.
pub fn summary_json(
    experiment: &Experiment,
    outcomes: &[Outcome],
    analysis: &Analysis,
) -> serde_json::Value {
    serde_json::json!({
        "name": experiment.name(),
        "arms": experiment.arms,
        "competitions": experiment.competitions,
        "seeds": experiment.seeds,
        "budget": experiment.budget,
        "outcomes": outcomes,
        "analysis": analysis,
    })
}

fn estimate(e: &Option<Estimate>, percent: bool) -> String {
    match e {
        None => "–".into(),
        Some(e) if percent => format!(
            "{:.0}% [{:.0}, {:.0}]",
            100.0 * e.value,
            100.0 * e.low,
            100.0 * e.high
        ),
        Some(e) => format!("{:.3} [{:.3}, {:.3}]", e.value, e.low, e.high),
    }
}

/// What an interval plot's axis shows.
#[derive(Clone, Copy)]
enum Axis {
    /// A rate: always 0 to 1.
    Rate,
    /// A score or difference: the data's range, always including 0 (marked).
    AroundZero,
}

/// A horizontal interval plot: one row per label, the estimate as a dot, its interval as a bar.
fn interval_plot(rows: &[(String, Option<Estimate>)], axis: Axis) -> String {
    let known: Vec<&Estimate> = rows.iter().filter_map(|(_, e)| e.as_ref()).collect();
    if known.is_empty() {
        return "<p class=\"note\">no data to plot</p>".into();
    }
    let (low, high) = match axis {
        Axis::Rate => (0.0, 1.0),
        Axis::AroundZero => {
            let low = known.iter().map(|e| e.low).fold(0.0, f64::min);
            let high = known.iter().map(|e| e.high).fold(0.0, f64::max);
            match high - low < 1e-9 {
                // Every estimate is exactly 0: a symmetric axis around it.
                true => (-1.0, 1.0),
                false => (low, high),
            }
        }
    };
    let zero_line = matches!(axis, Axis::AroundZero);
    let (width, left, row_h) = (640.0, 170.0, 26.0);
    let x = |v: f64| left + (v - low) / (high - low) * (width - left - 20.0);
    let height = row_h * rows.len() as f64 + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\">"
    );
    if zero_line {
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" y1=\"0\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
            x(0.0),
            height - 24.0
        );
    }
    for (i, (label, e)) in rows.iter().enumerate() {
        let y = row_h * i as f64 + 16.0;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y + 4.0,
            escape(label)
        );
        if let Some(e) = e {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#36c\" stroke-width=\"3\"/><circle class=\"estimate\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"#124\"/>",
                x(e.low),
                x(e.high),
                x(e.value)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\">{low:.3}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{high:.3}</text></svg>",
        height - 6.0,
        width - 20.0,
        height - 6.0
    );
    s
}

/// Why the intervals mean less than they seem to, if they do: with one seed they cover only
/// the spread over competitions, and with one run per arm they are a single point.
pub fn interval_warning(experiment: &Experiment) -> Option<String> {
    let runs_per_arm = experiment.competitions.len() * experiment.seeds.len();
    if runs_per_arm < 2 {
        Some(
            "each arm has one run, so every interval is a single point: add seeds (and \
             competitions) for intervals that say anything"
                .into(),
        )
    } else if experiment.seeds.len() < 2 {
        Some(
            "one seed: the intervals cover the spread over competitions only, not a run's \
             luck; add seeds to measure it"
                .into(),
        )
    } else {
        None
    }
}

/// The page: a header with the design, the arms, the paired comparisons, the runs.
pub fn html(experiment: &Experiment, outcomes: &[Outcome], analysis: &Analysis) -> String {
    let mut s = String::new();
    header(&mut s, experiment, outcomes.len(), analysis);
    arms(&mut s, experiment, analysis);
    comparisons(&mut s, analysis);
    runs(&mut s, outcomes);
    s.push_str("</body></html>\n");
    s
}

/// The head, the title, the experiment's design and, if the intervals mean little, why.
fn header(s: &mut String, experiment: &Experiment, runs: usize, analysis: &Analysis) {
    let name = escape(&experiment.name());
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>A/B: {name}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}.note{{color:#777}}.warning{{background:#fff4d6;padding:4px 8px}}</style></head><body><h1>A/B experiment: {name}</h1>"
    );
    let _ = write!(
        s,
        "<p>{} arms × {} competitions × {} seeds = {} runs; the first arm, <b>{}</b>, is the baseline. Intervals: {:.0}% percentile bootstrap over runs ({} resamples). Normalised score: 0 at the leaderboard's median, 1 at its gold threshold.</p>",
        experiment.arms.len(),
        experiment.competitions.len(),
        experiment.seeds.len(),
        runs,
        escape(&experiment.arms[0].name),
        100.0 * analysis.confidence,
        analysis.bootstrap_samples
    );
    if let Some(warning) = interval_warning(experiment) {
        let _ = write!(
            s,
            "<p class=\"warning\"><b>Note:</b> {}</p>",
            escape(&warning)
        );
    }
}

/// The arms' table, then their mean normalised scores and above-median rates as plots.
fn arms(s: &mut String, experiment: &Experiment, analysis: &Analysis) {
    s.push_str("<h2>Arms</h2><table id=\"arms\"><tr><th>arm</th><th>strategy</th><th>policy</th><th>runs</th><th>valid</th><th>any medal</th><th>above median</th><th>mean normalised score</th></tr>");
    for (arm, summary) in experiment.arms.iter().zip(&analysis.arms) {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&arm.name),
            escape(arm.strategy.as_deref().unwrap_or("(default)")),
            escape(arm.policy.as_deref().unwrap_or("(default)")),
            summary.runs,
            estimate(&summary.valid_rate, true),
            estimate(&summary.any_medal_rate, true),
            estimate(&summary.above_median_rate, true),
            estimate(&summary.mean_normalized_score, false)
        );
    }
    s.push_str("</table><h3>Mean normalised score per arm</h3>");
    s.push_str(&interval_plot(
        &analysis
            .arms
            .iter()
            .map(|a| (a.arm.clone(), a.mean_normalized_score))
            .collect::<Vec<_>>(),
        Axis::AroundZero,
    ));
    s.push_str("<h3>Above-median rate per arm</h3>");
    s.push_str(&interval_plot(
        &analysis
            .arms
            .iter()
            .map(|a| (a.arm.clone(), a.above_median_rate))
            .collect::<Vec<_>>(),
        Axis::Rate,
    ));
}

/// The paired comparisons with the baseline: a table and a plot of the differences.
fn comparisons(s: &mut String, analysis: &Analysis) {
    s.push_str("<h2>Paired comparisons with the baseline</h2><p>Per competition, runs with the same seed are paired; the difference is arm − baseline in normalised score (a valid score wins over none).</p><table id=\"comparisons\"><tr><th>arm</th><th>competition</th><th>difference</th><th>wins</th><th>losses</th><th>ties</th></tr>");
    for c in &analysis.comparisons {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.arm),
            escape(&c.competition_id),
            estimate(&c.difference, false),
            c.wins,
            c.losses,
            c.ties
        );
    }
    s.push_str("</table>");
    s.push_str(&interval_plot(
        &analysis
            .comparisons
            .iter()
            .map(|c| (format!("{} · {}", c.arm, c.competition_id), c.difference))
            .collect::<Vec<_>>(),
        Axis::AroundZero,
    ));
}

/// The runs' table, one row per outcome.
fn runs(s: &mut String, outcomes: &[Outcome]) {
    s.push_str("<h2>Runs</h2><table id=\"runs\"><tr><th>arm</th><th>competition</th><th>seed</th><th>score</th><th>error</th><th>normalised</th><th>medal</th><th>above median</th><th>time</th><th>run</th></tr>");
    for o in outcomes {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0} s</td><td>{}</td></tr>",
            escape(&o.arm),
            escape(&o.competition_id),
            o.seed,
            o.score.map_or("invalid".into(), |x| format!("{x:.5}")),
            // A run may fail and still be graded (the host's baseline): its error shows too.
            o.error.as_deref().map_or(String::new(), escape),
            o.normalized.map_or("–".into(), |n| format!("{n:.3}")),
            if o.any_medal { "yes" } else { "–" },
            if o.above_median { "yes" } else { "–" },
            o.elapsed_ms as f64 / 1000.0,
            escape(&o.run_dir)
        );
    }
    s.push_str("</table>");
}
