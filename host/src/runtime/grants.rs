//! Checking a plugin's requests against the operator's grants.
//!
//! Deny by default: a plugin gets a capability only if its manifest asks for it *and* the
//! operator's `sophon.toml` grants it, within the granted limits. Every refusal names the
//! plugin, the capability and the exact lines to add to `sophon.toml`.

use super::bindings::serves_host_version;
use super::inspect::split_version;
use super::manifest::{
    Capabilities, Capability, HccScope, JobLimits, LlmLimits, Manifest, TaskAccess, World,
};
use serde::Serialize;

pub use crate::capability::defaults;

/// What a loaded plugin may do: the intersection of its requests and its grants, with
/// [`defaults`] where neither names a limit (every limit here is `Some`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EffectiveGrants {
    pub llm: Option<LlmLimits>,
    pub jobs: Option<JobLimits>,
    /// HCC scopes; `None` = no HCC access at all.
    pub hcc: Option<Vec<HccScope>>,
    pub task: Option<TaskAccess>,
    pub artifacts: bool,
    /// Linear-memory cap in bytes.
    pub memory_bytes: u64,
}

impl EffectiveGrants {
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::Llm => self.llm.is_some(),
            Capability::Jobs => self.jobs.is_some(),
            Capability::Hcc => self.hcc.is_some(),
            Capability::Task => self.task.is_some(),
            Capability::Artifacts => self.artifacts,
        }
    }

    /// True if the HCC scopes held allow `needed`.
    pub fn hcc_allows(&self, needed: HccScope) -> bool {
        self.hcc
            .as_ref()
            .is_some_and(|scopes| scopes.iter().any(|s| s.covers(needed)))
    }
}

/// Why a plugin was refused at load.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GrantError {
    #[error(
        "plugin `{plugin}` asks for capability `{capability}`, which sophon.toml does not grant it. \
         To grant it, add to sophon.toml:\n\n{hint}"
    )]
    NotGranted {
        plugin: String,
        capability: Capability,
        hint: String,
    },
    #[error(
        "plugin `{plugin}` asks for {capability}.{field} = {requested}, but sophon.toml grants at most {granted}. \
         Raise `{field}` under [plugins.{plugin}.grants.{capability}] or lower the plugin's request"
    )]
    ExceedsGrant {
        plugin: String,
        capability: Capability,
        field: &'static str,
        requested: String,
        granted: String,
    },
    #[error(
        "plugin `{plugin}` asks for HCC scope `{scope}`, which sophon.toml does not grant it. \
         Add \"{scope}\" to `scopes` under [plugins.{plugin}.grants.hcc]"
    )]
    ScopeNotGranted { plugin: String, scope: &'static str },
    #[error(
        "plugin `{plugin}` asks for the private answers, which sophon.toml does not grant it. \
         Only a trusted task adapter should get them: set `private-data = true` under [plugins.{plugin}.grants.task]"
    )]
    PrivateDataNotGranted { plugin: String },
    #[error("plugin `{plugin}` is a {world} plugin, which cannot use capability `{capability}`")]
    NotAllowedForWorld {
        plugin: String,
        world: World,
        capability: String,
    },
    #[error(
        "plugin `{plugin}` imports `sophon:host/{interface}@{version}`, which this Sophon does not provide \
         (it serves sophon:host@{served}); rebuild the plugin against this Sophon's SDK or upgrade Sophon",
        served = super::bindings::SERVED_HOST_VERSIONS.join(", ")
    )]
    UnknownHostInterface {
        plugin: String,
        interface: String,
        version: String,
    },
    #[error(
        "plugin `{plugin}`'s manifest says world `{declared}` but the component {actual}; \
         fix `world` in its plugin.toml or export the right interface"
    )]
    WorldMismatch {
        plugin: String,
        declared: World,
        actual: String,
    },
    #[error(
        "plugin `{plugin}` needs {requested_mb} MiB of memory but may have at most {allowed_mb} MiB; \
         raise `memory-mb` under [plugins.{plugin}] (the runtime's ceiling is runtime.max-memory-mb)"
    )]
    Memory {
        plugin: String,
        requested_mb: u64,
        allowed_mb: u64,
    },
}

/// Memory limits from the runtime configuration.
#[derive(Clone, Copy, Debug)]
pub struct MemoryPolicy {
    /// Used when neither manifest nor grant names a size.
    pub default_mb: u64,
    /// No plugin ever gets more.
    pub max_mb: u64,
}

