//! The report page. Self-contained (inline CSS and SVG, no scripts, no external resources),
//! so it opens anywhere and can be archived with the run. Plans, code, summaries and model
//! output are untrusted: every text from the run goes through [`escape`].

use super::RunView;
use super::chart::{self, ChartInput, Point};
use crate::run::events::WisdomSeen;
use crate::task::Direction;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

/// HTML-escape `text` for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}\
pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:420px;font-size:12px}\
ul.tree{list-style:none;padding-left:1.2em;border-left:1px dotted #bbb}\
.ok{color:#1d7a2e}.buggy{color:#b3261e}.invalid{color:#a15c00}.note{color:#666}\
summary{cursor:pointer}.medal{font-weight:bold}";

fn f(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.5}"))
}

/// The whole page.
pub fn render(view: &RunView) -> String {
    let r = &view.record;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sophon run {}</title><style>{STYLE}</style></head><body>",
        escape(&r.run_id)
    );
    let _ = write!(
        s,
        "<h1 id=\"title\">Sophon run {}</h1><table id=\"facts\"><tr><th>competition</th><td>{}</td></tr><tr><th>strategy</th><td>{} <span class=\"note\">sha256 {}</span></td></tr><tr><th>seed</th><td>{}</td></tr><tr><th>started</th><td>{}</td></tr><tr><th>state</th><td>{}</td></tr></table>",
        escape(&r.run_id),
        escape(&r.competition_id),
        escape(&r.strategy),
        escape(r.strategy_sha256.get(..12).unwrap_or(&r.strategy_sha256)),
        r.seed,
        escape(&r.started_at),
        match &view.summary {
            Some(summary) => match summary["error"].as_str() {
                Some(error) => format!("finished; the strategy failed: {}", escape(error)),
                None => "finished".to_string(),
            },
            None => "did not finish (no summary.json): showing what was recorded".to_string(),
        }
    );
    result_section(&mut s, view);
    chart_section(&mut s, view);
    usage_section(&mut s, view);
    tree_section(&mut s, view);
    hcc_section(&mut s, view);
    s.push_str("</body></html>\n");
    s
}

fn result_section(s: &mut String, view: &RunView) {
    s.push_str("<h2>Result</h2><table id=\"result\">");
    match &view.grade {
        Some(g) => {
            let medal = ["gold", "silver", "bronze"]
                .into_iter()
                .find(|m| g[format!("{m}_medal")].as_bool() == Some(true))
                .unwrap_or("none");
            let _ = write!(
                s,
                "<tr><th>test score</th><td id=\"score\">{}</td></tr><tr><th>valid submission</th><td>{}</td></tr><tr><th>medal</th><td class=\"medal\">{medal}</td></tr><tr><th>above median</th><td>{}</td></tr><tr><th>grader says</th><td>{}</td></tr>",
                f(g["score"].as_f64()),
                g["valid_submission"].as_bool().unwrap_or(false),
                g["above_median"].as_bool().unwrap_or(false),
                escape(g["message"].as_str().unwrap_or(""))
            );
            for t in ["gold", "silver", "bronze", "median"] {
                if let Some(v) = g[format!("{t}_threshold")].as_f64() {
                    let _ = write!(s, "<tr><th>{t} threshold</th><td>{v}</td></tr>");
                }
            }
        }
        None => s.push_str("<tr><td>not graded (the run did not finish)</td></tr>"),
    }
    if let Some((ms, node, metric)) = view.best_changes.last() {
        let _ = write!(
            s,
            "<tr><th>best node</th><td><a href=\"#{}\">{}</a>, validation {metric:.5}, at {:.1} s</td></tr>",
            escape(node),
            escape(node),
            *ms as f64 / 1000.0
        );
    }
    s.push_str("</table>");
}

