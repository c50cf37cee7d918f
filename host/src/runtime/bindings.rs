//! Host bindings generated from `wit/`: one set of `sophon:host` interface traits shared by
//! every plugin world.

/// The `sophon:host` version `wit/` defines: the one the bindings below are generated from.
pub const CURRENT_HOST_VERSION: &str = "0.2.0";

/// The `sophon:host` package versions this runtime serves: the current one and every earlier
/// contract frozen under `wit/since_v*/`, which the current one extends (each addition marked
/// `@since`). A plugin's import of version `v` is served by a version here with the same
/// major and minor (the same minor only, below 1.0) and a patch at least `v`'s: a plugin
/// built against an older patch loads, one built against a newer patch (whose functions this
/// host may lack) does not. Imports of an earlier version are renamed to the current one
/// before linking ([`super::compat`]).
pub const SERVED_HOST_VERSIONS: &[&str] = &[CURRENT_HOST_VERSION, "0.1.0"];

/// True if `version` (of a `sophon:host` import) is served; see [`SERVED_HOST_VERSIONS`].
pub fn serves_host_version(version: &str) -> bool {
    let Some(wanted) = semver_triple(version) else {
        return false;
    };
    SERVED_HOST_VERSIONS
        .iter()
        .filter_map(|served| semver_triple(served))
        .any(|served| served.0 == wanted.0 && served.1 == wanted.1 && served.2 >= wanted.2)
}

/// `major.minor.patch` of a plain release version (no pre-release or build suffix).
fn semver_triple(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    let triple = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(triple)
}

/// Every `sophon:host` interface (the `sophon:plugin/host` world). All host functions are
/// async (so a call can await a capability under a deadline) and trappable (so the host can
/// end a misbehaving plugin's call), except the cheap synchronous queries.
pub mod host {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/host",
        imports: {
            "sophon:host/run.should-stop": trappable,
            "sophon:host/run.info": trappable,
            "sophon:host/run.budget": trappable,
            "sophon:host/run.log": trappable,
            "sophon:host/run.best": trappable,
            "sophon:host/llm.models": trappable,
            "sophon:host/llm.budget": trappable,
            "sophon:host/jobs.inventory": trappable,
            default: async | trappable,
        },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "sophon:host/llm.pending-completion": crate::runtime::resources::PendingChat,
            "sophon:host/jobs.job": crate::runtime::resources::RunningJob,
        },
    });
}

/// The `sophon:plugin/strategy` world's exports.
pub mod strategy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/strategy",
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "sophon:host": crate::runtime::bindings::host::sophon::host,
        },
    });
}

/// The `sophon:plugin/task-adapter` world's exports.
pub mod task_adapter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/task-adapter",
        exports: { default: async },
        with: {
            "sophon:host": crate::runtime::bindings::host::sophon::host,
        },
    });
}

/// The `sophon:plugin/promotion-policy` world's exports.
pub mod promotion_policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sophon:plugin/promotion-policy",
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "sophon:host": crate::runtime::bindings::host::sophon::host,
        },
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    /// Every `.wit` file under `root`, by path relative to it.
    fn wit_files(root: &Path) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    // Frozen earlier contracts are the host's to serve, not the SDK's.
                    if !path
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("since_v")
                    {
                        dirs.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "wit") {
                    let name = path.strip_prefix(root).unwrap().display().to_string();
                    files.insert(name, std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        files
    }

    /// `wit/` is the contract the host serves; the SDK carries a copy so it builds (and
    /// publishes) on its own. They must be the same files, byte for byte.
    #[test]
    fn the_sdks_copy_of_the_wit_is_the_wit_the_host_serves() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let served = wit_files(&root.join("wit"));
        let copied = wit_files(&root.join("sdk/wit"));
        assert!(served.len() >= 8, "{:?}", served.keys());
        assert_eq!(
            served.keys().collect::<Vec<_>>(),
            copied.keys().collect::<Vec<_>>(),
            "sdk/wit must hold the files of wit/: run `rm -r sdk/wit && cp -r wit sdk/wit`"
        );
        for (name, text) in &served {
            assert!(
                copied[name] == *text,
                "sdk/wit/{name} differs from wit/{name}: run `cp -r wit/. sdk/wit/`"
            );
        }
    }
}
