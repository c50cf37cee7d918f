//! `sophon plugin new`: a plugin crate that builds (`cargo build --release`) and loads.

use super::Lang;
use super::carried::{RUST_SDK, RUST_SDK_VERSION};
use crate::runtime::World;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Plugin names: a lower-case letter, then lower-case letters, digits and `-` (64 at most).
fn check_name(name: &str) -> anyhow::Result<()> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes()[0].is_ascii_lowercase();
    if !name_ok {
        bail!(
            "plugin name {name:?} must start with a lower-case letter and use only a-z, 0-9 and `-`"
        );
    }
    Ok(())
}

/// Where the new crate gets `sophon-sdk` from until the SDK is on crates.io: the crate asks
/// for the version, and `.cargo/config.toml` patches it to a copy of the SDK this binary
/// carries (`vendor/sophon-sdk`, committed with the plugin so a clone builds) or to `sdk`.
fn sdk_patch(sdk: Option<&Path>) -> anyhow::Result<String> {
    let path = match sdk {
        None => "vendor/sophon-sdk".to_string(),
        Some(sdk) => {
            let sdk = sdk.canonicalize().with_context(|| {
                format!(
                    "the sophon-sdk crate is not at {}; pass --sdk <path to sophon's sdk/ \
                     directory>, or leave --sdk out to use the copy this sophon carries",
                    sdk.display()
                )
            })?;
            sdk.display().to_string()
        }
    };
    Ok(format!(
        "# `cargo wasm` builds the plugin (as `sophon plugin build` does); plain `cargo test`\n\
         # runs its tests natively against sophon_sdk::testing::MockHost.\n\
         [alias]\nwasm = \"build --release --target wasm32-wasip2\"\n\n\
         # sophon-sdk {RUST_SDK_VERSION} is not on crates.io yet: the crate depends on its version and\n\
         # builds (and `cargo package` verifies) against this path. Delete the table, and\n\
         # vendor/, once the SDK is published.\n\
         [patch.crates-io]\nsophon-sdk = {{ path = {path:?} }}\n"
    ))
}

/// Create plugin crate `name` for `world` under `parent`; returns its directory. The crate
/// depends on `sophon-sdk` by version; `sdk` names an SDK checkout to build against instead
/// of the vendored copy. Refuses to overwrite an existing directory.
pub fn scaffold_plugin(
    world: World,
    name: &str,
    parent: &Path,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let patch = sdk_patch(sdk)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(dir.join(".cargo"))?;
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let files = [
        ("Cargo.toml", cargo_toml(world, name)),
        ("plugin.toml", plugin_toml(world, name)),
        ("src/lib.rs", lib_rs(world, &type_name)),
        (".cargo/config.toml", patch),
        (
            "rust-toolchain.toml",
            "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip2\"]\nprofile = \"minimal\"\n".to_string(),
        ),
        (".gitignore", "/target\n".to_string()),
    ];
    write_files(&dir, files)?;
    if sdk.is_none() {
        let vendored = RUST_SDK
            .iter()
            .map(|(file, text)| (format!("vendor/sophon-sdk/{file}"), *text));
        write_files(&dir, vendored)?;
    }
    Ok(dir)
}

/// Write each (path relative to `dir`, contents), creating folders as needed.
pub(super) fn write_files<P: AsRef<Path>, T: AsRef<[u8]>>(
    dir: &Path,
    files: impl IntoIterator<Item = (P, T)>,
) -> anyhow::Result<()> {
    for (file, contents) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("a file path has a parent"))?;
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn cargo_toml(world: World, name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
description = "A Sophon {world} plugin."
# Choose a license before `cargo publish`, e.g. license = "MIT OR Apache-2.0".

[lib]
crate-type = ["cdylib"]

[dependencies]
sophon-sdk = "{RUST_SDK_VERSION}"

# A standalone crate, not part of any enclosing workspace.
[workspace]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"
"#
    )
}

