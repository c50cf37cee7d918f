//! `recipes`: a search strategy for small local models. Instead of writing code, the model
//! chooses the next experiment among structured recipes (model family, feature options,
//! hyper-parameters from fixed grids) under a JSON schema; the recipe library
//! (`python/sophon_recipes.py`) turns each choice into a cross-validated scikit-learn or
//! LightGBM solution that runs as a sandboxed job and writes a submission.
//!
//! Each step is one search node: choose → run the job → validate the submission through the
//! task adapter → report the node → claim it as best when its validation metric improves.
//! When the model's answer is not a recipe, or repeats one already tried, the strategy takes
//! the next untried recipe in the heuristics' order (and says so in the node's plan); when
//! every suggestion was tried it varies the best recipe one grid step at a time.
//!
//! Config (JSON, all optional): `{"max-nodes": 20, "job-timeout-secs": 300,
//! "job-memory-mb": 4096, "cpus": 4, "folds": 5, "use-llm": true, "temperature": 0.2,
//! "model": "<alias>"}`.

mod recipe;
mod settings;

use recipe::{Profile, Recipe};
use settings::Settings;
use sophon_sdk::hcc::{self, EventKind};
use sophon_sdk::jobs::{self, JobResult, JobSpec};
use sophon_sdk::json::{self, Value};
use sophon_sdk::llm::{self, ChatRequest};
use sophon_sdk::run::{self, NodeReport};
use sophon_sdk::{Direction, Outcome, Strategy, TaskInfo, info, task, warn};

struct Recipes;

/// A tried recipe and what it scored.
struct Tried {
    recipe: Recipe,
    metric: Option<f64>,
}

/// The output line the library prints its result on.
const RESULT_PREFIX: &str = "SOPHON_RESULT=";
impl Strategy for Recipes {
    fn run(config: String) -> Result<Outcome, String> {
        let settings = Settings::parse(&config)?;
        let seed = run::info().seed;
        let task = task::describe().map_err(|e| format!("describing the task: {e}"))?;
        remember(
            EventKind::Task,
            None,
            &format!("{}\n\n{}", task.title, task.metric.description),
            None,
        );
        let profile = profile(&settings, &task)?;
        info!("task profile: {}", profile.describe());
        let suggestions = recipe::candidates(&profile);
        let mut llm_usable = settings.use_llm;
        let mut tried: Vec<Tried> = Vec::new();
        let mut best: Option<(String, f64)> = None;
        for step in 0..settings.max_nodes {
            if run::should_stop() {
                info!("stopping: the run's budget is spent");
                break;
            }
            let Some(timeout_ms) = job_timeout(&settings) else {
                info!("stopping: too little time left for another job");
                break;
            };
            let (recipe, why) = choose(
                &settings,
                &task,
                &profile,
                &suggestions,
                &tried,
                step,
                &mut llm_usable,
            );
            let node = format!("node-{step}");
            let outcome = match run_node(&settings, &task, &node, &recipe, &why, timeout_ms, seed) {
                Ok(outcome) => outcome,
                // The run's deadline or a stop came between the check and the job: no new
                // jobs start, and that is the end of the search, not a failure.
                Err(e) if run::should_stop() => {
                    info!("stopping: {e}");
                    break;
                }
                Err(e) => return Err(e),
            };
            if let Some(metric) = outcome.claim
                && let Some(submission) = &outcome.submission
                && run::report_best(&node, submission, metric)
                    .map_err(|e| format!("claiming {node}: {e}"))?
            {
                best = Some((node.clone(), metric));
            }
            tried.push(Tried {
                recipe,
                metric: outcome.metric,
            });
        }
        Ok(Outcome {
            summary: match &best {
                Some((node, metric)) => format!(
                    "{} recipes tried on {}; best {node} with validation {metric:.5}",
                    tried.len(),
                    task.competition_id
                ),
                None => format!(
                    "{} recipes tried; none produced a valid submission",
                    tried.len()
                ),
            },
            best_node: best.map(|(node, _)| node),
            nodes: tried.len() as u32,
        })
    }
}

/// Record an event in the HCC when the run grants it; memory is best effort here.
fn remember(kind: EventKind, node: Option<&str>, content: &str, metric: Option<f64>) {
    let _ = hcc::record(kind, node, content, metric);
}

