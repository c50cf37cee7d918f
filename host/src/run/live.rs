//! [`LiveRun`]: the run context of `sophon run`. It enforces the run's budgets (wall time,
//! steps, tokens, cost), records every node, and adopts a claimed best submission only after
//! the task adapter found it valid — copying it into the run directory at once, so a killed
//! run still leaves its best submission behind.
//!
//! Nodes go to `nodes.jsonl` (and the `node` event) and nowhere else: in memory the run keeps
//! only their count and a 16-byte digest of each id (to recognise a node a resumed strategy
//! reports again), so a strategy reporting large nodes costs disk within its step budget and
//! the size limits of [`NodeReport::check`], not host memory. A node past the step budget is
//! refused with `budget-exhausted`, and a best submission is adopted only from a recorded node.

use super::dir::{RunDir, copy_atomically};
use super::events::{RunEvent, RunObserver};
use super::{Best, LogLevel, NodeReport, RunBudget, RunContext, RunInfo};
use crate::artifacts::ArtifactStore;
use crate::capability::{CapResult, CapabilityError};
use crate::task::{Direction, TaskService};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why a run could not be resumed from its directory.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// `best.json` is there but not a best submission.
    #[error("best.json of the run is unreadable: {0}")]
    UnreadableBest(#[source] serde_json::Error),
}

/// The run's limits; `None` = unlimited.
#[derive(Clone, Debug, Default)]
pub struct RunLimits {
    pub wall: Option<Duration>,
    pub steps: Option<u32>,
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// Tokens and dollars spent so far (from the LLM ledger).
pub type UsageProbe = Arc<dyn Fn() -> (u64, f64) + Send + Sync>;

/// The run's elapsed time on disk, for a resume after a kill (see [`LiveRun::keep_clock`]).
const CLOCK_FILE: &str = "clock.json";
/// How often `clock.json` is rewritten: the most run time a kill can hide from a resume.
pub const CLOCK_PERIOD: Duration = Duration::from_secs(2);

#[derive(serde::Serialize, serde::Deserialize)]
struct Clock {
    elapsed_ms: u64,
}

/// Keeps the run's clock on disk while it lives ([`LiveRun::keep_clock`]).
pub struct ClockKeeper(tokio::task::JoinHandle<()>);

impl Drop for ClockKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct LiveRun {
    info: RunInfo,
    started: Instant,
    /// Run time before this process (a resumed run), counted against the wall budget.
    earlier: Duration,
    limits: RunLimits,
    direction: Direction,
    usage: OnceLock<UsageProbe>,
    artifacts: Arc<ArtifactStore>,
    task: Arc<dyn TaskService>,
    dir: Arc<RunDir>,
    observers: Vec<Arc<dyn RunObserver>>,
    stop_requested: Arc<AtomicBool>,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    /// Digests of the ids of the nodes recorded.
    node_ids: HashSet<[u8; 16]>,
    buggy_nodes: u32,
    best: Option<Best>,
}

impl LiveState {
    fn nodes(&self) -> u32 {
        self.node_ids.len() as u32
    }