/// What a component really uses, from its compiled type.
#[derive(Clone, Debug, Default)]
pub struct Surface {
    /// The plugin world its exports implement.
    pub world: Option<World>,
    /// Its top-level export names, for messages.
    pub exports: Vec<String>,
    /// Imported instances with at least one function (type-only imports, which a world's `use`
    /// statements create, grant nothing and are left out).
    pub called_imports: Vec<String>,
}

impl Surface {
    /// The `sophon:host` interfaces called, as (interface, version).
    fn host_imports(&self) -> Vec<(String, String)> {
        self.called_imports
            .iter()
            .filter_map(|name| {
                let (path, version) = split_version(name);
                let interface = path.strip_prefix("sophon:host/")?;
                Some((interface.to_string(), version.unwrap_or("").to_string()))
            })
            .collect()
    }
}

/// Decide what `manifest`'s plugin may do, given what the component really imports and
/// exports, the operator's `granted` capabilities and memory grant.
pub fn resolve(
    manifest: &Manifest,
    facts: &Surface,
    granted: &Capabilities,
    granted_memory_mb: Option<u64>,
    memory: MemoryPolicy,
) -> Result<EffectiveGrants, GrantError> {
    let plugin = manifest.plugin.name.as_str();
    check_world(manifest, facts)?;
    check_world_rules(manifest)?;
    check_imports(plugin, facts)?;
    let requested = &manifest.capabilities;
    for capability in requested.list() {
        if !granted.has(capability) {
            return Err(GrantError::NotGranted {
                hint: grant_hint(plugin, capability, requested),
                plugin: plugin.into(),
                capability,
            });
        }
    }
    Ok(EffectiveGrants {
        llm: llm_limits(plugin, requested, granted)?,
        jobs: job_limits(plugin, requested, granted)?,
        hcc: hcc_scopes(plugin, requested, granted)?,
        task: task_access(plugin, requested, granted)?,
        artifacts: requested.artifacts.is_some(),
        memory_bytes: memory_bytes(manifest, granted_memory_mb, memory)?,
    })
}

/// The component exports the interface of the world its manifest declares.
fn check_world(manifest: &Manifest, facts: &Surface) -> Result<(), GrantError> {
    let declared = manifest.plugin.world;
    let actual = match facts.world {
        Some(actual) if actual == declared => return Ok(()),
        Some(actual) => format!("exports the {actual} interface"),
        None => format!(
            "exports none of Sophon's plugin interfaces (exports: {})",
            if facts.exports.is_empty() {
                "nothing".to_string()
            } else {
                facts.exports.join(", ")
            }
        ),
    };
    Err(GrantError::WorldMismatch {
        plugin: manifest.plugin.name.clone(),
        declared,
        actual,
    })
}

/// What a world may never ask for, whatever the grants: capabilities outside the world,
/// private answers outside a task adapter, HCC writes from a promotion policy.
fn check_world_rules(manifest: &Manifest) -> Result<(), GrantError> {
    let world = manifest.plugin.world;
    let requested = &manifest.capabilities;
    let refused = |capability: String| GrantError::NotAllowedForWorld {
        plugin: manifest.plugin.name.clone(),
        world,
        capability,
    };
    for capability in requested.list() {
        if !world.allowed_capabilities().contains(&capability) {
            return Err(refused(capability.to_string()));
        }
    }
    if requested.task.as_ref().is_some_and(|t| t.private_data) && world != World::TaskAdapter {
        return Err(refused("task.private-data".into()));
    }
    if world == World::PromotionPolicy
        && requested
            .hcc
            .as_ref()
            .is_some_and(|h| h.scopes.contains(&HccScope::ExperienceWrite))
    {
        return Err(refused(
            "hcc scope experience:write (promotion policies read; the host stores what they return)"
                .into(),
        ));
    }
    Ok(())
}

/// Every `sophon:host` import is an interface and version this host serves.
///
/// An imported capability the manifest does not ask for is linked but never granted: every
/// call to it is refused with `not-granted` (naming the manifest fix). Guest toolchains such
/// as componentize-py and componentize-js import every interface of the world, used or not,
/// so refusing the import would force manifests to ask for what the code never calls.
fn check_imports(plugin: &str, facts: &Surface) -> Result<(), GrantError> {
    for (interface, version) in facts.host_imports() {
        if !serves_host_version(&version) || Capability::of_interface(&interface).is_none() {
            return Err(GrantError::UnknownHostInterface {
                plugin: plugin.into(),
                interface,
                version,
            });
        }
    }
    Ok(())
}