fn chart_section(s: &mut String, view: &RunView) {
    s.push_str("<h2>Score over time</h2>");
    let points: Vec<Point> = view
        .nodes
        .iter()
        .map(|n| Point {
            elapsed_ms: n.elapsed_ms,
            metric: n.node.metric,
            valid: n.node.valid_submission && !n.node.buggy,
        })
        .collect();
    let best: Vec<(u64, f64)> = view
        .best_changes
        .iter()
        .map(|(ms, _, m)| (*ms, *m))
        .collect();
    let thresholds: Vec<(&'static str, f64)> = ["gold", "silver", "bronze", "median"]
        .into_iter()
        .filter_map(|t| {
            view.thresholds
                .as_ref()
                .and_then(|th| th[t].as_f64())
                .map(|v| (t, v))
        })
        .collect();
    let lower = view
        .record
        .metric
        .as_ref()
        .is_some_and(|m| m.direction == Direction::Minimize);
    match chart::svg(&ChartInput {
        points: &points,
        best: &best,
        thresholds: &thresholds,
        final_score: view.grade.as_ref().and_then(|g| g["score"].as_f64()),
        lower_is_better: lower,
    }) {
        Some(svg) => {
            s.push_str(&svg);
            s.push_str("<p class=\"note\">Validation metrics are the strategy's own (e.g. cross-validation); the thresholds and the final diamond are on the leaderboard's test-set scale.</p>");
        }
        None => s.push_str("<p class=\"note\">No node produced a metric.</p>"),
    }
}

fn usage_section(s: &mut String, view: &RunView) {
    s.push_str("<h2>Time, tokens and cost</h2><table id=\"usage\">");
    let valid = view
        .nodes
        .iter()
        .filter(|n| n.node.valid_submission)
        .count();
    let buggy = view.nodes.iter().filter(|n| n.node.buggy).count();
    let _ = write!(
        s,
        "<tr><th>nodes</th><td>{} ({valid} valid, {buggy} buggy)</td></tr>",
        view.nodes.len()
    );
    if let Some(summary) = &view.summary {
        let ms = summary["elapsed_ms"].as_u64().unwrap_or(0);
        let _ = write!(
            s,
            "<tr><th>run time</th><td>{:.1} s</td></tr>",
            ms as f64 / 1000.0
        );
        let llm = &summary["llm"];
        if !llm.is_null() {
            let n = |k: &str| llm[k].as_u64().unwrap_or(0);
            let _ = write!(
                s,
                "<tr><th>LLM calls</th><td>{} ({} cached, {} failed)</td></tr><tr><th>tokens</th><td>{} prompt + {} completion</td></tr><tr><th>cost</th><td>${:.4}</td></tr>",
                n("calls"),
                n("cache_hits"),
                n("errors"),
                n("prompt_tokens"),
                n("completion_tokens"),
                llm["cost_usd"].as_f64().unwrap_or(0.0)
            );
        }
        let replay = &summary["replay"];
        if replay["recorded"].as_u64().unwrap_or(0) > 0 {
            let _ = write!(
                s,
                "<tr><th>resumed</th><td>{} of {} journaled answers replayed</td></tr>",
                replay["replayed"], replay["recorded"]
            );
        }
    }
    s.push_str("</table>");
}

fn verdict(node: &crate::run::NodeReport) -> (&'static str, &'static str) {
    if node.buggy {
        ("buggy", "buggy")
    } else if node.valid_submission {
        ("ok", "ok")
    } else {
        ("invalid", "invalid")
    }
}

fn tree_section(s: &mut String, view: &RunView) {
    s.push_str("<h2>Search tree</h2>");
    if view.nodes.is_empty() {
        s.push_str("<p class=\"note\">No nodes.</p>");
        return;
    }
    let ids: HashSet<&str> = view.nodes.iter().map(|n| n.node.id.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, n) in view.nodes.iter().enumerate() {
        let parent = n.node.parent.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(i);
    }
    s.push_str("<ul class=\"tree\" id=\"tree\">");
    let mut seen = HashSet::new();
    subtree(s, view, &children, None, &mut seen);
    s.push_str("</ul>");
}

fn subtree(
    s: &mut String,
    view: &RunView,
    children: &BTreeMap<Option<&str>, Vec<usize>>,
    parent: Option<&str>,
    seen: &mut HashSet<usize>,
) {
    for &i in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
        // A cycle of parent links (a confused strategy) must not loop forever.
        if !seen.insert(i) {
            continue;
        }
        let n = &view.nodes[i].node;
        let (class, word) = verdict(n);
        let _ = write!(
            s,
            "<li><details id=\"{}\" class=\"node\"><summary><b>{}</b> · {} · <span class=\"{class}\">{word}</span> · metric {} · {}</summary><p><b>plan</b> {}</p>",
            escape(&n.id),
            escape(&n.id),
            escape(&n.operator),
            f(n.metric),
            escape(&n.summary),
            escape(&n.plan)
        );
        if let Some(code) = &n.code {
            let _ = write!(s, "<pre class=\"code\">{}</pre>", escape(code));
        }
        s.push_str("</details>");
        if children.contains_key(&Some(n.id.as_str())) {
            s.push_str("<ul class=\"tree\">");
            subtree(s, view, children, Some(n.id.as_str()), seen);
            s.push_str("</ul>");
        }
        s.push_str("</li>");
    }
}