    /// Count `node` as recorded; false if a node with its id already was.
    fn add(&mut self, node: &NodeReport) -> bool {
        let added = self.node_ids.insert(id_digest(&node.id));
        if added && node.buggy {
            self.buggy_nodes += 1;
        }
        added
    }
}

/// What the run remembers of a node's id.
fn id_digest(id: &str) -> [u8; 16] {
    let digest = Sha256::digest(id.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

impl LiveRun {
    pub fn new(
        info: RunInfo,
        limits: RunLimits,
        direction: Direction,
        artifacts: Arc<ArtifactStore>,
        task: Arc<dyn TaskService>,
        dir: Arc<RunDir>,
        observers: Vec<Arc<dyn RunObserver>>,
    ) -> LiveRun {
        LiveRun {
            info,
            started: Instant::now(),
            earlier: Duration::ZERO,
            limits,
            direction,
            usage: OnceLock::new(),
            artifacts,
            task,
            dir,
            observers,
            stop_requested: Arc::default(),
            state: Mutex::default(),
        }
    }

    /// Continue a run from its directory: the nodes and best submission it recorded, and the
    /// run time it had used (from its last event).
    pub fn resumed(mut self) -> Result<LiveRun, ResumeError> {
        let mut state = LiveState::default();
        if let Ok(file) = std::fs::File::open(self.dir.path("nodes.jsonl")) {
            // Read line by line: the file may be far larger than what the run keeps.
            for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
                // A torn last line from a kill mid-write is skipped.
                if let Ok(node) = serde_json::from_str::<NodeReport>(&line) {
                    state.add(&node);
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(self.dir.path("best.json")) {
            state.best = Some(serde_json::from_str(&text).map_err(ResumeError::UnreadableBest)?);
        }
        let events = std::fs::read_to_string(self.dir.path("events.jsonl")).unwrap_or_default();
        let last_event_ms = events
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|e| e["elapsed_ms"].as_u64())
            .max()
            .unwrap_or(0);
        // The clock outlives the last event: a process that waited silently for minutes
        // before it was killed spent them too.
        let clock_ms = std::fs::read_to_string(self.dir.path(CLOCK_FILE))
            .ok()
            .and_then(|text| serde_json::from_str::<Clock>(&text).ok())
            .map_or(0, |clock| clock.elapsed_ms);
        self.earlier = Duration::from_millis(last_event_ms.max(clock_ms));
        self.state = Mutex::new(state);
        Ok(self)
    }

    /// Keep `clock.json` (the run's elapsed time) current every [`CLOCK_PERIOD`] until the
    /// returned guard is dropped, so a resumed run counts all but at most one period of the
    /// time a killed process spent. Write failures are ignored (the events still count).
    pub fn keep_clock(self: &Arc<Self>) -> ClockKeeper {
        let live = Arc::downgrade(self);
        ClockKeeper(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CLOCK_PERIOD);
            loop {
                ticks.tick().await;
                let Some(live) = live.upgrade() else { return };
                let clock = Clock {
                    elapsed_ms: live.elapsed_ms(),
                };
                let _ = live.dir.write_json(CLOCK_FILE, &clock);
            }
        }))
    }

    /// Where token and cost usage come from (set once, when the LLM hub exists).
    pub fn set_usage(&self, probe: UsageProbe) {
        let _ = self.usage.set(probe);
    }

    /// Share `flag` as this run's stop request (setting it is [`LiveRun::request_stop`]).
    pub fn with_stop(mut self, flag: Arc<AtomicBool>) -> LiveRun {
        self.stop_requested = flag;
        self
    }

    /// Ask the strategy to finish (it sees `should-stop` turn true).
    pub fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
    }

    /// Nodes recorded so far, and how many of them were buggy.
    pub fn node_counts(&self) -> (u32, u32) {
        let state = self.lock();
        (state.nodes(), state.buggy_nodes)
    }

    pub fn best(&self) -> Option<Best> {
        self.lock().best.clone()
    }

    pub fn elapsed(&self) -> Duration {
        self.earlier + self.started.elapsed()
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.elapsed().as_millis() as u64
    }