fn plugin_toml(world: World, name: &str) -> String {
    let capabilities = match world {
        World::Strategy => {
            "\n# Ask only for what the plugin uses; the operator grants it in sophon.toml.\n[capabilities.llm]\nmax-tokens = 200000\n"
        }
        World::TaskAdapter => "",
        World::PromotionPolicy => "\n[capabilities.hcc]\nscopes = [\"experience:read\"]\n",
    };
    format!(
        "[plugin]\nname = \"{name}\"\nversion = \"0.1.0\"\nworld = \"{world}\"\ndescription = \"A new {world} plugin.\"\n\n[limits]\nmemory-mb = 64\n{capabilities}"
    )
}

fn lib_rs(world: World, type_name: &str) -> String {
    match world {
        World::Strategy => format!(
            r#"//! A search strategy. The host calls `run` once; everything the strategy learns comes from
//! host calls (llm, jobs, hcc, task, run), so a resumed run replays it exactly.

use sophon_sdk::{{Outcome, Strategy, llm, run}};

struct {type_name};

impl Strategy for {type_name} {{
    fn run(config: String) -> Result<Outcome, String> {{
        sophon_sdk::info!("starting with config {{config}}");
        if run::should_stop() {{
            return Ok(Outcome {{ best_node: None, nodes: 0, summary: "no budget".into() }});
        }}
        let reply = llm::chat(&llm::ChatRequest::user("Name one model for tabular data.").max_tokens(32))?;
        Ok(Outcome {{ best_node: None, nodes: 0, summary: reply.text }})
    }}
}}

sophon_sdk::export_strategy!({type_name});

#[cfg(test)]
mod tests {{
    use super::*;
    use sophon_sdk::testing::MockHost;

    #[test]
    fn asks_the_model_and_reports_its_answer() {{
        let host = MockHost::new().reply("LightGBM");
        let outcome = host.run::<{type_name}>("{{}}").unwrap();
        assert_eq!(outcome.summary, "LightGBM");
        assert_eq!(host.requests().len(), 1);
    }}

    #[test]
    fn stops_at_once_without_budget() {{
        let host = MockHost::new().steps(0);
        let outcome = host.run::<{type_name}>("{{}}").unwrap();
        assert_eq!(outcome.summary, "no budget");
        assert!(host.requests().is_empty());
    }}
}}
"#
        ),
        World::TaskAdapter => format!(
            r#"//! A task adapter. Each call runs in a fresh sandbox that holds, read-only, the public data at
//! /data/public, the private answers at /data/private (where granted) and the submission under
//! /submission.

use sophon_sdk::task::Metric;
use sophon_sdk::{{Direction, GradeResult, TaskAdapter, TaskInfo, TaskRequest, Validation}};

struct {type_name};

impl TaskAdapter for {type_name} {{
    fn describe(request: TaskRequest) -> Result<TaskInfo, String> {{
        let files: Vec<String> = std::fs::read_dir("/data/public")
            .map_err(|e| format!("cannot list the public data: {{e}}"))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        Ok(TaskInfo {{
            competition_id: request.competition_id.clone(),
            title: request.competition_id,
            description: String::new(),
            metric: Metric {{ name: "accuracy".into(), direction: Direction::Maximize, description: String::new() }},
            submission_format: "a CSV file".into(),
            data_preview: files.join("\n"),
            public_files: files,
            sample_submission: None,
        }})
    }}

    fn validate(_request: TaskRequest, submission: String) -> Result<Validation, String> {{
        let text = std::fs::read_to_string(&submission).map_err(|e| format!("cannot read {{submission}}: {{e}}"))?;
        Ok(Validation {{ valid: !text.is_empty(), message: format!("{{}} lines", text.lines().count()) }})
    }}

    fn grade(request: TaskRequest, submission: String) -> Result<GradeResult, String> {{
        let validation = Self::validate(request, submission)?;
        Ok(GradeResult {{ score: None, valid: validation.valid, message: validation.message, direction: Direction::Maximize }})
    }}
}}

sophon_sdk::export_task_adapter!({type_name});

#[cfg(test)]
mod tests {{
    use super::*;

    #[test]
    fn an_empty_submission_is_invalid() {{
        let path = std::env::temp_dir().join(format!("empty-submission-{{}}.csv", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let request = TaskRequest {{ competition_id: "demo".into(), options: "{{}}".into() }};
        let validation = {type_name}::validate(request, path.display().to_string()).unwrap();
        assert!(!validation.valid);
    }}
}}
"#
        ),
        World::PromotionPolicy => format!(
            r#"//! A memory promotion policy: raw events → knowledge (phase end) → wisdom (task end).

use sophon_sdk::{{KnowledgeUnit, PhaseTrace, PromotionPolicy, RunTrace, TaskDescriptor, TaskInfo, WisdomEntry}};

struct {type_name};

impl PromotionPolicy for {type_name} {{
    fn describe_task(task: TaskInfo) -> Result<TaskDescriptor, String> {{
        Ok(TaskDescriptor {{
            modality: "unknown".into(),
            task_type: "unknown".into(),
            metric: task.metric.name,
            data_size: format!("{{}} files", task.public_files.len()),
            summary: task.title,
        }})
    }}

    fn on_phase_end(trace: PhaseTrace) -> Result<Option<KnowledgeUnit>, String> {{
        Ok(Some(KnowledgeUnit {{
            phase: trace.phase,
            summary: format!("{{}} events under plan: {{}}", trace.events.len(), trace.plan),
            verdicts: Vec::new(),
            failure_causes: Vec::new(),
            insights: Vec::new(),
            best_approach: None,
            best_metric: None,
        }}))
    }}

    fn on_task_end(_trace: RunTrace) -> Result<Vec<WisdomEntry>, String> {{
        Ok(Vec::new())
    }}
}}

sophon_sdk::export_promotion_policy!({type_name});

#[cfg(test)]
mod tests {{
    use super::*;
    use sophon_sdk::testing::{{MockHost, sample_task}};

    #[test]
    fn describes_the_task_by_its_metric() {{
        let descriptor = MockHost::new().within(|| {type_name}::describe_task(sample_task())).unwrap();
        assert_eq!(descriptor.metric, "accuracy");
    }}
}}
"#
        ),
    }
}

/// Create a Python or JavaScript plugin `name` for `world` under `parent` (an `app.py` or
/// `app.js` and a `plugin.toml` that `sophon plugin build` turns into a component); returns
/// its directory. Refuses task adapters (Rust only) and an existing directory.
pub fn scaffold_script_plugin(
    lang: Lang,
    world: World,
    name: &str,
    parent: &Path,
) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let Some(entry) = lang.entry_file() else {
        bail!("a Rust plugin is a crate: use scaffold_plugin");
    };
    if world == World::TaskAdapter {
        bail!(
            "task adapters are Rust only for now: write the adapter in Rust \
             (`sophon plugin new task-adapter {name}`)"
        );
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // An interpreter inside the component needs more than a Rust plugin's 64 MiB.
    let manifest = plugin_toml(world, name).replace("memory-mb = 64", "memory-mb = 256");
    let mut files = vec![("plugin.toml", manifest)];
    match lang {
        Lang::Python => {
            files.push((entry, app_py(world)));
            files.push((".gitignore", "/*.wasm\n__pycache__/\n".to_string()));
        }
        _ => {
            files.push((entry, app_js(world)));
            files.push(("package.json", package_json(name)));
            files.push((".gitignore", "/*.wasm\nnode_modules/\n".to_string()));
        }
    }
    write_files(&dir, files)?;
    Ok(dir)
}

fn package_json(name: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {{ "build": "sophon plugin build ." }},
  "devDependencies": {{ "@bytecodealliance/componentize-js": "0.23.0" }}
}}
"#
    )
}

