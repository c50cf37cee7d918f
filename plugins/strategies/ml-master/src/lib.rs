//! `ml-master`: ML-Master's search (REFERENCE.md §2) as a Sophon strategy.
//!
//! `workers` parallel workers share one tree. Each selects a place to expand from the root by
//! UCT (a new draft while the root has room; drafts another worker explores are locked), then
//! keeps extending its own trajectory — debugging a buggy child, improving a good one — until
//! a stop rule says to backpropagate: a debug that succeeded; a good child that failed to beat
//! the trajectory's local best `improve-patience` times (it becomes terminal); `debug-backprop`
//! debug steps in a row; a debug chain of `debug-terminal` (terminal). Rewards are −1 for a
//! buggy node, +1 otherwise, +1 more for beating the global best when `global-best-bonus`.
//!
//! Every node: the model writes a plan and a script (prompts from `solution-kit`, with time and
//! nodes left — inside an opened `<think>` prefill when the model reasons and `steer` is on);
//! the script runs as a job; the reviewer (JSON schema, text fallback) reads code and output; a
//! node is buggy when the job failed, the reviewer says so, or there is no metric or no
//! submission; a submission the task adapter finds invalid is buggy too, and its message goes
//! into the debug prompt. The final pick is the best validation metric among valid nodes.
//!
//! LLM calls and jobs of different workers run concurrently; the host journals each answer and
//! which operations were ready whenever the strategy looked, so a resumed run retraces the
//! same interleaving.

mod settings;

use settings::Settings;
use solution_kit::prompts::{self, Attempt, Brief};
use solution_kit::review;
use solution_kit::search::{Node, Target, Tree};
use solution_kit::{JobLimits, tail};
use sophon_sdk::futures::future::join_all;
use sophon_sdk::hcc::{self, EventKind};
use sophon_sdk::llm::{self, ChatRequest};
use sophon_sdk::run::{self, NodeReport};
use sophon_sdk::{Direction, Outcome, Strategy, TaskInfo, info, jobs, rt, task, warn};
use std::cell::{Cell, RefCell};

struct MlMaster;

/// What the workers share.
struct Search {
    settings: Settings,
    task: TaskInfo,
    tree: RefCell<Tree>,
    /// Nodes started (ids are `node-<n>` in start order).
    started: Cell<u32>,
    best: RefCell<Option<(String, f64)>>,
    /// A permanent failure (e.g. the model cannot be used) ends every worker.
    fatal: RefCell<Option<String>>,
    steer: bool,
}

impl Search {
    fn done(&self) -> bool {
        self.fatal.borrow().is_some()
            || self.started.get() >= self.settings.search.max_nodes
            || run::should_stop()
    }

    fn attempts(&self, parent: Option<usize>) -> Vec<Attempt> {
        let tree = self.tree.borrow();
        tree.nodes
            .iter()
            .filter(|n| n.parent == parent)
            .map(|n| Attempt::new(&n.id, &n.plan, n.buggy, n.metric, n.seconds))
            .collect()
    }

    /// Time and nodes left, for the prompts.
    fn context(&self) -> String {
        let budget = run::budget();
        let time = budget
            .wall_ms_left
            .map_or("no time limit".to_string(), |ms| {
                format!("{} minutes left", ms / 60_000)
            });
        let nodes = self
            .settings
            .search
            .max_nodes
            .saturating_sub(self.started.get());
        format!("Budget: {time}, {nodes} more solutions to try.")
    }

    fn timeout_ms(&self) -> Option<u64> {
        run::job_time(self.settings.job_timeout_secs * 1000)
    }
}

impl Strategy for MlMaster {
    fn run(config: String) -> Result<Outcome, String> {
        let settings = Settings::parse(&config)?;
        let task = task::describe().map_err(|e| format!("describing the task: {e}"))?;
        let _ = hcc::record(EventKind::Task, None, &task.description, None);
        let model = llm::models().into_iter().find(|m| {
            settings
                .model
                .as_ref()
                .is_none_or(|alias| &m.alias == alias)
        });
        let steer = settings.steer && model.is_some_and(|m| m.reasoning && m.supports_prefill);
        let search = Search {
            tree: RefCell::new(Tree {
                lower_is_better: task.metric.direction == Direction::Minimize,
                ..Tree::default()
            }),
            task,
            started: Cell::new(0),
            best: RefCell::new(None),
            fatal: RefCell::new(None),
            steer,
            settings,
        };
        info!(
            "{} workers, up to {} nodes{}",
            search.settings.workers,
            search.settings.search.max_nodes,
            if steer {
                ", steering the model's reasoning"
            } else {
                ""
            }
        );
        let workers = (0..search.settings.workers as usize).map(|w| worker(w, &search));
        rt::block_on(join_all(workers));
        if let Some(error) = search.fatal.borrow().clone() {
            return Err(error);
        }
        let tree = search.tree.borrow();
        let best = search.best.borrow().clone();
        Ok(Outcome {
            summary: match &best {
                Some((id, metric)) => format!(
                    "{} nodes ({} buggy) by {} workers; best {id} with validation {metric:.5}",
                    tree.nodes.len(),
                    tree.nodes.iter().filter(|n| n.buggy).count(),
                    search.settings.workers
                ),
                None => format!(
                    "{} nodes; none produced a valid submission",
                    tree.nodes.len()
                ),
            },
            best_node: best.map(|(id, _)| id),
            nodes: tree.nodes.len() as u32,
        })
    }
}

