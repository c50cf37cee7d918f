//! `[hcc]` in `sophon.toml`.
//!
//! ```toml
//! [hcc]
//! store = "/var/lib/sophon/hcc.sqlite"  # default: ~/.local/share/sophon/hcc.sqlite
//! embedder = "hashed"                   # offline default; or "llm" / "llm:<provider alias>"
//! prefetch-k = 5                        # at most this many wisdom entries per run
//! min-similarity = 0.2                  # cosine δ: weaker matches are not prefetched
//! allow-same-competition = false        # the leakage guard (see below)
//! max-run-mb = 256                      # what one run may write to the store (events, plans)
//! promotion-timeout-secs = 120          # the most a phase's promotion may keep the strategy
//! ```
//!
//! The leakage guard: wisdom produced on competition X is never prefetched into (or found by
//! a search from) a run on X unless `allow-same-competition = true`. Evaluate on tasks whose
//! wisdom came from *other* tasks.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HccConfig {
    pub store: Option<PathBuf>,
    pub embedder: Option<String>,
    pub prefetch_k: Option<u32>,
    pub min_similarity: Option<f32>,
    pub allow_same_competition: Option<bool>,
    pub max_run_mb: Option<u64>,
    pub promotion_timeout_secs: Option<u64>,
}

/// A `[hcc]` setting out of its range; the message names the setting and the accepted values.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HccConfigError {
    #[error(
        "[hcc] embedder = \"{0}\" is not known: use \"hashed\", \"llm\" or \"llm:<provider alias>\""
    )]
    UnknownEmbedder(String),
    #[error("[hcc] max-run-mb = {0} is out of range: use 1 to 1048576 (MiB one run may write)")]
    MaxRunMb(u64),
    #[error("[hcc] promotion-timeout-secs = {0} is out of range: use 1 to 86400")]
    PromotionTimeout(u64),
    #[error("[hcc] prefetch-k = {0} is too many: at most 100")]
    PrefetchK(u32),
    #[error("[hcc] min-similarity = {0} is not a cosine similarity: use a value in [-1, 1]")]
    MinSimilarity(f32),
}

/// Which embedder retrieval uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmbedderChoice {
    /// [`super::HashedEmbedder`]: no model, no network.
    Hashed,
    /// The `llm` capability's embeddings, through this provider alias (the default when `None`).
    Llm(Option<String>),
}

/// The settings a run's HCC works with, defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct HccSettings {
    pub prefetch_k: u32,
    pub min_similarity: f32,
    pub allow_same_competition: bool,
    /// Bytes of event contents and plans one run may write to the store; past it, writes are
    /// refused with `budget-exhausted` (a plugin cannot fill the disk through its memory).
    pub max_run_bytes: u64,
    /// How long the strategy's `end-phase` (or `begin-phase`, which ends the open phase) waits
    /// for the promotion policy; past it the phase ends without knowledge, the strategy goes on.
    pub promotion_timeout: std::time::Duration,
}

/// `promotion-timeout-secs` when the config does not say.
pub const DEFAULT_PROMOTION_TIMEOUT_SECS: u64 = 120;

/// `max-run-mb` when the config does not say.
pub const DEFAULT_MAX_RUN_MB: u64 = 256;

impl Default for HccSettings {
    fn default() -> Self {
        HccSettings {
            prefetch_k: 5,
            min_similarity: 0.2,
            allow_same_competition: false,
            max_run_bytes: DEFAULT_MAX_RUN_MB << 20,
            promotion_timeout: std::time::Duration::from_secs(DEFAULT_PROMOTION_TIMEOUT_SECS),
        }
    }
}

impl HccConfig {
    /// `self` with every setting `other` gives replacing its own.
    pub fn merged(self, other: HccConfig) -> HccConfig {
        HccConfig {
            store: other.store.or(self.store),
            embedder: other.embedder.or(self.embedder),
            prefetch_k: other.prefetch_k.or(self.prefetch_k),
            min_similarity: other.min_similarity.or(self.min_similarity),
            allow_same_competition: other.allow_same_competition.or(self.allow_same_competition),
            max_run_mb: other.max_run_mb.or(self.max_run_mb),
            promotion_timeout_secs: other.promotion_timeout_secs.or(self.promotion_timeout_secs),
        }
    }

    /// The store file: the configured one, else `~/.local/share/sophon/hcc.sqlite`.
    pub fn store_path(&self) -> PathBuf {
        self.store.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("sophon")
                .join("hcc.sqlite")
        })
    }

    /// The embedder setting, or an error naming the accepted values.
    pub fn embedder(&self) -> Result<EmbedderChoice, HccConfigError> {
        match self.embedder.as_deref() {
            None | Some("hashed") => Ok(EmbedderChoice::Hashed),
            Some("llm") => Ok(EmbedderChoice::Llm(None)),
            Some(other) => match other.strip_prefix("llm:") {
                Some(alias) if !alias.is_empty() => Ok(EmbedderChoice::Llm(Some(alias.into()))),
                _ => Err(HccConfigError::UnknownEmbedder(other.to_string())),
            },
        }
    }

    /// The retrieval settings, checked.
    pub fn settings(&self) -> Result<HccSettings, HccConfigError> {
        let defaults = HccSettings::default();
        let settings = HccSettings {
            prefetch_k: self.prefetch_k.unwrap_or(defaults.prefetch_k),
            min_similarity: self.min_similarity.unwrap_or(defaults.min_similarity),
            allow_same_competition: self
                .allow_same_competition
                .unwrap_or(defaults.allow_same_competition),
            max_run_bytes: match self.max_run_mb {
                None => defaults.max_run_bytes,
                Some(mb) if (1..=1 << 20).contains(&mb) => mb << 20,
                Some(mb) => return Err(HccConfigError::MaxRunMb(mb)),
            },
            promotion_timeout: match self.promotion_timeout_secs {
                None => defaults.promotion_timeout,
                Some(secs) if (1..=86_400).contains(&secs) => std::time::Duration::from_secs(secs),
                Some(secs) => return Err(HccConfigError::PromotionTimeout(secs)),
            },
        };
        if settings.prefetch_k > 100 {
            return Err(HccConfigError::PrefetchK(settings.prefetch_k));
        }
        if !(-1.0..=1.0).contains(&settings.min_similarity) {
            return Err(HccConfigError::MinSimilarity(settings.min_similarity));
        }
        self.embedder()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_bad_values_name_the_fix() {
        let config = HccConfig::default();
        assert_eq!(config.settings().unwrap(), HccSettings::default());
        assert_eq!(config.embedder().unwrap(), EmbedderChoice::Hashed);
        let llm = HccConfig {
            embedder: Some("llm:openai".into()),
            ..HccConfig::default()
        };
        assert_eq!(
            llm.embedder().unwrap(),
            EmbedderChoice::Llm(Some("openai".into()))
        );
        let bad = HccConfig {
            embedder: Some("bert".into()),
            ..HccConfig::default()
        };
        let error = bad.settings().unwrap_err().to_string();
        assert!(error.contains("\"hashed\""), "{error}");
        let bad = HccConfig {
            min_similarity: Some(2.0),
            ..HccConfig::default()
        };
        let error = bad.settings().unwrap_err().to_string();
        assert!(error.contains("[-1, 1]"), "{error}");
    }
}
