//! Research plans: the model's directions for a phase (JSON schema), with a fallback list
//! when its reply is unusable.

use serde::Deserialize;
use solution_kit::JobLimits;
use solution_kit::prompts::limits_text;

/// One direction of a phase: what to try, concretely.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Direction {
    pub title: String,
    pub suggestion: String,
}

#[derive(Deserialize)]
struct Reply {
    directions: Vec<Direction>,
}

pub const SYSTEM: &str = "You lead a machine-learning team on a Kaggle competition. From what \
the team knows — the task, advice from earlier tasks, and every earlier phase's plan and what it \
taught — write the next phase's research plan: distinct directions, each a concrete suggestion a \
teammate can implement in one script (model, features, validation, hyper-parameters) within the \
job limits given. Build on what worked, avoid what failed; name the earlier nodes a direction \
builds on by id (e.g. node-3), and their code will be given with it. Answer with JSON only.";

pub fn schema(directions: u32) -> String {
    format!(
        r#"{{"type":"object","properties":{{"directions":{{"type":"array","minItems":1,"maxItems":{directions},"items":{{"type":"object","properties":{{"title":{{"type":"string"}},"suggestion":{{"type":"string"}}}},"required":["title","suggestion"]}}}}}},"required":["directions"]}}"#
    )
}

/// What each direction's script runs under, for the planner.
pub fn limits_line(limits: Option<JobLimits>, workers: u32) -> String {
    match limits {
        Some(l) => format!(
            "Each direction is one Python script (numpy, pandas, scikit-learn, scipy, lightgbm; no network) run with {}; {workers} run at a time.",
            limits_text(&l)
        ),
        None => "No time is left for another script.".to_string(),
    }
}

/// The prompt for phase `phase`: the HCC context (the task and data preview, memory), every
/// node so far, the job limits, the best node, the ask.
pub fn prompt(
    context: &str,
    nodes: &str,
    limits: &str,
    phase: u32,
    directions: u32,
    best: Option<(&str, f64)>,
) -> String {
    let best = best.map_or("No valid solution yet.".to_string(), |(id, metric)| {
        format!("Best so far: {id} (validation {metric:.5}).")
    });
    format!(
        "{context}\n\n{nodes}\n{best}\n\n{limits}\n\nWrite the research plan for phase {phase}: {directions} directions."
    )
}

/// Directions for when the model's plan is unusable, rotated by phase so phases differ.
const FALLBACK: &[(&str, &str)] = &[
    (
        "gradient boosting",
        "LightGBM on the raw features with categorical columns encoded, 5-fold cross-validation, early stopping.",
    ),
    (
        "linear baseline",
        "A regularised logistic/linear model on standardised numeric and one-hot categorical features.",
    ),
    (
        "feature engineering",
        "Improve the best model with engineered features: interactions, counts, missing-value indicators, text lengths.",
    ),
    (
        "tuning",
        "Tune the best model's main hyper-parameters (learning rate, depth or leaves, regularisation) with cross-validation.",
    ),
    (
        "ensemble",
        "Average the predictions of the two best different models.",
    ),
];

/// Parse the model's plan (the JSON object in the reply), keeping at most `n` directions with
/// text; `None` when nothing usable is there.
pub fn parse(reply: &str, n: u32) -> Option<Vec<Direction>> {
    let json = match (reply.find('{'), reply.rfind('}')) {
        (Some(a), Some(b)) if a < b => &reply[a..=b],
        _ => return None,
    };
    let parsed: Reply = sophon_sdk::json::from_str(json).ok()?;
    let directions: Vec<Direction> = parsed
        .directions
        .into_iter()
        .filter(|d| !d.title.trim().is_empty() && !d.suggestion.trim().is_empty())
        .take(n as usize)
        .collect();
    (!directions.is_empty()).then_some(directions)
}

/// `n` fallback directions for `phase` (1-based).
pub fn fallback(phase: u32, n: u32) -> Vec<Direction> {
    (0..n as usize)
        .map(|i| FALLBACK[(phase as usize - 1 + i) % FALLBACK.len()])
        .map(|(title, suggestion)| Direction {
            title: title.into(),
            suggestion: suggestion.into(),
        })
        .collect()
}

/// The plan as the HCC keeps it (the phase's boundary event): its directions, one per line;
/// contexts and summaries put their own `Phase N plan` heading above it.
pub fn text(directions: &[Direction], from_model: bool) -> String {
    let lines: Vec<String> = directions
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{}. {} — {}", i + 1, d.title.trim(), d.suggestion.trim()))
        .collect();
    let note = match from_model {
        true => "",
        false => "(default directions: the model's plan was unusable)\n",
    };
    format!("{note}{}", lines.join("\n"))
}
