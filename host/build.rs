//! Builds the first-party plugins in `plugins/` for wasm32-wasip2 and embeds them in the
//! `sophon` binary (see `src/builtin.rs`).

use std::path::PathBuf;

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
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_plugins.rs");
    std::fs::write(out, code).unwrap();
}
