//! `[run]` in `sophon.toml`: which strategy runs a competition, and with what settings.
//!
//! ```toml
//! [run]
//! strategy = "recipes"             # the default strategy (a [plugins] name)
//! policy = "hcc"                   # the promotion policy (a [plugins] name, or "none")
//! runs-dir = "sophon-runs"         # where run directories are created
//! time-limit-secs = 480            # default wall-clock budget of a run
//! max-steps = 50                   # default node budget (none = unlimited)
//! max-tokens = 2000000             # LLM tokens per run (none = unlimited)
//! max-cost-usd = 5.0               # LLM dollars per run (none = unlimited)
//! managed-python = true            # jobs use Sophon's own Python environment
//! jobs-backend = "local"           # where the strategy's jobs go: local, slurm or ray
//!
//! [run.strategies.recipes]         # settings passed to a strategy as its JSON config
//! job-timeout-secs = 300
//!
//! [run.competitions.spaceship-titanic]   # per-competition routing
//! strategy = "aide"
//! policy = "top-k"
//! config = { max-drafts = 3 }      # replaces [run.strategies.aide] for this competition
//! jobs-backend = "slurm"           # this competition's jobs go to the cluster
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The strategy a run uses when neither flags nor config name one.
pub const DEFAULT_STRATEGY: &str = "recipes";
/// The promotion policy a run uses when neither flags nor config name one.
pub const DEFAULT_POLICY: &str = "hcc";
/// The policy name that turns promotion off.
pub const NO_POLICY: &str = "none";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunConfig {
    pub strategy: Option<String>,
    pub policy: Option<String>,
    pub runs_dir: Option<PathBuf>,
    pub time_limit_secs: Option<u64>,
    pub max_steps: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub managed_python: Option<bool>,
    /// Where a run's jobs go unless a job names another backend (default `local`).
    pub jobs_backend: Option<String>,
    #[serde(default)]
    pub strategies: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub competitions: BTreeMap<String, Route>,
}

/// `[run.competitions.<id>]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Route {
    pub strategy: Option<String>,
    pub policy: Option<String>,
    pub config: Option<toml::Table>,
    pub jobs_backend: Option<String>,
}

impl RunConfig {
    pub fn merged(self, other: RunConfig) -> RunConfig {
        let mut strategies = self.strategies;
        strategies.extend(other.strategies);
        let mut competitions = self.competitions;
        competitions.extend(other.competitions);
        RunConfig {
            strategy: other.strategy.or(self.strategy),
            policy: other.policy.or(self.policy),
            runs_dir: other.runs_dir.or(self.runs_dir),
            time_limit_secs: other.time_limit_secs.or(self.time_limit_secs),
            max_steps: other.max_steps.or(self.max_steps),
            max_tokens: other.max_tokens.or(self.max_tokens),
            max_cost_usd: other.max_cost_usd.or(self.max_cost_usd),
            managed_python: other.managed_python.or(self.managed_python),
            jobs_backend: other.jobs_backend.or(self.jobs_backend),
            strategies,
            competitions,
        }
    }

    /// The strategy for `competition`: `[run.competitions.<id>]`, else `[run] strategy`, else
    /// [`DEFAULT_STRATEGY`].
    pub fn strategy_for(&self, competition: &str) -> String {
        self.competitions
            .get(competition)
            .and_then(|r| r.strategy.clone())
            .or_else(|| self.strategy.clone())
            .unwrap_or_else(|| DEFAULT_STRATEGY.to_string())
    }

    /// The promotion policy for `competition`: `[run.competitions.<id>]`, else `[run] policy`,
    /// else [`DEFAULT_POLICY`]; `None` when it is [`NO_POLICY`].
    pub fn policy_for(&self, competition: &str) -> Option<String> {
        let name = self
            .competitions
            .get(competition)
            .and_then(|r| r.policy.clone())
            .or_else(|| self.policy.clone())
            .unwrap_or_else(|| DEFAULT_POLICY.to_string());
        (name != NO_POLICY).then_some(name)
    }

    /// The job backend of `competition`'s runs: `[run.competitions.<id>]`, else `[run]
    /// jobs-backend`, else `local`.
    pub fn jobs_backend_for(&self, competition: &str) -> String {
        self.competitions
            .get(competition)
            .and_then(|r| r.jobs_backend.clone())
            .or_else(|| self.jobs_backend.clone())
            .unwrap_or_else(|| crate::jobs::service::LOCAL.to_string())
    }

    /// The JSON config of `strategy` on `competition` (`{}` if none).
    pub fn strategy_config(&self, strategy: &str, competition: &str) -> serde_json::Value {
        let table = self
            .competitions
            .get(competition)
            .and_then(|r| r.config.clone())
            .or_else(|| self.strategies.get(strategy).cloned())
            .unwrap_or_default();
        serde_json::to_value(table).unwrap_or_else(|_| serde_json::json!({}))
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.runs_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("sophon-runs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn competitions_route_to_their_own_strategy_and_config() {
        let config: RunConfig = toml::from_str(
            "strategy = 'aide'\n[strategies.aide]\nx = 1\n[competitions.c1]\nstrategy = 'recipes'\nconfig = { y = 2 }\n",
        )
        .unwrap();
        assert_eq!(config.strategy_for("c1"), "recipes");
        assert_eq!(config.strategy_for("c2"), "aide");
        assert_eq!(
            config.strategy_config("recipes", "c1"),
            serde_json::json!({"y": 2})
        );
        assert_eq!(
            config.strategy_config("aide", "c2"),
            serde_json::json!({"x": 1})
        );
        assert_eq!(RunConfig::default().strategy_for("c"), DEFAULT_STRATEGY);
        assert_eq!(
            RunConfig::default().policy_for("c").as_deref(),
            Some(DEFAULT_POLICY)
        );
        let config: RunConfig =
            toml::from_str("policy = 'none'\n[competitions.c1]\npolicy = 'top-k'\n").unwrap();
        assert_eq!(config.policy_for("c1").as_deref(), Some("top-k"));
        assert_eq!(config.policy_for("c2"), None);
        let config: RunConfig =
            toml::from_str("jobs-backend = 'ray'\n[competitions.c1]\njobs-backend = 'slurm'\n")
                .unwrap();
        assert_eq!(config.jobs_backend_for("c1"), "slurm");
        assert_eq!(config.jobs_backend_for("c2"), "ray");
        assert_eq!(RunConfig::default().jobs_backend_for("c"), "local");
    }
}