fn app_js(world: World) -> String {
    let body = match world {
        World::PromotionPolicy => {
            r#"// A memory promotion policy: raw events -> knowledge (phase end) -> wisdom (task end).
// Records use the WIT names in camelCase; `undefined` is an absent option.

export const promotionPolicyApi = {
  describeTask(task) {
    return guard(() => ({
      modality: 'unknown',
      taskType: 'unknown',
      metric: task.metric.name,
      dataSize: `${task.publicFiles.length} files`,
      summary: task.title,
    }));
  },
  onPhaseEnd(trace) {
    return guard(() => ({
      phase: trace.phase,
      summary: `${trace.events.length} events under plan: ${trace.plan}`,
      verdicts: [],
      failureCauses: [],
      insights: [],
    }));
  },
  onTaskEnd(_trace) {
    return guard(() => []);
  },
};
"#
        }
        _ => {
            r#"// A search strategy. The host calls `run` once; everything it learns comes from host calls
// (llm, jobs, hcc, task, run), so a resumed run replays it exactly.
import { chat } from 'sophon:host/llm@0.2.0';
import { log, shouldStop } from 'sophon:host/run@0.2.0';

export const strategyApi = {
  run(configText) {
    return guard(() => {
      const config = JSON.parse(configText || '{}');
      log('info', `starting with config ${JSON.stringify(config)}`);
      if (shouldStop()) {
        return { nodes: 0, summary: 'no budget' };
      }
      const reply = chat({
        messages: [{ role: 'user', content: 'Name one model for tabular data.', toolCalls: [] }],
        maxTokens: 32,
        stop: [],
        tools: [],
        responseFormat: { tag: 'text' },
        cache: 'default',
      });
      return { nodes: 0, summary: reply.text };
    });
  },
};
"#
        }
    };
    format!(
        "{body}
// An export's error must be a string: a failed host call throws a ComponentError whose
// `payload` is the WIT error ({{ tag: 'not-granted', val: '…' }}), anything else an Error.
function guard(body) {{
  try {{
    return body();
  }} catch (e) {{
    if (e && e.payload && e.payload.tag) throw `${{e.payload.tag}}: ${{e.payload.val}}`;
    throw String((e && e.stack) || e);
  }}
}}
"
    )
}

