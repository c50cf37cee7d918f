//! `sophon:host/run`: every plugin may read the run's facts and budget and log; only a
//! strategy may report nodes and the best submission.

use super::answer;
use super::convert::{Conv, record};
use crate::capability::{CapResult, CapabilityError};
use crate::run_context as cap;
use crate::runtime::bindings::host::sophon::host::{run, types};
use crate::runtime::manifest::World;
use crate::runtime::state::{PluginState, call, truncate_marked};
use std::sync::Arc;

type WitResult<T> = wasmtime::Result<Result<T, types::Error>>;

impl PluginState {
    /// The run, for the calls only a strategy may make.
    fn strategy_run_context(&self) -> CapResult<Arc<dyn cap::RunContext>> {
        if self.identity.world != World::Strategy {
            return Err(CapabilityError::NotGranted(format!(
                "only strategies report nodes and submissions; plugin `{}` is a {} plugin",
                self.identity.name, self.identity.world
            )));
        }
        self.services.run.clone().ok_or_else(|| {
            CapabilityError::Unavailable(format!(
                "plugin `{}` is not running inside a run",
                self.identity.name
            ))
        })
    }
}

impl run::Host for PluginState {
    fn info(&mut self) -> wasmtime::Result<run::RunInfo> {
        Ok(match &self.services.run {
            Some(run) => run.info().conv(),
            None => run::RunInfo {
                run_id: String::new(),
                competition_id: String::new(),
                seed: 0,
                arm: None,
            },
        })
    }

    fn budget(&mut self) -> wasmtime::Result<run::RunBudget> {
        Ok(self
            .services
            .run
            .as_ref()
            .map(|r| r.budget())
            .unwrap_or_default()
            .conv())
    }

    /// Hot: strategies poll it in their loops, so no allocation on any path.
    fn should_stop(&mut self) -> wasmtime::Result<bool> {
        Ok(self.services.run.as_ref().is_some_and(|r| r.should_stop()))
    }

    /// Checked for size before anything else (journaling included) looks at it.
    async fn report_node(&mut self, node: run::NodeReport) -> WitResult<()> {
        let run = self.strategy_run_context();
        let limit = self.deadline();
        answer(
            call(run, limit, "reporting a node", |r| async move {
                let node: cap::NodeReport = node.conv();
                node.check()?;
                r.report_node(node).await
            })
            .await,
        )
    }

    async fn report_best(
        &mut self,
        node: String,
        submission: String,
        metric: f64,
    ) -> WitResult<bool> {
        let run = self.strategy_run_context();
        let limit = self.deadline();
        answer(
            call(
                run,
                limit,
                "reporting the best submission",
                |r| async move { r.report_best(node, submission, metric).await },
            )
            .await,
        )
    }

    /// Cheap: the run holds its best in memory (journaled like `budget`).
    fn best(&mut self) -> wasmtime::Result<Option<run::BestSubmission>> {
        Ok(self
            .services
            .run
            .as_ref()
            .and_then(|r| r.best())
            .map(|best| best.conv()))
    }

    fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        let message = truncate_marked(message, self.limits.max_log_line_bytes);
        match &self.services.run {
            Some(run) => run.log(&self.identity.name, level.conv(), &message),
            None => tracing::info!(plugin = %self.identity.name, "{message}"),
        }
        Ok(())
    }
}

record!(cap::RunInfo => run::RunInfo { run_id, competition_id, seed, arm });
record!(cap::Best => run::BestSubmission { node, submission, metric });
record!(cap::RunBudget => run::RunBudget {
    elapsed_ms, wall_ms_left, steps_used, steps_left, tokens_used, tokens_left, cost_used_usd,
    cost_left_usd
});
record!(run::NodeReport => cap::NodeReport {
    id, parent, operator, worker, plan, code, metric, buggy, valid_submission, summary
});