/// The wall time the next job may take, or `None` when too little is left.
fn job_timeout(settings: &Settings) -> Option<u64> {
    run::job_time(settings.job_timeout_secs * 1000)
}

/// The job that runs the library in `args` mode, with the task's public data at `/data`.
fn library_job(settings: &Settings, name: &str, args: &[&str], timeout_ms: u64) -> JobSpec {
    let mut command = vec!["python"];
    command.extend_from_slice(args);
    JobSpec::new(name, &command)
        .file(recipe::LIBRARY_FILE, recipe::LIBRARY)
        .mount_task_data("/data")
        .cpus(settings.cpus)
        .memory_mb(settings.job_memory_mb)
        .timeout_ms(timeout_ms)
}

/// The library's `SOPHON_RESULT=` line, from the start or the end of stdout.
fn result_line(result: &JobResult) -> Option<Value> {
    result
        .stdout_lines_with(RESULT_PREFIX)
        .iter()
        .find_map(|payload| json::from_str(payload).ok())
}

/// Profile the task with the library (one short job); the metric's name tells it whether
/// integer targets are classes.
fn profile(settings: &Settings, task: &TaskInfo) -> Result<Profile, String> {
    let timeout = job_timeout(settings).ok_or("no time left to profile the task")?;
    let spec = library_job(
        settings,
        "profile",
        &[
            recipe::LIBRARY_FILE,
            "profile",
            "/data",
            task.metric.name.as_str(),
        ],
        timeout,
    );
    let result = jobs::run(&spec).map_err(|e| format!("profiling the task: {e}"))?;
    let line =
        result_line(&result).ok_or_else(|| format!("profiling the task: {}", result.failure(6)))?;
    json::from_value(line).map_err(|e| format!("the task profile is malformed: {e}"))
}

/// The next recipe and why it was chosen.
fn choose(
    settings: &Settings,
    task: &TaskInfo,
    profile: &Profile,
    suggestions: &[Recipe],
    tried: &[Tried],
    step: u32,
    llm_usable: &mut bool,
) -> (Recipe, String) {
    let was_tried = |r: &Recipe| tried.iter().any(|t| t.recipe.key() == r.key());
    let fallback = |note: String| -> (Recipe, String) {
        if let Some(next) = suggestions.iter().find(|r| !was_tried(r)) {
            return (next.clone(), format!("{note}; next suggested recipe"));
        }
        let anchor = best_tried(task, tried).map_or(&suggestions[0], |t| &t.recipe);
        let mut turn = u64::from(step);
        let mut next = recipe::variation(anchor, turn).normalised(profile);
        while was_tried(&next) && turn < u64::from(step) + 16 {
            turn += 1;
            next = recipe::variation(anchor, turn).normalised(profile);
        }
        (next, format!("{note}; a variation of the best recipe"))
    };
    if !*llm_usable {
        return fallback("heuristic order (the model is off)".to_string());
    }
    let request = prompt(settings, task, profile, suggestions, tried, was_tried);
    match llm::chat(&request) {
        Ok(reply) => match recipe::parse_choice(&reply.text) {
            Ok((choice, reason)) => {
                let choice = choice.normalised(profile);
                if was_tried(&choice) {
                    return fallback(format!(
                        "the model repeated a tried recipe ({})",
                        choice.key()
                    ));
                }
                (choice, format!("chosen by the model: {reason}"))
            }
            Err(e) => fallback(format!("the model's reply was not a recipe ({e})")),
        },
        Err(e) => {
            if e.is_permanent() {
                warn!("the model cannot be used ({e}); continuing with the heuristic order");
                *llm_usable = false;
            }
            fallback(format!("the model call failed ({e})"))
        }
    }
}

/// The best tried recipe by the task's direction.
fn best_tried<'a>(task: &TaskInfo, tried: &'a [Tried]) -> Option<&'a Tried> {
    let lower = task.metric.direction == Direction::Minimize;
    tried.iter().filter(|t| t.metric.is_some()).min_by(|a, b| {
        let (x, y) = (a.metric.unwrap(), b.metric.unwrap());
        let order = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
        if lower { order } else { order.reverse() }
    })
}

