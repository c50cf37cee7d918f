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
//!
//! Prompts say the task once: the HCC context holds it (the task event is the task text with
//! its data preview) and opens every prompt. Nodes are named by id and the model's title; the
//! planner sees every node with its outcome and run time, and the job's limits; a direction
//! that names earlier nodes (`node-3`) gets their code.

mod plan;
mod settings;

use plan::Direction;
use settings::Settings;
use solution_kit::prompts::{self, Brief, Shown};
use solution_kit::{JobLimits, tail};
use sophon_sdk::futures::future::join_all;
use sophon_sdk::hcc::{self, EventKind};
use sophon_sdk::llm::{self, ChatRequest};
use sophon_sdk::run::{self, NodeReport};
use sophon_sdk::{Outcome, Strategy, TaskInfo, info, jobs, rt, task, warn};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

struct MlMasterHcc;

/// A node as later prompts show it (no tree here: only its id, plan, code, output, outcome).
type Done = solution_kit::search::Node;

/// Most earlier nodes whose code a direction gets besides the one it improves.
const MAX_ALSO: usize = 3;
/// Most nodes the planner's list shows (the latest; the best is named apart).
const MAX_LISTED: usize = 30;

/// A solution as it ran.
#[derive(Default)]
struct Solution {
    plan: String,
    code: String,
    output: String,
    metric: Option<f64>,
    submission: Option<String>,
    seconds: Option<f64>,
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
    /// The best valid node so far.
    best: RefCell<Option<Done>>,
    /// Every node reported, in order.
    done: RefCell<Vec<Done>>,
    fatal: RefCell<Option<String>>,
}

impl Search {
    fn out_of_budget(&self) -> bool {
        self.fatal.borrow().is_some()
            || self.started.get() >= self.settings.max_nodes
            || run::should_stop()
    }

    fn better(&self, metric: f64) -> bool {
        self.best
            .borrow()
            .as_ref()
            .and_then(|b| b.metric)
            .is_none_or(|best| {
                if self.lower_is_better {
                    metric < best
                } else {
                    metric > best
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

    /// The limits the next job will run under (the configured timeout, or the time left).
    fn limits(&self) -> Option<JobLimits> {
        Some(JobLimits {
            cpus: self.settings.cpus,
            memory_mb: self.settings.job_memory_mb,
            timeout_ms: run::job_time(self.settings.job_timeout_secs * 1000)?,
        })
    }

    /// The latest [`MAX_LISTED`] nodes, one line each (id, title, outcome, run time), for
    /// the planner.
    fn node_list(&self) -> String {
        let done = self.done.borrow();
        if done.is_empty() {
            return "No node has run yet.".to_string();
        }
        let skipped = done.len().saturating_sub(MAX_LISTED);
        let attempts: Vec<prompts::Attempt> = done[skipped..]
            .iter()
            .map(|d| prompts::Attempt::new(&d.id, &d.plan, d.buggy, d.metric, d.seconds))
            .collect();
        let earlier = match skipped {
            0 => String::new(),
            n => format!(" ({n} earlier ones not listed)"),
        };
        format!("Nodes so far{earlier}:\n{}", prompts::list(&attempts))
    }

    /// Earlier nodes named in `text` (`node-3`), other than `except`, at most [`MAX_ALSO`].
    fn named_in(&self, text: &str, except: &str) -> Vec<Done> {
        self.done
            .borrow()
            .iter()
            .filter(|d| d.id != except && mentions(text, &d.id))
            .take(MAX_ALSO)
            .cloned()
            .collect()
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
        // The task event is what every context opens with: the description and the data
        // preview, so no prompt needs its own copy.
        let _ = hcc::record(EventKind::Task, None, &prompts::task_body(&task), None);
        let search = Search {
            lower_is_better: task.metric.direction == sophon_sdk::Direction::Minimize,
            task,
            started: Cell::new(0),
            buggy: Cell::new(0),
            best: RefCell::new(None),
            done: RefCell::new(Vec::new()),
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
            if let Err(e) = hcc::begin_phase(&plan::text(&directions.0, directions.1)) {
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
                    b.metric.unwrap_or(f64::NAN)
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
    let limits = plan::limits_line(s.limits(), s.settings.workers);
    let prompt = plan::prompt(
        &context,
        &s.node_list(),
        &limits,
        phase,
        n,
        best.as_ref()
            .map(|b| (b.id.as_str(), b.metric.unwrap_or(f64::NAN))),
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
    let Some(limits) = s.limits() else {
        return;
    };
    let context = s.context(&direction.suggestion);
    let brief = Brief {
        task: &s.task,
        limits,
        context: Some(&context),
    };
    let wanted = format!(
        "{}: {}",
        direction.title.trim(),
        direction.suggestion.trim()
    );
    let ask = format!("This phase's direction for you — {wanted}");
    let best = s.best.borrow().clone();
    let (mut operator, mut prompt, mut parent) = match &best {
        None => ("draft", prompts::draft(&brief, &[], &ask), None),
        Some(b) => {
            let also = s.named_in(&wanted, &b.id);
            let also: Vec<Shown> = also.iter().map(Done::shown).collect();
            let prompt = prompts::improve(&brief, &b.shown(), &[], "", Some(&wanted), &also);
            ("improve", prompt, Some(b.id.clone()))
        }
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
        let failed = Shown {
            id: &id,
            plan: &solution.plan,
            code: &solution.code,
            output: &solution.output,
            metric: None,
            seconds: solution.seconds,
        };
        prompt = prompts::debug(&brief, &failed, "", &ask);
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
    let title = prompts::title(&plan);
    let _ = hcc::record(
        EventKind::Code,
        Some(id),
        &format!("Title: {title}\n{plan}\n{code}"),
        None,
    );
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
    solution.output = format!(
        "{}\n[ran {}]",
        execution.output.trim_end(),
        prompts::duration(execution.seconds)
    );
    solution.metric = execution.metric;
    solution.seconds = Some(execution.seconds);
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
    let done = Done {
        id: id.to_string(),
        plan: solution.plan.clone(),
        code: solution.code.clone(),
        output: solution.output.clone(),
        metric: solution.metric.filter(|_| good),
        buggy: !good,
        seconds: solution.seconds,
        ..Done::default()
    };
    if let (true, Some(metric), Some(submission)) = (good, solution.metric, &solution.submission)
        && s.better(metric)
        && run::report_best(id, submission, metric).unwrap_or(false)
    {
        *s.best.borrow_mut() = Some(done.clone());
    }
    s.done.borrow_mut().push(done);
}

/// Whether `text` names node `id` (`node-3`, not `node-31`).
fn mentions(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(at, _)| {
        !text[at + id.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

sophon_sdk::export_strategy!(MlMasterHcc);
