//! `sophon plugin build [DIR]`: a plugin's source folder to a loadable `.wasm` component.
//!
//! Rust (a `Cargo.toml`): `cargo build --release --target wasm32-wasip2`, the manifest embedded
//! by the SDK's export macro; the `.wasm` lands in the crate's cargo target directory.
//! Python (an `app.py` beside `plugin.toml`): componentize-py against the WIT and the Python SDK
//! this binary carries. JavaScript (an `app.js`): componentize-js against the same WIT, with
//! `wasi:http` and the fetch event disabled (Sophon serves neither). For both, `plugin.toml`
//! is appended as the component's `sophon-manifest` custom section and the `.wasm` lands in
//! the folder as `<name>.wasm`. Failure behaviour: a missing tool, a manifest that does not
//! parse or a failed compiler is an error naming the fix; nothing is written on failure
//! except the compiler's own outputs.

use super::carried::{PYTHON_SDK, WIT_FILES};
use crate::runtime::{Manifest, World};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The languages `sophon plugin new --lang` and `sophon plugin build` support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    /// The entry file of a plugin in this language (`None` for Rust: a crate).
    pub fn entry_file(self) -> Option<&'static str> {
        match self {
            Lang::Rust => None,
            Lang::Python => Some("app.py"),
            Lang::Js => Some("app.js"),
        }
    }
}

/// The custom section the host reads a component's manifest from.
const MANIFEST_SECTION: &str = "sophon-manifest";

/// The language of the plugin in `dir`, from the files there.
pub fn detect(dir: &Path) -> anyhow::Result<Lang> {
    if dir.join("Cargo.toml").is_file() {
        return Ok(Lang::Rust);
    }
    for lang in [Lang::Python, Lang::Js] {
        if lang.entry_file().is_some_and(|f| dir.join(f).is_file()) {
            return Ok(lang);
        }
    }
    bail!(
        "{} holds no plugin sources: expected a Cargo.toml (Rust), or an app.py (Python) or \
         app.js (JavaScript) beside a plugin.toml; create one with \
         `sophon plugin new <world> <name> [--lang python|js]`",
        dir.display()
    )
}

/// Build the plugin in `dir`; returns the `.wasm` path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    match detect(dir)? {
        Lang::Rust => build_rust(dir),
        lang => build_guest(dir, lang),
    }
}

fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {} (is Rust installed?)", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "cargo build failed in {} (see the errors above); the wasm target is added with \
             `rustup target add wasm32-wasip2`",
            dir.display()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .flat_map(|msg| {
            msg["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|path| path.extension().is_some_and(|e| e == "wasm"))
        .with_context(|| {
            format!(
                "cargo built no .wasm in {}: a plugin crate needs `crate-type = [\"cdylib\"]`",
                dir.display()
            )
        })
}

/// Where a guest toolchain is found and how it is installed.
struct Toolchain {
    /// The variable that names it (first choice).
    variable: &'static str,
    /// Its path inside the plugin's folder (second choice).
    local: &'static str,
    /// Its name on `PATH` (last choice).
    name: &'static str,
    /// How to install it, for the error when it is missing.
    install: &'static str,
}

impl Toolchain {
    fn of(lang: Lang) -> Toolchain {
        match lang {
            Lang::Python => Toolchain {
                variable: "SOPHON_COMPONENTIZE_PY",
                local: ".venv/bin/componentize-py",
                name: "componentize-py",
                install: "pip install componentize-py",
            },
            _ => Toolchain {
                variable: "SOPHON_COMPONENTIZE_JS",
                local: "node_modules/.bin/componentize-js",
                name: "componentize-js",
                install: "npm install (the scaffold's package.json lists \
                          @bytecodealliance/componentize-js)",
            },
        }
    }

    /// `$variable`, else `local` inside `dir` if present, else `name` on `PATH`.
    fn path(&self, dir: &Path) -> PathBuf {
        if let Some(path) = std::env::var_os(self.variable) {
            return PathBuf::from(path);
        }
        let local = dir.join(self.local);
        if local.is_file() {
            return local;
        }
        PathBuf::from(self.name)
    }
}

/// Build a Python or JavaScript plugin: its guest toolchain against the carried WIT, then
/// the manifest appended.
fn build_guest(dir: &Path, lang: Lang) -> anyhow::Result<PathBuf> {
    let manifest_path = dir.join("plugin.toml");
    let manifest_bytes = std::fs::read(&manifest_path).with_context(|| {
        format!(
            "reading {}: a plugin describes itself in a plugin.toml beside its {}",
            manifest_path.display(),
            lang.entry_file().unwrap_or("sources")
        )
    })?;
    let manifest = Manifest::parse(&manifest_bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    let world = manifest.plugin.world;
    if world == World::TaskAdapter {
        bail!(
            "task adapters are written in Rust for now (`sophon plugin new task-adapter NAME`); \
             Python and JavaScript plugins are strategies and promotion policies"
        );
    }
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let wit = write_files(&scratch.path().join("wit"), WIT_FILES)?;
    let out = dir.join(format!("{}.wasm", manifest.plugin.name));
    let toolchain = Toolchain::of(lang);
    let tool = toolchain.path(dir);
    let mut command = Command::new(&tool);
    // componentize-py is a Rust program: its errors would end in a backtrace of its own.
    command.env("RUST_BACKTRACE", "0");
    if lang == Lang::Python {
        let sdk_root = write_files(&scratch.path().join("python/sophon_sdk"), PYTHON_SDK)?;
        command
            .arg("-d")
            .arg(&wit)
            .arg("-w")
            .arg(format!("sophon:plugin/{world}"))
            .args(["componentize", "app", "-p"])
            .arg(dir)
            .arg("-p")
            .arg(sdk_root.parent().expect("the SDK's package has a parent"))
            .arg("-o")
            .arg(&out);
    } else {
        command
            .arg(dir.join("app.js"))
            .arg("--wit")
            .arg(&wit)
            .arg("--world-name")
            .arg(world.as_str())
            // Sophon serves no wasi:http; without these the component imports it.
            .args(["--disable", "http", "fetch-event"])
            .arg("--out")
            .arg(&out);
    }
    let status = command.status().with_context(|| {
        format!(
            "running {}: install it with `{}`, or point {} at it",
            tool.display(),
            toolchain.install,
            toolchain.variable
        )
    })?;
    if !status.success() {
        bail!(
            "{} failed on {} (see its errors above)",
            tool.display(),
            dir.display()
        );
    }
    let mut wasm = std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    append_custom_section(&mut wasm, MANIFEST_SECTION, &manifest_bytes);
    std::fs::write(&out, wasm).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Write `files` under `root`; returns `root`.
fn write_files(root: &Path, files: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
    super::scaffold::write_files(root, files.iter().copied())?;
    Ok(root.to_path_buf())
}

/// Append a custom section (id 0: name, then payload, both length-prefixed) to a component.
pub fn append_custom_section(wasm: &mut Vec<u8>, name: &str, payload: &[u8]) {
    use crate::runtime::compat::write_leb128;
    let mut body = Vec::new();
    write_leb128(&mut body, name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    write_leb128(wasm, body.len() as u64);
    wasm.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appended_manifest_is_found_by_inspection() {
        let source = crate::builtin::resolve("builtin:hello").unwrap();
        // Remove the embedded section's name so only the appended one counts.
        let mut wasm = source.wasm.to_vec();
        let at = wasm
            .windows(MANIFEST_SECTION.len())
            .position(|w| w == MANIFEST_SECTION.as_bytes())
            .unwrap();
        wasm[at] = b'X';
        append_custom_section(&mut wasm, MANIFEST_SECTION, b"[plugin]\nname = \"x\"\n");
        let facts = crate::runtime::inspect::ComponentFacts::read(&wasm).unwrap();
        assert_eq!(
            facts.embedded_manifest.unwrap(),
            b"[plugin]\nname = \"x\"\n"
        );
    }
}
