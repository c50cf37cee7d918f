//! Plugin manifests: what a plugin is and which capabilities it needs.
//!
//! A Rust plugin writes `plugin.toml` beside its `Cargo.toml`; the SDK's export macro embeds it
//! in the component's `sophon-manifest` custom section. A component built another way (Python,
//! JavaScript) can instead ship `<file>.plugin.toml` beside `<file>.wasm`. The embedded
//! manifest wins when both exist.
//!
//! ```toml
//! [plugin]
//! name = "ml-master"          # lower-case letters, digits and `-`
//! version = "0.1.0"
//! world = "strategy"          # strategy | task-adapter | promotion-policy
//! description = "..."
//!
//! [limits]
//! memory-mb = 256             # linear memory the plugin needs
//!
//! [capabilities.llm]          # each table asks for one capability, with optional limits
//! max-tokens = 2_000_000
//! [capabilities.jobs]
//! max-concurrent = 3
//! [capabilities.hcc]
//! scopes = ["experience:write", "knowledge:read", "wisdom:read"]
//! [capabilities.task]
//! [capabilities.artifacts]
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Name of the custom section holding an embedded manifest.
pub const MANIFEST_SECTION: &str = "sophon-manifest";

/// Largest manifest accepted, embedded or beside the file.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    pub plugin: PluginMeta,
    #[serde(default)]
    pub limits: RequestedLimits,
    #[serde(default)]
    pub capabilities: Capabilities,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginMeta {
    pub name: String,
    pub version: String,
    pub world: World,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RequestedLimits {
    /// Linear memory the plugin needs, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// The plugin worlds of `sophon:plugin@0.1.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    Strategy,
    TaskAdapter,
    PromotionPolicy,
}

impl World {
    pub const ALL: [World; 3] = [World::Strategy, World::TaskAdapter, World::PromotionPolicy];

    pub fn as_str(self) -> &'static str {
        match self {
            World::Strategy => "strategy",
            World::TaskAdapter => "task-adapter",
            World::PromotionPolicy => "promotion-policy",
        }
    }

    /// The interface this world exports, without version (e.g. `sophon:plugin/strategy-api`).
    pub fn export_interface(self) -> &'static str {
        match self {
            World::Strategy => "sophon:plugin/strategy-api",
            World::TaskAdapter => "sophon:plugin/task-adapter-api",
            World::PromotionPolicy => "sophon:plugin/promotion-policy-api",
        }
    }

    /// Capabilities a plugin of this world may ask for at all.
    pub fn allowed_capabilities(self) -> &'static [Capability] {
        match self {
            World::Strategy => &[
                Capability::Llm,
                Capability::Jobs,
                Capability::Hcc,
                Capability::Task,
                Capability::Artifacts,
            ],
            World::TaskAdapter => &[Capability::Task],
            World::PromotionPolicy => &[Capability::Llm, Capability::Hcc],
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A world name that is none of [`World::ALL`].
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("unknown world {0:?}: expected strategy, task-adapter or promotion-policy")]
pub struct UnknownWorld(pub String);

impl FromStr for World {
    type Err = UnknownWorld;
    fn from_str(s: &str) -> Result<Self, UnknownWorld> {
        World::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| UnknownWorld(s.to_string()))
    }
}

/// A grantable capability: one `sophon:host` interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    Llm,
    Jobs,
    Hcc,
    Task,
    Artifacts,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Llm => "llm",
            Capability::Jobs => "jobs",
            Capability::Hcc => "hcc",
            Capability::Task => "task",
            Capability::Artifacts => "artifacts",
        }
    }

    /// The capability a `sophon:host/<name>` interface belongs to; `None` for interfaces every
    /// plugin may import (`types`, `run`).
    pub fn of_interface(interface: &str) -> Option<Option<Capability>> {
        match interface {
            "llm" => Some(Some(Capability::Llm)),
            "jobs" => Some(Some(Capability::Jobs)),
            "hcc" => Some(Some(Capability::Hcc)),
            "task" => Some(Some(Capability::Task)),
            "artifacts" => Some(Some(Capability::Artifacts)),
            "types" | "run" => Some(None),
            _ => None,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The capabilities a manifest asks for, or an operator grants; the same shape on both sides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hcc: Option<HccAccess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskAccess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactAccess>,
}

impl Capabilities {
    /// The capabilities present, in a stable order.
    pub fn list(&self) -> Vec<Capability> {
        let mut out = Vec::new();
        if self.llm.is_some() {
            out.push(Capability::Llm);
        }
        if self.jobs.is_some() {
            out.push(Capability::Jobs);
        }
        if self.hcc.is_some() {
            out.push(Capability::Hcc);
        }
        if self.task.is_some() {
            out.push(Capability::Task);
        }
        if self.artifacts.is_some() {
            out.push(Capability::Artifacts);
        }
        out
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.list().contains(&capability)
    }
}

/// LLM limits; `None` = no limit from this side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LlmLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Calls in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
}

