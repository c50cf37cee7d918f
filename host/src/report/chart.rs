//! The score-over-time chart as inline SVG: every node's validation metric at the time it was
//! reported, the best so far as a step line, the leaderboard's thresholds as labelled lines and
//! the final test-set score as a diamond at the end. Numbers only reach the SVG as formatted
//! numbers; labels are fixed words, so nothing from the run needs escaping here.

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 110.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// One point to draw.
pub struct Point {
    pub elapsed_ms: u64,
    pub metric: Option<f64>,
    pub valid: bool,
}

pub struct ChartInput<'a> {
    pub points: &'a [Point],
    /// (elapsed ms, metric) whenever the best changed.
    pub best: &'a [(u64, f64)],
    /// (label, value): medal thresholds and the median.
    pub thresholds: &'a [(&'static str, f64)],
    pub final_score: Option<f64>,
    pub lower_is_better: bool,
}

/// The chart, or `None` when there is nothing to draw (no node has a metric).
pub fn svg(input: &ChartInput<'_>) -> Option<String> {
    let metrics: Vec<f64> = input.points.iter().filter_map(|p| p.metric).collect();
    if metrics.is_empty() {
        return None;
    }
    let mut values = metrics.clone();
    values.extend(input.thresholds.iter().map(|(_, v)| *v));
    values.extend(input.final_score);
    let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi - lo < 1e-12 {
        lo -= 0.5;
        hi += 0.5;
    }
    let pad = (hi - lo) * 0.06;
    let (lo, hi) = (lo - pad, hi + pad);
    let t_max = input
        .points
        .iter()
        .map(|p| p.elapsed_ms)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ms: f64| LEFT + ms / t_max * plot_w;
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * plot_h;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="score over time" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">"#
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>"##
    );
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y(v) + 4.0,
            format_value(v),
            y = y(v)
        );
        let ms = t_max * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{:.0} s</text>"#,
            x(ms),
            HEIGHT - BOTTOM + 16.0,
            ms / 1000.0
        );
    }
    let colours = [
        ("gold", "#c9a400"),
        ("silver", "#8a8a8a"),
        ("bronze", "#a0602c"),
        ("median", "#3a6ea5"),
    ];
    for (label, value) in input.thresholds {
        let colour = colours
            .iter()
            .find(|(l, _)| l == label)
            .map_or("#666", |(_, c)| c);
        let _ = write!(
            s,
            r#"<line class="threshold" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{colour}" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{colour}">{label} {}</text>"#,
            LEFT + plot_w,
            LEFT + plot_w + 6.0,
            y(*value) + 4.0,
            format_value(*value),
            y = y(*value)
        );
    }
    if !input.best.is_empty() {
        let mut path = String::new();
        for (i, (ms, v)) in input.best.iter().enumerate() {
            if i > 0 {
                let _ = write!(path, " L{:.1},{:.1}", x(*ms as f64), y(input.best[i - 1].1));
            }
            let _ = write!(
                path,
                " {}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                x(*ms as f64),
                y(*v)
            );
        }
        let last = input.best.last().expect("not empty").1;
        let _ = write!(path, " L{:.1},{:.1}", x(t_max), y(last));
        let _ = write!(
            s,
            r##"<path class="best" d="{}" fill="none" stroke="#2a9d3a" stroke-width="2"/>"##,
            path.trim()
        );
    }
    for point in input.points {
        if let Some(v) = point.metric {
            let fill = if point.valid { "#2a6fdb" } else { "#d33" };
            let _ = write!(
                s,
                r#"<circle class="node" cx="{:.1}" cy="{:.1}" r="3.5" fill="{fill}"/>"#,
                x(point.elapsed_ms as f64),
                y(v)
            );
        }
    }
    if let Some(score) = input.final_score {
        let (cx, cy) = (x(t_max), y(score));
        let _ = write!(
            s,
            r##"<path class="final" d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" fill="#000"/><text x="{:.1}" y="{:.1}" font-size="11">test {}</text>"##,
            cx,
            cy - 6.0,
            cx + 6.0,
            cy,
            cx,
            cy + 6.0,
            cx - 6.0,
            cy,
            cx - 8.0,
            cy - 9.0,
            format_value(score)
        );
    }
    let direction = if input.lower_is_better {
        "lower is better"
    } else {
        "higher is better"
    };
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="{:.1}" font-size="11">run time · metric ({direction}); dots: validation per node, line: best so far</text></svg>"#,
        HEIGHT - 4.0
    );
    Some(s)
}

fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_points_best_line_thresholds_and_the_final_score() {
        let points = [
            Point {
                elapsed_ms: 1000,
                metric: Some(0.80),
                valid: true,
            },
            Point {
                elapsed_ms: 2000,
                metric: None,
                valid: false,
            },
            Point {
                elapsed_ms: 3000,
                metric: Some(0.82),
                valid: true,
            },
        ];
        let svg = svg(&ChartInput {
            points: &points,
            best: &[(1000, 0.80), (3000, 0.82)],
            thresholds: &[("gold", 0.83), ("median", 0.79)],
            final_score: Some(0.81),
            lower_is_better: false,
        })
        .unwrap();
        assert_eq!(svg.matches(r#"class="node""#).count(), 2);
        assert_eq!(svg.matches(r#"class="threshold""#).count(), 2);
        assert!(svg.contains(r#"class="best""#) && svg.contains(r#"class="final""#));
        assert!(svg.contains("gold 0.8300") && svg.contains("test 0.8100"));
        // Nothing to draw without a metric.
        let none = [Point {
            elapsed_ms: 5,
            metric: None,
            valid: false,
        }];
        assert!(
            super::svg(&ChartInput {
                points: &none,
                best: &[],
                thresholds: &[],
                final_score: None,
                lower_is_better: false
            })
            .is_none()
        );
    }
}
