//! A synthetic agent run that drives the real store and context assembly, for
//! `sophon hcc simulate` and the benchmarks.
//!
//! Each step is one search node: a `code` event (a 2–5 KB training script), an `execution`
//! event (2–7 KB of training log, sometimes a traceback) and a `review` with the validation
//! metric. The task statement is ~6 KB. The first steps form the opening; then a phase
//! begins every `phase_every` steps with a ~1 KB plan, and [`ScriptedPromoter`] distils each
//! ended phase from its events. Wisdom from other (synthetic) competitions is seeded first so
//! prefetch has something to find. Everything is generated from a seed: the same
//! configuration gives the same run.

use super::context::render_event;
use super::promote::Promoter;
use super::service::{RunHcc, RunSpec};
use super::store::HccStore;
use super::tokens::TokenCounter;
use super::{CognitiveCache, HccSettings, types::*};
use crate::capability::CapResult;
use crate::task::TaskInfo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::Arc;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimulationConfig {
    pub steps: u32,
    pub budget_tokens: u32,
    /// Steps before the first phase begins.
    pub opening_steps: u32,
    /// A new phase begins every this many steps.
    pub phase_every: u32,
    pub seed: u64,
    /// Whose tokenizer counts (`o200k_base` when `None`).
    pub model: Option<String>,
    /// End the run after the last step (promoting its open phase and storing wisdom); when
    /// false the run stays open mid-phase, as a live run would be.
    pub finish: bool,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            steps: 500,
            budget_tokens: 32_000,
            opening_steps: 3,
            phase_every: 25,
            seed: 42,
            model: None,
            finish: true,
        }
    }
}

/// One step's measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepPoint {
    pub step: u32,
    /// Tokens of the HCC context assembled at this step.
    pub context_tokens: u32,
    /// Tokens of the naive prompt: the task and every event so far, each rendered as in the
    /// context.
    pub naive_tokens: u64,
    pub phase: u32,
    pub evicted_events: u32,
}

/// The whole simulation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimulationReport {
    pub run_id: String,
    pub budget_tokens: u32,
    pub steps: Vec<StepPoint>,
    pub phases: u32,
    pub knowledge_units: u32,
    pub wisdom_prefetched: u32,
    pub wisdom_stored: u32,
    pub max_context_tokens: u32,
    pub max_naive_tokens: u64,
}

/// The competition the synthetic run works on.
pub const SIMULATED_COMPETITION: &str = "synthetic-tabular";

/// Run the simulation against `store`, as run `run_id`.
pub async fn simulate(
    store: Arc<HccStore>,
    run_id: &str,
    config: &SimulationConfig,
) -> CapResult<SimulationReport> {
    let rng = StdRng::seed_from_u64(config.seed);
    seed_prior_wisdom(&store)?;
    let hcc = open_run(store, run_id, config.model.clone())?;
    let prefetched = hcc.prefetch().await?;
    let mut run = SimulatedRun {
        hcc,
        rng,
        counter: TokenCounter::for_model(config.model.as_deref()),
        naive: 0,
        phase: 0,
    };
    run.record_task().await?;
    let mut points = Vec::with_capacity(config.steps as usize);
    for step in 1..=config.steps {
        points.push(run.step(step, config).await?);
    }
    let hcc = run.hcc;
    let wisdom_stored = if config.finish {
        hcc.finish(Some(0.81)).await?.wisdom.len() as u32
    } else {
        0
    };
    let stats = hcc.stats().await?;
    Ok(SimulationReport {
        run_id: run_id.into(),
        budget_tokens: config.budget_tokens,
        max_context_tokens: points.iter().map(|p| p.context_tokens).max().unwrap_or(0),
        max_naive_tokens: points.iter().map(|p| p.naive_tokens).max().unwrap_or(0),
        steps: points,
        phases: stats.current_phase,
        knowledge_units: stats.knowledge_units,
        wisdom_prefetched: prefetched.len() as u32,
        wisdom_stored,
    })
}

