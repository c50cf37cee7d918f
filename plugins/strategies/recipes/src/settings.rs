//! The strategy's config (JSON from `[run.strategies.recipes]` or `--strategy-config`).

use sophon_sdk::jobs;
use sophon_sdk::json::{self, Value};

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
        let value: Value = match config.trim() {
            "" => Value::Object(Default::default()),
            text => json::from_str(text).map_err(|e| format!("config is not JSON: {e}"))?,
        };
        let object = value.as_object().ok_or("config must be a JSON object")?;
        if let Some(unknown) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unknown config key `{unknown}`; known: {}",
                KEYS.join(", ")
            ));
        }
        let int =
            |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| match object.get(key) {
                None => Ok(default),
                Some(v) => v.as_u64().filter(|n| range.contains(n)).ok_or_else(|| {
                    format!("config `{key}` must be an integer in {range:?}, got {v}")
                }),
            };
        let machine_cpus = jobs::inventory().cpus.max(1);
        Ok(Settings {
            max_nodes: int("max-nodes", 20, 1..=1000)? as u32,
            job_timeout_secs: int("job-timeout-secs", 300, 5..=86_400)?,
            job_memory_mb: int("job-memory-mb", 4096, 256..=1_048_576)?,
            cpus: int("cpus", u64::from(machine_cpus.min(8)), 1..=1024)? as u32,
            folds: int("folds", 5, 2..=20)? as u32,
            use_llm: match object.get("use-llm") {
                None => true,
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("config `use-llm` must be true or false, got {v}"))?,
            },
            temperature: match object.get("temperature") {
                None => 0.2,
                Some(v) => v
                    .as_f64()
                    .filter(|t| (0.0..=2.0).contains(t))
                    .ok_or_else(|| format!("config `temperature` must be in 0..=2, got {v}"))?
                    as f32,
            },
            model: match object.get("model") {
                None => None,
                Some(v) => Some(
                    v.as_str()
                        .ok_or_else(|| format!("config `model` must be a string, got {v}"))?
                        .to_string(),
                ),
            },
        })
    }
}
