//! `aide`: AIDE's greedy tree search (Weco's AI-Driven Exploration). The model writes whole
//! solutions; each runs as a sandboxed job with the task's public data at `/data` and must
//! write `submission.csv` and print its validation score as `VALIDATION_METRIC: <number>`.
//!
//! Policy, step by step: while fewer than `num-drafts` drafts exist, draft a new solution;
//! otherwise, with probability `debug-prob`, debug a buggy leaf (one still under
//! `max-debug-depth` consecutive debug steps), else improve the best valid node. A node is
//! buggy when its job fails, prints no metric, writes no submission, or the task adapter finds
//! the submission invalid (its message goes into the debug prompt).
//!
//! Config (JSON, all optional): `{"max-nodes": 20, "num-drafts": 5, "debug-prob": 0.5,
//! "max-debug-depth": 3, "job-timeout-secs": 600, "job-memory-mb": 8192, "cpus": 4,
//! "temperature": 0.5, "max-tokens": 4096, "model": "<alias>"}`.

use solution_kit::prompts::{self, Attempt, Brief, Shown};
use solution_kit::{JobLimits, tail};
use sophon_sdk::config::Config;
use sophon_sdk::hcc::{self, EventKind};
use sophon_sdk::jobs;
use sophon_sdk::llm::{self, ChatRequest};
use sophon_sdk::run::{self, NodeReport};
use sophon_sdk::{Direction, Outcome, Strategy, TaskInfo, info, task};

struct Aide;

struct Settings {
    max_nodes: u32,
    num_drafts: u32,
    debug_prob: f64,
    max_debug_depth: u32,
    job_timeout_secs: u64,
    job_memory_mb: u64,
    cpus: u32,
    temperature: f32,
    max_tokens: u32,
    model: Option<String>,
}

impl Settings {
    fn parse(text: &str) -> Result<Settings, String> {
        let c = Config::parse(
            text,
            &[
                "max-nodes",
                "num-drafts",
                "debug-prob",
                "max-debug-depth",
                "job-timeout-secs",
                "job-memory-mb",
                "cpus",
                "temperature",
                "max-tokens",
                "model",
            ],
        )?;
        Ok(Settings {
            max_nodes: c.int("max-nodes", 20, 1..=10_000)? as u32,
            num_drafts: c.int("num-drafts", 5, 1..=100)? as u32,
            debug_prob: c.float("debug-prob", 0.5, 0.0..=1.0)?,
            max_debug_depth: c.int("max-debug-depth", 3, 1..=100)? as u32,
            job_timeout_secs: c.int("job-timeout-secs", 600, 5..=86_400)?,
            job_memory_mb: c.int("job-memory-mb", 8192, 256..=1_048_576)?,
            cpus: c.int(
                "cpus",
                u64::from(jobs::inventory().cpus.clamp(1, 8)),
                1..=1024,
            )? as u32,
            temperature: c.float("temperature", 0.5, 0.0..=2.0)? as f32,
            max_tokens: c.int("max-tokens", 4096, 64..=200_000)? as u32,
            model: c.string("model")?,
        })
    }
}

/// One node of the search tree.
#[derive(Clone)]
pub struct Node {
    pub id: String,
    pub parent: Option<usize>,
    pub plan: String,
    pub code: String,
    /// What the run printed, or why it failed (cut for prompts).
    pub output: String,
    pub metric: Option<f64>,
    /// The submission's artifact id, when valid.
    pub submission: Option<String>,
    pub buggy: bool,
    /// Consecutive debug steps that led here.
    pub debug_depth: u32,
    pub children: u32,
    /// Its script's wall time, when it ran.
    pub seconds: Option<f64>,
}

impl Node {
    fn shown(&self) -> Shown<'_> {
        Shown {
            id: &self.id,
            plan: &self.plan,
            code: &self.code,
            output: &self.output,
            metric: self.metric.filter(|_| !self.buggy),
            seconds: self.seconds,
        }
    }
}