/// The synthetic run `run_id` on [`SIMULATED_COMPETITION`] in `store`, promoted by
/// [`ScriptedPromoter`], its contexts counted for `model`.
fn open_run(store: Arc<HccStore>, run_id: &str, model: Option<String>) -> CapResult<RunHcc> {
    let descriptor = TaskDescriptor {
        modality: "tabular".into(),
        task_type: "binary-classification".into(),
        metric: "accuracy (maximize)".into(),
        data_size: "8693 rows x 14 columns, 0.8 MB".into(),
        summary: "Predict whether a passenger was transported from cabin, spending and \
                  demographic features."
            .into(),
    };
    Ok(RunHcc::open(
        store,
        RunSpec {
            run_id: run_id.into(),
            competition_id: SIMULATED_COMPETITION.into(),
            descriptor,
        },
        HccSettings::default(),
    )?
    .with_promoter(Arc::new(ScriptedPromoter))
    .with_default_model(model))
}

/// The simulation under way: its run, its random source and the naive prompt's size so far.
struct SimulatedRun {
    hcc: RunHcc,
    rng: StdRng,
    counter: TokenCounter,
    /// Tokens of the naive prompt (the task and every event so far).
    naive: u64,
    /// The current phase (0 in the opening).
    phase: u32,
}

impl SimulatedRun {
    /// Record the task statement, the run's first event.
    async fn record_task(&mut self) -> CapResult<()> {
        let task = task_statement(&mut self.rng);
        self.naive += self.counter.count(&task) as u64;
        self.hcc
            .record_event(Event {
                kind: EventKind::Task,
                node: None,
                content: task,
                metric: None,
            })
            .await?;
        Ok(())
    }

    /// One search node: a new phase when one is due, the node's events, then the context
    /// assembled after them, measured.
    async fn step(&mut self, step: u32, config: &SimulationConfig) -> CapResult<StepPoint> {
        let into_phases = step.saturating_sub(config.opening_steps + 1);
        if step > config.opening_steps && into_phases.is_multiple_of(config.phase_every.max(1)) {
            let plan = plan_text(&mut self.rng, self.phase + 1);
            self.naive += self.counter.count(&plan) as u64;
            self.phase = self.hcc.begin_phase(plan).await?;
        }
        for event in node_events(&mut self.rng, step) {
            let id = self.hcc.record_event(event.clone()).await?;
            self.naive += self.counter.count(&render_event(&StoredEvent {
                id,
                phase: self.phase,
                time_ms: 0,
                event,
            })) as u64;
        }
        let context = self
            .hcc
            .context(ContextRequest {
                budget_tokens: config.budget_tokens,
                query: None,
                model: config.model.clone(),
            })
            .await?;
        Ok(StepPoint {
            step,
            context_tokens: context.tokens,
            naive_tokens: self.naive,
            phase: self.phase,
            evicted_events: context.evicted_events,
        })
    }
}

/// A promotion policy without a model: knowledge from the phase's reviews and failures,
/// wisdom from the best approaches. Deterministic, and it never fails: its `String` errors
/// are only the [`Promoter`] contract (a policy plugin's `result<_, string>`).
pub struct ScriptedPromoter;

#[async_trait::async_trait]
impl Promoter for ScriptedPromoter {
    async fn describe_task(&self, task: &TaskInfo) -> Result<TaskDescriptor, String> {
        Ok(TaskDescriptor {
            modality: "tabular".into(),
            task_type: "unknown".into(),
            metric: task.metric.name.clone(),
            data_size: format!("{} files", task.public_files.len()),
            summary: task.title.clone(),
        })
    }