/// The LLM limits: each the tighter of request and grant, else the default.
fn llm_limits(
    plugin: &str,
    requested: &Capabilities,
    granted: &Capabilities,
) -> Result<Option<LlmLimits>, GrantError> {
    let (Some(req), Some(grant)) = (&requested.llm, &granted.llm) else {
        return Ok(None);
    };
    let field = |name, r, g, default| {
        limit(plugin, Capability::Llm, name, r, g).map(|l| l.or(Some(default)))
    };
    Ok(Some(LlmLimits {
        max_tokens: field(
            "max-tokens",
            req.max_tokens,
            grant.max_tokens,
            defaults::LLM_MAX_TOKENS,
        )?,
        max_requests: field(
            "max-requests",
            req.max_requests,
            grant.max_requests,
            defaults::LLM_MAX_REQUESTS,
        )?,
        max_cost_usd: limit(
            plugin,
            Capability::Llm,
            "max-cost-usd",
            req.max_cost_usd,
            grant.max_cost_usd,
        )?
        .or(Some(defaults::LLM_MAX_COST_USD)),
        max_concurrent: field(
            "max-concurrent",
            req.max_concurrent,
            grant.max_concurrent,
            defaults::LLM_MAX_CONCURRENT,
        )?,
    }))
}

/// The job limits: each the tighter of request and grant, else the default.
fn job_limits(
    plugin: &str,
    requested: &Capabilities,
    granted: &Capabilities,
) -> Result<Option<JobLimits>, GrantError> {
    let (Some(req), Some(grant)) = (&requested.jobs, &granted.jobs) else {
        return Ok(None);
    };
    let field = |name, r, g, default| {
        limit(plugin, Capability::Jobs, name, r, g).map(|l| l.or(Some(default)))
    };
    Ok(Some(JobLimits {
        max_concurrent: field(
            "max-concurrent",
            req.max_concurrent,
            grant.max_concurrent,
            defaults::JOBS_MAX_CONCURRENT,
        )?,
        max_gpus: field(
            "max-gpus",
            req.max_gpus,
            grant.max_gpus,
            defaults::JOBS_MAX_GPUS,
        )?,
        gpu_hours: limit(
            plugin,
            Capability::Jobs,
            "gpu-hours",
            req.gpu_hours,
            grant.gpu_hours,
        )?
        .or(Some(defaults::JOBS_GPU_HOURS)),
    }))
}

/// The HCC scopes asked for, each covered by a granted scope (sorted, without repeats).
fn hcc_scopes(
    plugin: &str,
    requested: &Capabilities,
    granted: &Capabilities,
) -> Result<Option<Vec<HccScope>>, GrantError> {
    let (Some(req), Some(grant)) = (&requested.hcc, &granted.hcc) else {
        return Ok(None);
    };
    for scope in &req.scopes {
        if !grant.scopes.iter().any(|g| g.covers(*scope)) {
            return Err(GrantError::ScopeNotGranted {
                plugin: plugin.into(),
                scope: scope.as_str(),
            });
        }
    }
    let mut scopes = req.scopes.clone();
    scopes.sort();
    scopes.dedup();
    Ok(Some(scopes))
}

/// The task access asked for; the private answers only where granted.
fn task_access(
    plugin: &str,
    requested: &Capabilities,
    granted: &Capabilities,
) -> Result<Option<TaskAccess>, GrantError> {
    let (Some(req), Some(grant)) = (&requested.task, &granted.task) else {
        return Ok(None);
    };
    if req.private_data && !grant.private_data {
        return Err(GrantError::PrivateDataNotGranted {
            plugin: plugin.into(),
        });
    }
    Ok(Some(req.clone()))
}

/// The linear-memory cap: the manifest's request (default: the grant's, else the runtime's
/// default), which may not pass the grant or the runtime's maximum.
fn memory_bytes(
    manifest: &Manifest,
    granted_memory_mb: Option<u64>,
    memory: MemoryPolicy,
) -> Result<u64, GrantError> {
    let allowed_mb = granted_memory_mb
        .unwrap_or(memory.default_mb)
        .min(memory.max_mb);
    let requested_mb = manifest.limits.memory_mb.unwrap_or(allowed_mb);
    if requested_mb > allowed_mb {
        return Err(GrantError::Memory {
            plugin: manifest.plugin.name.clone(),
            requested_mb,
            allowed_mb,
        });
    }
    Ok(requested_mb * 1024 * 1024)
}

