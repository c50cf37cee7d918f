//! The strategy's config: every ML-Master constant, all optional.

use solution_kit::search;
use sophon_sdk::config::Config;
use sophon_sdk::jobs;

pub struct Settings {
    pub search: search::Settings,
    pub workers: u32,
    /// Consecutive debug steps after which a trajectory backpropagates.
    pub debug_backprop: u32,
    /// Debug chain length at which a node is terminal.
    pub debug_terminal: u32,
    /// Children that fail to beat a trajectory's local best before the trajectory ends.
    pub improve_patience: u32,
    /// Least improvement over the local best that counts (in the metric's direction).
    pub min_improvement: f64,
    /// +1 reward for beating the global best (the paper's intent; dead code in the release).
    pub global_best_bonus: bool,
    /// Put the memory inside an opened `<think>` block as an assistant prefill, where the
    /// model reasons and the provider supports prefill.
    pub steer: bool,
    pub job_timeout_secs: u64,
    pub job_memory_mb: u64,
    /// Cores per job (default: the machine's cores split between the workers).
    pub cpus: u32,
    pub temperature: f32,
    pub max_tokens: u32,
    pub model: Option<String>,
    /// The reviewer's model (default: `model`).
    pub review_model: Option<String>,
}

const KEYS: &[&str] = &[
    "max-nodes",
    "workers",
    "num-drafts",
    "improve-capacity",
    "debug-capacity",
    "uct-c",
    "uct-decay",
    "uct-floor",
    "decay-start",
    "decay-start-fraction",
    "debug-backprop",
    "debug-terminal",
    "improve-patience",
    "min-improvement",
    "global-best-bonus",
    "steer",
    "job-timeout-secs",
    "job-memory-mb",
    "cpus",
    "temperature",
    "max-tokens",
    "model",
    "review-model",
];

impl Settings {
    pub fn parse(text: &str) -> Result<Settings, String> {
        let c = Config::parse(text, KEYS)?;
        let d = search::Settings::default();
        let workers = c.int("workers", 3, 1..=64)? as u32;
        let cores = jobs::inventory().cpus.max(1);
        Ok(Settings {
            search: search::Settings {
                max_nodes: c.int("max-nodes", u64::from(d.max_nodes), 1..=100_000)? as u32,
                num_drafts: c.int("num-drafts", u64::from(d.num_drafts), 1..=1000)? as u32,
                improve_capacity: c.int(
                    "improve-capacity",
                    u64::from(d.improve_capacity),
                    1..=1000,
                )? as u32,
                debug_capacity: c.int("debug-capacity", u64::from(d.debug_capacity), 1..=1000)?
                    as u32,
                uct_c: c.float("uct-c", d.uct_c, 0.0..=100.0)?,
                uct_decay: c.float("uct-decay", d.uct_decay, 0.0..=100.0)?,
                uct_floor: c.float("uct-floor", d.uct_floor, 0.0..=100.0)?,
                decay_start: c.int("decay-start", u64::from(d.decay_start), 0..=1_000_000)? as u32,
                decay_start_fraction: c.float(
                    "decay-start-fraction",
                    d.decay_start_fraction,
                    0.0..=1.0,
                )?,
            },
            workers,
            debug_backprop: c.int("debug-backprop", 3, 1..=1000)? as u32,
            debug_terminal: c.int("debug-terminal", 20, 1..=1000)? as u32,
            improve_patience: c.int("improve-patience", 3, 1..=1000)? as u32,
            min_improvement: c.float("min-improvement", 1e-4, 0.0..=f64::MAX)?,
            global_best_bonus: c.bool("global-best-bonus", true)?,
            steer: c.bool("steer", true)?,
            job_timeout_secs: c.int("job-timeout-secs", 600, 5..=86_400)?,
            job_memory_mb: c.int("job-memory-mb", 8192, 256..=1_048_576)?,
            cpus: c.int("cpus", u64::from((cores / workers).max(1)), 1..=1024)? as u32,
            temperature: c.float("temperature", 0.5, 0.0..=2.0)? as f32,
            max_tokens: c.int("max-tokens", 4096, 64..=200_000)? as u32,
            model: c.string("model")?,
            review_model: c.string("review-model")?,
        })
    }
}
