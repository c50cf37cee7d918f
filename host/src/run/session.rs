//! [`SessionRun`]: a run context kept in memory, with a wall-clock and step budget.
//!
//! It backs `sophon plugin run` and the runtime tests. It has no task adapter, so it adopts a
//! reported best submission only if the artifact exists, and keeps the better metric by the
//! configured direction. It keeps the nodes it was told about, which the step budget and
//! [`NodeReport::check`]'s size limits bound.

use super::{Best, LogLevel, NodeReport, RunBudget, RunContext, RunInfo};
use crate::artifacts::ArtifactStore;
use crate::capability::{CapResult, CapabilityError};
use crate::task::Direction;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A run context held in memory.
pub struct SessionRun {
    info: RunInfo,
    started: Instant,
    wall_limit: Option<Duration>,
    step_limit: Option<u32>,
    direction: Direction,
    artifacts: Option<Arc<ArtifactStore>>,
    stop_requested: AtomicBool,
    state: Mutex<SessionState>,
}

#[derive(Default)]
struct SessionState {
    nodes: Vec<NodeReport>,
    best: Option<Best>,
    log: Vec<(String, LogLevel, String)>,
}

impl SessionRun {
    pub fn new(info: RunInfo) -> Self {
        SessionRun {
            info,
            started: Instant::now(),
            wall_limit: None,
            step_limit: None,
            direction: Direction::Maximize,
            artifacts: None,
            stop_requested: AtomicBool::new(false),
            state: Mutex::default(),
        }
    }

    pub fn with_wall_limit(mut self, limit: Duration) -> Self {
        self.wall_limit = Some(limit);
        self
    }

    pub fn with_step_limit(mut self, steps: u32) -> Self {
        self.step_limit = Some(steps);
        self
    }

    pub fn with_direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    pub fn with_artifacts(mut self, store: Arc<ArtifactStore>) -> Self {
        self.artifacts = Some(store);
        self
    }

    /// Ask the strategy to finish (it sees `should-stop` turn true).
    pub fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
    }

    pub fn nodes(&self) -> Vec<NodeReport> {
        self.state.lock().unwrap().nodes.clone()
    }

    pub fn best(&self) -> Option<Best> {
        self.state.lock().unwrap().best.clone()
    }

    /// Log lines received, as (plugin, level, message).
    pub fn log_lines(&self) -> Vec<(String, LogLevel, String)> {
        self.state.lock().unwrap().log.clone()
    }

    fn steps_used(&self) -> u32 {
        self.state.lock().unwrap().nodes.len() as u32
    }
}

#[async_trait::async_trait]
impl RunContext for SessionRun {
    fn info(&self) -> RunInfo {
        self.info.clone()
    }

    fn best(&self) -> Option<Best> {
        SessionRun::best(self)
    }

    fn budget(&self) -> RunBudget {
        let elapsed = self.started.elapsed();
        let steps_used = self.steps_used();
        RunBudget {
            elapsed_ms: elapsed.as_millis() as u64,
            wall_ms_left: self
                .wall_limit
                .map(|l| l.saturating_sub(elapsed).as_millis() as u64),
            steps_used,
            steps_left: self.step_limit.map(|l| l.saturating_sub(steps_used)),
            ..RunBudget::default()
        }
    }

    fn should_stop(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
            || self.wall_limit.is_some_and(|l| self.started.elapsed() >= l)
            || self.step_limit.is_some_and(|l| self.steps_used() >= l)
    }

    async fn report_node(&self, node: NodeReport) -> CapResult<()> {
        node.check()?;
        let mut state = self.state.lock().unwrap();
        if let Some(limit) = self.step_limit
            && state.nodes.len() as u32 >= limit
        {
            return Err(super::steps_spent(limit));
        }
        state.nodes.push(node);
        Ok(())
    }

    async fn report_best(&self, node: String, submission: String, metric: f64) -> CapResult<bool> {
        if !metric.is_finite() {
            return Err(CapabilityError::InvalidArgument(format!(
                "metric {metric} of node {node} is not a finite number"
            )));
        }
        if let Some(store) = &self.artifacts {
            store.stat(&submission)?;
        }
        let mut state = self.state.lock().unwrap();
        if !state.nodes.iter().any(|n| n.id == node) {
            return Err(super::unrecorded_best(&node));
        }
        let better = match &state.best {
            None => true,
            Some(best) => self.direction.better(metric, best.metric),
        };
        if better {
            state.best = Some(Best {
                node,
                submission,
                metric,
            });
        }
        Ok(better)
    }

    fn time_left(&self) -> Option<Duration> {
        self.wall_limit
            .map(|l| l.saturating_sub(self.started.elapsed()))
    }

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        level.trace(plugin, message);
        self.state
            .lock()
            .unwrap()
            .log
            .push((plugin.to_string(), level, message.to_string()));
    }
}
