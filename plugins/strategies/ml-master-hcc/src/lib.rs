//! `ml-master-hcc`: ML-Master 2.0's long-horizon loop over the Hierarchical Cognitive Cache.
//!
//! The run is a sequence of phases. Each phase opens with a research plan the model writes
//! from an HCC context (`hcc.context` within `context-tokens`): the task, wisdom prefetched
//! from earlier tasks, and every earlier phase as its plan and distilled knowledge. The plan
//! has several directions, each a concrete suggestion; `workers` implement them in parallel —
//! a draft while there is no valid solution, else an improvement of the best one, following
//! the suggestion, with up to `debug-retries` debug attempts when a script fails. A phase ends
//! when its directions are resolved (or the node budget or the run's budget is spent): it goes
//! to the run's promotion policy, whose knowledge unit replaces its raw events in the contexts
//! of later phases, starting with the next plan.
//!
//! Solutions are judged by their own `VALIDATION_METRIC` line and the adapter's validation
//! (no reviewer call). Everything follows from host answers and the run's seed.

mod plan;
mod settings;

use plan::Direction;
use settings::Settings;
use solution_kit::prompts;
use solution_kit::{JobLimits, tail};
use sophon_sdk::futures::future::join_all;
use sophon_sdk::hcc::{self, EventKind};
use sophon_sdk::llm::{self, ChatRequest};
use sophon_sdk::run::{self, NodeReport};
use sophon_sdk::{Outcome, Strategy, TaskInfo, info, jobs, rt, task, warn};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

struct MlMasterHcc;

/// The best valid solution so far.
#[derive(Clone)]
struct Best {
    id: String,
    plan: String,
    code: String,
    output: String,
    metric: f64,
}

/// A solution as it ran.
#[derive(Default)]
struct Solution {
    plan: String,
    code: String,
    output: String,
    metric: Option<f64>,
    submission: Option<String>,
}

impl Solution {
    fn good(&self) -> bool {
        self.metric.is_some() && self.submission.is_some()
    }
}

/// What the workers share.
struct Search {
    settings: Settings,
    task: TaskInfo,
    lower_is_better: bool,
    started: Cell<u32>,
    buggy: Cell<u32>,
    best: RefCell<Option<Best>>,
    fatal: RefCell<Option<String>>,
}

impl Search {
    fn out_of_budget(&self) -> bool {
        self.fatal.borrow().is_some()
            || self.started.get() >= self.settings.max_nodes
            || run::should_stop()
    }

    fn better(&self, metric: f64) -> bool {
        self.best.borrow().as_ref().is_none_or(|b| {
            if self.lower_is_better {
                metric < b.metric
            } else {
                metric > b.metric
            }
        })
    }

    /// The HCC context for `query` (the task alone if the HCC cannot assemble one).
    fn context(&self, query: &str) -> String {
        match hcc::context(self.settings.context_tokens, Some(query)) {
            Ok(context) => context.text,
            Err(e) => {
                warn!("assembling the context: {e}");
                prompts::task_text(&self.task)
            }
        }
    }

    fn request(&self, system: &str, prompt: String, purpose: &str) -> ChatRequest {
        let n = self.started.get();
        let mut request = ChatRequest::system_user(system, prompt)
            .temperature(self.settings.temperature)
            .seed(run::info().seed.wrapping_add(u64::from(n)))
            .max_tokens(self.settings.max_tokens)
            .purpose(purpose);
        if let Some(model) = &self.settings.model {
            request = request.model(model.clone());
        }
        request
    }
}

