//! Builds the fixture plugins in `tests/plugins/` and tells the tests where they are.

fn main() {
    let plugins = sophon_build::build_workspace_for_build_script("plugins", &["../sdk", "../wit"]);
    let mut listing = String::new();
    for plugin in &plugins {
        listing.push_str(&format!("{}={}\n", plugin.crate_name, plugin.wasm.display()));
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("fixtures.txt");
    std::fs::write(&out, listing).unwrap();
    println!("cargo:rustc-env=SOPHON_FIXTURES={}", out.display());
}
