//! Build Sophon plugin crates (a Cargo workspace of `cdylib` crates using `sophon-sdk`) into
//! `wasm32-wasip2` components, from a host crate's `build.rs`.
//!
//! ```no_run
//! // build.rs
//! let plugins = sophon_build::build_workspace_for_build_script("../plugins", &["../sdk", "../wit"]);
//! for plugin in &plugins {
//!     println!("cargo:rustc-env=PLUGIN_{}={}", plugin.crate_name.to_uppercase(), plugin.wasm.display());
//! }
//! ```
//!
//! The nested `cargo build --release --target wasm32-wasip2` runs with a clean environment
//! (none of the outer build's `RUSTFLAGS`, wrappers or target settings leak in), shares the
//! outer build's jobserver, and writes to `<outer target dir>/plugins` so every plugin
//! workspace of a repository shares one set of compiled dependencies.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One compiled plugin component.
#[derive(Clone, Debug)]
pub struct BuiltPlugin {
    /// The crate's library name (`-` replaced by `_`), which is also the file stem.
    pub crate_name: String,
    /// The package name as written in its `Cargo.toml`.
    pub package: String,
    /// Absolute path of the `.wasm` component.
    pub wasm: PathBuf,
}

/// Why building failed.
#[derive(Debug)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Variables a build script receives that must not reach the nested build.
const SCRUBBED_PREFIXES: &[&str] = &[
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_BUILD_",
    "CARGO_PROFILE_",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_TARGET_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_LLVM_COV",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC",
    "CLIPPY_",
    "__CARGO_",
];
const SCRUBBED_VARS: &[&str] = &[
    "TARGET",
    "HOST",
    "OUT_DIR",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];

/// Build every plugin in the Cargo workspace at `workspace` (release, `wasm32-wasip2`) into
/// `target_dir`. Returns the components in package order.
pub fn build_workspace(
    workspace: &Path,
    target_dir: &Path,
) -> Result<Vec<BuiltPlugin>, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = workspace.join("Cargo.toml");
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if SCRUBBED_PREFIXES.iter().any(|p| key.starts_with(p))
            || SCRUBBED_VARS.contains(&key.as_ref())
        {
            command.env_remove(key.as_ref());
        }
    }
    let output = command.output().map_err(|e| {
        BuildError(format!(
            "cannot run cargo to build the plugins in {}: {e}",
            workspace.display()
        ))
    })?;
    if !output.status.success() {
        return Err(BuildError(format!(
            "building the plugins in {} failed (is the wasm32-wasip2 target installed? \
             `rustup target add wasm32-wasip2`):\n{}",
            workspace.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let mut built = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let Some(wasm) = wasm {
            let package_id = message["package_id"].as_str().unwrap_or_default();
            built.push(BuiltPlugin {
                crate_name: message["target"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .replace('-', "_"),
                package: package_name(package_id),
                wasm: PathBuf::from(wasm),
            });
        }
    }
    built.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(built)
}

/// The package name inside a Cargo package id (`path+file:///…/echo#0.1.0` or
/// `path+file:///…/dir#echo@0.1.0`).
fn package_name(package_id: &str) -> String {
    let fragment = package_id.rsplit('#').next().unwrap_or(package_id);
    match fragment.split_once('@') {
        Some((name, _)) => name.to_string(),
        None => package_id
            .rsplit('#')
            .nth(1)
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or(fragment)
            .to_string(),
    }
}

/// [`build_workspace`] for a `build.rs`: resolves `workspace` and `watch` against
/// `CARGO_MANIFEST_DIR`, builds into `<target dir>/plugins` (next to the outer build's
/// profile directories), asks Cargo to rerun when the workspace or any `watch` path changes,
/// and panics with cargo's diagnostics on failure (failing the outer build).
pub fn build_workspace_for_build_script(workspace: &str, watch: &[&str]) -> Vec<BuiltPlugin> {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    let workspace = manifest_dir.join(workspace);
    for path in std::iter::once(workspace.clone()).chain(watch.iter().map(|w| manifest_dir.join(w)))
    {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let target_dir = outer_target_dir().join("plugins");
    match build_workspace(&workspace, &target_dir) {
        Ok(built) => built,
        Err(e) => panic!("{e}"),
    }
}

/// The outer build's target directory: the nearest ancestor of `OUT_DIR` holding Cargo's
/// `CACHEDIR.TAG` (`OUT_DIR` is `<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`).
fn outer_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("run from a build script"));
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .or_else(|| out_dir.ancestors().nth(4))
        .expect("OUT_DIR lies inside a target directory")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_package_names_from_both_id_forms() {
        assert_eq!(
            super::package_name("path+file:///w/plugins/echo#0.1.0"),
            "echo"
        );
        assert_eq!(
            super::package_name("path+file:///w/plugins/x#my-plugin@0.1.0"),
            "my-plugin"
        );
    }
}