fn app_py(world: World) -> String {
    match world {
        World::PromotionPolicy => r#""""A memory promotion policy: raw events -> knowledge (phase end) -> wisdom (task end)."""

import sophon_sdk as sophon


class Policy(sophon.PromotionPolicy):
    def describe_task(self, task_info):
        return sophon.hcc.task_descriptor(
            modality="unknown",
            task_type="unknown",
            metric=task_info.metric.name,
            data_size=f"{len(task_info.public_files)} files",
            summary=task_info.title,
        )

    def on_phase_end(self, trace):
        return sophon.hcc.knowledge_unit(
            trace.phase, f"{len(trace.events)} events under plan: {trace.plan}"
        )

    def on_task_end(self, trace):
        return []


PromotionPolicyApi = sophon.export_promotion_policy(Policy)
"#
        .to_string(),
        _ => r#""""A search strategy. The host calls `run` once; everything it learns comes from host
calls (llm, jobs, hcc, task, run), so a resumed run replays it exactly."""

import sophon_sdk as sophon


class Strategy(sophon.Strategy):
    def run(self, config: dict) -> sophon.Outcome:
        sophon.run.log_info(f"starting with config {config}")
        if sophon.run.should_stop():
            return sophon.Outcome(summary="no budget")
        reply = sophon.llm.chat("Name one model for tabular data.", max_tokens=32)
        return sophon.Outcome(summary=reply.text)


StrategyApi = sophon.export_strategy(Strategy)
"#
        .to_string(),
    }
}
