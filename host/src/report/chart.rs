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
    let scale = Scale::of(input)?;
    let mut s = String::new();
    frame(&mut s, &scale);
    axes(&mut s, &scale);
    thresholds(&mut s, &scale, input.thresholds);
    best_line(&mut s, &scale, input.best);
    nodes(&mut s, &scale, input.points);
    if let Some(score) = input.final_score {
        final_score(&mut s, &scale, score);
    }
    caption(&mut s, input.lower_is_better);
    Some(s)
}

/// Where values land: the metric range (padded by 6 %, at least 1 wide) on the vertical axis,
/// run time from 0 to the last point's on the horizontal one.
struct Scale {
    lo: f64,
    hi: f64,
    t_max: f64,
    plot_w: f64,
    plot_h: f64,
}

impl Scale {
    /// The scale fitting every finite metric, threshold and the final score; `None` when no
    /// point has a metric.
    fn of(input: &ChartInput<'_>) -> Option<Scale> {
        let metrics: Vec<f64> = input.points.iter().filter_map(|p| p.metric).collect();
        if metrics.is_empty() {
            return None;
        }
        let mut values = metrics;
        values.extend(input.thresholds.iter().map(|(_, v)| *v));
        values.extend(input.final_score);
        let (lo, hi) = padded_range(&values);
        let t_max = input
            .points
            .iter()
            .map(|p| p.elapsed_ms)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        Some(Scale {
            lo,
            hi,
            t_max,
            plot_w: WIDTH - LEFT - RIGHT,
            plot_h: HEIGHT - TOP - BOTTOM,
        })
    }

    /// The horizontal position of a time in milliseconds.
    fn x(&self, ms: f64) -> f64 {
        LEFT + ms / self.t_max * self.plot_w
    }

    /// The vertical position of a metric value.
    fn y(&self, v: f64) -> f64 {
        TOP + (self.hi - v) / (self.hi - self.lo) * self.plot_h
    }
}

/// The range of the finite `values`, widened to 1 when (nearly) empty and padded by 6 % on
/// each side.
fn padded_range(values: &[f64]) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi - lo < 1e-12 {
        lo -= 0.5;
        hi += 0.5;
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad, hi + pad)
}

/// The `<svg>` element's opening tag and the plot area's background.
fn frame(s: &mut String, scale: &Scale) {
    let (plot_w, plot_h) = (scale.plot_w, scale.plot_h);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="score over time" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">"#
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>"##
    );
}

/// Five grid lines with their metric values, five time ticks in seconds.
fn axes(s: &mut String, scale: &Scale) {
    for i in 0..=4 {
        let v = scale.lo + (scale.hi - scale.lo) * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + scale.plot_w,
            LEFT - 6.0,
            scale.y(v) + 4.0,
            format_value(v),
            y = scale.y(v)
        );
        let ms = scale.t_max * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{:.0} s</text>"#,
            scale.x(ms),
            HEIGHT - BOTTOM + 16.0,
            ms / 1000.0
        );
    }
}

/// One dashed, labelled line per threshold, in its medal's colour (grey when unknown).
fn thresholds(s: &mut String, scale: &Scale, thresholds: &[(&'static str, f64)]) {
    let colours = [
        ("gold", "#c9a400"),
        ("silver", "#8a8a8a"),
        ("bronze", "#a0602c"),
        ("median", "#3a6ea5"),
    ];
    for (label, value) in thresholds {
        let colour = colours
            .iter()
            .find(|(l, _)| l == label)
            .map_or("#666", |(_, c)| c);
        let _ = write!(
            s,
            r#"<line class="threshold" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{colour}" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{colour}">{label} {}</text>"#,
            LEFT + scale.plot_w,
            LEFT + scale.plot_w + 6.0,
            scale.y(*value) + 4.0,
            format_value(*value),
            y = scale.y(*value)
        );
    }
}

/// The best so far as a step line running on to the end of the time axis; nothing when there
/// is no best.
fn best_line(s: &mut String, scale: &Scale, best: &[(u64, f64)]) {
    let Some(&(_, last)) = best.last() else {
        return;
    };
    let mut path = String::new();
    for (i, (ms, v)) in best.iter().enumerate() {
        if i > 0 {
            let _ = write!(
                path,
                " L{:.1},{:.1}",
                scale.x(*ms as f64),
                scale.y(best[i - 1].1)
            );
        }
        let _ = write!(
            path,
            " {}{:.1},{:.1}",
            if i == 0 { "M" } else { "L" },
            scale.x(*ms as f64),
            scale.y(*v)
        );
    }
    let _ = write!(path, " L{:.1},{:.1}", scale.x(scale.t_max), scale.y(last));
    let _ = write!(
        s,
        r##"<path class="best" d="{}" fill="none" stroke="#2a9d3a" stroke-width="2"/>"##,
        path.trim()
    );
}

/// A dot per node with a metric: blue when valid, red when not.
fn nodes(s: &mut String, scale: &Scale, points: &[Point]) {
    for point in points {
        if let Some(v) = point.metric {
            let fill = if point.valid { "#2a6fdb" } else { "#d33" };
            let _ = write!(
                s,
                r#"<circle class="node" cx="{:.1}" cy="{:.1}" r="3.5" fill="{fill}"/>"#,
                scale.x(point.elapsed_ms as f64),
                scale.y(v)
            );
        }
    }
}

/// The test-set score as a labelled diamond at the end of the time axis.
fn final_score(s: &mut String, scale: &Scale, score: f64) {
    let (cx, cy) = (scale.x(scale.t_max), scale.y(score));
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

/// The legend line, and the closing tag.
fn caption(s: &mut String, lower_is_better: bool) {
    let direction = if lower_is_better {
        "lower is better"
    } else {
        "higher is better"
    };
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="{:.1}" font-size="11">run time · metric ({direction}); dots: validation per node, line: best so far</text></svg>"#,
        HEIGHT - 4.0
    );
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