    /// Record `event` in `events.jsonl` and tell every observer.
    pub fn emit(&self, event: RunEvent) {
        if let Err(e) = self.dir.append_jsonl("events.jsonl", &event) {
            tracing::warn!("cannot append to events.jsonl: {e}");
        }
        for observer in &self.observers {
            observer.on_event(&event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn usage(&self) -> (u64, f64) {
        self.usage.get().map_or((0, 0.0), |probe| probe())
    }

    fn improves(&self, metric: f64) -> bool {
        self.lock()
            .best
            .as_ref()
            .is_none_or(|best| self.direction.better(metric, best.metric))
    }
}

#[async_trait::async_trait]
impl RunContext for LiveRun {
    fn info(&self) -> RunInfo {
        self.info.clone()
    }

    fn best(&self) -> Option<Best> {
        LiveRun::best(self)
    }

    fn budget(&self) -> RunBudget {
        let elapsed = self.elapsed();
        let steps_used = self.lock().nodes();
        let (tokens_used, cost_used_usd) = self.usage();
        RunBudget {
            elapsed_ms: elapsed.as_millis() as u64,
            wall_ms_left: self
                .limits
                .wall
                .map(|l| l.saturating_sub(elapsed).as_millis() as u64),
            steps_used,
            steps_left: self.limits.steps.map(|l| l.saturating_sub(steps_used)),
            tokens_used,
            tokens_left: self.limits.tokens.map(|l| l.saturating_sub(tokens_used)),
            cost_used_usd,
            cost_left_usd: self.limits.cost_usd.map(|l| (l - cost_used_usd).max(0.0)),
        }
    }

    fn should_stop(&self) -> bool {
        if self.stop_requested.load(Ordering::Acquire)
            || self.limits.wall.is_some_and(|l| self.elapsed() >= l)
        {
            return true;
        }
        if self.limits.steps.is_some_and(|l| self.lock().nodes() >= l) {
            return true;
        }
        if self.limits.tokens.is_none() && self.limits.cost_usd.is_none() {
            return false;
        }
        let (tokens, cost) = self.usage();
        self.limits.tokens.is_some_and(|l| tokens >= l)
            || self.limits.cost_usd.is_some_and(|l| cost >= l)
    }

    async fn report_node(&self, node: NodeReport) -> CapResult<()> {
        node.check()?;
        let nodes_done = {
            // Held across the append, so that concurrent reports cannot pass the step budget
            // together or interleave their lines.
            let mut state = self.lock();
            if state.node_ids.contains(&id_digest(&node.id)) {
                // Recorded before a crash, reported again by the resumed strategy.
                return Ok(());
            }
            if let Some(limit) = self.limits.steps
                && state.nodes() >= limit
            {
                return Err(super::steps_spent(limit));
            }
            self.dir.append_jsonl("nodes.jsonl", &node).map_err(|e| {
                CapabilityError::Internal(format!("recording node {}: {e}", node.id))
            })?;
            state.add(&node);
            state.nodes()
        };
        self.emit(RunEvent::Node {
            elapsed_ms: self.elapsed_ms(),
            nodes_done,
            tokens_used: self.usage().0,
            node,
        });
        Ok(())
    }

    async fn report_best(&self, node: String, submission: String, metric: f64) -> CapResult<bool> {
        if !metric.is_finite() {
            return Err(CapabilityError::InvalidArgument(format!(
                "metric {metric} of node {node} is not a finite number"
            )));
        }
        if !self.lock().node_ids.contains(&id_digest(&node)) {
            return Err(super::unrecorded_best(&node));
        }
        self.artifacts.stat(&submission)?;
        if self
            .lock()
            .best
            .as_ref()
            .is_some_and(|b| b.node == node && b.submission == submission)
        {
            // Adopted before a crash, claimed again by the resumed strategy.
            return Ok(true);
        }
        if !self.improves(metric) {
            return Ok(false);
        }
        let validation = self.task.validate(&submission).await?;
        if !validation.valid {
            self.emit(RunEvent::BestRefused {
                elapsed_ms: self.elapsed_ms(),
                node,
                reason: validation.message,
            });
            return Ok(false);
        }
        let best = Best {
            node,
            submission,
            metric,
        };
        {
            // Held across the copy so that two claims cannot interleave their files.
            let mut state = self.lock();
            if state
                .best
                .as_ref()
                .is_some_and(|b| !self.direction.better(metric, b.metric))
            {
                return Ok(false);
            }
            let mut source = self.artifacts.open_file(&best.submission)?.into_std();
            copy_atomically(&mut source, &self.dir.submission()).map_err(|e| {
                CapabilityError::Internal(format!("copying the best submission: {e}"))
            })?;
            self.dir
                .write_json("best.json", &best)
                .map_err(|e| CapabilityError::Internal(format!("writing best.json: {e}")))?;
            state.best = Some(best.clone());
        }
        self.emit(RunEvent::Best {
            elapsed_ms: self.elapsed_ms(),
            best,
        });
        Ok(true)
    }

    fn time_left(&self) -> Option<Duration> {
        self.limits.wall.map(|l| l.saturating_sub(self.elapsed()))
    }

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        level.trace(plugin, message);
        self.emit(RunEvent::Log {
            elapsed_ms: self.elapsed_ms(),
            plugin: plugin.to_string(),
            level,
            message: message.to_string(),
        });
    }
}