/// One worker: select from the root, extend a trajectory, repeat.
async fn worker(w: usize, s: &Search) {
    while !s.done() {
        let step = s.started.get();
        let target = s.tree.borrow_mut().select(w, step, &s.settings.search);
        let Some(target) = target else {
            info!("worker {w}: nothing left to expand");
            break;
        };
        trajectory(w, target, s).await;
    }
}

/// Extend from `target` until a stop rule backpropagates (or the run must stop).
async fn trajectory(w: usize, target: Target, s: &Search) {
    let mut current = target;
    let mut local_best: Option<usize> = None;
    let mut debug_steps = 0;
    loop {
        if s.done() {
            unlock(s, current);
            return;
        }
        let child = match expand(w, current, s).await {
            Some(child) => child,
            None => {
                unlock(s, current);
                return;
            }
        };
        let mut tree = s.tree.borrow_mut();
        if matches!(current, Target::Root) {
            tree.nodes[child].locked_by = Some(w);
        }
        let reward = tree.reward(child, s.settings.global_best_bonus);
        let parent_buggy = matches!(current, Target::Node(p) if tree.nodes[p].buggy);
        let node = tree.nodes[child].clone();
        let backprop = if !node.buggy {
            debug_steps = 0;
            let metric = node.metric.expect("a good node has a metric");
            if parent_buggy {
                true // the debug worked
            } else {
                match local_best {
                    Some(lb)
                        if !tree.beats_by(
                            metric,
                            tree.nodes[lb].metric.unwrap_or(metric),
                            s.settings.min_improvement,
                        ) =>
                    {
                        tree.nodes[lb].failures += 1;
                        let stop = tree.nodes[lb].failures >= s.settings.improve_patience;
                        if stop {
                            tree.nodes[child].terminal = true;
                        }
                        stop
                    }
                    _ => {
                        local_best = Some(child);
                        false
                    }
                }
            }
        } else {
            debug_steps += 1;
            if node.debug_chain >= s.settings.debug_terminal {
                tree.nodes[child].terminal = true;
            }
            tree.nodes[child].terminal || debug_steps >= s.settings.debug_backprop
        };
        if backprop {
            tree.backpropagate(child, reward);
            return;
        }
        tree.reserve(child);
        current = Target::Node(child);
    }
}

/// Release the draft lock of the trajectory at `at` (when it ends without backpropagating).
fn unlock(s: &Search, at: Target) {
    if let Target::Node(mut i) = at {
        let mut tree = s.tree.borrow_mut();
        while let Some(p) = tree.nodes[i].parent {
            i = p;
        }
        tree.nodes[i].locked_by = None;
    }
}

/// Make one child of `target`: ask the model, run the script, review and validate it, add it
/// to the tree and report it. `None` when the run must stop (no time for a job, or a
/// permanent failure, recorded in `fatal`).
async fn expand(w: usize, target: Target, s: &Search) -> Option<usize> {
    let n = s.started.get();
    s.started.set(n + 1);
    let id = format!("node-{n}");
    let context = s.context();
    // No time for a job: no node, as when the job itself finds no time left.
    let timeout_ms = s.timeout_ms()?;
    let brief = Brief {
        task: &s.task,
        limits: JobLimits {
            cpus: s.settings.cpus,
            memory_mb: s.settings.job_memory_mb,
            timeout_ms,
        },
        context: None,
    };
    let (operator, parent, prompt) = {
        let shown = if s.steer { "" } else { context.as_str() };
        match target {
            Target::Root => (
                "draft",
                None,
                prompts::draft(&brief, &s.attempts(None), shown),
            ),
            Target::Node(p) => {
                let node = s.tree.borrow().nodes[p].clone();
                if node.buggy {
                    let prompt = prompts::debug(&brief, &node.shown(), &node.analysis, shown);
                    ("debug", Some(p), prompt)
                } else {
                    let tried = s.attempts(Some(p));
                    let prompt = prompts::improve(&brief, &node.shown(), &tried, shown, None, &[]);
                    ("improve", Some(p), prompt)
                }
            }
        }
    };
    let mut request = ChatRequest::system_user(prompts::SYSTEM, prompt)
        .temperature(s.settings.temperature)
        .seed(run::info().seed.wrapping_add(u64::from(n)))
        .max_tokens(s.settings.max_tokens)
        .purpose(operator);
    if s.steer {
        request = request.prefill(format!("<think>\n{context}\n"));
    }
    if let Some(model) = &s.settings.model {
        request = request.model(model.clone());
    }
    let mut node = Node {
        id: id.clone(),
        buggy: true,
        ..Node::default()
    };
    match llm::chat_async(request).await {
        Err(e) if e.is_permanent() => {
            *s.fatal.borrow_mut() = Some(format!("the model cannot be used: {e}"));
            return None;
        }
        Err(e) => node.output = format!("the model call failed: {e}"),
        Ok(reply) => {
            let (plan, code) = solution_kit::split_reply(&reply.text);
            node.plan = plan;
            match code {
                None => node.output = "the reply has no ```python code block".to_string(),
                Some(code) => {
                    node.code = code;
                    run_and_review(w, &id, &mut node, s).await?;
                }
            }
        }
    }
    let index = s.tree.borrow_mut().add(node, parent);
    report(s, index, operator, w);
    Some(index)
}