/// Intersect one numeric limit: the request must fit the grant; the result is the tighter.
fn limit<T: PartialOrd + Copy + ToString>(
    plugin: &str,
    capability: Capability,
    field: &'static str,
    requested: Option<T>,
    granted: Option<T>,
) -> Result<Option<T>, GrantError> {
    match (requested, granted) {
        (Some(r), Some(g)) if r > g => Err(GrantError::ExceedsGrant {
            plugin: plugin.to_string(),
            capability,
            field,
            requested: r.to_string(),
            granted: g.to_string(),
        }),
        (Some(r), _) => Ok(Some(r)),
        (None, g) => Ok(g),
    }
}

/// The `sophon.toml` lines that would grant `capability` as `requested` asks for it.
fn grant_hint(plugin: &str, capability: Capability, requested: &Capabilities) -> String {
    let table = match capability {
        Capability::Llm => toml::to_string(requested.llm.as_ref().unwrap()),
        Capability::Jobs => toml::to_string(requested.jobs.as_ref().unwrap()),
        Capability::Hcc => toml::to_string(requested.hcc.as_ref().unwrap()),
        Capability::Task => toml::to_string(requested.task.as_ref().unwrap()),
        Capability::Artifacts => toml::to_string(requested.artifacts.as_ref().unwrap()),
    }
    .unwrap_or_default();
    format!("[plugins.{plugin}.grants.{capability}]\n{table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: MemoryPolicy = MemoryPolicy {
        default_mb: 64,
        max_mb: 512,
    };

    fn facts(imports: &[&str], export: &str) -> Surface {
        Surface {
            world: World::ALL
                .into_iter()
                .find(|w| export.starts_with(w.export_interface())),
            exports: vec![export.to_string()],
            called_imports: imports.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn strategy(caps: &str) -> Manifest {
        Manifest::parse(
            format!("[plugin]\nname='s'\nversion='0.1.0'\nworld='strategy'\n{caps}").as_bytes(),
        )
        .unwrap()
    }

    fn grants(text: &str) -> Capabilities {
        toml::from_str(text).unwrap()
    }

    const STRATEGY: &str = "sophon:plugin/strategy-api@0.1.0";

    #[test]
    fn intersects_requests_and_grants() {
        let m = strategy(
            "[capabilities.llm]\nmax-tokens=100\n[capabilities.hcc]\nscopes=['experience:read']",
        );
        let f = facts(
            &[
                "sophon:host/llm@0.1.0",
                "sophon:host/run@0.1.0",
                "wasi:io/poll@0.2.6",
            ],
            STRATEGY,
        );
        let g = grants("llm={max-tokens=1000, max-requests=5}\nhcc={scopes=['experience:write']}");
        let e = resolve(&m, &f, &g, Some(128), POLICY).unwrap();
        let llm = e.llm.unwrap();
        assert_eq!(llm.max_tokens, Some(100));
        assert_eq!(llm.max_requests, Some(5));
        assert_eq!(llm.max_concurrent, Some(defaults::LLM_MAX_CONCURRENT));
        assert_eq!(e.hcc, Some(vec![HccScope::ExperienceRead]));
        assert!(!e.artifacts && e.jobs.is_none());
        assert_eq!(e.memory_bytes, 128 << 20);
    }

    #[test]
    fn refuses_what_is_not_granted_and_says_how_to_grant_it() {
        let m = strategy("[capabilities.jobs]\nmax-concurrent=3");
        let f = facts(&["sophon:host/jobs@0.1.0"], STRATEGY);
        let err = resolve(&m, &f, &Capabilities::default(), None, POLICY).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("plugin `s`") && text.contains("`jobs`"),
            "{text}"
        );
        assert!(
            text.contains("[plugins.s.grants.jobs]\nmax-concurrent = 3"),
            "{text}"
        );

        let err = resolve(&m, &f, &grants("jobs={max-concurrent=2}"), None, POLICY).unwrap_err();
        assert!(
            matches!(
                err,
                GrantError::ExceedsGrant {
                    field: "max-concurrent",
                    ..
                }
            ),
            "{err}"
        );

        let m = strategy("[capabilities.hcc]\nscopes=['wisdom:read']");
        let f = facts(&[], STRATEGY);
        let err = resolve(
            &m,
            &f,
            &grants("hcc={scopes=['experience:write']}"),
            None,
            POLICY,
        )
        .unwrap_err();
        assert_eq!(
            err,
            GrantError::ScopeNotGranted {
                plugin: "s".into(),
                scope: "wisdom:read"
            }
        );
    }

    /// `--grant-requested` grants exactly the manifest's capabilities: a manifest that sets no
    /// limits still gets finite ones.
    #[test]
    fn a_grant_without_limits_gets_finite_defaults() {
        let m = strategy("[capabilities.llm]\n[capabilities.jobs]");
        let f = facts(
            &["sophon:host/llm@0.1.0", "sophon:host/jobs@0.1.0"],
            STRATEGY,
        );
        let e = resolve(&m, &f, &m.capabilities, None, POLICY).unwrap();
        assert_eq!(
            e.llm.unwrap(),
            LlmLimits {
                max_tokens: Some(defaults::LLM_MAX_TOKENS),
                max_requests: Some(defaults::LLM_MAX_REQUESTS),
                max_cost_usd: Some(defaults::LLM_MAX_COST_USD),
                max_concurrent: Some(defaults::LLM_MAX_CONCURRENT),
            }
        );
        assert_eq!(
            e.jobs.unwrap(),
            JobLimits {
                max_concurrent: Some(defaults::JOBS_MAX_CONCURRENT),
                max_gpus: Some(defaults::JOBS_MAX_GPUS),
                gpu_hours: Some(defaults::JOBS_GPU_HOURS),
            }
        );
        // A grant above a default raises it.
        let g = grants("llm={max-concurrent=32}\njobs={max-concurrent=64}");
        let e = resolve(&m, &f, &g, None, POLICY).unwrap();
        assert_eq!(e.llm.unwrap().max_concurrent, Some(32));
        assert_eq!(e.jobs.unwrap().max_concurrent, Some(64));
    }

    #[test]
    fn imports_the_manifest_does_not_declare_load_without_the_capability() {
        let m = strategy("");
        let f = facts(
            &["sophon:host/jobs@0.1.0", "sophon:host/llm@0.1.0"],
            STRATEGY,
        );
        let granted = grants("jobs={}\nllm={}");
        let e = resolve(&m, &f, &granted, None, POLICY).unwrap();
        assert!(!e.has(Capability::Jobs) && !e.has(Capability::Llm));
        let f = facts(&["sophon:host/teleport@0.1.0"], STRATEGY);
        assert!(matches!(
            resolve(&m, &f, &Capabilities::default(), None, POLICY),
            Err(GrantError::UnknownHostInterface { .. })
        ));
        // Only the versions served: a newer minor, a newer patch (whose functions this host
        // may lack), pre-releases and garbage are refused by name.
        for version in ["0.3.0", "0.2.1", "0.1.9", "1.1.0", "0.2.0-rc1", "0.2", "x"] {
            let import = format!("sophon:host/run@{version}");
            let f = facts(&[import.as_str()], STRATEGY);
            let err = resolve(&m, &f, &Capabilities::default(), None, POLICY).unwrap_err();
            assert!(
                matches!(err, GrantError::UnknownHostInterface { .. })
                    && err
                        .to_string()
                        .contains("it serves sophon:host@0.2.0, 0.1.0"),
                "{version}: {err}"
            );
        }
        // The current contract and the frozen earlier one.
        for version in ["0.2.0", "0.1.0"] {
            let import = format!("sophon:host/run@{version}");
            let f = facts(&[import.as_str()], STRATEGY);
            resolve(&m, &f, &Capabilities::default(), None, POLICY).unwrap();
        }
    }

    #[test]
    fn enforces_world_rules_and_memory() {
        let m = strategy("[capabilities.task]\nprivate-data=true");
        let f = facts(&[], STRATEGY);
        assert!(matches!(
            resolve(&m, &f, &grants("task={private-data=true}"), None, POLICY),
            Err(GrantError::NotAllowedForWorld { .. })
        ));
        let m = strategy("");
        let f = facts(&[], "sophon:plugin/task-adapter-api@0.1.0");
        assert!(matches!(
            resolve(&m, &f, &Capabilities::default(), None, POLICY),
            Err(GrantError::WorldMismatch { .. })
        ));
        let m = Manifest::parse(
            b"[plugin]\nname='s'\nversion='0.1.0'\nworld='strategy'\n[limits]\nmemory-mb=100",
        )
        .unwrap();
        let f = facts(&[], STRATEGY);
        assert!(matches!(
            resolve(&m, &f, &Capabilities::default(), None, POLICY),
            Err(GrantError::Memory {
                requested_mb: 100,
                allowed_mb: 64,
                ..
            })
        ));
        let e = resolve(&m, &f, &Capabilities::default(), Some(1024), POLICY).unwrap();
        assert_eq!(e.memory_bytes, 100 << 20);
    }
}