/// Earlier attempts for a prompt: the drafts (`parent` none) or the children of `parent`.
fn attempts(nodes: &[Node], parent: Option<usize>) -> Vec<Attempt> {
    nodes
        .iter()
        .filter(|n| n.parent == parent)
        .map(|n| Attempt::new(&n.id, &n.plan, n.buggy, n.metric, n.seconds))
        .collect()
}

/// The operator applied at a step, and to which node.
enum Step {
    Draft,
    Debug(usize),
    Improve(usize),
}

/// xorshift64*: a seeded stream for the debug coin, so a resumed run flips the same coins.
struct Coin(u64);

impl Coin {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn better(direction: Direction, a: f64, b: f64) -> bool {
    match direction {
        Direction::Maximize => a > b,
        Direction::Minimize => a < b,
    }
}

fn best_node(nodes: &[Node], direction: Direction) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, node) in nodes.iter().enumerate() {
        if let (false, Some(m)) = (node.buggy, node.metric)
            && best.is_none_or(|b| better(direction, m, nodes[b].metric.unwrap_or(m)))
        {
            best = Some(i);
        }
    }
    best
}

fn choose(settings: &Settings, nodes: &[Node], direction: Direction, coin: &mut Coin) -> Step {
    let drafts = nodes.iter().filter(|n| n.parent.is_none()).count() as u32;
    if drafts < settings.num_drafts {
        return Step::Draft;
    }
    if coin.unit() < settings.debug_prob {
        let leaf =
            nodes.iter().enumerate().rev().find(|(_, n)| {
                n.buggy && n.children == 0 && n.debug_depth < settings.max_debug_depth
            });
        if let Some((i, _)) = leaf {
            return Step::Debug(i);
        }
    }
    match best_node(nodes, direction) {
        Some(i) => Step::Improve(i),
        None => Step::Draft,
    }
}

