//! Reading a plugin's JSON config (`[run.strategies.<name>]`, `--strategy-config`): unknown
//! keys and out-of-range values are errors that name the key, so a typo never silently falls
//! back to a default.
//!
//! Typed, with serde ([`parse`]):
//!
//! ```
//! use sophon_sdk::serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(crate = "sophon_sdk::serde", deny_unknown_fields, rename_all = "kebab-case", default)]
//! struct Settings {
//!     max_nodes: u32,
//!     model: Option<String>,
//! }
//!
//! impl Default for Settings {
//!     fn default() -> Self {
//!         Settings { max_nodes: 20, model: None }
//!     }
//! }
//!
//! let settings: Settings = sophon_sdk::config::parse(r#"{"max-nodes": 5}"#).unwrap();
//! assert_eq!(settings.max_nodes, 5);
//! let typo = sophon_sdk::config::parse::<Settings>(r#"{"max-nodez": 5}"#).err().unwrap();
//! assert!(typo.contains("unknown field `max-nodez`"), "{typo}");
//! ```
//!
//! Or key by key, with ranges ([`Config`]):
//!
//! ```ignore
//! let config = Config::parse(&text, &["max-nodes", "model"])?;
//! let nodes = config.int("max-nodes", 20, 1..=1000)?;
//! let model = config.string("model")?;
//! ```

use serde_json::{Map, Value};
use std::ops::RangeInclusive;

/// The config as a `T` (empty text is `{}`); the error names the key and what was expected.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let text = match text.trim() {
        "" => "{}",
        text => text,
    };
    serde_json::from_str(text).map_err(|e| format!("config: {e}"))
}

pub struct Config {
    object: Map<String, Value>,
}

impl Config {
    /// Parse `text` (empty means `{}`); keys outside `known` are refused.
    pub fn parse(text: &str, known: &[&str]) -> Result<Config, String> {
        let value: Value = match text.trim() {
            "" => Value::Object(Map::new()),
            text => serde_json::from_str(text).map_err(|e| format!("config is not JSON: {e}"))?,
        };
        let Value::Object(object) = value else {
            return Err("config must be a JSON object".into());
        };
        if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown config key `{unknown}`; known: {}",
                known.join(", ")
            ));
        }
        Ok(Config { object })
    }

    /// An integer in `range`, `default` when absent.
    pub fn int(&self, key: &str, default: u64, range: RangeInclusive<u64>) -> Result<u64, String> {
        match self.object.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|n| range.contains(n))
                .ok_or_else(|| format!("config `{key}` must be an integer in {range:?}, got {v}")),
        }
    }

    /// A number in `range`, `default` when absent.
    pub fn float(
        &self,
        key: &str,
        default: f64,
        range: RangeInclusive<f64>,
    ) -> Result<f64, String> {
        match self.object.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| range.contains(x))
                .ok_or_else(|| format!("config `{key}` must be a number in {range:?}, got {v}")),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.object.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("config `{key}` must be true or false, got {v}")),
        }
    }

    /// A string, `None` when absent.
    pub fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.object.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| format!("config `{key}` must be a string, got {v}")),
        }
    }
}