/// Run the node's script, review it, validate its submission; fills metric, output, analysis,
/// buggy and submission. `None` when there is no time left for the job.
async fn run_and_review(w: usize, id: &str, node: &mut Node, s: &Search) -> Option<()> {
    let _ = hcc::record(
        EventKind::Code,
        Some(id),
        &format!("Title: {}\n{}", prompts::title(&node.plan), node.code),
        None,
    );
    let limits = JobLimits {
        cpus: s.settings.cpus,
        memory_mb: s.settings.job_memory_mb,
        timeout_ms: s.timeout_ms()?,
    };
    let job = match jobs::submit(&solution_kit::spec(id, &node.code, limits)) {
        Ok(job) => job,
        // The run's deadline or a stop came first: no node, as when no time is left.
        Err(_) if run::should_stop() => return None,
        Err(e) => {
            warn!("worker {w}: {id} could not start: {e}");
            node.output = format!("the job could not start: {e}");
            return Some(());
        }
    };
    let execution = solution_kit::collect(jobs::wait_async(&job).await);
    node.output = execution.output;
    node.seconds = Some(execution.seconds);
    let mut review_request = review::request(&s.task.metric.name, &node.code, &node.output);
    if let Some(model) = s
        .settings
        .review_model
        .as_ref()
        .or(s.settings.model.as_ref())
    {
        review_request = review_request.model(model.clone());
    }
    let review = match llm::chat_async(review_request).await {
        Ok(reply) => review::parse(&reply.text),
        Err(e) => {
            warn!("worker {w}: reviewing {id} failed: {e}");
            None
        }
    };
    // The script's own metric line first; the reviewer's reading when it printed none.
    node.metric = execution.metric.or(review.as_ref().and_then(|r| r.metric));
    node.analysis = review
        .as_ref()
        .map_or_else(|| "no usable review".to_string(), |r| r.summary.clone());
    let failed = execution.result.state != jobs::JobState::Succeeded;
    let said_bug = review.as_ref().is_some_and(|r| r.is_bug);
    node.buggy = failed || said_bug || node.metric.is_none() || execution.submission.is_none();
    if let (false, Some(submission)) = (node.buggy, &execution.submission) {
        match solution_kit::validation_problem(submission) {
            None => node.submission = Some(submission.clone()),
            Some(problem) => {
                node.buggy = true;
                node.output = format!("{}\n{problem}", node.output);
            }
        }
    }
    let _ = hcc::record(EventKind::Execution, Some(id), &node.output, node.metric);
    let _ = hcc::record(EventKind::Review, Some(id), &node.analysis, node.metric);
    Some(())
}

fn report(s: &Search, index: usize, operator: &str, worker: usize) {
    let tree = s.tree.borrow();
    let node = &tree.nodes[index];
    let summary = match (node.buggy, node.metric) {
        (false, Some(m)) => format!(
            "{} {m:.5}; {}",
            s.task.metric.name,
            tail(&node.analysis, 200)
        ),
        _ => tail(&format!("{}\n{}", node.output, node.analysis), 300),
    };
    let reported = run::report_node(&NodeReport {
        id: node.id.clone(),
        parent: node.parent.map(|p| tree.nodes[p].id.clone()),
        operator: operator.to_string(),
        worker: Some(worker as u32),
        plan: node.plan.clone(),
        code: (!node.code.is_empty()).then(|| node.code.clone()),
        metric: node.metric,
        buggy: node.buggy,
        valid_submission: !node.buggy,
        summary,
    });
    if let Err(e) = reported {
        warn!("reporting {}: {e}", node.id);
    }
    if let (false, Some(metric), Some(submission)) = (node.buggy, node.metric, &node.submission)
        && run::report_best(&node.id, submission, metric).unwrap_or(false)
    {
        *s.best.borrow_mut() = Some((node.id.clone(), metric));
    }
}

sophon_sdk::export_strategy!(MlMaster);