fn hcc_section(s: &mut String, view: &RunView) {
    let h = &view.hcc;
    s.push_str("<h2>Memory (HCC)</h2>");
    if let Some(note) = &h.note {
        let _ = write!(s, "<p class=\"note\">{}</p>", escape(note));
        return;
    }
    let _ = write!(
        s,
        "<p>Experience (L1): {} events recorded in the run's log.</p><table id=\"hcc-events\">",
        h.events
    );
    for (kind, n) in &h.events_by_kind {
        let _ = write!(s, "<tr><td>{}</td><td>{n}</td></tr>", escape(kind));
    }
    s.push_str("</table>");
    let _ = write!(s, "<p>Phases: {}.</p>", h.phases.len());
    for (phase, plan) in &h.phases {
        let _ = write!(
            s,
            "<details><summary>phase {phase} plan</summary><pre>{}</pre></details>",
            escape(plan)
        );
    }
    let _ = write!(s, "<p>Knowledge (L2): {} units.</p>", h.knowledge.len());
    wisdom_section(s, &view.wisdom);
    for unit in &h.knowledge {
        let _ = write!(
            s,
            "<details><summary>phase {}: {}</summary><p>best approach: {}</p><ul>{}</ul></details>",
            unit.phase,
            escape(&unit.summary),
            escape(unit.best_approach.as_deref().unwrap_or("–")),
            unit.insights
                .iter()
                .map(|i| format!("<li>{}</li>", escape(i)))
                .collect::<String>()
        );
    }
}

/// Wisdom (L3): what the run prefetched from earlier tasks and what it left for later ones.
fn wisdom_section(s: &mut String, w: &super::WisdomView) {
    let list = |s: &mut String, id: &str, entries: &[WisdomSeen]| {
        let _ = write!(
            s,
            "<table id=\"{id}\"><tr><th>category</th><th>advice</th><th>applies when</th><th>from</th><th>similarity</th></tr>"
        );
        for e in entries {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.category),
                escape(&e.content),
                escape(&e.applies_when),
                escape(&e.from_competition),
                e.similarity.map_or("–".to_string(), |x| format!("{x:.3}"))
            );
        }
        s.push_str("</table>");
    };
    let _ = write!(
        s,
        "<p>Wisdom (L3) prefetched from earlier tasks: {} entries.</p>",
        w.prefetched.len()
    );
    if !w.prefetched.is_empty() {
        list(s, "wisdom-prefetched", &w.prefetched);
    }
    match &w.policy {
        Some(policy) => {
            let _ = write!(
                s,
                "<p>Wisdom left for later tasks by the policy <code>{}</code>: {} entries.</p>",
                escape(policy),
                w.left.len()
            );
            if !w.left.is_empty() {
                list(s, "wisdom-left", &w.left);
            }
        }
        None => {
            s.push_str("<p>No promotion recorded (the run did not finish, or had no memory).</p>")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wisdom_from_models_is_escaped() {
        let hostile = WisdomSeen {
            id: "w-1".into(),
            category: "pitfall".into(),
            content: "<script>alert(1)</script>".into(),
            applies_when: "<img src=x onerror=alert(2)>".into(),
            from_competition: "c<b>".into(),
            from_run: "r".into(),
            similarity: Some(0.5),
        };
        let view = super::super::WisdomView {
            prefetched: vec![hostile.clone()],
            left: vec![hostile],
            policy: Some("hcc".into()),
        };
        let mut page = String::new();
        wisdom_section(&mut page, &view);
        assert!(
            !page.contains("<script>") && !page.contains("<img"),
            "{page}"
        );
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert_eq!(page.matches("id=\"wisdom-").count(), 2, "{page}");
    }
}