impl Strategy for Aide {
    fn run(config: String) -> Result<Outcome, String> {
        let settings = Settings::parse(&config)?;
        let task = task::describe().map_err(|e| format!("describing the task: {e}"))?;
        let direction = task.metric.direction;
        let _ = hcc::record(EventKind::Task, None, &task.description, None);
        let mut coin = Coin(run::info().seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut nodes: Vec<Node> = Vec::new();
        let mut best: Option<(String, f64)> = None;
        while (nodes.len() as u32) < settings.max_nodes {
            if run::should_stop() {
                info!("stopping: the run's budget is spent");
                break;
            }
            let Some(timeout_ms) = run::job_time(settings.job_timeout_secs * 1000) else {
                break;
            };
            let step = choose(&settings, &nodes, direction, &mut coin);
            let node = match step_node(&settings, &task, &nodes, step, timeout_ms) {
                Ok(node) => node,
                // The deadline or a stop came between the check and the job: the search ends.
                Err(e) if run::should_stop() => {
                    info!("stopping: {e}");
                    break;
                }
                Err(e) => return Err(e),
            };
            if let Some(parent) = node.parent {
                nodes[parent].children += 1;
            }
            nodes.push(node);
            let node = nodes.last().expect("just pushed");
            if let (false, Some(metric), Some(submission)) =
                (node.buggy, node.metric, node.submission.clone())
                && run::report_best(&node.id, &submission, metric)
                    .map_err(|e| format!("claiming {}: {e}", node.id))?
            {
                best = Some((node.id.clone(), metric));
            }
        }
        Ok(Outcome {
            summary: match &best {
                Some((id, metric)) => format!(
                    "{} nodes ({} buggy); best {id} with validation {metric:.5}",
                    nodes.len(),
                    nodes.iter().filter(|n| n.buggy).count()
                ),
                None => format!("{} nodes; none produced a valid submission", nodes.len()),
            },
            best_node: best.map(|(id, _)| id),
            nodes: nodes.len() as u32,
        })
    }
}

/// Ask the model for a node, run it, check it, report it.
fn step_node(
    settings: &Settings,
    task: &TaskInfo,
    nodes: &[Node],
    step: Step,
    timeout_ms: u64,
) -> Result<Node, String> {
    let id = format!("node-{}", nodes.len());
    let limits = JobLimits {
        cpus: settings.cpus,
        memory_mb: settings.job_memory_mb,
        timeout_ms,
    };
    let brief = Brief {
        task,
        limits,
        context: None,
    };
    let (operator, parent, prompt) = match step {
        Step::Draft => (
            "draft",
            None,
            prompts::draft(&brief, &attempts(nodes, None), ""),
        ),
        Step::Debug(i) => (
            "debug",
            Some(i),
            prompts::debug(&brief, &nodes[i].shown(), "", ""),
        ),
        Step::Improve(i) => (
            "improve",
            Some(i),
            prompts::improve(
                &brief,
                &nodes[i].shown(),
                &attempts(nodes, Some(i)),
                "",
                None,
                &[],
            ),
        ),
    };
    let mut request = ChatRequest::system_user(prompts::SYSTEM, prompt)
        .temperature(settings.temperature)
        .seed(run::info().seed)
        .max_tokens(settings.max_tokens)
        .purpose(operator);
    if let Some(model) = &settings.model {
        request = request.model(model.clone());
    }
    let debug_depth = match (operator, parent) {
        ("debug", Some(p)) => nodes[p].debug_depth + 1,
        _ => 0,
    };
    let mut node = Node {
        id: id.clone(),
        parent,
        plan: String::new(),
        code: String::new(),
        output: String::new(),
        metric: None,
        submission: None,
        buggy: true,
        debug_depth,
        children: 0,
        seconds: None,
    };
    let reply = match llm::chat(&request) {
        Ok(reply) => reply.text,
        Err(e) if e.is_permanent() => return Err(format!("the model cannot be used: {e}")),
        Err(e) => {
            node.output = format!("the model call failed: {e}");
            report(task, &node, operator, nodes)?;
            return Ok(node);
        }
    };
    let (plan, code) = solution_kit::split_reply(&reply);
    node.plan = plan;
    let Some(code) = code else {
        node.output = "the reply has no ```python code block".to_string();
        report(task, &node, operator, nodes)?;
        return Ok(node);
    };
    node.code = code;
    let _ = hcc::record(
        EventKind::Code,
        Some(&id),
        &format!("Title: {}\n{}", prompts::title(&node.plan), node.code),
        None,
    );
    let run = solution_kit::execute(&id, &node.code, limits)?;
    node.output = run.output;
    node.seconds = Some(run.seconds);
    if let (Some(submission), Some(metric)) = (run.submission, run.metric) {
        node.metric = Some(metric);
        let check = task::validate(&submission).map_err(|e| format!("validating {id}: {e}"))?;
        if check.valid {
            node.buggy = false;
            node.submission = Some(submission);
        } else {
            node.output = format!(
                "{}\nthe submission is invalid: {}",
                node.output, check.message
            );
        }
    }
    let _ = hcc::record(EventKind::Execution, Some(&id), &node.output, node.metric);
    report(task, &node, operator, nodes)?;
    Ok(node)
}

fn report(task: &TaskInfo, node: &Node, operator: &str, nodes: &[Node]) -> Result<(), String> {
    let summary = match (node.buggy, node.metric) {
        (false, Some(m)) => format!("{} {m:.5}", task.metric.name),
        _ => tail(&node.output, 300),
    };
    run::report_node(&NodeReport {
        id: node.id.clone(),
        parent: node.parent.map(|p| nodes[p].id.clone()),
        operator: operator.to_string(),
        worker: Some(0),
        plan: node.plan.clone(),
        code: (!node.code.is_empty()).then(|| node.code.clone()),
        metric: node.metric,
        buggy: node.buggy,
        valid_submission: !node.buggy,
        summary,
    })
    .map_err(|e| format!("reporting {}: {e}", node.id))
}

sophon_sdk::export_strategy!(Aide);
