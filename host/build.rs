//! Builds the first-party plugins in `plugins/` for wasm32-wasip2 and embeds them in the
//! `sophon` binary (see `src/builtin.rs`).

use std::path::{Path, PathBuf};

fn main() {
    let plugins =
        sophon_build::build_workspace_for_build_script("../plugins", &["../sdk", "../wit"]);
    let mut code = String::from(
        "/// First-party plugins embedded at build time: (name, component bytes).\npub static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for plugin in &plugins {
        code.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            plugin.package,
            plugin.wasm.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("builtin_plugins.rs"), code).unwrap();
    std::fs::write(out_dir.join("carried.rs"), carried_sources()).unwrap();
}

/// The sources `sophon` carries for plugin authors (see `src/cli/carried.rs`): the WIT it
/// serves, the Python SDK package and the Rust SDK crate, each as (relative path, contents)
/// sorted by path, walked from the tree so no file can be left out.
fn carried_sources() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdk = root.join("sdk");
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("sdk/Cargo.toml spells out its version");
    let mut code = format!("pub const RUST_SDK_VERSION: &str = {version:?};\n");
    let mut rust_sdk = vec![PathBuf::from("Cargo.toml")];
    rust_sdk.extend(tree(&sdk, "src"));
    rust_sdk.extend(tree(&sdk, "wit"));
    let tables = [
        ("WIT_FILES", root.join("wit"), tree(&root.join("wit"), "")),
        (
            "PYTHON_SDK",
            sdk.join("python/sophon_sdk"),
            tree(&sdk.join("python/sophon_sdk"), ""),
        ),
        ("RUST_SDK", sdk.clone(), rust_sdk),
    ];
    for (name, base, mut files) in tables {
        files.sort();
        code.push_str(&format!("pub static {name}: &[(&str, &str)] = &[\n"));
        for file in files {
            let absolute = base.join(&file).canonicalize().unwrap();
            code.push_str(&format!(
                "    ({:?}, include_str!({:?})),\n",
                file.display().to_string(),
                absolute.display().to_string()
            ));
        }
        code.push_str("];\n");
    }
    code
}

/// The source files under `root/relative`, as paths relative to `root` (Python caches and
/// compiled files left out).
fn tree(root: &Path, relative: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::from(relative)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(root.join(&dir)).unwrap() {
            let entry = entry.unwrap();
            let path = dir.join(entry.file_name());
            // Python caches, and the frozen earlier WIT contracts (the host's to serve, not
            // an author's to build against).
            let name = entry.file_name();
            if name == "__pycache__" || name.to_string_lossy().starts_with("since_v") {
                continue;
            } else if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            } else if path.extension().is_none_or(|e| e != "pyc") {
                files.push(path);
            }
        }
    }
    files
}