impl Strategy for MlMasterHcc {
    fn run(config: String) -> Result<Outcome, String> {
        let settings = Settings::parse(&config)?;
        let task = task::describe().map_err(|e| format!("describing the task: {e}"))?;
        let _ = hcc::record(EventKind::Task, None, &task.description, None);
        let search = Search {
            lower_is_better: task.metric.direction == sophon_sdk::Direction::Minimize,
            task,
            started: Cell::new(0),
            buggy: Cell::new(0),
            best: RefCell::new(None),
            fatal: RefCell::new(None),
            settings,
        };
        let mut phases = 0;
        for phase in 1..=search.settings.phases {
            if search.out_of_budget() {
                break;
            }
            let directions = research_plan(&search, phase);
            if search.fatal.borrow().is_some() {
                break;
            }
            phases = phase;
            if let Err(e) = hcc::begin_phase(&plan::text(phase, &directions.0, directions.1)) {
                warn!("beginning phase {phase}: {e}");
            }
            let queue = RefCell::new(directions.0.into_iter().collect::<VecDeque<_>>());
            let workers = (0..search.settings.workers as usize).map(|w| worker(w, &queue, &search));
            let started_before = search.started.get();
            rt::block_on(join_all(workers));
            let progressed = search.started.get() > started_before;
            // Its directions are resolved (or the budget is spent): the promotion policy
            // distils the phase before the next plan is asked for.
            if let Err(e) = hcc::end_phase() {
                warn!("ending phase {phase}: {e}");
            }
            if !progressed {
                // A phase that started no node would be followed by the same plan again.
                info!("stopping after phase {phase}: it started no node");
                break;
            }
        }
        if let Some(error) = search.fatal.borrow().clone() {
            return Err(error);
        }
        let best = search.best.borrow().clone();
        let nodes = search.started.get();
        Ok(Outcome {
            summary: match &best {
                Some(b) => format!(
                    "{phases} phases, {nodes} nodes ({} buggy); best {} with validation {:.5}",
                    search.buggy.get(),
                    b.id,
                    b.metric
                ),
                None => format!("{phases} phases, {nodes} nodes; none produced a valid submission"),
            },
            best_node: best.map(|b| b.id),
            nodes,
        })
    }
}

/// The phase's directions: the model's plan from the HCC context, else the defaults (the bool
/// says whether the model's plan was used).
fn research_plan(s: &Search, phase: u32) -> (Vec<Direction>, bool) {
    let n = s.settings.directions;
    let context = s.context("research plan: what worked, what failed, what to try next");
    let best = s.best.borrow().clone();
    let prompt = plan::prompt(
        &context,
        phase,
        n,
        best.as_ref().map(|b| (b.plan.as_str(), b.metric)),
    );
    let request = s
        .request(plan::SYSTEM, prompt, "research plan")
        .json_schema("research_plan", plan::schema(n));
    match llm::chat(&request) {
        Ok(reply) => match plan::parse(&reply.text, n) {
            Some(directions) => (directions, true),
            None => {
                info!("phase {phase}: the model's plan was unusable; default directions");
                (plan::fallback(phase, n), false)
            }
        },
        Err(e) if e.is_permanent() => {
            *s.fatal.borrow_mut() = Some(format!("the model cannot be used: {e}"));
            (Vec::new(), false)
        }
        Err(e) => {
            warn!("phase {phase}: planning failed ({e}); default directions");
            (plan::fallback(phase, n), false)
        }
    }
}

/// Implement directions from the queue until it is empty or the budget is spent.
async fn worker(w: usize, queue: &RefCell<VecDeque<Direction>>, s: &Search) {
    loop {
        if s.out_of_budget() {
            return;
        }
        let Some(direction) = queue.borrow_mut().pop_front() else {
            return;
        };
        implement(w, &direction, s).await;
    }
}