fn prompt(
    settings: &Settings,
    task: &TaskInfo,
    profile: &Profile,
    suggestions: &[Recipe],
    tried: &[Tried],
    was_tried: impl Fn(&Recipe) -> bool,
) -> ChatRequest {
    let direction = match task.metric.direction {
        Direction::Maximize => "higher is better",
        Direction::Minimize => "lower is better",
    };
    let history: Vec<String> = tried
        .iter()
        .map(|t| match t.metric {
            Some(m) => format!("- {}: validation {m:.5}", t.recipe.key()),
            None => format!("- {}: failed", t.recipe.key()),
        })
        .collect();
    let next: Vec<String> = suggestions
        .iter()
        .filter(|r| !was_tried(r))
        .take(3)
        .map(Recipe::key)
        .collect();
    let mut families: Vec<String> = Vec::new();
    for r in suggestions {
        if !families.contains(&r.family) {
            families.push(r.family.clone());
        }
    }
    let user = format!(
        "Competition: {}\nMetric: {} ({direction}).\nData: {}.\nTried so far:\n{}\nUntried suggestions, best first: {}.\nPick the next recipe: a model family and its settings, different from those tried.",
        task.title,
        task.metric.name,
        profile.describe(),
        if history.is_empty() {
            "- nothing yet".to_string()
        } else {
            history.join("\n")
        },
        if next.is_empty() {
            "none left".to_string()
        } else {
            next.join("; ")
        },
    );
    let mut request = ChatRequest::system_user(
        "You choose the next experiment for a machine-learning competition. Answer with one JSON object.",
        user,
    )
    .temperature(settings.temperature)
    .seed(run::info().seed)
    .max_tokens(400)
    .json_schema("recipe", recipe::schema(&families))
    .purpose("choose-recipe");
    if let Some(model) = &settings.model {
        request = request.model(model.clone());
    }
    request
}

/// What one node produced.
struct NodeOutcome {
    metric: Option<f64>,
    submission: Option<String>,
    /// The metric to claim as best (on the task's scale), when the node is valid.
    claim: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
fn run_node(
    settings: &Settings,
    task: &TaskInfo,
    node: &str,
    recipe: &Recipe,
    why: &str,
    timeout_ms: u64,
    seed: u64,
) -> Result<NodeOutcome, String> {
    let code = recipe.code(node, why, &task.metric.name, settings.folds, seed);
    remember(EventKind::Code, Some(node), &code, None);
    let spec = library_job(settings, node, &["main.py"], timeout_ms)
        .file("main.py", code.clone())
        .output("submission.csv");
    let result = jobs::run(&spec).map_err(|e| format!("submitting {node}: {e}"))?;
    let line = result_line(&result);
    let metric = line
        .as_ref()
        .and_then(|l| l["validation"].as_f64())
        .filter(|m| m.is_finite());
    let submission = result.artifact("submission.csv");
    let (buggy, summary, valid) = match (&line, metric, &submission) {
        (Some(l), Some(m), Some(sub)) => {
            let check = task::validate(sub).map_err(|e| format!("validating {node}: {e}"))?;
            let seconds = l["seconds"].as_f64().unwrap_or(0.0);
            let name = l["metric"].as_str().unwrap_or("metric");
            let summary = match check.valid {
                true => format!("cv {name} {m:.5} in {seconds:.1} s"),
                false => format!(
                    "cv {name} {m:.5}, but the submission is invalid: {}",
                    check.message
                ),
            };
            (false, summary, check.valid)
        }
        _ => (true, result.failure(6), false),
    };
    remember(EventKind::Execution, Some(node), &summary, metric);
    // The library's metric may be a stand-in with the other direction: flip it to the task's.
    let same_direction = line.as_ref().is_none_or(|l| {
        l["lower_is_better"].as_bool() == Some(task.metric.direction == Direction::Minimize)
    });
    let claim = metric
        .filter(|_| valid)
        .map(|m| if same_direction { m } else { -m });
    run::report_node(&NodeReport {
        id: node.to_string(),
        parent: None,
        operator: "draft".to_string(),
        worker: Some(0),
        plan: format!("{} — {why}", recipe.key()),
        code: Some(code),
        metric,
        buggy,
        valid_submission: valid,
        summary,
    })
    .map_err(|e| format!("reporting {node}: {e}"))?;
    Ok(NodeOutcome {
        metric,
        submission,
        claim,
    })
}

sophon_sdk::export_strategy!(Recipes);