    async fn on_phase_end(&self, trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String> {
        let reviews: Vec<&StoredEvent> = trace
            .events
            .iter()
            .filter(|e| e.event.kind == EventKind::Review)
            .collect();
        let best = reviews
            .iter()
            .filter_map(|e| e.event.metric.map(|m| (m, *e)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let verdicts = reviews
            .iter()
            .take(12)
            .map(|e| IdeaVerdict {
                idea: first_line(&e.event.content),
                verdict: match e.event.metric {
                    Some(m) if m >= 0.79 => Verdict::Worked,
                    Some(_) => Verdict::Inconclusive,
                    None => Verdict::Failed,
                },
                metric: e.event.metric,
                note: format!("node {}", e.event.node.clone().unwrap_or_default()),
            })
            .collect();
        let failure_causes = trace
            .events
            .iter()
            .filter(|e| e.event.kind == EventKind::Execution && e.event.content.contains("Error"))
            .take(6)
            .map(|e| {
                format!(
                    "node {}: {}",
                    e.event.node.clone().unwrap_or_default(),
                    last_line(&e.event.content)
                )
            })
            .collect();
        Ok(Some(KnowledgeUnit {
            phase: trace.phase,
            summary: format!(
                "Phase {} ({}) tried {} nodes; {}.",
                trace.phase,
                first_line(&trace.plan),
                reviews.len(),
                best.map_or(
                    "none produced a valid metric".to_string(),
                    |(m, e)| format!(
                        "the best reached {m:.4} at node {}",
                        e.event.node.clone().unwrap_or_default()
                    )
                )
            ),
            verdicts,
            failure_causes,
            insights: vec![
                "CryoSleep and total spending are the strongest single features.".into(),
                "Cabin deck/side parsed from Cabin add about 0.5 points.".into(),
            ],
            best_approach: best.map(|(_, e)| first_line(&e.event.content)),
            best_metric: best.map(|(m, _)| m),
        }))
    }

    async fn on_task_end(&self, trace: RunTrace) -> Result<Vec<WisdomEntry>, String> {
        let mut entries: Vec<WisdomEntry> = trace
            .knowledge
            .iter()
            .filter_map(|k| k.best_approach.clone().zip(k.best_metric))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(approach, metric)| WisdomEntry {
                category: "model-choice".into(),
                content: format!("{approach} reached {metric:.4}"),
                applies_when: format!(
                    "{} {}",
                    trace.descriptor.modality, trace.descriptor.task_type
                ),
            })
            .into_iter()
            .collect();
        entries.push(WisdomEntry {
            category: "pitfall".into(),
            content: "Fit encoders on train only; refit on train+valid before predicting test."
                .into(),
            applies_when: "tabular data with categorical columns".into(),
        });
        Ok(entries)
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

fn last_line(text: &str) -> String {
    text.lines()
        .last()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect()
}

/// The synthetic competitions whose wisdom is seeded: modality, task type, metric, summary.
const PRIORS: [(&str, &str, &str, &str); 8] = [
    (
        "tabular",
        "binary-classification",
        "roc-auc (maximize)",
        "loan default from applicant records",
    ),
    (
        "tabular",
        "regression",
        "rmse (minimize)",
        "house prices from lot and building features",
    ),
    (
        "tabular",
        "multiclass-classification",
        "log-loss (minimize)",
        "forest cover type from terrain",
    ),
    (
        "text",
        "binary-classification",
        "roc-auc (maximize)",
        "insulting comments in social media",
    ),
    (
        "text",
        "multi-label",
        "mean column-wise roc-auc (maximize)",
        "toxic comment categories",
    ),
    (
        "image",
        "multiclass-classification",
        "accuracy (maximize)",
        "plant species from leaf images",
    ),
    (
        "image",
        "segmentation",
        "dice (maximize)",
        "nuclei in microscopy images",
    ),
    (
        "audio",
        "multiclass-classification",
        "map@3 (maximize)",
        "bird species from recordings",
    ),
];

/// Wisdom from eight other synthetic competitions (stored once per store: ids dedupe).
fn seed_prior_wisdom(store: &HccStore) -> CapResult<()> {
    for (i, (modality, task_type, metric, summary)) in PRIORS.iter().enumerate() {
        let descriptor = TaskDescriptor {
            modality: (*modality).into(),
            task_type: (*task_type).into(),
            metric: (*metric).into(),
            data_size: format!("{} rows", 5000 * (i + 1)),
            summary: format!("Predict {summary}."),
        };
        let entries: Vec<WisdomEntry> = [
            ("model-choice", format!("For {summary}, start from a strong {modality} baseline before tuning.")),
            ("hyper-parameters", format!("On {modality} {task_type}, early stopping on a held-out fold halves tuning time.")),
            ("pitfall", format!("Check the {metric} direction before selecting models.")),
        ]
        .into_iter()
        .map(|(category, content)| WisdomEntry {
            category: category.into(),
            content,
            applies_when: format!("{modality} {task_type}"),
        })
        .collect();
        store.add_wisdom(
            &format!("synthetic-prior-{i}"),
            "seed",
            &descriptor,
            &entries,
        )?;
    }
    Ok(())
}

const WORDS: &[&str] = &[
    "passenger",
    "transported",
    "cabin",
    "deck",
    "spending",
    "features",
    "validation",
    "model",
    "gradient",
    "boosting",
    "fold",
    "target",
    "encoding",
    "missing",
    "values",
    "impute",
    "split",
    "accuracy",
    "baseline",
    "ensemble",
    "tuning",
    "learning",
    "rate",
    "depth",
    "leaves",
    "categorical",
    "numeric",
    "scaling",
    "outliers",
    "distribution",
    "planet",
    "destination",
];

fn sentence(rng: &mut StdRng, words: usize) -> String {
    let mut s: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    s[0] = WORDS[rng.random_range(0..WORDS.len())];
    format!("{}.", s.join(" "))
}

fn task_statement(rng: &mut StdRng) -> String {
    let mut text = String::from(
        "# Spaceship Titanic (synthetic)\n\nPredict which passengers were transported to an \
         alternate dimension. Metric: classification accuracy. Submission: PassengerId,Transported.\n\n",
    );
    while text.len() < 6000 {
        text.push_str(&sentence(rng, 14));
        text.push(' ');
        if rng.random_bool(0.2) {
            text.push_str("\n\n");
        }
    }
    text
}

fn plan_text(rng: &mut StdRng, phase: u32) -> String {
    let mut text = format!("Phase {phase} research plan: explore a new direction.\n");
    for i in 1..=6 {
        text.push_str(&format!("{i}. {}\n", sentence(rng, 22)));
    }
    text
}

fn node_events(rng: &mut StdRng, step: u32) -> Vec<Event> {
    let node = format!("n{step}");
    let model = [
        "LightGBM",
        "XGBoost",
        "CatBoost",
        "RandomForest",
        "LogisticRegression",
    ][rng.random_range(0..5)];
    let lines = rng.random_range(40..100);
    let mut code = format!(
        "# node {node}: {model} with engineered features\nimport pandas as pd\nimport numpy as np\n\n"
    );
    for i in 0..lines {
        code.push_str(&format!(
            "df['f{i}'] = df['{}'].fillna({}) * {:.3}\n",
            WORDS[rng.random_range(0..WORDS.len())],
            rng.random_range(0..100),
            rng.random::<f64>()
        ));
    }
    let failed = rng.random_bool(0.15);
    let epochs = rng.random_range(25..90);
    let mut output = String::new();
    for epoch in 0..epochs {
        output.push_str(&format!(
            "[{epoch:04}] train_logloss: {:.5}  valid_logloss: {:.5}  valid_accuracy: {:.4}\n",
            0.7 / (1.0 + epoch as f64 * 0.05),
            0.72 / (1.0 + epoch as f64 * 0.04),
            0.7 + rng.random::<f64>() * 0.12
        ));
    }
    let metric = (!failed).then(|| 0.72 + rng.random::<f64>() * 0.09);
    if failed {
        output.push_str("Traceback (most recent call last):\n  File \"runfile.py\", line 88\nValueError: Input contains NaN\n");
    }
    vec![
        Event {
            kind: EventKind::Code,
            node: Some(node.clone()),
            content: code,
            metric: None,
        },
        Event {
            kind: EventKind::Execution,
            node: Some(node.clone()),
            content: output,
            metric,
        },
        Event {
            kind: EventKind::Review,
            node: Some(node),
            content: format!(
                "{model} with engineered features: {}\n{}",
                metric.map_or("bug".to_string(), |m| format!("valid accuracy {m:.4}")),
                sentence(rng, 18)
            ),
            metric,
        },
    ]
}