/// Job quotas; `None` = no limit from this side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    /// GPUs per job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_hours: Option<f64>,
}

/// HCC access scopes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HccAccess {
    #[serde(default)]
    pub scopes: Vec<HccScope>,
}

/// One HCC scope: `<layer>:<read|write>` (write implies read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HccScope {
    #[serde(rename = "experience:read")]
    ExperienceRead,
    #[serde(rename = "experience:write")]
    ExperienceWrite,
    #[serde(rename = "knowledge:read")]
    KnowledgeRead,
    #[serde(rename = "wisdom:read")]
    WisdomRead,
}

impl HccScope {
    pub fn as_str(self) -> &'static str {
        match self {
            HccScope::ExperienceRead => "experience:read",
            HccScope::ExperienceWrite => "experience:write",
            HccScope::KnowledgeRead => "knowledge:read",
            HccScope::WisdomRead => "wisdom:read",
        }
    }

    /// True if holding `self` allows what `needed` allows.
    pub fn covers(self, needed: HccScope) -> bool {
        self == needed || (self == HccScope::ExperienceWrite && needed == HccScope::ExperienceRead)
    }
}

/// Access to the task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TaskAccess {
    /// Read the competition's private answers (task adapters only).
    #[serde(default)]
    pub private_data: bool,
}

/// Access to the run's artifact store (no options yet).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArtifactAccess {}

/// Why a manifest is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {0} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("manifest is not UTF-8")]
    NotUtf8,
    #[error("manifest is not valid: {0}")]
    Parse(String),
    #[error("manifest field {field} is invalid: {reason}")]
    Field { field: &'static str, reason: String },
}

impl Manifest {
    /// Parse and check a manifest's text.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::NotUtf8)?;
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ManifestError> {
        let name = &self.plugin.name;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !name_ok {
            return Err(ManifestError::Field {
                field: "plugin.name",
                reason: format!(
                    "{name:?} must be 1-64 lower-case letters, digits or `-`, not starting with `-`"
                ),
            });
        }
        let version = &self.plugin.version;
        let parts: Vec<&str> = version
            .split(['-', '+'])
            .next()
            .unwrap_or("")
            .split('.')
            .collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ManifestError::Field {
                field: "plugin.version",
                reason: format!("{version:?} is not a semantic version like 0.1.0"),
            });
        }
        if self.limits.memory_mb == Some(0) {
            return Err(ManifestError::Field {
                field: "limits.memory-mb",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_manifest() {
        let m = Manifest::parse(
            br#"
[plugin]
name = "ml-master"
version = "0.1.0"
world = "strategy"
[limits]
memory-mb = 128
[capabilities.llm]
max-tokens = 1000
[capabilities.hcc]
scopes = ["experience:write", "wisdom:read"]
[capabilities.artifacts]
"#,
        )
        .unwrap();
        assert_eq!(m.plugin.world, World::Strategy);
        assert_eq!(m.limits.memory_mb, Some(128));
        assert_eq!(
            m.capabilities.list(),
            vec![Capability::Llm, Capability::Hcc, Capability::Artifacts]
        );
        assert!(HccScope::ExperienceWrite.covers(HccScope::ExperienceRead));
        assert!(!HccScope::ExperienceRead.covers(HccScope::ExperienceWrite));
    }

    #[test]
    fn rejects_bad_manifests_with_the_field_named() {
        let cases: &[(&str, &str)] = &[
            (
                "[plugin]\nname='X'\nversion='0.1.0'\nworld='strategy'",
                "plugin.name",
            ),
            (
                "[plugin]\nname='x'\nversion='1'\nworld='strategy'",
                "plugin.version",
            ),
            (
                "[plugin]\nname='x'\nversion='0.1.0'\nworld='nope'",
                "unknown variant",
            ),
            (
                "[plugin]\nname='x'\nversion='0.1.0'\nworld='strategy'\n[capabilities.network]",
                "unknown field",
            ),
            (
                "[plugin]\nname='x'\nversion='0.1.0'\nworld='strategy'\n[capabilities.hcc]\nscopes=['wisdom:write']",
                "unknown variant",
            ),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
        assert!(matches!(
            Manifest::parse(&vec![b' '; MAX_MANIFEST_BYTES + 1]),
            Err(ManifestError::TooLarge(_))
        ));
    }
}