/// One direction: a draft or an improvement of the best, then debug attempts while it fails.
async fn implement(w: usize, direction: &Direction, s: &Search) {
    let context = s.context(&direction.suggestion);
    let ask = format!(
        "{context}\n\nThis phase's direction for you — {}: {}",
        direction.title, direction.suggestion
    );
    let best = s.best.borrow().clone();
    let (mut operator, mut prompt, mut parent) = match &best {
        None => ("draft", prompts::draft(&s.task, &[], &ask), None),
        Some(b) => (
            "improve",
            prompts::improve(&s.task, &b.code, &b.output, Some(b.metric), &[], &ask),
            Some(b.id.clone()),
        ),
    };
    for attempt in 0..=s.settings.debug_retries {
        if s.out_of_budget() {
            return;
        }
        let n = s.started.get();
        s.started.set(n + 1);
        let id = format!("node-{n}");
        let solution =
            match llm::chat_async(s.request(prompts::SYSTEM, prompt.clone(), operator)).await {
                Err(e) if e.is_permanent() => {
                    *s.fatal.borrow_mut() = Some(format!("the model cannot be used: {e}"));
                    return;
                }
                Err(e) => Solution {
                    output: format!("the model call failed: {e}"),
                    ..Solution::default()
                },
                Ok(reply) => {
                    let (plan, code) = solution_kit::split_reply(&reply.text);
                    match code {
                        None => Solution {
                            plan,
                            output: "the reply has no ```python code block".into(),
                            ..Solution::default()
                        },
                        Some(code) => match run_solution(w, &id, plan, code, s).await {
                            Some(solution) => solution,
                            None => return,
                        },
                    }
                }
            };
        let verdict = if solution.good() { "worked" } else { "failed" };
        let _ = hcc::record(
            EventKind::Insight,
            Some(&id),
            &format!("direction `{}` ({operator}): {verdict}", direction.title),
            solution.metric,
        );
        report(
            s,
            &id,
            parent.as_deref(),
            operator,
            w,
            &solution,
            &direction.title,
        );
        if solution.good() || attempt == s.settings.debug_retries {
            return;
        }
        operator = "debug";
        prompt = prompts::debug(&s.task, &solution.code, &solution.output, "", &ask);
        parent = Some(id);
    }
}

/// Run the script as a job and validate its submission; `None` when no time is left for it.
async fn run_solution(
    w: usize,
    id: &str,
    plan: String,
    code: String,
    s: &Search,
) -> Option<Solution> {
    let _ = hcc::record(EventKind::Code, Some(id), &format!("{plan}\n{code}"), None);
    let limits = JobLimits {
        cpus: s.settings.cpus,
        memory_mb: s.settings.job_memory_mb,
        timeout_ms: run::job_time(s.settings.job_timeout_secs * 1000)?,
    };
    let mut solution = Solution {
        plan,
        code,
        ..Solution::default()
    };
    let job = match jobs::submit(&solution_kit::spec(id, &solution.code, limits)) {
        Ok(job) => job,
        // The run's deadline or a stop came first: no node, as when no time is left.
        Err(_) if run::should_stop() => return None,
        Err(e) => {
            warn!("worker {w}: {id} could not start: {e}");
            solution.output = format!("the job could not start: {e}");
            return Some(solution);
        }
    };
    let execution = solution_kit::collect(jobs::wait_async(&job).await);
    solution.output = execution.output;
    solution.metric = execution.metric;
    if let (Some(_), Some(submission)) = (solution.metric, execution.submission) {
        match solution_kit::validation_problem(&submission) {
            None => solution.submission = Some(submission),
            Some(problem) => solution.output = format!("{}\n{problem}", solution.output),
        }
    }
    let _ = hcc::record(
        EventKind::Execution,
        Some(id),
        &solution.output,
        solution.metric.filter(|_| solution.good()),
    );
    Some(solution)
}

fn report(
    s: &Search,
    id: &str,
    parent: Option<&str>,
    operator: &str,
    worker: usize,
    solution: &Solution,
    direction: &str,
) {
    let good = solution.good();
    if !good {
        s.buggy.set(s.buggy.get() + 1);
    }
    let summary = match solution.metric.filter(|_| good) {
        Some(m) => format!("{direction}: {} {m:.5}", s.task.metric.name),
        None => format!("{direction}: {}", tail(&solution.output, 300)),
    };
    if let Err(e) = run::report_node(&NodeReport {
        id: id.to_string(),
        parent: parent.map(str::to_string),
        operator: operator.to_string(),
        worker: Some(worker as u32),
        plan: solution.plan.clone(),
        code: (!solution.code.is_empty()).then(|| solution.code.clone()),
        metric: solution.metric.filter(|_| good),
        buggy: !good,
        valid_submission: good,
        summary,
    }) {
        warn!("reporting {id}: {e}");
    }
    if let (true, Some(metric), Some(submission)) = (good, solution.metric, &solution.submission)
        && s.better(metric)
        && run::report_best(id, submission, metric).unwrap_or(false)
    {
        *s.best.borrow_mut() = Some(Best {
            id: id.to_string(),
            plan: solution.plan.clone(),
            code: solution.code.clone(),
            output: solution.output.clone(),
            metric,
        });
    }
}

sophon_sdk::export_strategy!(MlMasterHcc);
