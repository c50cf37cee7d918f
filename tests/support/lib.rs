//! Shared helpers of Sophon's integration tests: where the compiled fixture plugins are.

use std::path::PathBuf;

/// Path of the compiled fixture plugin `name` (its crate name, e.g. `echo`).
pub fn fixture(name: &str) -> PathBuf {
    let listing = std::fs::read_to_string(env!("SOPHON_FIXTURES")).expect("fixture listing");
    listing
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(crate_name, _)| *crate_name == name.replace('-', "_"))
        .map(|(_, path)| PathBuf::from(path))
        .unwrap_or_else(|| panic!("no fixture plugin named {name}; add it under tests/plugins/"))
}
