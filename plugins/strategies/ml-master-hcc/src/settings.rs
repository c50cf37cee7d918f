//! The strategy's config, all optional.

use sophon_sdk::config::Config;
use sophon_sdk::jobs;

pub struct Settings {
    /// Nodes over the whole run.
    pub max_nodes: u32,
    /// Most phases: an upper bound; the run goes on phase after phase while its nodes, time,
    /// steps and tokens last.
    pub phases: u32,
    /// Directions per research plan.
    pub directions: u32,
    pub workers: u32,
    /// Debug attempts for a direction whose solution failed.
    pub debug_retries: u32,
    /// Token budget of every HCC context the prompts are built from.
    pub context_tokens: u32,
    pub job_timeout_secs: u64,
    pub job_memory_mb: u64,
    pub cpus: u32,
    pub temperature: f32,
    pub max_tokens: u32,
    pub model: Option<String>,
}

const KEYS: &[&str] = &[
    "max-nodes",
    "phases",
    "directions",
    "workers",
    "debug-retries",
    "context-tokens",
    "job-timeout-secs",
    "job-memory-mb",
    "cpus",
    "temperature",
    "max-tokens",
    "model",
];

impl Settings {
    pub fn parse(text: &str) -> Result<Settings, String> {
        let c = Config::parse(text, KEYS)?;
        let workers = c.int("workers", 2, 1..=64)? as u32;
        let cores = jobs::inventory().cpus.max(1);
        Ok(Settings {
            max_nodes: c.int("max-nodes", 24, 1..=100_000)? as u32,
            phases: c.int("phases", 1000, 1..=1000)? as u32,
            directions: c.int("directions", 3, 1..=16)? as u32,
            workers,
            debug_retries: c.int("debug-retries", 1, 0..=10)? as u32,
            context_tokens: c.int("context-tokens", 8000, 500..=1_000_000)? as u32,
            job_timeout_secs: c.int("job-timeout-secs", 600, 5..=86_400)?,
            job_memory_mb: c.int("job-memory-mb", 8192, 256..=1_048_576)?,
            cpus: c.int("cpus", u64::from((cores / workers).max(1)), 1..=1024)? as u32,
            temperature: c.float("temperature", 0.5, 0.0..=2.0)? as f32,
            max_tokens: c.int("max-tokens", 4096, 64..=200_000)? as u32,
            model: c.string("model")?,
        })
    }
}
