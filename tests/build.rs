//! Builds the fixture plugins in `tests/plugins/` and tells the tests where they are.

use std::path::PathBuf;

fn main() {
    let plugins = sophon_build::build_workspace_for_build_script("plugins", &["../sdk", "../wit"]);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut listing = String::new();
    for plugin in &plugins {
        listing.push_str(&format!(
            "{}={}\n",
            plugin.crate_name,
            plugin.wasm.display()
        ));
    }
    let listing_path = out_dir.join("fixtures.txt");
    std::fs::write(&listing_path, listing).unwrap();
    println!("cargo:rustc-env=SOPHON_FIXTURES={}", listing_path.display());
    // Precompiled components of the test runs, kept out of the user's cache directory.
    let target = out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").exists())
        .unwrap_or(&out_dir)
        .to_path_buf();
    println!(
        "cargo:rustc-env=SOPHON_TEST_CACHE={}",
        target.join("sophon-test-cache").display()
    );
}
