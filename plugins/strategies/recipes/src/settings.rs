//! The strategy's config (JSON from `[run.strategies.recipes]` or `--strategy-config`).

use sophon_sdk::config::Config;
use sophon_sdk::jobs;

pub struct Settings {
    pub max_nodes: u32,
    pub job_timeout_secs: u64,
    pub job_memory_mb: u64,
    pub cpus: u32,
    pub folds: u32,
    pub use_llm: bool,
    pub temperature: f32,
    pub model: Option<String>,
}

const KEYS: &[&str] = &[
    "max-nodes",
    "job-timeout-secs",
    "job-memory-mb",
    "cpus",
    "folds",
    "use-llm",
    "temperature",
    "model",
];

impl Settings {
    /// Parse `config`; unknown keys and out-of-range values are errors naming the key.
    pub fn parse(config: &str) -> Result<Settings, String> {
        let c = Config::parse(config, KEYS)?;
        let machine_cpus = jobs::inventory().cpus.max(1);
        Ok(Settings {
            max_nodes: c.int("max-nodes", 20, 1..=1000)? as u32,
            job_timeout_secs: c.int("job-timeout-secs", 300, 5..=86_400)?,
            job_memory_mb: c.int("job-memory-mb", 4096, 256..=1_048_576)?,
            cpus: c.int("cpus", u64::from(machine_cpus.min(8)), 1..=1024)? as u32,
            folds: c.int("folds", 5, 2..=20)? as u32,
            use_llm: c.bool("use-llm", true)?,
            temperature: c.float("temperature", 0.2, 0.0..=2.0)? as f32,
            model: c.string("model")?,
        })
    }
}
