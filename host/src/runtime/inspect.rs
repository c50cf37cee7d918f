//! Reading a component without compiling or running it: its top-level imports and exports,
//! its world, and its embedded manifest.

use super::manifest::{MANIFEST_SECTION, World};
use serde::Serialize;
use wasmparser::{Encoding, Parser, Payload};

/// What a component file declares.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentFacts {
    /// Top-level import names, e.g. `sophon:host/llm@0.1.0`, in file order.
    pub imports: Vec<String>,
    /// Top-level export names, e.g. `sophon:plugin/strategy-api@0.1.0`.
    pub exports: Vec<String>,
    /// The bytes of the `sophon-manifest` custom section, if any module embeds one.
    #[serde(skip)]
    pub embedded_manifest: Option<Vec<u8>>,
}

/// Why a file is not a component Sophon can read.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("not a WebAssembly file: {0}")]
    NotWasm(String),
    #[error(
        "this is a core WebAssembly module, not a component; build plugins for the \
         wasm32-wasip2 target (cargo build --release --target wasm32-wasip2)"
    )]
    CoreModule,
    #[error("more than one `{MANIFEST_SECTION}` section: a component embeds exactly one manifest")]
    DuplicateManifest,
}

impl ComponentFacts {
    /// Parse `wasm`'s structure (no validation beyond what parsing needs).
    pub fn read(wasm: &[u8]) -> Result<ComponentFacts, InspectError> {
        let mut facts = ComponentFacts {
            imports: Vec::new(),
            exports: Vec::new(),
            embedded_manifest: None,
        };
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| InspectError::NotWasm(e.to_string()))?;
            match payload {
                Payload::Version { encoding, .. } => {
                    if depth == 0 && encoding == Encoding::Module {
                        return Err(InspectError::CoreModule);
                    }
                    depth += 1;
                }
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::ComponentImportSection(reader) if depth == 1 => {
                    for import in reader {
                        let import = import.map_err(|e| InspectError::NotWasm(e.to_string()))?;
                        facts.imports.push(import.name.name.to_string());
                    }
                }
                Payload::ComponentExportSection(reader) if depth == 1 => {
                    for export in reader {
                        let export = export.map_err(|e| InspectError::NotWasm(e.to_string()))?;
                        facts.exports.push(export.name.name.to_string());
                    }
                }
                Payload::CustomSection(section) if section.name() == MANIFEST_SECTION => {
                    if facts.embedded_manifest.is_some() {
                        return Err(InspectError::DuplicateManifest);
                    }
                    facts.embedded_manifest = Some(section.data().to_vec());
                }
                _ => {}
            }
        }
        Ok(facts)
    }

    /// The plugin world this component implements, judged by its exports.
    pub fn world(&self) -> Option<World> {
        World::ALL.into_iter().find(|world| {
            self.exports
                .iter()
                .any(|e| split_version(e).0 == world.export_interface())
        })
    }
}

/// `pkg:name/iface@1.2.3` → (`pkg:name/iface`, Some(`1.2.3`)).
pub fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    }
}

/// Where a plugin's manifest was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManifestOrigin {
    Embedded,
    Sidecar,
    Missing,
}

/// Everything knowable about a plugin file without compiling or running it.
#[derive(Debug)]
pub struct PluginFacts {
    pub facts: ComponentFacts,
    pub manifest_origin: ManifestOrigin,
    pub manifest: Option<Result<super::manifest::Manifest, super::manifest::ManifestError>>,
    pub sha256: String,
    pub size: usize,
}

/// Read `source`'s structure and manifest.
pub fn describe(source: &super::PluginSource) -> Result<PluginFacts, super::PluginError> {
    let facts = ComponentFacts::read(&source.wasm).map_err(|e| super::PluginError::Inspect {
        origin: source.origin.clone(),
        source: e,
    })?;
    let (manifest_origin, bytes) = match (&facts.embedded_manifest, &source.sidecar_manifest) {
        (Some(bytes), _) => (ManifestOrigin::Embedded, Some(bytes.clone())),
        (None, Some(bytes)) => (ManifestOrigin::Sidecar, Some(bytes.clone())),
        (None, None) => (ManifestOrigin::Missing, None),
    };
    Ok(PluginFacts {
        manifest: bytes.map(|b| super::manifest::Manifest::parse(&b)),
        manifest_origin,
        sha256: source.sha256(),
        size: source.wasm.len(),
        facts,
    })
}
